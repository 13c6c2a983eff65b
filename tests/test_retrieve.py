"""Retrieval on the example world: hybrid finds what dense alone misses, within the token budget."""

import pytest

from scifi_llm.lore.evaluate import evaluate, found_rank, load_questions
from scifi_llm.lore.retrieve import Retriever, split_clauses
from scifi_llm.lore.store import LoreIndex

from conftest import EXAMPLES


@pytest.fixture(scope="module")
def retriever(example_workspace, minilm) -> Retriever:
    return Retriever(LoreIndex(example_workspace.index_dir).open("scifi_world"), minilm)


def test_a_nickname_finds_the_entity_and_says_why(retriever):
    retrieval = retriever.search("What does Ledger keep hidden in her forearm?", k=5)
    assert retrieval.mentions == ["Elena Voss (Ledger)"]
    assert retrieval.results[0].source == "characters/elena_voss.md"
    assert "alias:Ledger" in retrieval.results[0].reasons
    assert found_rank(retrieval, ("Inside the cavity lies one of the Quintet",)) is not None


def test_confusable_sister_ships_are_told_apart(retriever):
    wren = retriever.search("What drives does the Ashgrove Wren have?", k=3)
    assert wren.results[0].source == "ships/ashgrove_wren.md"
    lark = retriever.search("What drives does the Ashgrove Lark have?", k=3)
    assert lark.results[0].source == "ships/ashgrove_lark.md"


def test_results_fit_the_budget_and_report_what_was_dropped(retriever):
    full = retriever.search("Tell me about Elena Voss's arm and history", k=5)
    budget = full.results[0].tokens + 1
    cut = retriever.search("Tell me about Elena Voss's arm and history", k=5, budget_tokens=budget)
    assert sum(hit.tokens for hit in cut.results) <= budget
    assert cut.results[0].chunk_id == full.results[0].chunk_id
    assert {entry["reason"] for entry in cut.dropped} == {"budget"}
    assert len(cut.results) + len(cut.dropped) >= len(full.results)


def test_every_result_carries_source_heading_score_distance_and_reasons(retriever):
    for mode in ("hybrid", "dense", "keyword"):
        retrieval = retriever.search("Harrow Station docking fees", k=3, mode=mode)
        assert len(retrieval.results) == 3
        for hit in retrieval.results:
            shown = hit.to_dict()
            assert shown["source"].endswith(".md") and not shown["source"].startswith("/")
            assert shown["heading"] and shown["reasons"] and shown["distance"] is not None
    assert retriever.search("Harrow Station", k=2, mode="keyword").results[0].reasons == ["keyword"]


def test_compound_questions_are_split_into_clauses():
    assert split_clauses("When did Ilka vanish, and what did the Gate do?") == [
        "When did Ilka vanish",
        "what did the Gate do",
    ]
    assert split_clauses("What colour is the Lark and her sister?") == []


def test_hybrid_beats_dense_on_the_example_questions(retriever):
    questions, errors = load_questions(EXAMPLES / "lore_questions.jsonl")
    assert not errors and len(questions) >= 40
    hybrid = evaluate(retriever, questions, 5, "hybrid", 1500)
    dense = evaluate(retriever, questions, 5, "dense", 1500)
    assert hybrid.recall["5"] >= dense.recall["5"] + 0.05
    assert hybrid.mrr > dense.mrr
    assert hybrid.recall["5"] >= 0.8
    assert hybrid.mean_tokens <= 1500


def test_nicknames_add_the_real_name_but_name_parts_do_not(retriever):
    from scifi_llm.lore.retrieve import expand_query

    query = "What does Ledger keep in her arm?"
    assert expand_query(query, retriever.registry.find(query)) == f"{query} (Elena Voss)"
    query = "What does Elena keep in her arm?"
    assert expand_query(query, retriever.registry.find(query)) == query


def test_searching_many_queries_at_once_finds_what_searching_each_finds(retriever):
    questions = [question.question for question in load_questions(EXAMPLES / "lore_questions.jsonl")[0][:12]]
    together = retriever.search_many(questions, k=5)
    alone = [retriever.search(question, k=5) for question in questions]
    assert [[hit.chunk_id for hit in r.results] for r in together] == [
        [hit.chunk_id for hit in r.results] for r in alone
    ]
