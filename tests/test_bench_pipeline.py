"""bench retrieval and bench pipeline on the example world, through a real proxy and engine."""

import json

import pytest

from scifi_llm.bench import pipeline_scores, retrieval_scores
from servers import running_proxy

from conftest import EXAMPLES, free_port

QUESTIONS = EXAMPLES / "lore_questions.jsonl"


def test_bench_retrieval_matches_lore_eval(example_workspace, cli):
    result = retrieval_scores(example_workspace, QUESTIONS, top_k=5)
    assert result["questions"] == 51 and {"1", "3", "5"} == set(result["recall"])
    assert result["mrr"] > 0.5 and result["mean_top_distance"] is not None and result["by_kind"]
    command = cli(
        "--workspace", str(example_workspace.root), "lore", "eval", str(QUESTIONS), "-k", "5", "--json"
    )
    assert json.loads(command.stdout)["recall"] == result["recall"]


def test_bench_pipeline_times_both_paths_and_checks_the_sources(example_workspace, engine, tmp_path):
    with running_proxy(example_workspace.index_dir, engine, tmp_path, free_port()) as proxy_url:
        result = pipeline_scores(proxy_url, engine, QUESTIONS, questions=4, max_tokens=8)
    assert result["questions"] == 4 and result["failed"] == 0
    for row in result["rows"]:
        assert row["sources"] and row["retrieval_ms"] > 0
        assert row["ttft_proxy_ms"] > 0 and row["ttft_direct_ms"] > 0
        assert row["gold_source_injected"] is not None and row["answer_uses_gold"] in (True, False)
    injected = [row["gold_source_injected"] for row in result["rows"]]
    assert result["gold_source_injected"] == pytest.approx(sum(injected) / 4)
    assert result["gold_source_injected"] >= 0.75  # the example questions' files are found
    assert result["answers_using_gold_facts"] == 0  # a tiny random model states no facts
    for row in result["rows"]:  # the old plan's "774+338 tokens": the lore is in the prompt's count
        assert row["prompt_tokens"] > row["prompt_tokens_direct"] > 0 and 0 < row["completion_tokens"] <= 8
    assert result["median_prompt_tokens"] > result["median_prompt_tokens_direct"]
