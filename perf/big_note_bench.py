"""A huge lore note: memory, time to the first stored batch, and resuming after SIGKILL.

A generated note of `--mb` megabytes (wiki-style sections) is ingested by a real `scifi-llm lore ingest`
process with minilm. The script samples the process's resident memory, waits for a few batches to be
committed, kills it with SIGKILL, ingests again until a few more batches are committed, and kills that
too. The baseline is the same process ingesting a 0.5 MB note of the same kind, killed after as many
batches, in the same run (Python, torch, the model and a full embedding batch): memory is reported as
the growth over it, against the note's size.

    python perf/big_note_bench.py              # a 20 MB note, about two minutes
    python perf/big_note_bench.py --mb 200     # the size of the outside report's note

Writes perf/results/big_note.json and a line in perf/RESULTS.md.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.config import init_workspace
from scifi_llm.fsutil import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "big_note.json"
HEADER = (
    "| date | note | baseline peak | peak growth / note size | first batch stored | kept after kill "
    "| resumed run embedded |"
)


def write_note(path: Path, megabytes: float) -> None:
    """A wiki-style note of about `megabytes` MB, written in pieces (never whole in memory here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("# The Archive of Harrow Station\n\n")
        written, section = 0, 0
        while written < megabytes * 2**20:
            text = (
                f"## Record {section}\n\nRecord {section} tells how the freighter Lark {section % 97} "
                f"carried {section * 13 % 1000} seed-vaults past the Wren relay in cycle {section % 311}. "
                "The quartermaster signed for them in the cold hold; the magistrate sealed the ledger.\n\n"
            )
            handle.write(text)
            written += len(text)
            section += 1


def rss_mb(pid: int) -> float:
    """The process's resident memory now, in MB (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")]
    return found[0] / 1024 if found else 0.0  # a process that has exited has no resident memory


def batches_stored(workspace) -> int:
    """Batches committed so far: each adds one data file to the table."""
    folder = workspace.index_dir / "scifi_world.lance" / "data"
    return len(list(folder.glob("*.lance"))) if folder.is_dir() else 0


def run_until(workspace, commits: int | None, timeout: float = 1800) -> dict:
    """Run an ingest, sampling memory, until `commits` more batches are stored (then SIGKILL) or it ends."""
    command = [sys.executable, "-m", "scifi_llm", "--workspace", str(workspace.root), "lore", "ingest"]
    command += ["--embedding-model", "minilm", "--json"]
    start_batches, started, peak = batches_stored(workspace), time.monotonic(), 0.0
    first_commit = None
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while process.poll() is None and time.monotonic() - started < timeout:
        peak = max(peak, rss_mb(process.pid))
        grown = batches_stored(workspace) - start_batches
        if first_commit is None and grown >= 1:
            first_commit = time.monotonic() - started
        if commits is not None and grown >= commits:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    output = process.communicate()[0]
    report = json.loads(output) if process.returncode == 0 else None
    return {"peak_rss_mb": round(peak, 1), "first_batch_s": first_commit, "report": report}


def stored(workspace) -> tuple[int, int]:
    """(chunks stored, chunks stored twice) of the note."""
    from scifi_llm.lore import LoreIndex

    state = LoreIndex(workspace.index_dir).open("scifi_world").file_states()["archive.md"]
    return state.rows, state.rows - state.distinct_indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="Size of the generated note.")
    parser.add_argument("--commits", type=int, default=2, help="Batches to wait for before each kill.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        small = init_workspace(Path(scratch) / "small")
        write_note(small.lore_dir / "archive.md", 0.5)
        baseline = run_until(small, args.commits)
        big = init_workspace(Path(scratch) / "big")
        write_note(big.lore_dir / "archive.md", args.mb)
        note_mb = (big.lore_dir / "archive.md").stat().st_size / 2**20
        killed = run_until(big, args.commits)
        kept, _ = stored(big)
        resumed = run_until(big, args.commits)
        after, twice = stored(big)
    growth = max(killed["peak_rss_mb"], resumed["peak_rss_mb"]) - baseline["peak_rss_mb"]
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "note_mb": round(note_mb, 1),
        "baseline_peak_rss_mb": baseline["peak_rss_mb"],
        "killed_run": killed,
        "resumed_run": resumed,
        "peak_growth_over_note_size": round(growth / note_mb, 2),
        "chunks_kept_after_kill": kept,
        "chunks_after_resumed_run": after,
        "chunks_stored_twice": twice,
        "command": "python perf/big_note_bench.py " + " ".join(sys.argv[1:]),
    }
    atomic_write_text(RESULTS_JSON, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    row = (
        f"| {result['date']} | {result['note_mb']} MB | {baseline['peak_rss_mb']:.0f} MB | "
        f"{result['peak_growth_over_note_size']} | {killed['first_batch_s']:.1f} s | {kept} chunks | "
        f"{after - kept} more chunks, {twice} stored twice |"
    )
    add_table_row(HEADER, row)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
