"""tune compare: style metrics that tell authors apart, the judge bookkeeping, and a full report."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from scifi_llm.stylometry import burrows_delta, dialogue_share, mattr, wasserstein
from scifi_llm.tune import CompareOptions, PrepareOptions, compare_models, merge_adapter, prepare_data
from scifi_llm.tune.compare import METRIC_LABELS, parse_verdict, summarise_verdicts
from servers import ScriptedModel, in_turn, serve_in_thread

from conftest import EXAMPLES, free_port


def paragraphs(folder: Path) -> list[str]:
    """The paragraphs of every Markdown file in a folder, headings left out."""
    texts = [path.read_text(encoding="utf-8") for path in sorted(folder.rglob("*.md"))]
    return [p.strip() for text in texts for p in text.split("\n\n") if len(p.split()) > 25 and "#" not in p]


def test_delta_puts_the_authors_own_held_out_prose_closer_than_other_writing():
    prose = paragraphs(EXAMPLES / "writing")
    notes = paragraphs(EXAMPLES / "lore")
    author, held_out = prose[::2], prose[1::2]
    deltas = burrows_delta(author, {"same author": held_out, "lore notes": notes[: len(held_out)]})
    assert deltas["same author"] < deltas["lore notes"]


def test_the_simple_measures_measure_what_they_say():
    assert wasserstein([5, 10, 15], [5, 10, 15]) == 0
    assert wasserstein([5, 10, 15], [8, 13, 18]) == pytest.approx(3)
    varied = " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(200))
    assert mattr(["the cat " * 100]) < 0.1 < mattr([varied]) == pytest.approx(1.0)
    assert dialogue_share(['"Go," she said.']) > 0.3 and dialogue_share(["She went."]) == 0


def test_judge_answers_are_read_strictly_and_both_orders_are_counted():
    assert parse_verdict(" B.") == "B" and parse_verdict("A") == "A"
    assert parse_verdict("A or B") is None and parse_verdict("Neither") is None and parse_verdict("") is None
    summary = summarise_verdicts(["tuned", "tuned", "base", None, "tuned", "base"])
    assert summary["failures"] == 1 and summary["tuned_wins"] == 3
    assert summary["tuned_win_rate"] == pytest.approx(0.6)
    assert summary["order_agreement"] == pytest.approx(0.5)  # (tuned, tuned) agree, (tuned, base) do not


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, tiny_llama) -> tuple[Path, Path]:
    """Validation data from the example writing, and a 'tuned' tiny model (a random adapter, merged)."""
    scratch = tmp_path_factory.mktemp("compare")
    prepare_data(PrepareOptions(EXAMPLES / "writing", scratch / "data", str(tiny_llama), 100, 400, 512))
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama), config).save_pretrained(
        scratch / "adapter"
    )
    merge_adapter(scratch / "adapter", scratch / "tuned")
    return scratch / "data" / "validation.jsonl", scratch / "tuned"


def test_compare_reports_every_metric_for_both_models_with_an_endpoint_and_a_judge(
    tmp_path, tiny_llama, two_models, engine
):
    validation, tuned = two_models
    options = CompareOptions(
        base=str(tiny_llama),
        tuned=str(tuned),
        validation=validation,
        results_dir=tmp_path / "results",
        prompts=2,
        max_tokens=30,
        base_url=engine,  # the base writes through transformers serve; the tuned one locally
    )
    biased = ScriptedModel(in_turn("Neither, really.", "A"))  # unreadable once, then always the first
    with serve_in_thread(biased.app, free_port()) as judge:
        report = compare_models(replace(options, judge_url=f"{judge}/v1"))
    folder = Path(report["folder"])
    assert sorted(path.name for path in folder.iterdir()) == [
        "metrics.png",
        "report.html",
        "report.json",
        "report.md",
    ]
    assert json.loads((folder / "report.json").read_text())["metrics"] == report["metrics"]
    for name in ("base", "tuned"):
        values = [report["metrics"][name][key] for key in METRIC_LABELS]
        assert all(isinstance(value, float | int) and math.isfinite(value) for value in values), name
    assert report["metrics"]["base"]["perplexity"] != report["metrics"]["tuned"]["perplexity"]
    assert len(report["samples"]) == 2 and all(
        sample["base"] and sample["tuned"] for sample in report["samples"]
    )
    judge = report["judge"]  # each pair is asked in both orders: a judge that always says A never agrees
    assert judge["verdicts"] == ["base", "tuned", "base", "tuned"] and judge["failures"] == 0
    assert judge["questions"] == 4 and judge["tuned_wins"] == 2 and judge["order_agreement"] == 0.0
    assert sorted(len(messages) for messages in biased.asked) == [1, 1, 1, 1, 3]  # one retry
    assert "| metric | author | base | tuned | better |" in (folder / "report.md").read_text()
    assert (folder / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "results").glob(".*"))
