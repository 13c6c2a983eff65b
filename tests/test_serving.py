"""Model serving: vLLM command lines (profiles, LoRA, context sizing) and a real server's lifecycle."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scifi_llm.errors import UserError
from scifi_llm.serving import (
    Gpu,
    ModelShape,
    ServeOptions,
    auto_context,
    build_command,
    process,
    read_lora,
    transformers_command,
)
from scifi_llm.serving.engines import vllm_command
from scifi_llm.serving.vllm_cli import VllmCli

from conftest import free_port, write

GIB = 2**30
LLAMA_31_8B = {  # the published config.json values of meta-llama/Llama-3.1-8B-Instruct
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
}
RTX_5090 = Gpu(0, "NVIDIA GeForce RTX 5090", int(31.4 * GIB), 32 * GIB)
H200 = Gpu(0, "NVIDIA H200", int(139 * GIB), 141 * GIB)
FIXTURES = Path(__file__).parent / "fixtures" / "vllm"
VLLM_0_10 = VllmCli("0.10.1", (FIXTURES / "serve-help-0.10.txt").read_text())
VLLM_0_25 = VllmCli("0.25.0", (FIXTURES / "serve-help-0.25.txt").read_text())


@pytest.fixture
def llama_folder(tmp_path):
    write(tmp_path / "llama" / "config.json", json.dumps(LLAMA_31_8B))
    return str(tmp_path / "llama")


def test_kv_cache_arithmetic_for_llama_31_8b():
    shape = ModelShape.from_config(LLAMA_31_8B)
    assert shape.kv_bytes_per_token() == 32 * 8 * 128 * 2 * 2 == 128 * 1024
    assert shape.kv_bytes_per_token("fp8") == 64 * 1024
    assert 8.0e9 < shape.weight_bytes() / 2 < 8.1e9  # 8.03 billion parameters


def test_auto_context_fits_the_kv_cache_next_to_the_weights():
    shape = ModelShape.from_config(LLAMA_31_8B)
    choice = auto_context(shape, RTX_5090.free_bytes, 0.9, caps={"GPU profile": 100_000})
    budget = int(RTX_5090.free_bytes * 0.9) - shape.weight_bytes() - 2 * GIB
    assert choice.tokens == budget // (128 * 1024) // 1024 * 1024
    assert 64_000 < choice.tokens < 100_000
    assert "limited by the KV cache" in choice.reason
    assert auto_context(shape, H200.free_bytes, 0.9).tokens == 131072  # the model's own limit
    with pytest.raises(UserError, match="no room for a KV cache"):
        auto_context(shape, 16 * GIB, 0.9)


def test_rtx_5090_profile(llama_folder):
    command = vllm_command(ServeOptions(llama_folder, max_model_len="auto"), RTX_5090, VLLM_0_25)
    argv = command.argv
    assert argv[argv.index("--attention-backend") + 1] == "FLASHINFER" and command.env == {}
    assert argv[argv.index("--max-num-seqs") + 1] == "9"
    assert int(argv[argv.index("--max-model-len") + 1]) <= 100_000
    assert any("max-model-len" in note and "KiB per token" in note for note in command.notes)
    capped = vllm_command(ServeOptions(llama_folder, max_model_len=128_000, max_num_seqs=16), RTX_5090)
    assert capped.argv[capped.argv.index("--max-model-len") + 1] == "100000"
    assert capped.argv[capped.argv.index("--max-num-seqs") + 1] == "16"
    plain = vllm_command(ServeOptions(llama_folder, max_model_len=8192), H200, VLLM_0_25)
    assert plain.env == {} and "--max-num-seqs" not in plain.argv and "--attention-backend" not in plain.argv


@pytest.mark.parametrize(
    ("cli", "argv", "env", "why"),
    [
        (VLLM_0_25, ["--attention-backend", "FLASHINFER"], {}, "vLLM 0.25.0 lists --attention-backend"),
        (VLLM_0_10, [], {"VLLM_ATTENTION_BACKEND": "FLASHINFER"}, "vLLM 0.10.1 has no --attention-backend"),
        (VllmCli(None, None), ["--attention-backend", "FLASHINFER"], {}, "vLLM is not installed here"),
    ],
)
def test_the_attention_backend_takes_the_form_the_installed_vllm_accepts(llama_folder, cli, argv, env, why):
    command = vllm_command(ServeOptions(llama_folder, max_model_len=8192), RTX_5090, cli)
    given = [arg for arg in command.argv if arg in ("--attention-backend", "FLASHINFER")]
    assert given == argv and command.env == env
    assert any(note.startswith("attention backend:") and why in note for note in command.notes)


def test_auto_context_stops_at_the_setting_the_old_plan_chose(llama_folder):
    command = vllm_command(ServeOptions(llama_folder, max_model_len="auto"), H200, VLLM_0_25)
    assert command.argv[command.argv.index("--max-model-len") + 1] == "65536"
    assert any("limited by the setting serve.auto_max_model_len" in note for note in command.notes)
    uncapped = vllm_command(ServeOptions(llama_folder, max_model_len="auto", auto_cap=None), H200, VLLM_0_25)
    assert uncapped.argv[uncapped.argv.index("--max-model-len") + 1] == "131072"


def test_gpu_memory_utilization_reaches_the_command(llama_folder):
    command = vllm_command(ServeOptions(llama_folder, gpu_memory_utilization=0.72), H200, VLLM_0_25)
    assert command.argv[command.argv.index("--gpu-memory-utilization") + 1] == "0.72"


def test_lora_adapters_are_checked_and_ranked(tmp_path, llama_folder):
    write(tmp_path / "style" / "adapter_config.json", json.dumps({"peft_type": "LORA", "r": 48}))
    write(tmp_path / "saves" / "adapter_config.json", json.dumps({"r": 8, "modules_to_save": ["lm_head"]}))
    adapter = read_lora(f"my-style={tmp_path / 'style'}")
    command = vllm_command(ServeOptions(llama_folder, loras=(adapter,)), H200)
    argv = command.argv
    assert "--enable-lora" in argv and argv[argv.index("--max-lora-rank") + 1] == "64"
    assert argv[argv.index("--lora-modules") + 1] == f"my-style={tmp_path / 'style'}"
    with pytest.raises(UserError, match="trains whole modules"):
        read_lora(f"x={tmp_path / 'saves'}")
    with pytest.raises(UserError, match=r"adapter_config\.json not found"):
        read_lora(f"x={tmp_path}")
    with pytest.raises(UserError, match="NAME=PATH"):
        read_lora(str(tmp_path / "style"))
    with pytest.raises(UserError, match="needs vLLM"):
        transformers_command(ServeOptions(llama_folder, loras=(adapter,)))


def test_auto_engine_is_transformers_without_a_gpu(llama_folder):
    command = build_command(ServeOptions(llama_folder, port=8123), gpus=[])
    assert command.engine == "transformers"
    assert command.argv[1:] == ["serve", llama_folder, "--host", "127.0.0.1", "--port", "8123"]
    assert command.base_url == "http://127.0.0.1:8123/v1"


def test_dry_run_prints_the_command_and_passes_extra_arguments(cli, workspace, llama_folder):
    result = cli(
        "serve",
        llama_folder,
        "--engine",
        "vllm",
        "--max-model-len",
        "32768",
        "--dry-run",
        "--json",
        "--",
        "--enforce-eager",
        workspace=workspace,
    )
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["engine"] == "vllm" and shown["argv"][-1] == "--enforce-eager"
    bad = cli("serve", "--max-model-len", "lots", "--dry-run", workspace=workspace)
    assert bad.exit_code == 1 and "give a number of tokens or 'auto'" in bad.stderr


def test_serve_status_stop_with_a_real_transformers_server(cli, workspace, tiny_llama):
    port = free_port()
    started = cli(
        "serve",
        str(tiny_llama),
        "--engine",
        "transformers",
        "--port",
        str(port),
        "--json",
        workspace=workspace,
    )
    try:
        assert started.exit_code == 0, started.stderr
        state = json.loads(cli("status", "--json", workspace=workspace).stdout)
        assert state["state"] == "running" and state["healthy"] is True
        assert (state["engine"], state["port"], state["model"]) == ("transformers", port, str(tiny_llama))
        again = cli(
            "serve",
            str(tiny_llama),
            "--engine",
            "transformers",
            "--port",
            str(free_port()),
            workspace=workspace,
        )
        assert again.exit_code == 1 and "already running" in again.stderr
    finally:
        stopped = cli("stop", workspace=workspace)
    assert stopped.exit_code == 0 and "stopped transformers" in stopped.stdout
    assert not process.port_in_use(port)
    assert json.loads(cli("status", "--json", workspace=workspace).stdout)["state"] == "not running"


def test_a_stale_record_is_cleaned_and_a_foreign_process_is_never_stopped(cli, workspace):
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = process.ServerRecord(
            foreign.pid,
            "transformers",
            "m",
            1,
            "http://127.0.0.1:1/v1",
            "http://127.0.0.1:1/health",
            ["transformers", "serve", "m"],
            "log",
            time.time(),
        )
        record.save(workspace.state_dir)
        assert process.status(workspace.state_dir).state == "stale"
        result = cli("stop", workspace=workspace)
        assert "stale record" in result.stdout
        assert foreign.poll() is None, "stop killed a process that serve did not start"
        assert process.read_record(workspace.state_dir) is None
    finally:
        foreign.kill()
        foreign.wait()


@pytest.mark.slow
def test_an_engine_that_dies_while_starting_fails_fast(cli, workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIFI_LLM_SERVE__STARTUP_TIMEOUT", "120")
    write(tmp_path / "broken" / "config.json", "{not json")
    started = time.monotonic()
    result = cli(
        "serve",
        str(tmp_path / "broken"),
        "--engine",
        "transformers",
        "--port",
        str(free_port()),
        workspace=workspace,
    )
    assert result.exit_code == 1 and "exited while starting" in result.stderr
    assert "Error" in result.stderr.split("exited while starting")[1]  # the reason, not only the log
    assert time.monotonic() - started < 100
    assert process.status(workspace.state_dir).state in ("stale", "not running")
