"""perf/gpu_train.py is run where a GPU is lent; its CPU path runs here so it cannot rot meanwhile."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_training_benchmark_runs_its_cpu_path_on_the_tiny_model(tiny_llama, tmp_path):
    output = tmp_path / "gpu_train.json"
    command = [sys.executable, str(ROOT / "perf" / "gpu_train.py"), "--tiny", str(tiny_llama)]
    result = subprocess.run(
        [*command, "--steps", "3", "--sequence-len", "256", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["device"] == "cpu" and report["sequence_len"] == 256 and report["micro_batch"] == 4
    [run] = report["runs"]
    assert run["variant"] == "lora" and run["tokens_per_second"] > 0
