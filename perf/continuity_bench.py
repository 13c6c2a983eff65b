"""How well `scifi-llm check` finds planted contradictions, per kind, on a set it was not written against.

A set is a folder with `chapters/*.md` and `plants.jsonl`: one line per planted contradiction or
consistent control edit, with its file, line and kind (`perf/continuity/set1`, written by a helper who
never saw the checker's code). A finding on a plant's line of a kind the checker covers is a hit; any
other finding of that kind is a false alarm. Runs offline on the example world (minilm).

    python perf/continuity_bench.py [--set perf/continuity/set1]

Writes perf/results/continuity_bench.json and a line in perf/RESULTS.md.
"""

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.check import check_drafts
from scifi_llm.config import init_workspace
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.lore import MINILM, IngestOptions, LoreIndex, ingest_lore

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "continuity_bench.json"
HEADER = "| date | command | set | kind | plants | found | recall | findings | precision | seconds |"
COVERED = ("name",)  # the kinds the checker has a layer for so far


def measure(plant_set: Path) -> dict:
    """Recall and precision per covered kind, and the time the check took."""
    with tempfile.TemporaryDirectory() as scratch:
        workspace = init_workspace(Path(scratch) / "novel", with_example=True)
        options = IngestOptions.from_workspace(workspace, embedding_model=MINILM)
        ingest_lore([workspace.lore_dir], workspace.lore_dir, LoreIndex(workspace.index_dir), options)
        chapters = sorted((plant_set / "chapters").glob("*.md"))
        started = time.perf_counter()
        findings = check_drafts(workspace, chapters)
        seconds = time.perf_counter() - started
    plants = [json.loads(line) for line in (plant_set / "plants.jsonl").read_text().splitlines() if line]
    on_line = {(plant["file"], plant["line"]): plant for plant in plants}
    kinds = {}
    for kind in COVERED:
        flagged = [f for f in findings if f.kind == kind]
        hits = {
            on_line[key]["id"]
            for f in flagged
            if (key := (f"chapters/{Path(f.file).name}", f.line)) in on_line and on_line[key]["kind"] == kind
        }
        false = [
            f
            for f in flagged
            if on_line.get((f"chapters/{Path(f.file).name}", f.line), {}).get("kind") != kind
        ]
        planted = sum(1 for plant in plants if plant["kind"] == kind)
        kinds[kind] = {
            "plants": planted,
            "found": len(hits),
            "recall": round(len(hits) / planted, 3) if planted else None,
            "findings": len(flagged),
            "precision": round((len(flagged) - len(false)) / len(flagged), 3) if flagged else None,
        }
    words = sum(len(path.read_text().split()) for path in chapters)
    return {
        "set": str(plant_set.relative_to(ROOT)),
        "words": words,
        "seconds": round(seconds, 2),
        "kinds": kinds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", type=Path, default=ROOT / "perf" / "continuity" / "set1")
    args = parser.parse_args()
    results = measure(args.set.resolve()) | {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    print(json.dumps(results, indent=1))
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    for kind, figures in results["kinds"].items():
        add_table_row(
            HEADER,
            f"| {results['date'][:10]} | `python perf/continuity_bench.py` | {results['set']} "
            f"({results['words']:,} words) | {kind} | {figures['plants']} | {figures['found']} | "
            f"{figures['recall']} | {figures['findings']} | {figures['precision']} | {results['seconds']} |",
        )


if __name__ == "__main__":
    main()
