"""Throughput of `tune prepare` on a synthetic 10 MB corpus, and the share of time spent tokenizing.

The corpus is 200 chapters of paragraphs drawn at random from the example prose's sentences, names varied
(with scene breaks, notes and headings, as real folders have); the tokenizer is the tiny Llama's byte-level
BPE (a fast tokenizer, as Llama-3's is). The baseline in the same run is one tokenizer pass over the
corpus, in one batch, without offsets: the least any exact count can cost.

    python perf/prepare_bench.py            # about 30 seconds

Writes perf/results/prepare_bench.json and a line in perf/RESULTS.md.
"""

import json
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.text import split_sentences
from scifi_llm.tiny_model import build_tiny_llama
from scifi_llm.tokens import TokenCounter
from scifi_llm.tune import PrepareOptions, prepare_data, read_writing

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "prepare_bench.json"
TARGET_BYTES = 10 * 2**20
NAMES = ["Elena", "Tomas", "Sefa", "Hollis", "Ilka", "Oona", "Aurel", "Corvina", "Wren", "Lark"]


def build_corpus(folder: Path) -> int:
    """About 10 MB of prose in 200 files; returns the byte count.

    Paragraphs are 1-6 sentences drawn at random from the example prose, with the names varied, so
    (as in a real manuscript) almost no paragraph repeats: nothing is flattered by caching.
    """
    manuscripts, _ = read_writing(ROOT / "examples" / "writing")
    sentences = [s for m in manuscripts for scene in m.scenes for p in scene for s in split_sentences(p)]
    rng = random.Random(7)
    per_file = TARGET_BYTES // 200
    total = 0
    for index in range(200):
        parts = [f"# Chapter {index}"]
        size = 0
        while size < per_file:
            paragraph = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 6)))
            parts.append(paragraph.replace("Elena", rng.choice(NAMES)))
            if rng.random() < 0.05:
                parts.append(rng.choice(["* * *", "TODO: tighten this", "<!-- check the dates -->"]))
            size += len(parts[-1]) + 2
        text = "\n\n".join(parts) + "\n"
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
        originals = {name: getattr(TokenCounter, name) for name in ("count", "shares")}

        def timed(method):
            def wrapper(*args):
                nonlocal tokenize_seconds
                started = time.perf_counter()
                result = method(*args)
                tokenize_seconds += time.perf_counter() - started
                return result

            return wrapper

        for name, method in originals.items():
            setattr(TokenCounter, name, timed(method))
        started = time.perf_counter()
        report = prepare_data(options)
        seconds = time.perf_counter() - started
        for name, method in originals.items():
            setattr(TokenCounter, name, method)
        texts = [p.read_text() for p in sorted((scratch / "writing").glob("*.md"))]
        from transformers import AutoTokenizer

        backend = AutoTokenizer.from_pretrained(model).backend_tokenizer
        started = time.perf_counter()
        backend.encode_batch_fast(texts, add_special_tokens=False)
        baseline = time.perf_counter() - started
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "corpus_mb": round(size / 2**20, 2),
        "seconds": round(seconds, 2),
        "mb_per_s": round(size / 2**20 / seconds, 2),
        "tokenize_share": round(tokenize_seconds / seconds, 3),
        "tokenize_all_at_once_s": round(baseline, 2),
        "times_tokenizing_once": round(seconds / baseline, 2),
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
        f"(the corpus in one batch alone: {results['tokenize_all_at_once_s']} s, "
        f"so the whole job costs {results['times_tokenizing_once']}x one tokenizer pass); "
        f"{results['examples']} examples, {results['validation_share']:.0%} in validation |"
    )
    add_table_row("| date | command | throughput |", row)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
