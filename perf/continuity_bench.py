"""How well `scifi-llm check` finds planted contradictions, per kind, on sets it was not written against.

A set is a folder with `chapters/*.md` and `plants.jsonl` (see `scifi_llm.check.plants`):
`perf/continuity/set1` (the example world, written by a helper who never saw the checker's code; since
used for tuning), or a held-out set kept outside the repository with its world's lore (`--lore`).

    python perf/continuity_bench.py [--set perf/continuity/set1] [--lore LORE_DIR] [--show]
    python perf/continuity_bench.py --set ../heldout/continuity-set2 --lore ../outside-worlds/anvil/lore

Writes perf/results/continuity_bench.json and rows in perf/RESULTS.md. Offline (minilm).
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.check import KINDS, check_drafts, load_plants, score
from scifi_llm.config import init_workspace
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.lore import MINILM, IngestOptions, LoreIndex, ingest_lore
from scifi_llm.text import parse_front_matter, split_sentences

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "continuity_bench.json"
HEADER = "| date | command | set | kind | plants | found | recall | findings | precision | seconds |"
SPEED_HEADER = "| date | command | manuscript | words | check seconds | reading it (baseline) | ratio |"
COVERED = tuple(kind for kind in KINDS if kind != "not in lore")


def measure(plant_set: Path, lore: Path | None = None, show: bool = False) -> dict:
    """Recall and precision per kind, and the time the check took. `lore`: the set's world (the example
    world when None)."""
    with tempfile.TemporaryDirectory() as scratch:
        workspace = init_workspace(Path(scratch) / "novel", with_example=lore is None)
        if lore is not None:
            shutil.rmtree(workspace.lore_dir)
            shutil.copytree(lore, workspace.lore_dir)
        options = IngestOptions.from_workspace(workspace, embedding_model=MINILM)
        ingest_lore([workspace.lore_dir], workspace.lore_dir, LoreIndex(workspace.index_dir), options)
        chapters = sorted((plant_set / "chapters").glob("*.md"))
        started = time.perf_counter()
        findings = check_drafts(workspace, chapters, COVERED)
        seconds = time.perf_counter() - started
        speed = _speed(workspace, chapters, Path(scratch))
    plants = load_plants(plant_set)
    if show:
        _show(findings, plants, plant_set)
    words = sum(len(path.read_text().split()) for path in chapters)
    return {
        "set": _shown_path(plant_set),
        "lore": _shown_path(lore) if lore else "examples/lore",
        "words": words,
        "seconds": round(seconds, 2),
        "speed": speed,
    } | score(findings, plants, plant_set, COVERED)


def _speed(workspace, chapters: list[Path], scratch: Path) -> dict:
    """The deterministic layers on a manuscript of 100,000 words or more (the set's chapters, repeated),
    against the floor of reading it: splitting the same text into sentences."""
    bodies = [parse_front_matter(path.read_text())[2] for path in chapters]
    story_date = parse_front_matter(chapters[-1].read_text())[0].get("story_date", "")
    words = sum(len(body.split()) for body in bodies)
    manuscript = scratch / "manuscript.md"
    repeats = -(-TARGET_WORDS // words)
    manuscript.write_text(f"---\nstory_date: {story_date}\n---\n" + "\n\n".join(bodies * repeats))
    started = time.perf_counter()
    sentences = sum(len(split_sentences(line)) for line in manuscript.read_text().splitlines())
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    check_drafts(workspace, [manuscript], COVERED)
    seconds = time.perf_counter() - started
    return {
        "words": words * repeats,
        "sentences": sentences,
        "seconds": round(seconds, 2),
        "baseline_seconds": round(baseline, 3),
        "ratio_to_baseline": round(seconds / baseline, 1),
    }


TARGET_WORDS = 100_000


def _shown_path(path: Path) -> str:
    return (
        str(path.relative_to(ROOT))
        if path.is_relative_to(ROOT)
        else f"{path.name} (held out, outside the repository)"
    )


def _show(findings, plants, plant_set: Path) -> None:
    """Print each plant missed and each false alarm, for reading by eye."""
    flagged = {
        (Path(f.file).resolve().relative_to(plant_set.resolve()).as_posix(), f.line): f for f in findings
    }
    on_line = {(plant["file"], plant["line"]): plant for plant in plants}
    for plant in plants:
        if plant["kind"] in COVERED and (plant["file"], plant["line"]) not in flagged:
            print(f"MISSED {plant['kind']:9} {plant['file']}:{plant['line']} {plant['text']!r}")
    for key, finding in flagged.items():
        plant = on_line.get(key, {})
        if plant.get("kind") != finding.kind:
            print(f"FALSE  {finding.kind:9} {key[0]}:{key[1]} {finding.text!r} vs {finding.expected!r} "
                  f"({plant.get('kind', 'unannotated')}) {finding.source}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", type=Path, default=ROOT / "perf" / "continuity" / "set1")
    parser.add_argument("--lore", type=Path, help="the set's world (default: the example world)")
    parser.add_argument("--show", action="store_true", help="print each miss and false alarm")
    args = parser.parse_args()
    results = measure(args.set.resolve(), args.lore.resolve() if args.lore else None, args.show)
    results["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(results, indent=1))
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    speed = results["speed"]
    command = f"`{' '.join(['python perf/continuity_bench.py', *sys.argv[1:]])}`"
    manuscript = f"{results['set']} chapters, repeated"
    add_table_row(
        SPEED_HEADER,
        f"| {results['date'][:10]} | {command} | {manuscript} | {speed['words']:,} | {speed['seconds']} | "
        f"{speed['baseline_seconds']} s | x{speed['ratio_to_baseline']} |",
    )
    for kind, figures in [*results["kinds"].items(), ("all", None)]:
        row = figures or {
            "plants": "",
            "found": "",
            "recall": "",
            "findings": "",
            "precision": results["precision"],
        }
        add_table_row(
            HEADER,
            f"| {results['date'][:10]} | {command} | {results['set']} "
            f"({results['words']:,} words) | {kind} | {row['plants']} | {row['found']} | "
            f"{row['recall']} | {row['findings']} | {row['precision']} | {results['seconds']} |",
        )


if __name__ == "__main__":
    main()
