"""Tune hybrid retrieval's fusion weights on question sets, not by taste.

Each lore set is ingested once (minilm, offline); every question's candidate lists are retrieved once;
then a grid of fusion weights is scored from those cached lists. The best weights on the tuning set are
then checked on the held-out set.

    python perf/tune_fusion.py                      # example world to tune, perf/heldout to check
    python perf/tune_fusion.py --chunk-tokens 200   # try another chunk size
"""

import argparse
import itertools
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from scifi_llm.lore.embed import MINILM, Embedder
from scifi_llm.lore.evaluate import found_rank, load_questions
from scifi_llm.lore.ingest import IngestOptions, ingest
from scifi_llm.lore.retrieve import Fusion, Retrieval, Retriever, rank, select
from scifi_llm.lore.store import LoreIndex

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "example": (ROOT / "examples" / "lore", ROOT / "examples" / "lore_questions.jsonl"),
    "heldout": (ROOT / "perf" / "heldout" / "lore", ROOT / "perf" / "heldout" / "questions.jsonl"),
}
GRID = {
    "dense": [1.0],
    "keyword": [0.5, 0.75, 1.0],
    "entity": [0.0, 0.25, 0.5, 1.0],
    "clause": [0.0, 0.5, 1.0],
    "rrf_k": [5, 10, 30],
}


def build_retriever(
    lore_dir: Path, index_dir: Path, embedder: Embedder, chunk_tokens: int, overlap: int
) -> Retriever:
    """Ingest `lore_dir` into a fresh index and open a retriever on it."""
    options = IngestOptions("tune", MINILM, MINILM, chunk_tokens, overlap)
    ingest([lore_dir], lore_dir, LoreIndex(index_dir), options, load_embedder=lambda _name: embedder)
    return Retriever(LoreIndex(index_dir).open("tune"), embedder)


def score(cached: list, fusion: Fusion, k: int, budget: int) -> dict:
    """Recall@k, MRR and mean tokens of the fused rankings of cached candidates."""
    ranks, tokens = [], []
    for question, candidates in cached:
        results, _ = select(rank(candidates, "hybrid", fusion), k, budget)
        ranks.append(found_rank(Retrieval(question.question, results), question.gold_phrases))
        tokens.append(sum(hit.tokens for hit in results))
    found = [r for r in ranks if r is not None and r <= k]
    return {
        "recall": round(len(found) / len(ranks), 4),
        "mrr": round(sum(1 / r for r in found) / len(ranks), 4),
        "tokens": round(sum(tokens) / len(tokens), 1),
    }


def baseline(retriever: Retriever, questions: list, mode: str, k: int, budget: int) -> dict:
    """Recall@k and MRR of a single-list mode."""
    ranks = [
        found_rank(retriever.search(q.question, k=k, mode=mode, budget_tokens=budget), q.gold_phrases)
        for q in questions
    ]
    found = [r for r in ranks if r is not None]
    return {
        "recall": round(len(found) / len(ranks), 4),
        "mrr": round(sum(1 / r for r in found) / len(ranks), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunk-tokens", type=int, default=300)
    parser.add_argument("--overlap", type=int, default=40)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument("--tune-on", default="example", choices=sorted(SETS))
    args = parser.parse_args()
    embedder = Embedder(MINILM)
    cache, bases = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, (lore_dir, questions_file) in SETS.items():
            retriever = build_retriever(
                lore_dir, Path(scratch) / name, embedder, args.chunk_tokens, args.overlap
            )
            questions, _ = load_questions(questions_file)
            cache[name] = [(q, retriever.candidates(q.question, "hybrid")) for q in questions]
            bases[name] = {
                m: baseline(retriever, questions, m, args.k, args.budget) for m in ("dense", "keyword")
            }
    results = []
    for values in itertools.product(*GRID.values()):
        fusion = replace(Fusion(), **dict(zip(GRID, values, strict=True)))
        results.append(
            (fusion, {name: score(cached, fusion, args.k, args.budget) for name, cached in cache.items()})
        )
    results.sort(key=lambda item: (-item[1][args.tune_on]["recall"], -item[1][args.tune_on]["mrr"]))
    print(json.dumps({"baselines": bases, "default": score_all(cache, Fusion(), args)}, indent=1))
    for fusion, scores in results[:15]:
        print(f"{fusion}  {json.dumps(scores)}")


def score_all(cache: dict, fusion: Fusion, args) -> dict:
    """Scores of one fusion on every set."""
    return {name: score(cached, fusion, args.k, args.budget) for name, cached in cache.items()}


if __name__ == "__main__":
    sys.exit(main())
