"""The command lines that start a model server: vLLM on a CUDA GPU, `transformers serve` anywhere.

Both speak the OpenAI API on http://127.0.0.1:PORT/v1. Builders only build: nothing here starts a
process, so `serve --dry-run` shows exactly what would run.
"""

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scifi_llm.config import server_url
from scifi_llm.errors import UserError
from scifi_llm.serving.gpu import Gpu, GpuProfile, ModelShape, auto_context, load_model_config, profile_for
from scifi_llm.serving.vllm_cli import VllmCli, attention_backend, installed_vllm

Engine = Literal["auto", "vllm", "transformers"]
# vLLM's --max-lora-rank accepts these values only.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class LoraAdapter:
    """A PEFT LoRA adapter folder to serve under a name."""

    name: str
    path: Path
    rank: int


@dataclass(frozen=True)
class ServeOptions:
    """What the writer asked `serve` for."""

    model: str
    engine: Engine = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int | Literal["auto"] | None = None
    auto_cap: int | None = 65536  # the most `auto` chooses (ServeSettings.auto_max_model_len)
    max_num_seqs: int | None = None
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: str = "auto"
    tensor_parallel_size: int = 1
    loras: tuple[LoraAdapter, ...] = ()
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineCommand:
    """A server to start: argv, the environment it adds, where it will answer, and why it looks so."""

    engine: str
    argv: list[str]
    env: dict[str, str]
    base_url: str
    health_url: str
    notes: list[str] = field(default_factory=list)


def vllm_available() -> bool:
    """True when vLLM is installed."""
    return importlib.util.find_spec("vllm") is not None


def choose_engine(requested: Engine, gpus: list[Gpu]) -> str:
    """`auto` means vLLM when it is installed and a CUDA GPU is present, else transformers serve."""
    if requested != "auto":
        return requested
    return "vllm" if gpus and vllm_available() else "transformers"


def read_lora(spec: str) -> LoraAdapter:
    """Parse NAME=PATH and check that vLLM can load the adapter; the rank comes from its config."""
    name, sep, path_text = spec.partition("=")
    if not sep or not name or not path_text:
        raise UserError(
            f"--lora {spec!r}: write it as NAME=PATH, e.g. my-style=checkpoints/run-1/checkpoint-500"
        )
    path = Path(path_text).expanduser().resolve()
    config_path = path / "adapter_config.json"
    if not config_path.is_file():
        raise UserError(f"--lora {name}: {config_path} not found; point at a PEFT adapter folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--lora {name}: {config_path} is not valid JSON ({exc})") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise UserError(
            f"--lora {name}: {config_path}: peft_type {config['peft_type']}, vLLM serves LORA only"
        )
    if config.get("modules_to_save"):
        raise UserError(
            f"--lora {name}: the adapter trains whole modules ({', '.join(config['modules_to_save'])}), "
            "which vLLM cannot load as a LoRA; merge it instead: scifi-llm tune merge"
        )
    rank = config.get("r")
    if not isinstance(rank, int) or rank < 1:
        raise UserError(
            f"--lora {name}: {config_path}: field r (the LoRA rank) is missing or not a positive integer"
        )
    return LoraAdapter(name, path, rank)


def vllm_lora_rank(adapters: tuple[LoraAdapter, ...]) -> int:
    """The smallest rank vLLM accepts that covers every adapter."""
    needed = max(adapter.rank for adapter in adapters)
    for rank in VLLM_LORA_RANKS:
        if rank >= needed:
            return rank
    raise UserError(f"LoRA rank {needed} is above vLLM's largest, {VLLM_LORA_RANKS[-1]}")


