"""Peak memory and time of `tune merge` against PEFT's merge_and_unload + save_pretrained.

The base is a synthetic Llama of about 2 GB in bf16 (20 layers, hidden 2048), written in 500 MB
safetensors shards; the adapter is a rank-16 LoRA on every linear layer with random A and B. Each merge
runs in its own child process, which reports its own peak resident memory (VmHWM: unlike ru_maxrss it
does not inherit the parent's peak across exec); the base files are read once first, so both start from
a warm page cache. Then the two outputs are compared tensor by tensor.

    python perf/merge_bench.py            # about 3 minutes, 6 GB of scratch disk

Writes perf/results/merge_bench.json and a line in perf/RESULTS.md.
"""

import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from record import add_table_row
from scifi_llm.fsutil import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "merge_bench.json"
HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, VOCAB = 2048, 5632, 20, 16, 4, 32000
SHARD_BYTES = 500 * 2**20
RANK, ALPHA = 16, 32
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

OURS = """
import json, sys, time
from pathlib import Path
from scifi_llm.tune import merge_adapter
started = time.monotonic()
merge_adapter(Path(sys.argv[1]), Path(sys.argv[2]), base=sys.argv[3])
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.monotonic() - started, "peak_rss_mb": peak_kb / 1024}))
"""
PEFT = """
import json, sys, time
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
started = time.monotonic()
model = AutoModelForCausalLM.from_pretrained(sys.argv[3], dtype=torch.bfloat16)
model = PeftModel.from_pretrained(model, sys.argv[1]).merge_and_unload()
model.save_pretrained(sys.argv[2], max_shard_size="500MB")
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.monotonic() - started, "peak_rss_mb": peak_kb / 1024}))
"""


def linear_shapes() -> dict[str, tuple[int, int]]:
    """(out, in) of each linear layer of one decoder layer."""
    kv = HIDDEN // HEADS * KV_HEADS
    return {
        "self_attn.q_proj": (HIDDEN, HIDDEN),
        "self_attn.k_proj": (kv, HIDDEN),
        "self_attn.v_proj": (kv, HIDDEN),
        "self_attn.o_proj": (HIDDEN, HIDDEN),
        "mlp.gate_proj": (INTERMEDIATE, HIDDEN),
        "mlp.up_proj": (INTERMEDIATE, HIDDEN),
        "mlp.down_proj": (HIDDEN, INTERMEDIATE),
    }


def base_tensors():
    """The synthetic model's tensors in checkpoint order, one at a time."""
    yield "model.embed_tokens.weight", torch.randn(VOCAB, HIDDEN, dtype=torch.bfloat16) * 0.02
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}"
        for name, shape in linear_shapes().items():
            yield f"{prefix}.{name}.weight", torch.randn(*shape, dtype=torch.bfloat16) * 0.02
        yield f"{prefix}.input_layernorm.weight", torch.ones(HIDDEN, dtype=torch.bfloat16)
        yield f"{prefix}.post_attention_layernorm.weight", torch.ones(HIDDEN, dtype=torch.bfloat16)
    yield "model.norm.weight", torch.ones(HIDDEN, dtype=torch.bfloat16)
    yield "lm_head.weight", torch.randn(VOCAB, HIDDEN, dtype=torch.bfloat16) * 0.02


def build_base(folder: Path) -> int:
    """Write the synthetic base shard by shard with its index and config; returns its size in bytes."""
    folder.mkdir(parents=True)
    groups: list[list[str]] = []
    pending: dict[str, torch.Tensor] = {}
    pending_bytes = total = 0
    for name, tensor in base_tensors():
        size = tensor.numel() * tensor.element_size()
        if pending and pending_bytes + size > SHARD_BYTES:
            groups.append(_write_shard(folder, len(groups) + 1, pending))
            pending, pending_bytes = {}, 0
        pending[name] = tensor
        pending_bytes += size
        total += size
    groups.append(_write_shard(folder, len(groups) + 1, pending))
    weight_map = {}
    for number, names in enumerate(groups, start=1):
        final = f"model-{number:05d}-of-{len(groups):05d}.safetensors"
        (folder / f"shard-{number}.safetensors").rename(folder / final)
        weight_map |= dict.fromkeys(names, final)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(json.dumps(_config()))
    return total


def _write_shard(folder: Path, number: int, tensors: dict) -> list[str]:
    save_file(tensors, str(folder / f"shard-{number}.safetensors"), metadata={"format": "pt"})
    return list(tensors)


def _config() -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "dtype": "bfloat16",
    }


def build_adapter(folder: Path, base: Path) -> None:
    """A rank-16 LoRA on every linear layer, with random A and B, in PEFT's file layout."""
    from peft import LoraConfig

    LoraConfig(
        r=RANK, lora_alpha=ALPHA, target_modules=list(TARGETS), base_model_name_or_path=str(base)
    ).save_pretrained(folder)
    tensors = {}
    for layer in range(LAYERS):
        for name, (out_features, in_features) in linear_shapes().items():
            key = f"base_model.model.model.layers.{layer}.{name}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(RANK, in_features) * 0.01
            tensors[f"{key}.lora_B.weight"] = torch.randn(out_features, RANK) * 0.01
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})


def run_child(script: str, adapter: Path, output: Path, base: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", script, str(adapter), str(output), str(base)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"merge child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def largest_difference(first: Path, second: Path) -> tuple[float, int]:
    """The largest absolute difference between the two models' tensors, and how many were compared."""
    locations = {}
    for folder in (first, second):
        weight_map = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
        locations[folder] = weight_map
    worst, compared = 0.0, 0
    for name, shard in locations[first].items():
        with (
            safe_open(str(first / shard), "pt") as a,
            safe_open(str(second / locations[second][name]), "pt") as b,
        ):
            difference = (a.get_tensor(name).float() - b.get_tensor(name).float()).abs().max().item()
        worst, compared = max(worst, difference), compared + 1
    return worst, compared


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        size = build_base(scratch / "base")
        build_adapter(scratch / "adapter", scratch / "base")
        for shard in (scratch / "base").glob("*.safetensors"):
            shard.read_bytes()  # warm the page cache for both runs
        ours = run_child(OURS, scratch / "adapter", scratch / "ours", scratch / "base")
        peft = run_child(PEFT, scratch / "adapter", scratch / "peft", scratch / "base")
        worst, compared = largest_difference(scratch / "ours", scratch / "peft")
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_gb": round(size / 2**30, 2),
        "ours": {key: round(value, 1) for key, value in ours.items()},
        "peft": {key: round(value, 1) for key, value in peft.items()},
        "rss_ratio": round(ours["peak_rss_mb"] / peft["peak_rss_mb"], 3),
        "time_ratio": round(ours["seconds"] / peft["seconds"], 3),
        "max_abs_diff": worst,
        "tensors_compared": compared,
    }
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    row = (
        f"| {results['date'][:10]} | `python perf/merge_bench.py` | {results['base_gb']} GB bf16 base, "
        f"rank-16 adapter on every linear layer: ours {ours['peak_rss_mb']:.0f} MB peak RSS in "
        f"{ours['seconds']:.1f} s, "
        f"PEFT {peft['peak_rss_mb']:.0f} MB in {peft['seconds']:.1f} s (memory x{results['rss_ratio']}, "
        f"time x{results['time_ratio']}); largest difference {worst:.2e} over {compared} tensors |"
    )
    add_table_row("| date | command | merge |", row)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
