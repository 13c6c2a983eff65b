"""Benchmarks of the lore index, each against a baseline measured in the same run.

1. Re-ingest of an unchanged folder vs a fresh ingest of it (time ratio), in-process and as CLI runs.
2. Query latency p50/p99 (model already loaded) at about 300 and 10,000 chunks, in total and without
   the query embedding (the part that is ours: registry, LanceDB searches, fusion).
3. Retrieval quality of hybrid vs dense vs keyword (recall@1/3/5, MRR, tokens) on the example questions
   and on the held-out lore set.

    python perf/lore_bench.py                 # everything (the 10,000-chunk ingest takes ~7 minutes)
    python perf/lore_bench.py --skip-large    # without the 10,000-chunk collection

Writes perf/results/lore_bench.json and appends a summary line to perf/RESULTS.md.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.lore.embed import MINILM, Embedder
from scifi_llm.lore.entities import EntityRegistry, note_facts
from scifi_llm.lore.evaluate import evaluate, load_questions
from scifi_llm.lore.ingest import IngestOptions, ingest
from scifi_llm.lore.markdown import parse_document
from scifi_llm.lore.retrieve import Retriever
from scifi_llm.lore.store import LoreIndex

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_LORE = ROOT / "examples" / "lore"
EXAMPLE_QUESTIONS = ROOT / "examples" / "lore_questions.jsonl"
HELDOUT_LORE = ROOT / "perf" / "heldout" / "lore"
HELDOUT_QUESTIONS = ROOT / "perf" / "heldout" / "questions.jsonl"
RESULTS_JSON = ROOT / "perf" / "results" / "lore_bench.json"


class TimedEmbedder:
    """Wraps an Embedder and adds up the time spent embedding queries."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.query_seconds = 0.0

    def embed_queries(self, queries: list[str]):
        started = time.perf_counter()
        vectors = self.inner.embed_queries(queries)
        self.query_seconds += time.perf_counter() - started
        return vectors

    def __getattr__(self, name):
        return getattr(self.inner, name)


def options(collection: str) -> IngestOptions:
    return IngestOptions(collection, MINILM, MINILM, chunk_tokens=300, chunk_overlap=40)


def ingest_folder(lore: Path, index_dir: Path, embedder: Embedder, collection: str = "bench"):
    return ingest(
        [lore], lore, LoreIndex(index_dir), options(collection), load_embedder=lambda _name: embedder
    )


def bench_reingest(embedder: Embedder, scratch: Path) -> dict:
    """Fresh ingest vs re-ingest of the unchanged example folder, in-process and through the CLI."""
    fresh = ingest_folder(EXAMPLE_LORE, scratch / "reingest", embedder)
    again = ingest_folder(EXAMPLE_LORE, scratch / "reingest", embedder)
    workspace = scratch / "cli-novel"
    run_cli("init", str(workspace), "--example")
    command = ["--workspace", str(workspace), "lore", "ingest", "--embedding-model", MINILM, "--json"]
    cli_fresh, cli_again = timed_cli(*command), timed_cli(*command)
    return {
        "chunks": fresh.chunks_total,
        "fresh_s": fresh.seconds,
        "unchanged_s": again.seconds,
        "unchanged_embedded": again.chunks_embedded,
        "ratio": round(again.seconds / fresh.seconds, 4),
        "cli_fresh_s": round(cli_fresh, 3),
        "cli_unchanged_s": round(cli_again, 3),
        "cli_ratio": round(cli_again / cli_fresh, 4),
    }


def run_cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "scifi_llm", *args], check=True, capture_output=True)


def timed_cli(*args: str) -> float:
    started = time.perf_counter()
    run_cli(*args)
    return time.perf_counter() - started


