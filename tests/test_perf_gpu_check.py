"""perf/gpu_check.py is run the moment a GPU is lent; its CPU path runs here so that it is ready then."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_its_cpu_path_on_the_tiny_model(tiny_llama, tmp_path):
    output = tmp_path / "gpu_check.json"
    command = [sys.executable, str(ROOT / "perf" / "gpu_check.py"), "--tiny", str(tiny_llama)]
    options = ["--steps", "3", "--sequence-len", "256", "--new-tokens", "8", "--output", str(output)]
    result = subprocess.run([*command, *options], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["device"] == "cpu" and report["seconds"] > 0
    [run] = report["train"]["runs"]
    assert run["variant"] == "lora" and run["tokens_per_second"] > 0
    assert [row["batch"] for row in report["decode"]["batches"]] == [1, 8]
    assert all(row["tokens_per_second"] > 0 for row in report["decode"]["batches"])
    assert report["embed"]["chunks_per_second"] > 0 and report["embed"]["tokens_per_chunk"] == 216


def test_without_a_gpu_or_a_tiny_model_it_says_what_to_pass(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "perf" / "gpu_check.py"), "--output", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "--tiny MODEL_DIR" in result.stderr
