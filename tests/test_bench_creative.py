"""bench creative: the rubric is read strictly, failures are never zeros, and the judge-free measures."""

import json
import statistics

import pytest

from scifi_llm.bench import creative_scores
from scifi_llm.bench.creative import (
    RUBRIC,
    bootstrap_interval,
    judge_scores,
    load_prompts,
    parse_scores,
    repetition,
)
from scifi_llm.judge import RETRY_REMINDER
from servers import ScriptedModel, serve_in_thread

from conftest import free_port


def test_the_shipped_prompts_and_rubric_are_big_enough():
    prompts = load_prompts()
    assert len(prompts) >= 20 and len(set(prompts)) == len(prompts)
    assert len(RUBRIC) >= 10


def test_scores_are_read_only_when_every_criterion_is_a_whole_number_from_0_to_10():
    full = dict.fromkeys(RUBRIC, 7)
    assert parse_scores(f"Here you go:\n```json\n{json.dumps({'scores': full})}\n```") == full
    assert parse_scores(json.dumps({"scores": full | {"prose": 11}})) is None
    assert parse_scores(json.dumps({"scores": full | {"prose": "7"}})) is None
    assert parse_scores(json.dumps({"scores": full | {"prose": True}})) is None
    assert parse_scores(json.dumps({"scores": {k: v for k, v in full.items() if k != "voice"}})) is None
    assert parse_scores("I would give it a solid eight.") is None


def test_repetition_and_the_bootstrap_interval():
    assert repetition(["a", "b", "c", "d", "a", "b", "c", "d"]) == pytest.approx(0.2)
    assert repetition(["one", "two", "three"]) == 0.0
    values = [40.0, 55.0, 60.0, 70.0, 85.0, 90.0]
    low, high = bootstrap_interval(values, seed=3)
    assert low < statistics.fmean(values) < high
    assert bootstrap_interval(values, seed=3) == [low, high]
    assert bootstrap_interval([50.0, 50.0, 50.0]) == [50.0, 50.0]
    assert bootstrap_interval([50.0]) is None


def test_a_judge_that_cannot_score_counts_failures_not_zeros(engine):
    result = creative_scores(engine, judge_url=engine, prompts=3, max_tokens=16, judge_tokens=24)
    free = result["judge_free"]
    assert free["answers"] == 3 and free["completion_rate"] == 0.0  # the tiny model always runs to the limit
    assert (
        0 < free["distinct_2"] <= 1
        and 0 <= free["repetition_4gram"] <= 1
        and free["mean_output_tokens"] == 16
    )
    judge = result["judge"]
    assert judge["failures"] == 3 and judge["scored"] == 0  # a tiny random model writes no rubric JSON
    assert judge["score"] is None and judge["ci95"] is None and judge["unreadable_answers"] == 6
    without = creative_scores(engine, prompts=2, max_tokens=8)
    assert without["judge"] is None and "judge-free measures only" in without["note"]


def test_the_judge_is_the_server_itself_unless_told_otherwise(cli, workspace, engine):
    base = ["bench", "creative", "--base-url", engine, "--prompts", "1", "--max-tokens", "16", "--json"]
    judged = json.loads(cli(*base, workspace=workspace).stdout)
    assert judged["judge"]["failures"] == 1  # the server itself was asked (and, being tiny, failed)
    unjudged = json.loads(cli(*base, "--no-judge", workspace=workspace).stdout)
    assert unjudged["judge"] is None and "--no-judge" in unjudged["note"]
    both = cli(*base, "--no-judge", "--judge-url", engine, workspace=workspace)
    assert both.exit_code == 1 and "contradict" in both.stderr


def test_an_unreadable_judge_answer_is_asked_again_and_the_scores_averaged():
    scores = dict.fromkeys(RUBRIC, 7) | {"prose": 10}

    def judge(messages):  # prose at first, the rubric's JSON when reminded
        return (
            json.dumps({"scores": scores}) if messages[-1]["content"] == RETRY_REMINDER else "A fine scene!"
        )

    model = ScriptedModel(judge)
    with serve_in_thread(model.app, free_port()) as url:
        result = judge_scores(f"{url}/v1", ["Write a scene."] * 3, ["It rained.", "Snow fell.", "Dust."])
    assert result["scored"] == 3 and result["failures"] == 0 and result["unreadable_answers"] == 3
    assert result["score"] == round((7 * (len(RUBRIC) - 1) + 10) / len(RUBRIC) * 10, 2)
    assert result["per_criterion"]["prose"] == 10 and result["per_criterion"]["pacing"] == 7
    assert sorted(len(messages) for messages in model.asked) == [1, 1, 1, 3, 3, 3]


def test_a_judge_that_never_follows_the_rubric_is_a_failure_not_a_zero():
    out_of_range = json.dumps({"scores": dict.fromkeys(RUBRIC, 11)})
    model = ScriptedModel(lambda _messages: out_of_range)
    with serve_in_thread(model.app, free_port()) as url:
        result = judge_scores(f"{url}/v1", ["Write a scene."] * 2, ["It rained.", "Snow fell."])
    assert result["scored"] == 0 and result["failures"] == 2 and result["unreadable_answers"] == 4
    assert result["score"] is None and result["per_criterion"] is None
