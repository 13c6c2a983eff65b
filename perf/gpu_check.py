"""The GPU check: everything this project wants measured on a GPU, in one run of at most 8 minutes.

On Llama-3.1-8B's architecture with random weights (nothing is downloaded):
1. training: `perf/gpu_train.py`'s LoRA and QLoRA steps through our own recipe, with and without Liger
   kernels and packing where they are installed: tokens/s, peak VRAM, MFU;
2. decoding through transformers at batch 1 and 8: tokens/s, as a share of the memory-bandwidth limit
   (every new token reads all the weights once per batch: bandwidth / weight bytes, times the batch);
3. embedding with a bge-large-shaped model (BERT-large, random weights, built from its config): chunks/s
   at the lore's chunk size, for the ingest estimate.
Each part gets a share of the time; what would overrun is skipped and said so. Writes
perf/results/gpu_check.json and a row in perf/RESULTS.md.

    python perf/gpu_check.py                    # on a CUDA machine (H100, H200, ...)
    python perf/gpu_check.py --tiny MODEL_DIR   # the CPU path on a small local model (what CI runs)

The lent machine has torch, transformers, peft and accelerate but no network. Fetch the rest first,
where there is a network, into the ignored folder perf/wheels/ (built for the machine's Python), and let
it travel with the run (the device tool's `carry: ["perf/wheels"]`):

    pip download trl==1.16.0 datasets pydantic pyyaml 'bitsandbytes>=0.50,<0.51' liger-kernel \\
        --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 -d perf/wheels

The script installs from there with `pip install --no-index` and names what it could not find.
"""

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "perf"))
import gpu_train  # noqa: E402  (perf scripts import each other from this folder)

RESULTS_JSON = ROOT / "perf" / "results" / "gpu_check.json"
BUDGET_S = 8 * 60
SHARES = {"train": 0.6, "decode": 0.25, "embed": 0.15}  # of the budget, in this order
# Memory bandwidth in TB/s (vendor figures), for the decode limit.
BANDWIDTH_TBPS = {"H200": 4.8, "H100 PCIe": 2.0, "H100": 3.35, "A100": 2.0, "L40S": 0.864,
                  "RTX 5090": 1.792, "RTX 4090": 1.008}  # fmt: skip
BGE_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
             "intermediate_size": 4096, "vocab_size": 30522, "max_position_embeddings": 512}  # fmt: skip
TINY_BERT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 128, "vocab_size": 30522, "max_position_embeddings": 512}  # fmt: skip
LORE_CHUNK_TOKENS = 200  # `[lore] chunk_tokens`' default, plus the heading line a chunk is embedded with
WHEEL_PACKAGES = {"liger_kernel": "liger-kernel"}


class Clock:
    """The run's time budget, shared out between its parts."""

    def __init__(self, budget_s: float) -> None:
        self.started, self.budget_s = time.monotonic(), budget_s

    def left(self) -> float:
        """Seconds left of the whole budget."""
        return self.budget_s - (time.monotonic() - self.started)

    def share_ends(self, part: str) -> float:
        """When (monotonic time) `part`'s share of the budget runs out: the shares before it and its own."""
        names = list(SHARES)
        return self.started + self.budget_s * sum(SHARES[name] for name in names[: names.index(part) + 1])


