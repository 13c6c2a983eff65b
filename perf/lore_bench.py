"""Benchmarks of the lore index, each against a baseline measured in the same run.

1. Re-ingest of an unchanged folder vs a fresh ingest of it (time ratio), in-process and as CLI runs.
2. Query latency p50/p99 including the query embedding, at about 700 and 10,000 chunks: on a quiet
   machine, and with another process keeping one core busy, with torch's default threads for the query
   embedding against one thread and the shipped choice (`QUERY_THREADS`).
3. Retrieval quality on every world (perf/worlds.py, plus `--world DIR` kept outside the repository):
   hybrid vs dense vs keyword, recall@1/3/5, MRR, recall@5 per kind, words handed over; and a naive
   baseline (220-word paragraph chunks, BM25 + dense, reciprocal-rank fusion, top 5) built in the same run.

    python perf/lore_bench.py                 # everything (the 10,000-chunk ingest takes ~6 minutes)
    python perf/lore_bench.py --skip-large    # without the 10,000-chunk collection
    python perf/lore_bench.py --world DIR     # add a world kept outside the repository

Writes perf/results/lore_bench.json, prints the per-world table, appends a summary line to perf/RESULTS.md.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from record import add_table_row
from scifi_llm.config import LoreSettings
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.lore import (
    MINILM,
    Embedder,
    Hit,
    IngestOptions,
    LoreIndex,
    Retrieval,
    Retriever,
    evaluate_retrieval,
    ingest_lore,
    load_questions,
)
from scifi_llm.lore.embed import QUERY_THREADS
from scifi_llm.lore.entities import EntityRegistry, note_facts
from scifi_llm.lore.evaluate import found_rank
from scifi_llm.lore.markdown import parse_document
from worlds import ROOT, WORLDS, open_world, outside_world

EXAMPLE_LORE = ROOT / "examples" / "lore"
RESULTS_JSON = ROOT / "perf" / "results" / "lore_bench.json"
LORE = LoreSettings()


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
    return IngestOptions(collection, MINILM, MINILM, LORE.chunk_tokens, LORE.chunk_overlap)


def ingest_folder(lore: Path, index_dir: Path, embedder: Embedder, collection: str = "bench"):
    return ingest_lore(
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


@contextmanager
def one_core_busy():
    """Another process spinning on one core for as long as the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def bench_latency(retriever: Retriever, embedder: TimedEmbedder, queries: list[str]) -> dict:
    """p50/p99 of `search` (shipped k and budget) over the queries: total, and without the embedding."""
    retriever.search(queries[0])  # warm caches once
    totals, ours = [], []
    for query in queries:
        embedder.query_seconds = 0.0
        started = time.perf_counter()
        retriever.search(query, k=LORE.top_k, mode="hybrid", budget_tokens=LORE.budget_tokens)
        elapsed = time.perf_counter() - started
        totals.append(elapsed * 1000)
        ours.append((elapsed - embedder.query_seconds) * 1000)
    return {
        "queries": len(totals),
        "p50_ms": round(percentile(totals, 50), 2),
        "p99_ms": round(percentile(totals, 99), 2),
        "p50_ms_without_embedding": round(percentile(ours, 50), 2),
        "p99_ms_without_embedding": round(percentile(ours, 99), 2),
    }


def latency_conditions(retriever: Retriever, embedder: TimedEmbedder, queries: list[str]) -> dict:
    """Latency quiet, then with one core busy for each choice of query-embedding threads."""
    results = {"chunks": retriever.collection.count()}
    embedder.inner.query_threads = QUERY_THREADS
    results["quiet"] = bench_latency(retriever, embedder, queries)
    with one_core_busy():
        for name, threads in (
            ("busy_torch_default", None),
            ("busy_1_thread", 1),
            ("busy_shipped", QUERY_THREADS),
        ):
            embedder.inner.query_threads = threads
            results[name] = bench_latency(retriever, embedder, queries)
    embedder.inner.query_threads = QUERY_THREADS
    return results


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def bench_quality(retriever: Retriever, questions_file: Path) -> dict:
    """Hybrid, dense and keyword with the shipped k and budget: recall, MRR, per kind, words handed over."""
    questions, _ = load_questions(questions_file)
    scores = {}
    for mode in ("hybrid", "dense", "keyword"):
        report = evaluate_retrieval(retriever, questions, LORE.top_k, mode, LORE.budget_tokens)
        scores[mode] = {
            "recall": report.recall,
            "mrr": report.mrr,
            "mean_tokens": report.mean_tokens,
            "mean_words": report.mean_words,
            "max_words": report.max_words,
            "by_kind": {kind: row[f"recall@{LORE.top_k}"] for kind, row in report.by_kind.items()},
        }
    return {"questions": len(questions), **scores}


