"""Throughput of `tune prepare` on a synthetic 10 MB corpus, and the share of time spent tokenizing.

The corpus is the example prose repeated with varied names across 200 files (with scene breaks, notes and
headings, as real folders have); the tokenizer is the tiny Llama's byte-level BPE (a fast tokenizer, as
Llama-3's is). The baseline in the same run is tokenizing the corpus alone in one batch.

    python perf/prepare_bench.py            # about a minute

Writes perf/results/prepare_bench.json and a line in perf/RESULTS.md.
"""

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.tiny_model import build_tiny_llama
from scifi_llm.tune import chunk
from scifi_llm.tune.prepare import PrepareOptions, prepare

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "prepare_bench.json"
TARGET_BYTES = 10 * 2**20
NAMES = ["Elena", "Tomas", "Sefa", "Hollis", "Ilka", "Oona", "Aurel", "Corvina", "Wren", "Lark"]


def build_corpus(folder: Path) -> int:
    """About 10 MB of prose in 200 files; returns the byte count."""
    prose = [path.read_text(encoding="utf-8") for path in sorted((ROOT / "examples" / "writing").glob("*"))]
    base = "\n\n* * *\n\n".join(prose) + "\n\nTODO: tighten this chapter\n"
    per_file = TARGET_BYTES // 200
    total = 0
    for index in range(200):
        name = NAMES[index % len(NAMES)]
        text = f"# Chapter {index}\n\n" + base.replace("Elena", name)
        text = (text * (per_file // len(text) + 1))[:per_file]
        text = text[: text.rfind("\n\n")]  # end at a paragraph
        (folder / f"chapter_{index:03d}.md").write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model = build_tiny_llama(scratch / "tiny", [p.read_text() for p in (ROOT / "examples").rglob("*.md")])
        (scratch / "writing").mkdir()
        size = build_corpus(scratch / "writing")
        options = PrepareOptions(scratch / "writing", scratch / "out", str(model))
        tokenize_seconds = 0.0
        originals = {name: getattr(chunk.TokenCounter, name) for name in ("count", "count_pieces_many")}

        def timed(method):
            def wrapper(*args):
                nonlocal tokenize_seconds
                started = time.perf_counter()
                result = method(*args)
                tokenize_seconds += time.perf_counter() - started
                return result

            return wrapper

        for name, method in originals.items():
            setattr(chunk.TokenCounter, name, timed(method))
        started = time.perf_counter()
        report = prepare(options)
        seconds = time.perf_counter() - started
        for name, method in originals.items():
            setattr(chunk.TokenCounter, name, method)
        texts = [p.read_text() for p in sorted((scratch / "writing").glob("*.md"))]
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        started = time.perf_counter()
        tokenizer(texts, add_special_tokens=False)
        baseline = time.perf_counter() - started
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "corpus_mb": round(size / 2**20, 2),
        "seconds": round(seconds, 2),
        "mb_per_s": round(size / 2**20 / seconds, 2),
        "tokenize_share": round(tokenize_seconds / seconds, 3),
        "tokenize_all_at_once_s": round(baseline, 2),
        "examples": report.train_examples + report.validation_examples,
        "validation_share": round(
            report.validation_examples / max(1, report.train_examples + report.validation_examples), 3
        ),
    }
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    row = (
        f"| {results['date'][:10]} | `python perf/prepare_bench.py` | {results['corpus_mb']} MB in "
        f"{results['seconds']} s = {results['mb_per_s']} MB/s end to end; "
        f"tokenizing {results['tokenize_share']:.0%} of the time "
        f"(the corpus in one batch alone: {results['tokenize_all_at_once_s']} s); "
        f"{results['examples']} examples, {results['validation_share']:.0%} in validation |"
    )
    add_table_row("| date | command | throughput |", row)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
