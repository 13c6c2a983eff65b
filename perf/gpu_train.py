"""Training speed on a GPU: LoRA and QLoRA steps of `tune train` on Llama-3.1-8B's exact architecture.

The model is built from Llama-3.1-8B-Instruct's config with random weights (nothing is downloaded) and
saved once to local disk, then trained through our own recipe (`scifi_llm.tune.train.setup`) at
sequence length 2048 and micro-batch 4 on synthetic prose, in several variants: LoRA and QLoRA, with and
without packing (needs flash-attn) and Liger kernels (needs liger-kernel). Each variant runs a few warm-up
steps, then timed steps; it reports tokens per second, peak VRAM and model FLOPs utilisation.

    python perf/gpu_train.py                       # on a CUDA machine; under 8 minutes on an H100
    python perf/gpu_train.py --tiny MODEL_DIR      # the CPU path on a small local model (what the test runs)

Offline by design: a missing trl, datasets, pydantic or bitsandbytes is installed from wheels in
perf/wheels/ (fetch them where there is a network: pip download trl==1.16.0 'bitsandbytes>=0.50,<0.51'
-d perf/wheels). Writes perf/results/gpu_train.json and a line in perf/RESULTS.md.
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "perf" / "wheels"
RESULTS_JSON = ROOT / "perf" / "results" / "gpu_train.json"
PEAK_BF16_TFLOPS = {
    "H100": 989.0,
    "H200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "RTX 5090": 209.5,
    "RTX 4090": 165.2,
}
LLAMA_31_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "bos_token_id": 128000,
    "eos_token_id": 128009,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "dtype": "bfloat16",
}


def ensure_packages() -> list[str]:
    """Install what is missing from perf/wheels (offline); returns what was installed."""
    wanted = {"trl": "trl", "datasets": "datasets", "pydantic": "pydantic", "yaml": "pyyaml"}
    import torch

    if torch.cuda.is_available():
        wanted["bitsandbytes"] = "bitsandbytes>=0.50,<0.51"
    missing = [spec for module, spec in wanted.items() if importlib.util.find_spec(module) is None]
    if missing and not install_wheels(missing):
        raise SystemExit(f"missing {', '.join(missing)} and no usable wheels in {WHEELS}")
    return missing


def install_wheels(specs: list[str]) -> bool:
    """pip install `specs` from perf/wheels alone (the lent machine has no network); True when it worked."""
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(WHEELS)]
    return subprocess.run([*command, *specs]).returncode == 0


def build_model(folder: Path) -> None:
    """Llama-3.1-8B's architecture with random bf16 weights, saved with a byte-level tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from scifi_llm.tiny_model import build_tiny_llama

    build_tiny_llama(folder, [path.read_text() for path in (ROOT / "examples" / "writing").glob("*.md")])
    for name in folder.glob("*.safetensors"):
        name.unlink()
    config = LlamaConfig(**{key: value for key, value in LLAMA_31_8B.items() if key != "architectures"})
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="5GB")
    del model
    torch.cuda.empty_cache()


def model_folder(tiny: Path | None, scratch: Path) -> Path:
    """The small model given for the CPU path, or Llama-3.1-8B's architecture built in `scratch` (CUDA)."""
    import torch

    if tiny is not None:
        return tiny.resolve()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: pass --tiny MODEL_DIR to run the CPU path")
    model = scratch / "llama-3.1-8b-random"
    build_model(model)
    return model


def write_data(workspace: Path, model: Path, sequence_len: int, examples: int) -> None:
    """Synthetic examples as `tune prepare` writes them, each filling the sequence length (the passage
    cut to the model's tokenizer, with room for the chat template)."""
    from transformers import AutoTokenizer

    from scifi_llm.bench import prose_prompt

    tokenizer = AutoTokenizer.from_pretrained(model)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    passage = prose_prompt(sequence_len - 64, count)
    words = passage.split()
    lines = []
    for index in range(examples):
        shift = index * 7 % len(words)  # vary the passages a little; their length stays the same
        messages = [
            {"role": "system", "content": "You are a science fiction author."},
            {"role": "user", "content": f"Write scene {index}."},
            {"role": "assistant", "content": " ".join(words[shift:] + words[:shift])},
        ]
        lines.append(json.dumps({"messages": messages}))
    data = workspace / "data" / "processed"
    data.mkdir(parents=True, exist_ok=True)
    (data / "training.jsonl").write_text("\n".join(lines) + "\n")