def naive_baseline(lore_dir: Path, questions_file: Path, embedder: Embedder, scratch: Path) -> dict:
    """The common recipe: paragraphs packed into ~220-word chunks, BM25 and dense top 50 each, fused with
    reciprocal-rank fusion (k=60), the top 5 handed over."""
    import lancedb
    from lancedb.index import FTS

    chunks = [
        {"id": f"{path}#{n}", "source": path.name, "text": text}
        for path in sorted(lore_dir.rglob("*"))
        if path.is_file()
        and path.suffix in (".md", ".txt")
        and not any(p.startswith(".") for p in path.parts)
        for n, text in enumerate(paragraph_chunks(path.read_text(encoding="utf-8", errors="replace")))
    ]
    vectors = embedder.embed_documents([chunk["text"] for chunk in chunks])
    table = lancedb.connect(str(scratch)).create_table(
        "naive", [{**chunk, "vector": vector.tolist()} for chunk, vector in zip(chunks, vectors, strict=True)]
    )
    table.create_index("text", config=FTS())
    questions, _ = load_questions(questions_file)
    ranks, words = [], []
    for question in questions:
        dense = table.search(embedder.embed_query(question.question)).limit(50).to_list()
        terms = " ".join(re.findall(r"\w+", question.question))
        keyword = table.search(terms, query_type="fts").limit(50).to_list()
        fused: dict[str, float] = {}
        for ranked in (dense, keyword):
            for rank, row in enumerate(ranked, start=1):
                fused[row["id"]] = fused.get(row["id"], 0.0) + 1 / (60 + rank)
        by_id = {row["id"]: row for row in dense + keyword}
        top = [by_id[i] for i in sorted(fused, key=fused.get, reverse=True)[: LORE.top_k]]
        hits = [Hit(row["id"], row["text"], row["source"], "", 0) for row in top]
        ranks.append(found_rank(Retrieval(question.question, hits), question.gold_phrases))
        words.append(sum(len(row["text"].split()) for row in top))
    found = [rank for rank in ranks if rank is not None]
    return {
        "recall@5": round(len(found) / len(ranks), 4),
        "mrr": round(sum(1 / rank for rank in found) / len(ranks), 4),
        "mean_words": round(sum(words) / len(words), 1),
        "chunks": len(chunks),
    }


def paragraph_chunks(text: str, words: int = 220) -> list[str]:
    """Paragraphs (blank-line separated) packed in order into chunks of about `words` words."""
    chunks, current = [], []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if paragraph:
            if current and len(" ".join(current).split()) + len(paragraph.split()) > words:
                chunks.append("\n\n".join(current))
                current = []
            current.append(paragraph)
    return chunks + (["\n\n".join(current)] if current else [])


def build_large_corpus(target: Path, copies: int) -> None:
    """Copies of the in-repo worlds, each with its own proper names, as one big lore folder."""
    documents = {
        f"{world.name}/{path.relative_to(world.lore).as_posix()}": path.read_text(encoding="utf-8")
        for world in WORLDS
        for path in sorted(world.lore.rglob("*.*"))
        if path.suffix in (".md", ".txt") and ".obsidian" not in path.parts
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
    parser.add_argument("--copies", type=int, default=15, help="world copies in the large corpus")
    parser.add_argument(
        "--world", type=Path, action="append", default=[], help="a world kept outside the repo"
    )
    args = parser.parse_args()
    embedder = TimedEmbedder(Embedder(MINILM))
    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedding_model": MINILM,
        "settings": {
            "chunk_tokens": LORE.chunk_tokens,
            "top_k": LORE.top_k,
            "budget_tokens": LORE.budget_tokens,
        },
        "query_threads": QUERY_THREADS,
        "worlds": {},
    }
    worlds = [*WORLDS, *(outside_world(folder) for folder in args.world)]
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        results["reingest"] = bench_reingest(embedder.inner, scratch)
        queries = []
        for world in worlds:
            retriever = open_world(world, scratch / world.name, embedder.inner)
            retriever.embedder = embedder
            row = {"role": world.role, "style": world.style, "chunks": retriever.collection.count()}
            row.update(bench_quality(retriever, world.questions))
            row["naive"] = naive_baseline(
                world.lore, world.questions, embedder.inner, scratch / f"naive-{world.name}"
            )
            results["worlds"][world.name] = row
            queries += [question.question for question in load_questions(world.questions)[0]]
            print(world.name, json.dumps({k: row[k] for k in ("hybrid", "naive")}), flush=True)
        everything = build_all(scratch / "all-worlds", scratch, embedder)
        results["latency_small"] = latency_conditions(everything, embedder, queries)
        if not args.skip_large:
            build_large_corpus(scratch / "large", args.copies)
            report = ingest_folder(scratch / "large", scratch / "large-index", embedder.inner)
            results["large_ingest"] = {"chunks": report.chunks_total, "seconds": report.seconds}
            large = Retriever(LoreIndex(scratch / "large-index").open("bench"), embedder)
            results["latency_large"] = latency_conditions(large, embedder, queries)
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    append_summary(results)
    print(world_table(results))


