"""bench context against a real transformers serve: the sweep grows the prompt and stops at the maximum."""

import json

from scifi_llm.bench import context_sweep, prose_prompt
from scifi_llm.tokens import load_tokenizer


def test_prose_prompts_have_the_asked_token_count(tiny_llama):
    tokenizer = load_tokenizer(str(tiny_llama))
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    for tokens in (50, 300, 1000):
        assert tokens - 3 <= count(prose_prompt(tokens, count)) <= tokens


def test_the_sweep_measures_each_length_that_fits_and_skips_the_rest(engine, tiny_llama):
    tokenizer = load_tokenizer(str(tiny_llama))
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    result = context_sweep(
        engine, (64, 256, 512, 2048), max_model_len=700, output_tokens=8, count_tokens=count
    )
    assert result["max_model_len"] == 700 and result["max_model_len_from"] == "flag"
    assert [row["target_tokens"] for row in result["rows"]] == [64, 256, 512]
    assert result["skipped_over_max"] == [2048]
    prompts = [row["prompt_tokens"] for row in result["rows"]]
    assert prompts == sorted(prompts) and prompts[0] >= 64
    assert all(
        row["failed"] == 0 and row["median_ttft_ms"] > 0 and row["decode_tok_s"] > 0 for row in result["rows"]
    )
    assert json.dumps(result)


def test_bench_context_writes_its_results(cli, workspace, engine, tiny_llama):
    args = ["bench", "context", "--base-url", engine, "--lengths", "64,128", "--max-model-len", "4096"]
    result = cli(*args, "--output-tokens", "4", "--tokenizer", str(tiny_llama), "--json", workspace=workspace)
    assert result.exit_code == 0, result.stderr
    folder = json.loads(result.stdout)["folder"]
    assert sorted(path.name for path in (workspace.root / "results" / folder.split("/")[-1]).iterdir()) == [
        "context.json",
        "context.png",
        "environment.json",
        "summary.md",
    ]


def test_server_settings_start_the_server_at_each_maximum_and_sweep_it(
    cli, workspace, tiny_llama, monkeypatch
):
    from conftest import free_port

    monkeypatch.setenv("SCIFI_LLM_MODEL__NAME", str(tiny_llama))
    monkeypatch.setenv("SCIFI_LLM_SERVE__ENGINE", "transformers")
    monkeypatch.setenv("SCIFI_LLM_SERVE__PORT", str(free_port()))
    monkeypatch.setenv("SCIFI_LLM_SERVE__STARTUP_TIMEOUT", "180")
    args = [
        "bench",
        "context",
        "--server-settings",
        "200,400",
        "--lengths",
        "64,128,256",
        "--output-tokens",
        "8",
    ]
    result = cli(*args, "--tokenizer", str(tiny_llama), "--json", workspace=workspace)
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["server_settings"]
    assert [run["server_max_model_len"] for run in runs] == [200, 400]
    assert [[row["target_tokens"] for row in run["rows"]] for run in runs] == [[64, 128], [64, 128, 256]]
    assert cli("status", "--json", workspace=workspace).stdout.count('"running"') == 0  # each one stopped
