"""How fast everyday commands answer, against starting Python itself (`python -c pass`) in the same run.

Each command runs as a whole process, several times; the table gives the median seconds and the ratio
to the baseline. The goal for `--help`, `--version`, `status` and `stop` is 0.5 s. Then `lore ingest` of
the example world with minilm, fresh and unchanged, as CLI runs (goal: unchanged at most 0.10 of fresh).

    python perf/cli_bench.py             # about a minute
    python perf/cli_bench.py --runs 9    # more runs per command

Writes perf/results/cli_bench.json and a line in perf/RESULTS.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.fsutil import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "cli_bench.json"
EVERYDAY = {
    "--help": ["--help"],
    "--version": ["--version"],
    "status": ["status"],
    "stop": ["stop"],
    "lore --help": ["lore", "--help"],
}


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_time(command: list[str], env: dict, runs: int) -> float:
    timed(command, env)  # warm the file cache once
    return statistics.median(timed(command, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "scifi_llm"]
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch) / "novel"
        subprocess.run([*cli, "init", str(workspace), "--example"], check=True, capture_output=True)
        env = {**os.environ, "SCIFI_LLM_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1"}
        baseline = median_time([sys.executable, "-c", "pass"], env, args.runs)
        commands = {
            name: round(median_time([*cli, *argv], env, args.runs), 3) for name, argv in EVERYDAY.items()
        }
        ingest = [*cli, "lore", "ingest", "--embedding-model", "minilm"]
        fresh = timed(ingest, env)
        unchanged = statistics.median(timed(ingest, env) for _ in range(args.runs))
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python_c_pass_s": round(baseline, 3),
        "commands_s": commands,
        "ratio_to_python": {name: round(seconds / baseline, 1) for name, seconds in commands.items()},
        "ingest_fresh_s": round(fresh, 3),
        "ingest_unchanged_s": round(unchanged, 3),
        "ingest_ratio": round(unchanged / fresh, 3),
    }
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    summary = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in commands.items())
    line = (
        f"| {results['date'][:10]} | `python perf/cli_bench.py` | python -c pass {baseline:.3f} s; "
        f"{summary}; lore ingest unchanged/fresh {unchanged:.2f}/{fresh:.2f} s "
        f"= {results['ingest_ratio']:.2f} |"
    )
    add_table_row("| date | command | everyday commands |", line)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