def bench_latency(
    retriever: Retriever, embedder: TimedEmbedder, queries: list[str], repeats: int = 3
) -> dict:
    """p50/p99 of `search` over the queries, with and without the query embedding time."""
    retriever.search(queries[0])  # warm caches once
    totals, ours = [], []
    for _ in range(repeats):
        for query in queries:
            embedder.query_seconds = 0.0
            started = time.perf_counter()
            retriever.search(query, k=5, mode="hybrid", budget_tokens=1500)
            elapsed = time.perf_counter() - started
            totals.append(elapsed * 1000)
            ours.append((elapsed - embedder.query_seconds) * 1000)
    return {
        "chunks": retriever.collection.count(),
        "queries": len(totals),
        "p50_ms": round(percentile(totals, 50), 2),
        "p99_ms": round(percentile(totals, 99), 2),
        "p50_ms_without_embedding": round(percentile(ours, 50), 2),
        "p99_ms_without_embedding": round(percentile(ours, 99), 2),
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def bench_quality(retriever: Retriever, questions_file: Path) -> dict:
    questions, _ = load_questions(questions_file)
    scores = {}
    for mode in ("hybrid", "dense", "keyword"):
        report = evaluate(retriever, questions, 5, mode, 1500)
        scores[mode] = {
            "recall": report.recall,
            "mrr": report.mrr,
            "mean_tokens": report.mean_tokens,
            "by_kind": {kind: row["recall@5"] for kind, row in report.by_kind.items()},
        }
    return {"questions": len(questions), **scores}


def build_large_corpus(target: Path, copies: int) -> None:
    """Copies of the example and held-out worlds, each with its own proper names, as one big lore folder."""
    documents = {
        f"{base.parent.name}/{path.relative_to(base).as_posix()}": path.read_text(encoding="utf-8")
        for base in (EXAMPLE_LORE, HELDOUT_LORE)
        for path in sorted(base.rglob("*.*"))
    }
    registry = EntityRegistry(
        {name: note_facts(parse_document(text, name)) for name, text in documents.items()}
    )
    for copy in range(copies):
        for name, text in documents.items():
            renamed = re.sub(
                r"\b[A-Z][a-z]{2,}\b", lambda m, copy=copy: _rename(m.group(0), copy, registry), text
            )
            out = target / f"world_{copy:03d}" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(renamed, encoding="utf-8")


def _rename(word: str, copy: int, registry: EntityRegistry) -> str:
    return f"{word}{chr(97 + copy % 26)}{copy // 26 or ''}" if registry.is_proper(word) else word


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-large", action="store_true", help="skip the 10,000-chunk collection")
    parser.add_argument("--copies", type=int, default=40, help="world copies in the large corpus")
    args = parser.parse_args()
    embedder = TimedEmbedder(Embedder(MINILM))
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "embedding_model": MINILM}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        results["reingest"] = bench_reingest(embedder.inner, scratch)
        both = scratch / "both"
        shutil.copytree(EXAMPLE_LORE, both / "example")
        shutil.copytree(HELDOUT_LORE, both / "heldout")
        ingest_folder(both, scratch / "small", embedder.inner)
        small = Retriever(LoreIndex(scratch / "small").open("bench"), embedder)
        queries = [q.question for f in (EXAMPLE_QUESTIONS, HELDOUT_QUESTIONS) for q in load_questions(f)[0]]
        results["latency_small"] = bench_latency(small, embedder, queries)
        for name, lore, questions in (
            ("example", EXAMPLE_LORE, EXAMPLE_QUESTIONS),
            ("heldout", HELDOUT_LORE, HELDOUT_QUESTIONS),
        ):
            ingest_folder(lore, scratch / name, embedder.inner)
            retriever = Retriever(LoreIndex(scratch / name).open("bench"), embedder)
            results[f"quality_{name}"] = bench_quality(retriever, questions)
        if not args.skip_large:
            build_large_corpus(scratch / "large", args.copies)
            report = ingest_folder(scratch / "large", scratch / "large-index", embedder.inner)
            results["large_ingest"] = {"chunks": report.chunks_total, "seconds": report.seconds}
            large = Retriever(LoreIndex(scratch / "large-index").open("bench"), embedder)
            results["latency_large"] = bench_latency(large, embedder, queries, repeats=1)
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    append_summary(results)
    print(json.dumps(results, indent=1))


def append_summary(results: dict) -> None:
    """One Markdown line per run, at the end of the lore table of perf/RESULTS.md."""
    reingest = results["reingest"]
    parts = [f"re-ingest/fresh {reingest['ratio']:.3f} in-process, {reingest['cli_ratio']:.2f} CLI"]
    for key in ("latency_small", "latency_large"):
        if key in results:
            lat = results[key]
            parts.append(
                f"{lat['chunks']} chunks p50/p99 {lat['p50_ms']}/{lat['p99_ms']} ms "
                f"({lat['p50_ms_without_embedding']}/{lat['p99_ms_without_embedding']} without embedding)"
            )
    for key in ("quality_example", "quality_heldout"):
        q = results[key]
        parts.append(
            f"{key[8:]} R@5 hybrid {q['hybrid']['recall']['5']:.3f} / dense {q['dense']['recall']['5']:.3f}"
            f" / keyword {q['keyword']['recall']['5']:.3f}, MRR {q['hybrid']['mrr']:.3f}/"
            f"{q['dense']['mrr']:.3f}/{q['keyword']['mrr']:.3f}"
        )
    line = f"| {results['date'][:10]} | `python perf/lore_bench.py` | {'; '.join(parts)} |"
    add_table_row("| date | command | result |", line)


if __name__ == "__main__":
    main()