def ensure_packages() -> list[str]:
    """gpu_train's packages, and Liger kernels on CUDA, from perf/wheels; what was installed."""
    installed = gpu_train.ensure_packages()
    import torch

    wanted = [spec for module, spec in WHEEL_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if torch.cuda.is_available() and wanted and gpu_train.install_wheels(wanted):
        installed += wanted  # without them the Liger variants are skipped, and the report says so
    return installed


def train(model: Path, scratch: Path, cuda: bool, steps: int, sequence_len: int, clock: Clock) -> dict:
    """gpu_train's variants, as many as the training share allows."""
    gpu_train.write_data(scratch, model, sequence_len, examples=4 * (steps + 1))
    runs, skipped = [], []
    for name, extra in gpu_train.variants(cuda):
        if runs and time.monotonic() + _longest(runs) > clock.share_ends("train"):
            skipped.append(name)
            continue
        started = time.monotonic()
        runs.append(gpu_train.run_variant(model, scratch, name, extra, steps, sequence_len))
        runs[-1]["seconds"] = round(time.monotonic() - started, 1)
    return {"runs": runs, "skipped_for_time": skipped}


def _longest(runs: list[dict]) -> float:
    return max(run["seconds"] for run in runs)


def decode(model_dir: Path, cuda: bool, new_tokens: int, clock: Clock) -> dict:
    """Greedy decoding at batch 1 and 8: tokens/s after the prompt, against the bandwidth limit."""
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(
        device
    )
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    results = []
    for batch in (1, 8):
        if results and time.monotonic() > clock.share_ends("decode"):
            break
        prompt = torch.randint(0, model.config.vocab_size, (batch, 128), device=device)
        seconds = _decode_seconds(model, prompt, new_tokens) - _decode_seconds(model, prompt, 1)
        tokens_per_second = batch * (new_tokens - 1) / seconds
        results.append({"batch": batch, "tokens_per_second": round(tokens_per_second, 1)})
        limit = _bandwidth_limit(weight_bytes, batch) if cuda else None
        results[-1]["share_of_bandwidth_limit"] = round(tokens_per_second / limit, 3) if limit else None
    del model
    if cuda:
        torch.cuda.empty_cache()
    return {"weight_gb": round(weight_bytes / 1e9, 2), "new_tokens": new_tokens, "batches": results}


def _decode_seconds(model, prompt, new_tokens: int) -> float:
    import torch

    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False}
    kwargs["attention_mask"] = torch.ones_like(prompt)
    model.generate(prompt, **kwargs)  # warm-up: kernels chosen, caches allocated
    if prompt.is_cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    model.generate(prompt, **kwargs)
    if prompt.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def _bandwidth_limit(weight_bytes: int, batch: int) -> float | None:
    """Tokens/s if each decoding step did nothing but read the weights once from memory."""
    import torch

    name = torch.cuda.get_device_name(0)
    tbps = next((value for key, value in BANDWIDTH_TBPS.items() if key in name), None)
    return None if tbps is None else batch * tbps * 1e12 / weight_bytes


def embed(cuda: bool, tiny: bool, clock: Clock) -> dict:
    """Chunks/s of a bge-large-shaped encoder at the lore's chunk size, in batches of 64."""
    import torch
    from transformers import BertConfig, BertModel

    device = "cuda" if cuda else "cpu"
    dtype = torch.float16 if cuda else torch.float32
    model = BertModel(BertConfig(**(TINY_BERT if tiny else BGE_LARGE))).to(device, dtype).eval()
    chunks = torch.randint(1000, 20000, (64, LORE_CHUNK_TOKENS + 16), device=device)
    batches = 0
    with torch.inference_mode():
        model(chunks)  # warm-up
        started = time.perf_counter()
        while batches < 3 or (batches < 50 and time.monotonic() < clock.share_ends("embed")):
            model(chunks)
            batches += 1
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    return {
        "model": "tiny BERT (CPU path)" if tiny else "bge-large shape, random weights",
        "tokens_per_chunk": chunks.shape[1],
        "batch": chunks.shape[0],
        "chunks_per_second": round(batches * chunks.shape[0] / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", type=Path, help="a small local model: run the CPU path on it")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--sequence-len", type=int, default=2048)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole run")
    parser.add_argument("--output", type=Path, default=RESULTS_JSON)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    clock = Clock(args.budget)
    installed = ensure_packages()
    import torch

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model = gpu_train.model_folder(args.tiny, scratch)
        report = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "model": "tiny (CPU path)" if args.tiny else "Llama-3.1-8B architecture, random weights",
            "installed_from_wheels": installed,
            "train": train(model, scratch, cuda, args.steps, args.sequence_len, clock),
            "decode": decode(model, cuda, args.new_tokens, clock),
            "embed": embed(cuda, args.tiny is not None, clock),
        }
    report["seconds"] = round(args.budget - clock.left(), 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    if args.tiny is None:
        _record(report)
    print(json.dumps(report, indent=1))


def _record(report: dict) -> None:
    from record import add_table_row

    runs = "; ".join(
        f"{run['variant']} {run['tokens_per_second']:.0f} tok/s, {run['peak_vram_gb']} GB, MFU {run['mfu']}"
        for run in report["train"]["runs"]
    )
    decoding = "; ".join(
        f"batch {row['batch']}: {row['tokens_per_second']:.0f} tok/s "
        f"({row['share_of_bandwidth_limit']} of the limit)"
        for row in report["decode"]["batches"]
    )
    row = (
        f"| {report['date'][:10]} | `python perf/gpu_check.py` | {report['device']} | {runs} | {decoding} | "
        f"{report['embed']['chunks_per_second']:.0f} chunks/s | {report['seconds']} s |"
    )
    add_table_row("| date | command | device | training | decoding | embedding | run |", row)


if __name__ == "__main__":
    main()
