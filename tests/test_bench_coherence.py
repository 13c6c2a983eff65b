"""bench coherence: the story grows to the target, every fact is probed, the judge's scan is read strictly."""

import json

from scifi_llm.bench import coherence_scores
from scifi_llm.bench.coherence import CONTINUE, load_sheet, parse_contradictions
from servers import ScriptedModel, serve_in_thread

from conftest import free_port


def test_the_sheet_has_a_probe_for_every_fact():
    sheet = load_sheet()
    assert len(sheet["facts"]) >= 10
    for fact in sheet["facts"]:
        assert fact["question"].endswith("?") and fact["expect"]
        assert any(word in sheet["sheet"].lower() for word in fact["expect"]), fact["id"]


def test_contradiction_lists_are_read_strictly():
    assert parse_contradictions('{"contradictions": []}') == []
    found = parse_contradictions(
        'Sure: {"contradictions": [{"fact": "age", "quote": "the forty-year-old captain"}]}'
    )
    assert found == [{"fact": "age", "quote": "the forty-year-old captain"}]
    assert parse_contradictions('{"contradictions": ["age"]}') is None
    assert parse_contradictions("none that I can see") is None


def test_a_long_story_is_written_in_continuations_and_every_fact_probed(engine):
    result = coherence_scores(engine, judge_url=engine, target_tokens=200, chunk_tokens=64, judge_tokens=24)
    assert result["story_tokens"] >= 200 and result["continuations"] == 4  # 64 + 64 + 64 + 8
    assert result["stopped_because"] == "reached the target length"
    assert result["facts"] == len(load_sheet()["facts"]) == len(result["probes"])
    assert result["facts_kept"] == sum(probe["kept"] for probe in result["probes"])
    assert (
        result["contradictions"]["scanned"] is False
    )  # the tiny model writes no JSON: a failure, not "none"
    assert result["contradictions"]["items"] is None
    assert json.dumps(result)


def test_kept_facts_and_contradictions_come_from_the_models_answers():
    facts = load_sheet()["facts"]
    remembered = facts[: len(facts) // 2]
    contradiction = {"fact": facts[0]["id"], "quote": "the wrong thing"}

    def model(messages):
        asked = messages[-1]["content"]
        if asked.startswith("Answer in one sentence:"):  # a probe: the first half of the facts are known
            fact = next(fact for fact in facts if fact["question"] in asked)
            return f"It is {fact['expect'][0]}." if fact in remembered else "I do not recall."
        if "contradicts one of the facts" in asked:
            return "Here: " + json.dumps({"contradictions": [contradiction]})
        return " ".join(["word"] * 40)  # the story: 40 tokens a request

    scripted = ScriptedModel(model)
    with serve_in_thread(scripted.app, free_port()) as url:
        result = coherence_scores(f"{url}/v1", judge_url=f"{url}/v1", target_tokens=100, chunk_tokens=40)
    assert result["continuations"] == 3 and result["story_tokens"] == 120
    probes = [m for m in scripted.asked if m[-1]["content"].startswith("Answer in one sentence:")]
    writing = [m for m in scripted.asked if m[-1]["content"] in (CONTINUE,) or len(m) == 2]
    assert probes and all(load_sheet()["sheet"] not in json.dumps(m) for m in probes)  # from the story only
    assert writing and all(m[0]["content"] == load_sheet()["sheet"] for m in writing)  # written with it
    assert sum(messages[-1]["content"] == CONTINUE for messages in scripted.asked) == 2
    assert result["facts_kept"] == len(remembered) and result["facts"] == len(facts)
    assert [probe["kept"] for probe in result["probes"]] == [fact in remembered for fact in facts]
    assert result["contradictions"] == {
        "scanned": True,
        "unreadable_answers": 0,
        "count": 1,
        "items": [contradiction],
    }