def vllm_command(options: ServeOptions, gpu: Gpu | None, cli: VllmCli | None = None) -> EngineCommand:
    """`vllm serve` with the GPU's profile applied and, on request, the context sized to free memory;
    settings take the form the installed vLLM (`cli`, asked when not given) accepts."""
    profile = profile_for(gpu.name if gpu else None)
    notes: list[str] = [f"GPU profile {profile.name}" if profile else "no GPU profile applies"]
    argv = [_executable("vllm"), "serve", options.model, "--host", options.host, "--port", str(options.port)]
    argv += ["--gpu-memory-utilization", str(options.gpu_memory_utilization)]
    max_len = _max_model_len(options, gpu, profile, notes)
    if max_len:
        argv += ["--max-model-len", str(max_len)]
    num_seqs = options.max_num_seqs
    if profile and (num_seqs or 0) < profile.min_num_seqs:
        notes.append(f"max-num-seqs raised to {profile.min_num_seqs} ({profile.name} needs it for warm-up)")
        num_seqs = profile.min_num_seqs
    if num_seqs:
        argv += ["--max-num-seqs", str(num_seqs)]
    if options.kv_cache_dtype != "auto":
        argv += ["--kv-cache-dtype", options.kv_cache_dtype]
    if options.tensor_parallel_size > 1:
        argv += ["--tensor-parallel-size", str(options.tensor_parallel_size)]
    if options.loras:
        modules = [f"{adapter.name}={adapter.path}" for adapter in options.loras]
        argv += [
            "--enable-lora",
            "--max-lora-rank",
            str(vllm_lora_rank(options.loras)),
            "--lora-modules",
            *modules,
        ]
    env = {}
    if profile and profile.attention_backend:
        form = attention_backend(profile.attention_backend, cli or installed_vllm())
        argv += list(form.argv)
        env |= form.env
        notes.append(f"attention backend: {form.reason}")
    argv += list(options.extra_args)
    return _command("vllm", argv, env, options, notes)


def _max_model_len(
    options: ServeOptions, gpu: Gpu | None, profile: GpuProfile | None, notes: list[str]
) -> int | None:
    cap = profile.max_context if profile else None
    if options.max_model_len == "auto":
        if gpu is None:
            raise UserError("--max-model-len auto needs a CUDA GPU to measure; give a number instead")
        shape = ModelShape.from_config(load_model_config(options.model))
        per_gpu_free = gpu.free_bytes * options.tensor_parallel_size
        caps = {"GPU profile": cap, "setting serve.auto_max_model_len": options.auto_cap}
        choice = auto_context(
            shape, per_gpu_free, options.gpu_memory_utilization, options.kv_cache_dtype, caps
        )
        notes.append(f"max-model-len {choice.tokens}: {choice.reason}")
        return choice.tokens
    if cap and options.max_model_len and options.max_model_len > cap:
        notes.append(f"max-model-len lowered from {options.max_model_len} to {cap} ({profile.name} limit)")
        return cap
    return options.max_model_len


def transformers_command(options: ServeOptions) -> EngineCommand:
    """`transformers serve` with the model preloaded: pure Python, any Hugging Face model folder."""
    notes = []
    asked = {
        "--max-model-len": isinstance(options.max_model_len, int),
        "--max-num-seqs": options.max_num_seqs is not None,
        "--tensor-parallel-size": options.tensor_parallel_size > 1,
        "--kv-cache-dtype": options.kv_cache_dtype != "auto",
    }
    ignored = [flag for flag, given in asked.items() if given]
    if ignored:
        notes.append(f"transformers serve ignores {', '.join(ignored)}")
    if options.loras:
        raise UserError(
            "--lora needs vLLM; with transformers serve, merge the adapter and serve the merged model"
        )
    argv = [
        _executable("transformers"),
        "serve",
        options.model,
        "--host",
        options.host,
        "--port",
        str(options.port),
    ]
    argv += list(options.extra_args)
    return _command("transformers", argv, {}, options, notes)


def build_command(options: ServeOptions, gpus: list[Gpu]) -> EngineCommand:
    """The command for the engine `options.engine` resolves to on this machine."""
    engine = choose_engine(options.engine, gpus)
    if engine == "vllm":
        return vllm_command(options, gpus[0] if gpus else None)
    return transformers_command(options)


def _executable(name: str) -> str:
    """The engine's console script next to this Python, else on PATH, else the bare name."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _command(
    engine: str, argv: list[str], env: dict, options: ServeOptions, notes: list[str]
) -> EngineCommand:
    base = server_url(options.host, options.port)
    return EngineCommand(engine, argv, env, f"{base}/v1", f"{base}/health", notes)
