"""Retrieval on every world in perf/worlds/: worlds written by authors who never saw the code, each in its
own note style (wiki sheets, long essays, stat blocks and a glossary, an Obsidian vault, mixed notes).

Each world is ingested with the bundled MiniLM and its questions are answered with the shipped settings.
The floors sit well under what perf/tune_fusion.py measures (perf/RESULTS.md), so a regression fails
while the ordinary noise of a 50-question set does not.
"""

from pathlib import Path

import pytest

from scifi_llm.config import LoreSettings
from scifi_llm.lore import (
    IngestOptions,
    LoreIndex,
    Retriever,
    evaluate_retrieval,
    ingest_lore,
    load_questions,
)

from conftest import ROOT

WORLDS = sorted(path for path in (ROOT / "perf" / "worlds").iterdir() if (path / "questions.jsonl").exists())
FLOOR = 0.80  # recall@5; measured 0.89-1.00 with the shipped settings
KIND_FLOOR = 0.5  # every kind of question; measured 0.70-1.00


def test_every_note_style_is_represented():
    assert {path.name for path in WORLDS} >= {"wiki", "essays", "statblocks", "vault"}


@pytest.mark.slow
@pytest.mark.parametrize("world", WORLDS, ids=lambda path: path.name)
def test_hybrid_retrieval_holds_on_the_world(world: Path, minilm, tmp_path):
    settings = LoreSettings()
    options = IngestOptions("world", "minilm", "minilm", settings.chunk_tokens, settings.chunk_overlap)
    report = ingest_lore(
        [world / "lore"], world / "lore", LoreIndex(tmp_path), options, load_embedder=lambda _: minilm
    )
    assert not report.skipped
    retriever = Retriever(LoreIndex(tmp_path).open("world"), minilm)
    questions, errors = load_questions(world / "questions.jsonl")
    assert not errors and len(questions) >= 40
    hybrid = evaluate_retrieval(retriever, questions, settings.top_k, "hybrid", settings.budget_tokens)
    dense = evaluate_retrieval(retriever, questions, settings.top_k, "dense", settings.budget_tokens)
    assert hybrid.recall[str(settings.top_k)] >= FLOOR
    assert hybrid.recall[str(settings.top_k)] >= dense.recall[str(settings.top_k)]
    for kind, row in hybrid.by_kind.items():
        assert row[f"recall@{settings.top_k}"] >= KIND_FLOOR, kind
    assert hybrid.mean_tokens <= settings.budget_tokens