def build_all(index_dir: Path, scratch: Path, embedder: TimedEmbedder) -> Retriever:
    """One collection holding every in-repo world (for the smaller latency run)."""
    folder = scratch / "all-lore"
    for world in WORLDS:
        for path in world.lore.rglob("*.*"):
            if path.suffix in (".md", ".txt") and ".obsidian" not in path.parts:
                target = folder / world.name / path.relative_to(world.lore)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    ingest_folder(folder, index_dir / "all", embedder.inner)
    return Retriever(LoreIndex(index_dir / "all").open("bench"), embedder)


def world_table(results: dict) -> str:
    """The per-world, per-kind Markdown table (README and RESULTS.md)."""
    kinds = ["direct", "alias", "paraphrase", "two-fact", "confusable"]
    lines = [
        "| world | role | hybrid R@5 | dense R@5 | keyword R@5 | naive R@5 | hybrid MRR | "
        + " | ".join(kinds)
        + " | words handed over |",
        "|" + "---|" * (9 + len(kinds) - 1),
    ]
    for name, row in results["worlds"].items():
        hybrid = row["hybrid"]
        lines.append(
            f"| {name} ({row['questions']} q) | {row['role']} | {hybrid['recall']['5']:.3f} | "
            f"{row['dense']['recall']['5']:.3f} | {row['keyword']['recall']['5']:.3f} | "
            f"{row['naive']['recall@5']:.3f} | {hybrid['mrr']:.3f} | "
            + " | ".join(f"{hybrid['by_kind'].get(kind, float('nan')):.2f}" for kind in kinds)
            + f" | {hybrid['mean_words']:.0f} (max {hybrid['max_words']}) |"
        )
    return "\n".join(lines)


def append_summary(results: dict) -> None:
    """One Markdown line per run, at the end of the lore table of perf/RESULTS.md."""
    reingest = results["reingest"]
    parts = [f"re-ingest/fresh {reingest['ratio']:.3f} in-process, {reingest['cli_ratio']:.2f} CLI"]
    for key in ("latency_small", "latency_large"):
        if key in results:
            lat = results[key]
            quiet = lat["quiet"]
            parts.append(
                f"{lat['chunks']} chunks p50/p99 ms: quiet {quiet['p50_ms']}/{quiet['p99_ms']}, "
                f"one core busy {lat['busy_shipped']['p50_ms']}/{lat['busy_shipped']['p99_ms']} "
                f"({QUERY_THREADS} query thread) vs {lat['busy_torch_default']['p50_ms']}/"
                f"{lat['busy_torch_default']['p99_ms']} with torch's default threads"
            )
    worlds = results["worlds"]
    recalls = [
        f"{name} {row['hybrid']['recall']['5']:.2f}/{row['dense']['recall']['5']:.2f}/"
        f"{row['naive']['recall@5']:.2f}"
        for name, row in worlds.items()
    ]
    parts.append("R@5 hybrid/dense/naive: " + ", ".join(recalls))
    line = f"| {results['date'][:10]} | `python perf/lore_bench.py` | {'; '.join(parts)} |"
    add_table_row("| date | command | result |", line)


if __name__ == "__main__":
    main()
