"""GPU facts for serving: known cards' profiles, and how long a context fits in the memory left.

The KV-cache arithmetic: every token of context keeps a key and a value vector per layer and per KV
head, so it costs layers x KV heads x head dim x 2 x bytes per element. Llama-3.1-8B in bf16:
32 x 8 x 128 x 2 x 2 = 128 KiB per token, so 10 GiB of cache hold about 80k tokens.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from scifi_llm.errors import UserError

_DTYPE_BYTES = {
    "auto": 2,
    "bfloat16": 2,
    "float16": 2,
    "half": 2,
    "float32": 4,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
}
# Memory vLLM needs beyond weights and KV cache (activations, CUDA graphs, sampler), by experience.
_RUNTIME_OVERHEAD_BYTES = 2 * 2**30


@dataclass(frozen=True)
class GpuProfile:
    """What a known card needs from vLLM: an attention backend, a floor on max-num-seqs, a ceiling on
    context."""

    name: str
    match: str
    attention_backend: str | None = None
    min_num_seqs: int = 1
    max_context: int | None = None


# From the writer's old plan: on the RTX 5090, vLLM needs FlashInfer, at least 9 sequences for warm-up,
# and context tops out at 100k tokens.
PROFILES = (GpuProfile("rtx5090", "5090", "FLASHINFER", min_num_seqs=9, max_context=100_000),)


@dataclass(frozen=True)
class Gpu:
    """A CUDA device as torch sees it."""

    index: int
    name: str
    free_bytes: int
    total_bytes: int


def detect_gpus() -> list[Gpu]:
    """The CUDA devices present, with their free memory; empty without CUDA."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        gpus.append(Gpu(index, torch.cuda.get_device_name(index), free, total))
    return gpus


def profile_for(gpu_name: str | None) -> GpuProfile | None:
    """The profile whose marker appears in the GPU's name, if any."""
    if not gpu_name:
        return None
    return next((profile for profile in PROFILES if profile.match.lower() in gpu_name.lower()), None)


@dataclass(frozen=True)
class ModelShape:
    """What the KV-cache and weight arithmetic needs from a model's config.json."""

    layers: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    max_positions: int
    tied_embeddings: bool

    @classmethod
    def from_config(cls, config: dict) -> "ModelShape":
        """Read a Hugging Face Llama-style config."""
        heads = config["num_attention_heads"]
        return cls(
            layers=config["num_hidden_layers"],
            kv_heads=config.get("num_key_value_heads", heads),
            head_dim=config.get("head_dim") or config["hidden_size"] // heads,
            hidden=config["hidden_size"],
            intermediate=config["intermediate_size"],
            vocab=config["vocab_size"],
            max_positions=config.get("max_position_embeddings", 8192),
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        )

    def kv_bytes_per_token(self, kv_cache_dtype: str = "auto") -> int:
        """Bytes of KV cache one token of context occupies."""
        return self.layers * self.kv_heads * self.head_dim * 2 * _DTYPE_BYTES.get(kv_cache_dtype, 2)

    def weight_bytes(self, bytes_per_parameter: int = 2) -> int:
        """Approximate size of the weights (attention, MLP, embeddings), in bf16 unless told."""
        q_heads_dim = self.hidden
        attention = self.hidden * q_heads_dim * 2 + 2 * self.hidden * self.kv_heads * self.head_dim
        mlp = 3 * self.hidden * self.intermediate
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return (self.layers * (attention + mlp) + embeddings) * bytes_per_parameter


def load_model_config(model: str) -> dict:
    """config.json of a local model folder or of a model in the Hugging Face cache (never downloads)."""
    folder = Path(model).expanduser()
    if (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except (ImportError, ValueError):
        cached = None
    if isinstance(cached, str) and Path(cached).is_file():
        return json.loads(Path(cached).read_text(encoding="utf-8"))
    raise UserError(
        f"cannot size the context: no config.json for {model} locally; download the model "
        f"(`scifi-llm models pull {model}`) or give --max-model-len N"
    )


@dataclass(frozen=True)
class ContextChoice:
    """The context length chosen for a GPU, and the arithmetic behind it, for people to read."""

    tokens: int
    reason: str


def auto_context(
    shape: ModelShape,
    free_bytes: int,
    gpu_memory_utilization: float,
    kv_cache_dtype: str = "auto",
    caps: dict[str, int | None] | None = None,
) -> ContextChoice:
    """The longest context (a multiple of 1,024) whose KV cache fits next to the weights, within the
    model's own limit and `caps` (each named for the reason shown: "GPU profile": 100_000)."""
    budget = int(free_bytes * gpu_memory_utilization) - shape.weight_bytes() - _RUNTIME_OVERHEAD_BYTES
    per_token = shape.kv_bytes_per_token(kv_cache_dtype)
    if budget < per_token * 1024:
        raise UserError(
            f"the model's weights ({shape.weight_bytes() / 2**30:.1f} GiB) leave no room for a KV cache in "
            f"{free_bytes * gpu_memory_utilization / 2**30:.1f} GiB: use a smaller or quantized model"
        )
    fits = budget // per_token // 1024 * 1024
    limits = {"KV cache": fits, "model": shape.max_positions}
    limits |= {name: value for name, value in (caps or {}).items() if value}
    chosen_by = min(limits, key=limits.get)
    tokens = limits[chosen_by]
    gib = 2**30
    reason = (
        f"{budget / gib:.1f} GiB for KV cache ({free_bytes / gib:.1f} GiB free x {gpu_memory_utilization}"
        f" - {shape.weight_bytes() / gib:.1f} GiB weights - {_RUNTIME_OVERHEAD_BYTES / gib:.0f} GiB runtime)"
        f" / {per_token // 1024} KiB per token = {fits:,} tokens; limited by the {chosen_by}: {tokens:,}"
    )
    return ContextChoice(tokens, reason)
