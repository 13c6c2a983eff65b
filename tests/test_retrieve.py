"""Retrieval on the example world: hybrid finds what dense alone misses, within the token budget."""

import pytest

from scifi_llm.lore import Fusion, LoreIndex, Retriever, Steer, evaluate_retrieval, load_questions
from scifi_llm.lore.evaluate import found_rank
from scifi_llm.lore.retrieve import split_clauses
from scifi_llm.proxy.augment import lore_request
from scifi_llm.text import split_sentences
from scifi_llm.tokens import count_tokens

from conftest import EXAMPLES, ingest_with, write


@pytest.fixture(scope="module")
def retriever(example_workspace, minilm) -> Retriever:
    return Retriever(LoreIndex(example_workspace.index_dir).open("scifi_world"), minilm)


def test_a_nickname_finds_the_entity_and_says_why(retriever):
    retrieval = retriever.search("What does Ledger keep hidden in her forearm?", k=5, budget_tokens=1500)
    assert retrieval.mentions == ["Elena Voss (Ledger)"]
    assert retrieval.results[0].source == "characters/elena_voss.md"
    assert "alias:Ledger" in retrieval.results[0].reasons
    assert found_rank(retrieval, ("Inside the cavity lies one of the Quintet",)) is not None


def test_confusable_sister_ships_are_told_apart(retriever):
    wren = retriever.search("What drives does the Ashgrove Wren have?", k=3)
    assert wren.results[0].source == "ships/ashgrove_wren.md"
    lark = retriever.search("What drives does the Ashgrove Lark have?", k=3)
    assert lark.results[0].source == "ships/ashgrove_lark.md"


def test_passages_grow_from_the_best_chunks_within_the_budget(retriever):
    question = "Tell me about Elena Voss's arm and history"
    for budget in (150, 400, 800, 1500):
        retrieval = retriever.search(question, k=5, budget_tokens=budget)
        assert sum(hit.tokens for hit in retrieval.results) <= budget
        assert all(hit.tokens == count_tokens(hit.text) for hit in retrieval.results)
    full = retriever.search(question, k=5, budget_tokens=1500)
    assert sum(hit.tokens for hit in full.results) > 1200  # the budget is filled, not left at k scraps
    grown = [hit for hit in full.results if len(hit.chunk_ids) > 1]
    assert grown
    for hit in grown:  # neighbours merged: their overlap is not repeated
        sentences = [
            s for line in hit.text.split("\n") if not line.startswith("#") for s in split_sentences(line)
        ]
        assert len(sentences) == len(set(sentences))
    tight = retriever.search(question, k=5, budget_tokens=150)
    assert tight.dropped and {entry["reason"] for entry in tight.dropped} <= {"budget", "top_k", "duplicate"}


def test_top_k_caps_the_notes_and_no_budget_means_one_chunk_each(retriever):
    for k in (1, 2, 4):
        retrieval = retriever.search("Who flies the Ashgrove sister ships?", k=k, budget_tokens=1500)
        assert len(retrieval.results) <= k
        assert len({hit.source for hit in retrieval.results}) == len(retrieval.results)
    plain = retriever.search("Who flies the Ashgrove sister ships?", k=3)
    assert len(plain.results) == 3 and all(len(hit.chunk_ids) == 1 for hit in plain.results)


def test_lore_the_conversation_already_holds_is_not_given_again(retriever):
    question = "What does Ledger keep hidden in her forearm?"
    first = retriever.search(question, k=5, budget_tokens=1500)
    held = frozenset(first.results[0].chunk_ids)
    again = retriever.search(question, k=5, budget_tokens=1500, steer=Steer(held=held))
    assert not held & {chunk for hit in again.results for chunk in hit.chunk_ids}
    assert first.results[0].source in again.sources
    assert sum(hit.tokens for hit in again.results) < sum(hit.tokens for hit in first.results)


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
    hybrid = evaluate_retrieval(retriever, questions, 5, "hybrid", 1500)
    dense = evaluate_retrieval(retriever, questions, 5, "dense", 1500)
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


