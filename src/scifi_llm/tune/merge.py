"""`tune merge`: fold a LoRA adapter into its base model, shard by shard, into a folder vLLM can serve.

PEFT's `merge_and_unload` loads the whole base (16 GB for an 8B model in bf16). Here the base's
safetensors shards are streamed tensor by tensor (`shardio`): every targeted weight gets `scale * B @ A`
added in float32 and is cast to the output dtype, and is written out before the next is read, so the
peak is about the largest single tensor. The output
is built in a hidden folder of its own beside the target, checked against the weight index, and renamed
into place at the end, so a crash never leaves a folder that looks complete. One merge at a time writes
to an output (a lock beside it); a later run removes what a killed one left behind, and says so.
"""

import json
import math
import os
import re
import shutil
import stat
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_dir, atomic_write_text, exclusive_lock
from scifi_llm.models import require
from scifi_llm.tune.shardio import iter_tensors, read_specs, write_streamed

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
_WEIGHT_INDEX = "model.safetensors.index.json"
_SERVING_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "tokenizer.model",
)
# Adapter features whose weights are not a plain `scale * B @ A` on a linear layer.
_UNSUPPORTED = {
    "use_dora": "DoRA rescales each weight's norm",
    "modules_to_save": "it replaces whole modules",
    "lora_bias": "it trains biases",
    "layer_replication": "it duplicates layers",
    "trainable_token_indices": "it trains embedding rows",
    "use_qalora": "QA-LoRA pools the input",
    "target_parameters": "it targets raw parameters",
}
Progress = Callable[[int, int], None]  # (shards done, shards in all)


@dataclass
class MergeReport:
    """What the merge did."""

    output: str
    base: str
    shards: int
    merged_weights: int
    scale: float
    dtype: str
    seconds: float
    verify_max_abs_diff: float | None = None
    verified_tensors: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class _Delta:
    """One targeted weight's low-rank update."""

    a: torch.Tensor
    b: torch.Tensor
    scale: float
    transpose: bool

    def apply(self, weight: torch.Tensor) -> torch.Tensor:
        """`weight + scale * B @ A` in float32, computed in place on the one float32 copy."""
        first, second = (self.a.T, self.b.T) if self.transpose else (self.b, self.a)
        return weight.float().addmm_(first.float(), second.float(), alpha=self.scale)


def merge_adapter(
    adapter_dir: Path,
    output: Path,
    base: str | None = None,
    dtype: str = "bf16",
    progress: Progress | None = None,
) -> MergeReport:
    """Merge the adapter into the base (the adapter's own base unless `base` names another)."""
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: choose one of {', '.join(DTYPES)}")
    settings = _adapter_settings(adapter_dir)
    base_dir = require(base or _named_base(settings, adapter_dir), "base model")
    deltas = _deltas(adapter_dir, settings)
    output.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(output.parent / f".{output.name}.lock", f"tune merge into {output}"):
        if output.exists():
            raise UserError(f"{output} already exists: remove it or choose another --output")
        notes = _remove_leftovers(output)
        started = time.monotonic()
        with atomic_dir(output, output.parent / f".{output.name}.partial-{uuid.uuid4().hex[:8]}") as staging:
            shards = _merge_shards(base_dir, staging, deltas, DTYPES[dtype], progress)
            _copy_serving_files(base_dir, staging, dtype)
            _check_complete(staging, shards)
            _match_modes(staging, base_dir)
    return MergeReport(
        output=str(output),
        base=str(base_dir),
        shards=shards,
        merged_weights=len(deltas),
        scale=_scale(settings, _rank(settings, deltas)),
        dtype=dtype,
        seconds=round(time.monotonic() - started, 2),
        notes=notes,
    )


