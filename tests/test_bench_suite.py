"""bench all and bench compare: one folder per run, and changes marked in the right direction."""

import json
import shutil

from scifi_llm.bench import compare_runs, load_run
from servers import running_proxy

from conftest import EXAMPLES, free_port


def test_bench_all_writes_every_result_the_plots_and_a_summary(
    cli, example_workspace, engine, tiny_llama, tmp_path
):
    workspace = tmp_path / "novel"  # a copy: the example workspace is shared read-only
    shutil.copytree(example_workspace.root, workspace)
    with running_proxy(example_workspace.index_dir, engine, tmp_path, free_port()) as proxy_url:
        result = cli(
            "--workspace", str(workspace), "bench", "all", "--base-url", engine,
            "--judge-url", engine, "--questions", str(EXAMPLES / "lore_questions.jsonl"),
            "--proxy-url", proxy_url, "--max-model-len", "4096", "--tokenizer", str(tiny_llama),
            "--quick", "--json",
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    folder = workspace / "results" / json.loads(result.stdout)["folder"].split("/")[-1]
    names = {path.name for path in folder.iterdir()}
    benches = {"throughput", "context", "creative", "coherence", "retrieval", "pipeline"}
    assert {f"{name}.json" for name in benches} | {
        "environment.json",
        "summary.md",
        "throughput.png",
    } <= names
    results = load_run(folder)
    assert not [name for name in benches if {"error", "skipped"} & set(results[name])]
    assert results["environment"]["packages"]["transformers"] and results["environment"]["endpoint"]["model"]
    summary = (folder / "summary.md").read_text()
    assert "| single-stream decode tok/s |" in summary and "| retrieval recall@5 |" in summary


def write_run(folder, decode: float, ttft: float, recall: float):
    folder.mkdir(parents=True)
    sweep = [{"output_throughput": decode * 2, "median_ttft_ms": ttft}]
    throughput = {"single_stream_decode_tok_s": decode, "sweep": sweep}
    (folder / "throughput.json").write_text(json.dumps(throughput))
    (folder / "retrieval.json").write_text(json.dumps({"recall": {"5": recall}, "mrr": 0.5}))
    return folder


def test_bench_compare_marks_better_and_worse_by_direction(cli, tmp_path):
    first = write_run(tmp_path / "a", decode=30.0, ttft=100.0, recall=0.80)
    second = write_run(tmp_path / "b", decode=34.0, ttft=120.0, recall=0.80)
    verdicts = {row["measure"]: row["verdict"] for row in compare_runs(load_run(first), load_run(second))}
    assert verdicts["single-stream decode tok/s"] == "better"  # higher is better
    assert verdicts["TTFT at 1 stream, ms"] == "worse"  # lower is better
    assert verdicts["retrieval recall@5"] == "same" and verdicts["retrieval MRR"] == "same"
    result = cli("bench", "compare", str(first), str(second), "--json")
    assert {row["verdict"] for row in json.loads(result.stdout)["rows"]} == {"better", "worse", "same"}
    assert cli("bench", "compare", str(first), str(tmp_path / "nope")).exit_code == 1


def test_a_dead_endpoint_is_a_one_line_error_not_a_table_of_failures(cli, workspace):
    result = cli(
        "bench", "throughput", "--base-url", f"http://127.0.0.1:{free_port()}/v1", workspace=workspace
    )
    assert result.exit_code == 1 and "was answered" in result.stderr and result.stderr.count("\n") == 1


def test_compare_keeps_measures_only_one_run_has(tmp_path):
    first = write_run(tmp_path / "a", decode=30.0, ttft=100.0, recall=0.80)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "retrieval.json").write_text(json.dumps({"recall": {"5": 0.9}, "mrr": 0.6}))
    rows = {row["measure"]: row for row in compare_runs(load_run(first), load_run(tmp_path / "b"))}
    assert (
        rows["single-stream decode tok/s"]["b"] is None
        and rows["single-stream decode tok/s"]["verdict"] == "n/a"
    )
    assert rows["retrieval recall@5"]["verdict"] == "better"
