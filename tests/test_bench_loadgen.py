"""The load generator against a real transformers serve process: metrics that agree with each other."""

import asyncio
import json
import subprocess
import time

import pytest

from scifi_llm.bench import Load, run_load, summarize
from scifi_llm.bench.loadgen import arrival_times
from scifi_llm.serving import ServeOptions, process, transformers_command
from servers import FaultyEngine, serve_in_thread

from conftest import free_port


def body(model: str, max_tokens: int) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Write."}], "max_tokens": max_tokens}


def test_every_metric_is_present_and_consistent(engine, tiny_llama):
    load = Load(requests=8, concurrency=4)
    results, duration = asyncio.run(run_load(engine, [body(str(tiny_llama), 12)], load))
    summary = summarize(results, duration, load)
    assert summary["completed"] == 8 and summary["failed"] == 0
    assert summary["tokens_counted_from"] == ["usage"]
    for result in results:
        assert result.ok and 0 < result.ttft_s <= result.e2el_s
        assert result.output_tokens == 12 and result.finish_reason == "length"  # the tiny model never stops
        assert len(result.itls_s) >= 1 and all(gap >= 0 for gap in result.itls_s)
    assert summary["total_output_tokens"] == 8 * 12
    assert summary["output_throughput"] == pytest.approx(96 / summary["duration"], rel=1e-3)
    assert summary["request_throughput"] == pytest.approx(8 / summary["duration"], rel=1e-3)
    for name in ("ttft", "tpot", "itl", "e2el"):
        assert summary[f"median_{name}_ms"] <= summary[f"p99_{name}_ms"] + 1e-9
    assert summary["p99_ttft_ms"] <= summary["p99_e2el_ms"]


def test_requests_cut_off_by_a_dying_server_are_counted_as_failures(tiny_llama):
    command = transformers_command(ServeOptions(str(tiny_llama), port=free_port()))
    server = subprocess.Popen(command.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not process.is_healthy(command.health_url) and time.monotonic() < deadline:
            time.sleep(0.3)
        answered = []

        def kill_after_three(result):  # the server dies with most of the 400 requests still to come
            answered.append(result.ok)
            if sum(answered) == 3:
                server.kill()

        load = Load(requests=400, concurrency=2, warmup=0)
        results, duration = asyncio.run(
            run_load(
                command.base_url, [body(str(tiny_llama), 64)], load, timeout=30, on_result=kill_after_three
            )
        )
    finally:
        server.kill()
        server.wait(timeout=30)
    summary = summarize(results, duration, load)
    assert summary["completed"] > 0 and summary["failed"] > 0
    assert summary["completed"] + summary["failed"] == 400
    assert summary["errors"] and json.dumps(summary)


def test_open_looparrival_times_follow_the_rate():
    times = arrival_times(Load(requests=2000, rate=20.0, seed=1))
    assert times == sorted(times)
    assert times[-1] / len(times) == pytest.approx(1 / 20.0, rel=0.1)
    assert arrival_times(Load(requests=5)) is None


def test_bench_throughput_writes_its_results(cli, workspace, engine, tiny_llama):
    args = ["bench", "throughput", "--base-url", engine, "--input-tokens", "32", "--output-tokens", "8"]
    options = ["--levels", "1,2", "--rate", "20", "--tokenizer", str(tiny_llama), "--json"]
    result = cli(*args, *options, workspace=workspace)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["max_concurrency"] for row in report["sweep"]] == [1, 2]
    assert report["single_stream_decode_tok_s"] > 0 and report["single_stream"]["total_input_tokens"] > 0
    assert report["open_loop"]["request_rate"] == 20 and report["open_loop"]["completed"] == 16
    folder = workspace.root / "results"
    [run] = list(folder.iterdir())
    # the one layout of a run, as `bench all` writes it
    assert {path.name for path in run.iterdir()} == {
        "throughput.json",
        "throughput.png",
        "environment.json",
        "summary.md",
    }
    assert json.loads((run / "environment.json").read_text())["endpoint"]["model"] == str(tiny_llama)
    assert "| single-stream decode tok/s |" in (run / "summary.md").read_text()


def test_bench_throughput_quick_takes_seconds_sizes(cli, workspace, engine, tiny_llama):
    args = ["bench", "throughput", "--base-url", engine, "--quick", "--tokenizer", str(tiny_llama), "--json"]
    result = cli(*args, workspace=workspace)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["max_concurrency"] for row in report["sweep"]] == [1, 2]
    single = report["single_stream"]
    assert single["total_input_tokens"] / single["completed"] < 100  # tiny prompts, not the 256 of a real run


def test_a_stream_that_ends_without_done_is_counted_as_truncated():
    engine = FaultyEngine()  # "open": two chunks, the last without its blank line, and no [DONE]
    with serve_in_thread(engine.app, free_port()) as url:
        load = Load(requests=3, concurrency=1, warmup=0)
        results, duration = asyncio.run(run_load(f"{url}/v1", [body("open", 8)], load))
    summary = summarize(results, duration, load)
    assert summary["completed"] == 3 and summary["truncated"] == 3
    assert all(result.truncated and result.text for result in results)