VAULT = {
    "Sessions/Job 01 - The Pearl Run.md": "# The Pearl Run\nThe crew hit the Aurel vault at dawn. "
    "[[Characters/Crew/Vesna Orlov|The safecracker]] opened the inner door in ninety seconds.\n",
    "Characters/Crew/Vesna Orlov.md": "---\ntags: [crew]\n---\n# Vesna Orlov\n## Chrome\n"
    "Left arm: a Kessel Mk II, titanium over ceramic, fitted in Glasswater for nine thousand glints.\n"
    "## Past\nGrew up above the dye works.\n",
    **{
        f"Places/Workshop {n}.md": f"# Workshop {n}\nWorkshop {n} makes {colour} hands and arms for dockers "
        "who lose theirs.\n"
        for n, colour in enumerate(["red", "blue", "green", "white", "black", "grey"])
    },
}


def test_a_wikilink_hop_finds_a_note_the_query_never_names(workspace, minilm):
    for name, text in VAULT.items():
        write(workspace.lore_dir / name, text)
    write(workspace.lore_dir / ".obsidian" / "app.json", '{"theme": "moonstone"}')
    ingest_with(minilm, workspace)
    retriever = Retriever(LoreIndex(workspace.index_dir).open("scifi_world"), minilm)
    question = "On the Pearl Run, who opened the inner door, and what is that person's hand made of?"
    found = retriever.search(question, k=4, budget_tokens=600)
    vesna = [hit for hit in found.results if hit.source == "Characters/Crew/Vesna Orlov.md"]
    assert vesna and "link:Characters/Crew/Vesna Orlov" in vesna[0].reasons
    assert found_rank(found, ("titanium over ceramic",)) is not None
    without = Retriever(retriever.collection, minilm, Fusion(hop=0.0, name_hop=0.0))
    assert found_rank(without.search(question, k=4, budget_tokens=600), ("titanium over ceramic",)) is None


def test_continue_after_a_turn_about_a_character_still_gets_her_lore(retriever):
    turns = [
        {"role": "system", "content": "You are a novelist's assistant."},
        {"role": "user", "content": "Write the scene where Ledger's arm seizes up in the cold hold."},
        {"role": "assistant", "content": "The hold was silent. Nobody spoke for a long while, and then "
         "the lights dimmed twice and came back."},
        {"role": "user", "content": "Continue."},
    ]  # fmt: skip
    request = lore_request(turns, scan_depth=4)
    assert "novelist" not in request.query + request.recent  # the system prompt is never searched
    alone = retriever.search(request.query, k=3, budget_tokens=1500)
    following = retriever.search(request.query, k=3, budget_tokens=1500, recent=request.recent)
    assert "characters/elena_voss.md" not in alone.sources
    assert "characters/elena_voss.md" in following.sources
    assert any(reason == "recent:Elena Voss" for hit in following.results for reason in hit.reasons)


def test_a_query_longer_than_the_embedding_window_is_read_from_its_end(minilm):
    filler = "The quarterly budget meeting discussed printer toner and parking permits. " * 60
    latest = "Ledger's prosthetic arm locks up in the freezing cold of the hangar."
    pasted, alone, filler_only = minilm.embed_queries([filler + latest, latest, filler])
    assert pasted @ alone > 0.2 > filler_only @ alone  # the window's start alone would be filler only


def test_pinned_notes_come_first_and_blocked_ones_never_and_both_say_so(retriever):
    question = "What does Ledger keep hidden in her forearm?"
    plain = retriever.search(question, k=5, budget_tokens=1500)
    assert plain.results[0].source == "characters/elena_voss.md"
    assert "technology/skein_drive.md" not in plain.sources
    steer = Steer(pin=frozenset({"technology/skein_drive.md", "nowhere/missing.md"}),
                  block=frozenset({"characters/elena_voss.md"}))  # fmt: skip
    steered = retriever.search(question, k=5, budget_tokens=1500, steer=steer)
    first = steered.results[0]
    assert first.source == "technology/skein_drive.md" and first.reasons[0] == "pinned"
    assert "characters/elena_voss.md" not in steered.sources
    dropped = {(entry["source"], entry["reason"]) for entry in steered.dropped}
    assert ("characters/elena_voss.md", "blocked") in dropped and (
        "nowhere/missing.md",
        "not found",
    ) in dropped
    assert sum(hit.tokens for hit in steered.results) <= 1500
