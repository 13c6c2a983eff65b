"""tune merge: shard-by-shard LoRA merge checked against PEFT, on a multi-shard tiny Llama."""

import json
import math
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from scifi_llm.errors import UserError
from scifi_llm.fsutil import exclusive_lock
from scifi_llm.serving import ServeOptions, process, transformers_command
from scifi_llm.tune import merge_adapter, verify_merge

from conftest import free_port

PROMPT_IDS = torch.tensor([[1, 17, 230, 54, 99, 300, 12, 7]])


@pytest.fixture(scope="module")
def sharded_base(tmp_path_factory, tiny_llama) -> Path:
    """The tiny Llama re-saved in several safetensors shards, with its tokenizer and template."""
    folder = tmp_path_factory.mktemp("sharded") / "base"
    AutoModelForCausalLM.from_pretrained(tiny_llama).save_pretrained(folder, max_shard_size="200KB")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (tiny_llama / name).exists():
            (folder / name).write_bytes((tiny_llama / name).read_bytes())
    assert len(list(folder.glob("model-*.safetensors"))) > 2
    return folder


def make_adapter(base: Path, folder: Path, **options) -> Path:
    """A LoRA adapter with random A and B (so the update is not zero), saved as PEFT saves it."""
    torch.manual_seed(0)
    settings = {
        "r": 4,
        "lora_alpha": 16,
        "target_modules": "all-linear",
        "init_lora_weights": False,
    } | options
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(**settings))
    model.save_pretrained(folder)
    return folder


def peft_logits(base: Path, adapter: Path) -> torch.Tensor:
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(adapter)).eval()
    with torch.no_grad():
        return model(PROMPT_IDS).logits


def merged_logits(folder: Path) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(PROMPT_IDS).logits


@pytest.mark.parametrize(
    "options",
    [{}, {"use_rslora": True}, {"target_modules": ["q_proj", "v_proj"], "alpha_pattern": {"v_proj": 4}}],
    ids=["lora", "rslora", "some-modules-alpha-pattern"],
)
def test_merged_logits_equal_base_plus_adapter(tmp_path, sharded_base, options):
    adapter = make_adapter(sharded_base, tmp_path / "adapter", **options)
    report = merge_adapter(adapter, tmp_path / "merged", dtype="fp32")
    assert report.shards == len(list(sharded_base.glob("model-*.safetensors")))
    expected = peft_logits(sharded_base, adapter)
    base_only = merged_logits(sharded_base)
    assert not torch.allclose(expected, base_only, atol=1e-3)  # the adapter changes the output
    torch.testing.assert_close(merged_logits(tmp_path / "merged"), expected, atol=1e-4, rtol=1e-4)
    scale = 16 / math.sqrt(4) if options.get("use_rslora") else 16 / 4
    assert report.scale == scale


def test_bf16_output_matches_peft_up_to_rounding_and_has_what_a_server_needs(tmp_path, sharded_base):
    adapter = make_adapter(sharded_base, tmp_path / "adapter")
    merge_adapter(adapter, tmp_path / "merged")
    worst, compared = verify_merge(adapter, tmp_path / "merged")
    assert compared == 8 and worst < 2e-2
    names = {path.name for path in (tmp_path / "merged").iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "model.safetensors.index.json",
    } <= names
    index = json.loads((tmp_path / "merged" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) <= names
    assert json.loads((tmp_path / "merged" / "config.json").read_text()).get("dtype") == "bfloat16"


def test_transformers_serve_answers_from_the_merged_folder(tmp_path, tiny_llama):
    adapter = make_adapter(tiny_llama, tmp_path / "adapter")
    merge_adapter(adapter, tmp_path / "merged")
    command = transformers_command(ServeOptions(str(tmp_path / "merged"), port=free_port()))
    server = subprocess.Popen(command.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not process.is_healthy(command.health_url) and time.monotonic() < deadline:
            assert server.poll() is None, "transformers serve exited"
            time.sleep(0.3)
        body = {
            "model": str(tmp_path / "merged"),
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 8,
        }
        response = httpx.post(f"{command.base_url}/chat/completions", json=body, timeout=120)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_crash_mid_merge_leaves_nothing_that_looks_complete(tmp_path, sharded_base):
    adapter = make_adapter(sharded_base, tmp_path / "adapter")
    broken = tmp_path / "broken-base"
    broken.mkdir()
    for path in sharded_base.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    last = sorted(broken.glob("model-*.safetensors"))[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a shard cut short on disk
    with pytest.raises(UserError, match=f"{last.name}: the data of .* is cut short"):
        merge_adapter(adapter, tmp_path / "merged", base=str(broken))
    assert not (tmp_path / "merged").exists()
    assert not list(tmp_path.glob(".merged.partial*"))
    (tmp_path / ".merged.partial-0badc0de").mkdir()  # what a kill -9 would leave
    (tmp_path / ".merged.partial-0badc0de" / "model-00001-of-00009.safetensors").write_text("half")
    report = merge_adapter(adapter, tmp_path / "merged")
    assert not list(tmp_path.glob(".merged.partial*")) and (tmp_path / "merged" / "config.json").exists()
    assert report.notes == ["removed .merged.partial-0badc0de, left by an interrupted merge (0 MB)"]


def test_two_merges_into_one_output_never_mix(tmp_path, sharded_base, workspace):
    """A second merge into the same output, from another process, is refused in one line while the first
    holds the output; the output's files all get the base model's permissions."""
    adapter = make_adapter(sharded_base, tmp_path / "adapter")
    output = tmp_path / "merged"
    command = [sys.executable, "-m", "scifi_llm", "--workspace", str(workspace.root), "tune", "merge"]
    with exclusive_lock(tmp_path / ".merged.lock", "tune merge"):
        second = subprocess.run(
            [*command, str(adapter), "--output", str(output)], capture_output=True, text=True
        )
    assert second.returncode == 1 and not output.exists()
    assert second.stderr.splitlines() == [
        f"error: another tune merge into {output} is running (pid {os.getpid()}); wait for it to finish"
    ]
    merge_adapter(adapter, output)
    base_mode = stat.S_IMODE((sharded_base / "config.json").stat().st_mode)
    assert {stat.S_IMODE(path.stat().st_mode) for path in output.iterdir()} == {base_mode}


def test_what_cannot_be_merged_is_refused_clearly(tmp_path, sharded_base):
    adapter = make_adapter(sharded_base, tmp_path / "adapter")
    settings = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(settings | {"use_dora": True}))
    with pytest.raises(UserError, match="use_dora is set and cannot be merged"):
        merge_adapter(adapter, tmp_path / "merged")
    (adapter / "adapter_config.json").write_text(json.dumps(settings))
    merge_adapter(adapter, tmp_path / "merged")
    with pytest.raises(UserError, match="already exists"):
        merge_adapter(adapter, tmp_path / "merged")
    with pytest.raises(UserError, match="is not downloaded; get it with `scifi-llm models pull"):
        merge_adapter(adapter, tmp_path / "other", base="nobody/no-such-model")