def variants(cuda: bool) -> list[tuple[str, list[str]]]:
    """(name, config overrides) of each run."""
    if not cuda:
        return [("lora", [])]
    runs = [("lora", []), ("qlora", ["adapter=qlora", "load_in_4bit=true", "optimizer=paged_adamw_8bit"])]
    if importlib.util.find_spec("flash_attn") is not None:
        runs += [(f"{name}+packing", [*extra, "sample_packing=true"]) for name, extra in runs[:2]]
    if importlib.util.find_spec("liger_kernel") is not None:
        liger = [
            "plugins=[axolotl.integrations.liger.LigerPlugin]",
            "liger_rms_norm=true",
            "liger_glu_activation=true",
        ]
        runs += [(f"{name}+liger", [*extra, *liger]) for name, extra in runs[:2]]
    return runs


def run_variant(
    model: Path, workspace: Path, name: str, extra: list[str], steps: int, sequence_len: int
) -> dict:
    """Train one variant for `steps` optimizer steps; the first two are warm-up and not timed."""
    import torch
    from transformers import TrainerCallback

    from scifi_llm.tune import load_train_config
    from scifi_llm.tune.train import setup

    cuda = torch.cuda.is_available()
    overrides = [
        f"base_model={model}",
        f"output_dir=runs/{name}",
        f"max_steps={steps}",
        f"sequence_len={sequence_len}",
        "micro_batch_size=4",
        "gradient_accumulation_steps=1",
        "gradient_checkpointing=true",
        "save_steps=100000",
        "sample_packing=false",
        "plugins=[]",
        f"attn_implementation={'flash_attention_2' if flash_attention() else 'sdpa'}",
        "test_datasets=[]",
        *extra,
    ]
    config = load_train_config(ROOT / "configs" / "lora_style_transfer.yaml", overrides)
    times: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter(), state.num_input_tokens_seen))

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    notes: list[str] = []
    trainer = setup(config, workspace, workspace / config.output_dir, notes, None)
    trainer.add_callback(Clock())
    trainer.train()
    (start, tokens_before), (end, tokens_after) = times[1], times[-1]
    tokens_per_second = (tokens_after - tokens_before) / (end - start)
    result = {
        "variant": name,
        "tokens_per_second": round(tokens_per_second, 1),
        "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "mfu": mfu(tokens_per_second, sequence_len) if cuda else None,
        "notes": notes,
    }
    del trainer
    if cuda:
        torch.cuda.empty_cache()
    return result


def flash_attention() -> bool:
    """True where flash-attn is installed on a CUDA machine (else the runs use PyTorch's SDPA)."""
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None


def mfu(tokens_per_second: float, sequence_len: int) -> float | None:
    """Model FLOPs utilisation: (6 x non-embedding parameters + attention) per token against the GPU's
    dense bf16 peak. LoRA skips the frozen weights' gradients, so this overstates the work done a little."""
    import torch

    name = torch.cuda.get_device_name(0)
    peak = next((tflops for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)
    if peak is None:
        return None
    c = LLAMA_31_8B
    hidden, layers = c["hidden_size"], c["num_hidden_layers"]
    kv = hidden // c["num_attention_heads"] * c["num_key_value_heads"]
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * c["intermediate_size"]
    parameters = layers * per_layer + c["vocab_size"] * hidden  # the output layer; the input lookup is free
    attention = 12 * layers * hidden * sequence_len
    return round(tokens_per_second * (6 * parameters + attention) / (peak * 1e12), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", type=Path, help="a small local model: run the CPU path on it")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--sequence-len", type=int, default=2048)
    parser.add_argument("--output", type=Path, default=RESULTS_JSON)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    installed = ensure_packages()
    import torch

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model = model_folder(args.tiny, scratch)
        write_data(scratch, model, args.sequence_len, examples=4 * (args.steps + 1))
        runs = [
            run_variant(model, scratch, name, extra, args.steps, args.sequence_len)
            for name, extra in variants(cuda)
        ]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "model": "tiny (CPU path)" if args.tiny else "Llama-3.1-8B architecture, random weights",
        "sequence_len": args.sequence_len,
        "micro_batch": 4,
        "installed_from_wheels": installed,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    if args.tiny is None:
        sys.path.insert(0, str(ROOT / "perf"))
        from record import add_table_row

        summary = "; ".join(
            f"{run['variant']}: {run['tokens_per_second']:.0f} tok/s, {run['peak_vram_gb']} GB VRAM, "
            f"MFU {run['mfu']}"
            for run in runs
        )
        row = f"| {report['date'][:10]} | `python perf/gpu_train.py` | {report['device']} | {summary} |"
        add_table_row("| date | command | device | per variant |", row)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
