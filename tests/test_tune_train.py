"""tune train: real TRL + PEFT training of the tiny Llama on prepared prose, on the CPU."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from transformers import AutoTokenizer

from scifi_llm.config import configs_dir, init_workspace
from scifi_llm.errors import UserError
from scifi_llm.tune import PrepareOptions, load_examples, load_train_config, prepare_data, train_adapter
from scifi_llm.tune.train import LOG_NAME, last_checkpoint, read_log, setup

LORA = configs_dir() / "lora_style_transfer.yaml"
QLORA = configs_dir() / "qlora_style_transfer.yaml"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_llama) -> Path:
    """A workspace with the example writing prepared for the tiny model (short passages, 512 tokens)."""
    workspace = init_workspace(tmp_path_factory.mktemp("train") / "novel", with_example=True)
    output = workspace.root / "data" / "processed"
    prepare_data(PrepareOptions(workspace.writing_dir, output, str(tiny_llama), 100, 400, 512))
    return workspace.root


def tiny(tiny_llama: Path, *extra: str) -> list[str]:
    """Overrides that make the shipped LoRA config train the tiny model quickly on a CPU."""
    return [
        f"base_model={tiny_llama}",
        "micro_batch_size=2",
        "gradient_accumulation_steps=1",
        "gradient_checkpointing=false",
        "lora_r=8",
        "lora_alpha=16",
        "learning_rate=0.01",
        "warmup_ratio=0",
        "sequence_len=512",
        *extra,
    ]


def test_the_shipped_configs_hold_the_old_plans_settings():
    for path in (LORA, QLORA):
        config = load_train_config(path)
        assert config.base_model == "meta-llama/Llama-3.1-8B-Instruct"
        assert (config.lora_r, config.learning_rate, config.num_epochs) == (64, 2e-4, 3)
        assert (config.micro_batch_size, config.gradient_accumulation_steps, config.sequence_len) == (
            4,
            4,
            2048,
        )
        assert config.datasets[0].field_messages == "messages" and config.datasets[0].roles_to_train == [
            "assistant"
        ]
        assert config.sample_packing and not config.train_on_inputs
        header = path.read_text().split("\n\n")[0]
        assert f"scifi-llm tune train configs/{path.name}" in header and "VRAM" in header
    qlora = load_train_config(QLORA)
    assert qlora.load_in_4bit and qlora.bnb_config_kwargs.bnb_4bit_use_double_quant


def test_unknown_keys_and_bad_values_are_refused_by_name(tmp_path):
    config = yaml.safe_load(LORA.read_text()) | {"lora_magic": 3}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="unknown key 'lora_magic'"):
        load_train_config(tmp_path / "c.yaml")
    with pytest.raises(UserError, match=r"^--set 'learning_rate=-1': learning_rate"):
        load_train_config(LORA, ["learning_rate=-1"])
    with pytest.raises(UserError, match=r"^--set 'lora_rank=8': .*did you mean 'lora_r'\?"):
        load_train_config(LORA, ["lora_rank=8"])
    with pytest.raises(UserError, match="qlora goes with load_in_4bit"):
        load_train_config(LORA, ["adapter=qlora"])


def test_malformed_training_data_names_the_line(tmp_path):
    good = {"messages": [{"role": "user", "content": "Write."}, {"role": "assistant", "content": "Prose."}]}
    lines = [json.dumps(good), '{"messages": "oops"}']
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"t\.jsonl:2: .messages. must be a list"):
        load_examples(tmp_path / "t.jsonl")
    with pytest.raises(UserError, match="tune prepare"):
        load_examples(tmp_path / "missing.jsonl")


def test_qlora_without_cuda_suggests_the_lora_config(prepared, tiny_llama):
    config = load_train_config(QLORA, [f"base_model={tiny_llama}"])
    with pytest.raises(UserError, match=r"lora_style_transfer\.yaml"):
        train_adapter(config, prepared)


def test_only_the_passage_carries_loss(prepared, tiny_llama):
    config = load_train_config(LORA, tiny(tiny_llama, "output_dir=checkpoints/labels"))
    trainer = setup(config, prepared, prepared / config.output_dir, [], None)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    example = load_examples(prepared / "data" / "processed" / "training.jsonl")[0]
    row = trainer.train_dataset[0]
    trained = [token for token, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tokenizer.decode(trained).startswith(example["completion"][0]["content"])
    assert example["prompt"][1]["content"] not in tokenizer.decode(trained)
    assert row["labels"][0] == -100


def test_training_lowers_the_loss_and_writes_an_adapter(prepared, tiny_llama):
    config = load_train_config(
        LORA, tiny(tiny_llama, "max_steps=16", "save_steps=8", "output_dir=checkpoints/a")
    )
    run = train_adapter(config, prepared)
    losses = [entry["loss"] for entry in read_log(Path(run.run_dir) / LOG_NAME) if "loss" in entry]
    assert len(losses) == 16
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.03
    assert run.eval_loss is not None and run.steps == 16
    adapter = json.loads((Path(run.adapter_dir) / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16
    kept = Path(run.run_dir) / "config.yaml"  # the config as run, --set changes included
    assert load_train_config(kept) == config and "max_steps: 16" in kept.read_text()
    assert re.search(r"^# trl \d", kept.read_text(), re.MULTILINE)
    with pytest.raises(UserError, match="--resume"):
        train_adapter(config, prepared)


def test_resume_after_kill_9_continues_the_same_loss_curve(prepared, tiny_llama):
    steps = ["max_steps=12", "save_steps=4"]
    reference = train_adapter(
        load_train_config(LORA, tiny(tiny_llama, *steps, "output_dir=checkpoints/ref")), prepared
    )
    expected = {e["step"]: e["loss"] for e in read_log(Path(reference.run_dir) / LOG_NAME) if "loss" in e}

    overrides = [
        item for o in tiny(tiny_llama, *steps, "output_dir=checkpoints/killed") for item in ("--set", o)
    ]
    command = [sys.executable, "-m", "scifi_llm", "--workspace", str(prepared), "tune", "train", str(LORA)]
    run_dir = prepared / "checkpoints" / "killed"
    process = subprocess.Popen(
        [*command, *overrides, "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while last_checkpoint(run_dir) is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    checkpoint = last_checkpoint(run_dir)
    assert checkpoint is not None and not (run_dir / "adapter").exists()
    with (run_dir / LOG_NAME).open("a") as log:
        log.write('{"step": 99, "lo')  # a line torn by the kill

    resumed = subprocess.run([*command, *overrides, "--resume", "--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    for noise in ("Warning", "Loading weights", "fork", "lancedb"):  # nothing a writer cannot act on
        assert noise not in resumed.stderr, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["resumed_from"] == str(checkpoint) and summary["steps"] == 12
    losses = {e["step"]: e["loss"] for e in read_log(run_dir / LOG_NAME) if "loss" in e}
    assert sorted(losses) == list(range(1, 13))  # one entry per step: the log was cut back to the checkpoint
    assert all(losses[step] == pytest.approx(expected[step], abs=1e-4) for step in range(1, 13))


def test_several_gpus_launch_through_accelerate_and_axolotl_is_explained(cli, prepared):
    train_args = ("--workspace", str(prepared), "tune", "train", str(LORA))
    result = cli(*train_args, "--gpus", "2", "--dry-run", "--json", "--set", "lora_r=32")
    assert json.loads(result.stdout)["command"] == [
        "accelerate", "launch", "--num_processes", "2", "--multi_gpu",
        "-m", "scifi_llm", "tune", "train", str(LORA), "--set", "lora_r=32",
    ]  # fmt: skip
    result = cli(*train_args, "--engine", "axolotl")
    assert result.exit_code == 1 and "pip install axolotl" in result.stderr


def test_examples_longer_than_the_sequence_length_are_refused_not_cut(prepared, tiny_llama):
    config = load_train_config(LORA, tiny(tiny_llama, "sequence_len=128", "output_dir=checkpoints/short"))
    with pytest.raises(UserError, match="longer than sequence_len 128"):
        train_adapter(config, prepared)


def test_an_empty_validation_file_trains_without_evaluation(prepared, tiny_llama, tmp_path):
    empty = tmp_path / "validation.jsonl"
    empty.write_text("")
    overrides = [
        f"test_datasets=[{{path: {empty}, type: chat_template}}]",
        "max_steps=2",
        "output_dir=checkpoints/e",
    ]
    run = train_adapter(load_train_config(LORA, tiny(tiny_llama, *overrides)), prepared)
    assert run.eval_loss is None and any("trained without evaluation" in note for note in run.notes)


def test_the_best_checkpoint_by_validation_loss_is_kept_and_named_run_best(cli, prepared, tiny_llama):
    from scifi_llm.tune import checkpoint_path

    steps = ["max_steps=12", "save_steps=3", "eval_steps=3", "save_total_limit=1", "output_dir=checkpoints/b"]
    run = train_adapter(load_train_config(LORA, tiny(tiny_llama, *steps)), prepared)
    evals = {
        entry["step"]: entry["eval_loss"]
        for entry in read_log(Path(run.run_dir) / LOG_NAME)
        if "eval_loss" in entry
    }
    best_step = min(evals, key=evals.get)
    assert run.best_checkpoint == str(Path(run.run_dir) / f"checkpoint-{best_step}")
    assert run.best_eval_loss == pytest.approx(evals[best_step], abs=1e-5)
    kept = sorted(path.name for path in Path(run.run_dir).glob("checkpoint-*"))
    assert f"checkpoint-{best_step}" in kept and len(kept) <= 2  # the best outlives save_total_limit=1
    assert checkpoint_path("b:best", prepared) == Path(run.best_checkpoint)
    assert checkpoint_path(f"{run.run_dir}:last", prepared) == Path(run.adapter_dir)
    workspace = _workspace(prepared)
    merged = cli(
        "tune", "merge", "b:best", "--output", str(prepared / "merged_models" / "best"), workspace=workspace
    )
    assert merged.exit_code == 0, merged.stderr
    vllm = ["serve", "--engine", "vllm", "--max-model-len", "512", "--dry-run", "--json"]
    served = cli(*vllm, "--lora", "mine=b:best", workspace=workspace)
    assert served.exit_code == 0, served.stderr
    assert f"mine={run.best_checkpoint}" in json.loads(served.stdout)["argv"]
    (prepared / "checkpoints" / "older-run").mkdir()  # a run from before best.json
    missing = cli("tune", "merge", "older-run:best", "--output", str(prepared / "x"), workspace=workspace)
    assert missing.exit_code == 1 and "kept no best checkpoint" in missing.stderr


def _workspace(root: Path):
    from scifi_llm.config import find_workspace

    return find_workspace(root)
