"""bench system: the tuned and the base model behind one lore proxy, on the same prompts, voice and lore."""

import json
from pathlib import Path

from scifi_llm.bench import system_scores
from scifi_llm.bench.system import LORE_SYSTEM
from scifi_llm.lore import load_questions
from scifi_llm.proxy import ProxySettings, create_app
from servers import ScriptedModel, serve_in_thread

from conftest import EXAMPLES, free_port

QUESTIONS = EXAMPLES / "lore_questions.jsonl"


def _validation(path: Path) -> list[str]:
    """Three held-out examples made of the example prose's paragraphs; returns the author's passages."""
    paragraphs = [
        p for p in (EXAMPLES / "writing" / "cold_hands.md").read_text().split("\n\n") if len(p) > 200
    ]
    passages = paragraphs[:3]
    rows = [
        {"messages": [{"role": "system", "content": "You are the author."},
                      {"role": "user", "content": f"Write scene {index}."},
                      {"role": "assistant", "content": passage}]}
        for index, passage in enumerate(passages)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return passages


def test_the_tuned_model_that_writes_like_the_author_and_keeps_the_facts_wins_both(
    example_workspace, tmp_path
):
    passages = _validation(tmp_path / "validation.jsonl")
    asked, _ = load_questions(QUESTIONS)

    def tuned(messages):
        if messages[0]["content"].startswith(LORE_SYSTEM):  # a lore question, with the proxy's notes added
            question = next(q for q in asked if q.question in messages[-1]["content"])
            return f"As the notes say: {question.gold_phrases[0]}."
        return passages[int(messages[-1]["content"].split()[-1].rstrip("."))]  # "Write scene N."

    base, tuned_model = (
        ScriptedModel(lambda _m: "Words and more words.", name="base"),
        ScriptedModel(tuned, name="tuned"),
    )
    with (
        serve_in_thread(base.app, free_port()) as base_url,
        serve_in_thread(tuned_model.app, free_port()) as tuned_url,
    ):
        settings = ProxySettings(upstreams=(f"{base_url}/v1", f"{tuned_url}/v1"),
                                 index_dir=example_workspace.index_dir, history_path=None)  # fmt: skip
        with serve_in_thread(create_app(settings), free_port()) as proxy:
            endpoints = {"base": (f"{proxy}/v1", "base"), "tuned": (f"{proxy}/v1", "tuned")}
            result = system_scores(
                endpoints, tmp_path / "validation.jsonl", QUESTIONS, prompts=3, questions=3
            )
    models = result["models"]
    assert result["prompts"] == 3 and result["questions"] == 3
    assert models["tuned"]["voice"]["burrows_delta"] < models["base"]["voice"]["burrows_delta"]
    assert models["tuned"]["voice"]["sentence_length_distance"] == 0  # it wrote the author's own passages
    assert (models["tuned"]["lore_facts_right"], models["base"]["lore_facts_right"]) == (1.0, 0.0)
    assert (
        len(base.asked) == len(tuned_model.asked) == 6
    )  # the same prompts for both: 3 passages, 3 questions
    lore_requests = [m for m in tuned_model.asked if m[0]["content"].startswith(LORE_SYSTEM)]
    assert all(len(json.dumps(m)) > 1000 for m in lore_requests)  # the proxy put notes in front of each
