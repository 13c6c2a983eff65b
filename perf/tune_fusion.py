"""Tune hybrid retrieval (fusion weights, second hop, passage growth, chunk size) on question sets.

Each world is ingested once per chunk size (minilm, offline) and every question's candidate lists are
retrieved once; then a grid of settings is scored from those cached lists. The grid is ranked on the
tuning worlds only (mean recall@5, then the weakest kind, then MRR); the held-out worlds are scored with
the best settings and the defaults, never used to choose.

    python perf/tune_fusion.py                                  # the grid on the in-repo worlds
    python perf/tune_fusion.py --chunk-tokens 150 200 300       # chunk sizes to compare
    python perf/tune_fusion.py --world /path/to/kept-outside    # add a world kept outside the repo
    python perf/tune_fusion.py --no-grid --set hop=0            # score one setting everywhere
"""

import argparse
import itertools
import json
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from statistics import mean

from scifi_llm.lore import MINILM, Embedder, Fusion, Retrieval, load_questions
from scifi_llm.lore.evaluate import found_rank
from worlds import WORLDS, open_world, outside_world

GRID = {
    "keyword": [0.5, 1.0],
    "entity": [0.25, 0.5],
    "clause": [0.5, 1.0],
    "hop": [0.1, 0.25, 0.5, 1.0],
    "name_hop": [0.0, 0.1, 0.25, 0.5],
    "hop_from": [2, 3],
    "neighbour": [0.15, 0.3],
}


def cache_world(
    world, index_dir: Path, embedder: Embedder, chunk_tokens: int, overlap: int, fusion: Fusion
) -> dict:
    """The world's retriever and every question's candidate lists, computed once."""
    retriever = open_world(world, index_dir, embedder, chunk_tokens, overlap)
    retriever.fusion = fusion
    questions, _ = load_questions(world.questions)
    cached = [(question, retriever.candidates(question.question, "hybrid")) for question in questions]
    return {"retriever": retriever, "questions": cached}


def score(entry: dict, fusion: Fusion, k: int, budget: int, mode: str = "hybrid") -> dict:
    """Recall@k, MRR, mean tokens and recall@k per kind of one world under `fusion`."""
    retriever, ranks, tokens, kinds = entry["retriever"], [], [], {}
    for question, candidates in entry["questions"]:
        if mode != "hybrid":
            candidates = replace(
                candidates, lists=[ranked for ranked in candidates.lists if ranked.kind == mode]
            )
        ranked = retriever.rank(candidates, mode, fusion)
        results, _, _ = retriever.assemble(ranked, k, budget, candidates.similarity, fusion=fusion)
        found = found_rank(Retrieval(question.question, results), question.gold_phrases)
        ranks.append(found)
        tokens.append(sum(hit.tokens for hit in results))
        kinds.setdefault(question.kind, []).append(found is not None)
    hits = [r for r in ranks if r is not None]
    return {
        "recall": round(len(hits) / len(ranks), 4),
        "mrr": round(sum(1 / r for r in hits) / len(ranks), 4),
        "tokens": round(mean(tokens), 1),
        "by_kind": {kind: round(mean(found), 3) for kind, found in sorted(kinds.items())},
    }


def parse_setting(setting: str) -> tuple[str, object]:
    """`hop=0.5` -> ("hop", 0.5), typed like the Fusion field."""
    name, value = setting.split("=")
    kind = type(getattr(Fusion(), name))
    return name, (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)


def objective(scores: dict, tuning: list[str]) -> tuple:
    """Higher is better: mean recall on the tuning worlds, then their weakest kind, then mean MRR."""
    recall = mean(scores[name]["recall"] for name in tuning)
    weakest = min(value for name in tuning for value in scores[name]["by_kind"].values())
    return (round(recall, 4), weakest, round(mean(scores[name]["mrr"] for name in tuning), 4))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunk-tokens", type=int, nargs="+", default=[150, 200, 300])
    parser.add_argument("--overlap", type=int, default=30)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument(
        "--world", type=Path, action="append", default=[], help="a world kept outside the repo"
    )
    parser.add_argument("--top", type=int, default=10, help="settings to print")
    parser.add_argument("--set", action="append", default=[], help="FIELD=VALUE of the settings scored")
    parser.add_argument("--no-grid", action="store_true", help="score only the defaults (with --set)")
    args = parser.parse_args()
    args.base = replace(Fusion(), **dict(parse_setting(setting) for setting in args.set))
    worlds = [*WORLDS, *(outside_world(folder) for folder in args.world)]
    tuning = [world.name for world in worlds if world.tuning]
    embedder = Embedder(MINILM)
    report = {"tuning": tuning, "held_out": [w.name for w in worlds if not w.tuning], "sizes": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.chunk_tokens:
            cache = {
                world.name: cache_world(
                    world, Path(scratch) / f"{world.name}-{size}", embedder, size, args.overlap, args.base
                )
                for world in worlds
            }
            if args.no_grid:
                report["sizes"][size] = {
                    name: score(entry, args.base, args.k, args.budget) for name, entry in cache.items()
                }
                print(summary(report["sizes"][size]), flush=True)
                continue
            report["sizes"][size] = tune_size(cache, tuning, args)
            print(json.dumps({size: report["sizes"][size]["best"]}), flush=True)
    print(json.dumps(report, indent=1))


def summary(scores: dict) -> str:
    """One line per world: recall@5, MRR and the weakest kind."""
    return "\n".join(
        f"{name:16} R@5 {row['recall']:.3f} MRR {row['mrr']:.3f} tokens {row['tokens']:6.0f}  "
        + " ".join(f"{kind} {value:.2f}" for kind, value in row["by_kind"].items())
        for name, row in scores.items()
    )


def tune_size(cache: dict, tuning: list[str], args) -> dict:
    """The grid at one chunk size: the best settings, the defaults, and the dense and keyword baselines."""
    scored = []
    for values in itertools.product(*GRID.values()):
        fusion = replace(args.base, **dict(zip(GRID, values, strict=True)))
        scores = {name: score(cache[name], fusion, args.k, args.budget) for name in tuning}
        scored.append((objective(scores, tuning), fusion))
    scored.sort(key=lambda item: item[0], reverse=True)
    best = scored[0][1]

    def everywhere(fusion: Fusion, mode: str = "hybrid") -> dict:
        return {name: score(entry, fusion, args.k, args.budget, mode) for name, entry in cache.items()}

    return {
        "best": {"fusion": asdict(best), "objective": scored[0][0], "scores": everywhere(best)},
        "default": {"fusion": asdict(args.base), "scores": everywhere(args.base)},
        "dense": everywhere(best, "dense"),
        "keyword": everywhere(best, "keyword"),
        "top": [
            {"objective": objective_, "fusion": asdict(fusion)} for objective_, fusion in scored[: args.top]
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
