"""bench coherence against a real transformers serve: the story grows to the target, every fact is probed."""

import json

from scifi_llm.bench import coherence_scores
from scifi_llm.bench.coherence import load_sheet, parse_contradictions


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
    result = coherence_scores(engine, judge_url=engine, target_tokens=200, chunk_tokens=64)
    assert result["story_tokens"] >= 200 and result["continuations"] == 4  # 64 + 64 + 64 + 8
    assert result["stopped_because"] == "reached the target length"
    assert result["facts"] == len(load_sheet()["facts"]) == len(result["probes"])
    assert result["facts_kept"] == sum(probe["kept"] for probe in result["probes"])
    assert (
        result["contradictions"]["scanned"] is False
    )  # the tiny model writes no JSON: a failure, not "none"
    assert result["contradictions"]["items"] is None
    assert json.dumps(result)