def _remove_leftovers(output: Path) -> list[str]:
    """Delete the staging folders of merges into `output` that were killed (none runs: the lock is ours)."""
    notes = []
    for leftover in sorted(output.parent.glob(f".{output.name}.partial*")):
        size = sum(path.stat().st_size for path in leftover.rglob("*") if path.is_file())
        shutil.rmtree(leftover, ignore_errors=True)
        notes.append(f"removed {leftover.name}, left by an interrupted merge ({size / 2**20:.0f} MB)")
    return notes


def _check_complete(staging: Path, shards: int) -> None:
    """Every shard the weight index names is there, and as many as were written: else no rename."""
    index = staging / _WEIGHT_INDEX
    expected = {"model.safetensors"}
    if index.is_file():
        expected = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    found = {path.name for path in staging.glob("*.safetensors") if path.stat().st_size > 0}
    if len(found) != shards or found != expected:
        odd = sorted(expected ^ found)[0]
        raise UserError(f"the merged model is incomplete ({len(found)} of {shards} shards, {odd}): re-run")


def _match_modes(staging: Path, base_dir: Path) -> None:
    """Give every output file the permissions of the base model's files (temp files start out 0600)."""
    mode = stat.S_IMODE(os.stat(base_dir / "config.json").st_mode)
    for path in staging.iterdir():
        path.chmod(mode)


def _adapter_settings(adapter_dir: Path) -> dict:
    path = adapter_dir / "adapter_config.json"
    if not adapter_dir.is_dir():
        raise UserError(f"adapter folder {adapter_dir} does not exist")
    if not path.is_file():
        raise UserError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(settings, dict) or not isinstance(settings.get("lora_alpha"), int | float):
        raise UserError(f"{path}: no lora_alpha; is this a PEFT LoRA adapter?")
    if settings.get("peft_type", "LORA") != "LORA":
        raise UserError(f"{path}: peft_type {settings.get('peft_type')} cannot be merged, only LORA")
    for key, reason in _UNSUPPORTED.items():
        if settings.get(key):
            raise UserError(f"{path}: {key} is set and cannot be merged shard by shard ({reason})")
    return settings


def _named_base(settings: dict, adapter_dir: Path) -> str:
    name = settings.get("base_model_name_or_path")
    if not name:
        raise UserError(f"{adapter_dir}/adapter_config.json names no base model: pass --base")
    return name


def _deltas(adapter_dir: Path, settings: dict) -> dict[str, _Delta]:
    """The update of each targeted base weight, by the weight's name in the base checkpoint."""
    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise UserError(f"{adapter_dir} has no adapter_model.safetensors")
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    with safe_open(str(path), framework="pt") as weights:
        for key in weights.keys():  # noqa: SIM118 (safe_open is not a dict)
            match = re.fullmatch(r"(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.default)?\.weight", key)
            if match is None:
                raise UserError(f"{path}: {key} is not a LoRA A/B weight of a linear layer; cannot merge it")
            pairs.setdefault(match[1], {})[match[2]] = weights.get_tensor(key)
    deltas = {}
    for module, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise UserError(f"{path}: {module} has only lora_{''.join(pair)}")
        rank = pair["A"].shape[0]
        scale = _scale(settings, rank, module)
        deltas[f"{module}.weight"] = _Delta(pair["A"], pair["B"], scale, bool(settings.get("fan_in_fan_out")))
    return deltas


