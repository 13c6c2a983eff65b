"""Where benchmark results go: `results/<time>/`, one JSON per benchmark plus plots, with the run's
environment (model, engine, GPU, package versions) recorded so runs can be compared over time."""

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from scifi_llm.fsutil import atomic_write_text

PACKAGES = ("scifi-llm", "torch", "transformers", "vllm", "lancedb", "sentence-transformers")


def new_run_folder(results_dir: Path) -> Path:
    """A fresh `results/<time>/` folder (a suffix keeps two runs in the same second apart)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder, suffix = results_dir / stamp, 1
    while folder.exists():
        suffix += 1
        folder = results_dir / f"{stamp}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def environment(endpoint: dict, settings: dict) -> dict:
    """What the numbers depend on: the endpoint's model and engine, the settings, the GPU, versions."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "endpoint": endpoint,
        "settings": settings,
        "gpu": _gpu(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def write_result(folder: Path, name: str, result: dict) -> Path:
    """`<folder>/<name>.json`, written atomically."""
    path = folder / f"{name}.json"
    atomic_write_text(path, json.dumps(result, indent=1, ensure_ascii=False, default=str) + "\n")
    return path


def _gpu() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