def _scale(settings: dict, rank: int, module: str = "") -> float:
    """alpha / r, or alpha / sqrt(r) with rsLoRA; per-module alpha from alpha_pattern where it matches."""
    alpha = settings["lora_alpha"]
    for pattern, value in (settings.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(.*\.)?{pattern}", module):
            alpha = value
    return alpha / (math.sqrt(rank) if settings.get("use_rslora") else rank)


def _rank(settings: dict, deltas: dict[str, _Delta]) -> int:
    return next(iter(deltas.values())).a.shape[0] if deltas else settings["r"]


def _shard_names(base_dir: Path) -> list[str]:
    index = base_dir / _WEIGHT_INDEX
    if index.is_file():
        return sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    if (base_dir / "model.safetensors").is_file():
        return ["model.safetensors"]
    raise UserError(f"{base_dir} has no safetensors weights (model.safetensors or {_WEIGHT_INDEX})")


def _merge_shards(
    base_dir: Path, staging: Path, deltas: dict[str, _Delta], dtype: torch.dtype, progress: Progress | None
) -> int:
    """Merge and write each shard in turn; every adapter weight must find its base weight."""
    names = _shard_names(base_dir)
    weight_map: dict[str, str] = {}
    total_size = 0
    applied: set[str] = set()
    for done, name in enumerate(names):
        specs, _ = read_specs(base_dir / name)
        layout = [
            (spec.name, dtype if spec.dtype.is_floating_point else spec.dtype, spec.shape) for spec in specs
        ]
        write_streamed(staging / name, layout, _merged_tensors(base_dir / name, deltas, dtype, applied))
        weight_map |= {spec_name: name for spec_name, _, _ in layout}
        total_size += sum(
            math.prod(shape) * torch.empty(0, dtype=kind).element_size() for _, kind, shape in layout
        )
        if progress is not None:
            progress(done + 1, len(names))
    missing = sorted(set(deltas) - applied)
    if missing:
        raise UserError(
            f"the adapter targets weights the base does not have (e.g. {missing[0]}): wrong --base?"
        )
    if len(names) > 1:
        index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
        atomic_write_text(staging / _WEIGHT_INDEX, json.dumps(index, indent=2) + "\n")
    return len(names)


def _merged_tensors(
    path: Path, deltas: dict[str, _Delta], dtype: torch.dtype, applied: set[str]
) -> Iterator[torch.Tensor]:
    """A shard's tensors one at a time, with their updates added (in float32) and cast to `dtype`."""
    for spec, tensor in iter_tensors(path):
        if spec.name in deltas:
            tensor = deltas[spec.name].apply(tensor)
            applied.add(spec.name)
        yield tensor.to(dtype) if tensor.is_floating_point() else tensor


def _copy_serving_files(base_dir: Path, staging: Path, dtype: str) -> None:
    """Config, generation config, tokenizer and chat template; config.json says the new dtype."""
    for name in _SERVING_FILES:
        if (base_dir / name).is_file():
            shutil.copy2(base_dir / name, staging / name)
    config = json.loads((staging / "config.json").read_text(encoding="utf-8"))
    torch_name = str(DTYPES[dtype]).removeprefix("torch.")
    config["dtype" if "dtype" in config else "torch_dtype"] = torch_name
    atomic_write_text(staging / "config.json", json.dumps(config, indent=2) + "\n")


def verify_merge(
    adapter_dir: Path, merged_dir: Path, base: str | None = None, sample: int = 8
) -> tuple[float, int]:
    """Compare a sample of merged weights with PEFT's own `merge_and_unload` (which loads the whole base):
    the largest absolute difference, and how many weights were compared."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    settings = _adapter_settings(adapter_dir)
    base_dir = require(base or _named_base(settings, adapter_dir), "base model")
    with warnings.catch_warnings():  # PEFT's deprecation notices are not the writer's concern
        warnings.simplefilter("ignore", FutureWarning)
        reference = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        reference = PeftModel.from_pretrained(reference, str(adapter_dir)).merge_and_unload()
    expected = reference.state_dict()
    names = sorted(_deltas(adapter_dir, settings))
    chosen = names[:: max(1, len(names) // sample)][:sample]
    worst = 0.0
    for name in chosen:
        merged = _read_tensor(merged_dir, name).float()
        worst = max(worst, (merged - expected[name].float()).abs().max().item())
    return worst, len(chosen)


def _read_tensor(model_dir: Path, name: str) -> torch.Tensor:
    for shard in _shard_names(model_dir):
        with safe_open(str(model_dir / shard), framework="pt") as weights:
            if name in weights.keys():  # noqa: SIM118 (safe_open is not a dict)
                return weights.get_tensor(name)
    raise KeyError(name)
