"""Check the shipped training configs with Axolotl's own validation (what `axolotl train` runs first).

Axolotl is heavy and optional, so this runs in its own environment, offline and without a GPU:

    python3 -m venv .axolotl-venv && .axolotl-venv/bin/pip install torch==2.13.0 axolotl==0.19.0
    .axolotl-venv/bin/python scripts/validate_axolotl_configs.py            # every configs/*.yaml
    .axolotl-venv/bin/python scripts/validate_axolotl_configs.py CONFIG...

The GPU-dependent checks are run as for one sm_90 card with bf16, tf32 and fp8 (an H100 class GPU; an
RTX 5090 has more). Axolotl drops keys it does not know without a word, so this also fails on any key
outside its schema. Exit status 1 if any config fails.
"""

import os
import sys
from pathlib import Path

for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "AXOLOTL_DO_NOT_TRACK"):
    os.environ.setdefault(name, "1")

import torch  # noqa: E402  (after the offline switches)
import yaml  # noqa: E402
from axolotl.cli.config import prepare_plugins  # noqa: E402
from axolotl.utils.config import merge_input_args, validate_config  # noqa: E402
from axolotl.utils.dict import DictDefault  # noqa: E402
from axolotl.utils.schemas.datasets import SFTDataset  # noqa: E402

GPU = {"bf16": True, "fp8": True, "tf32": True, "n_gpu": 1, "compute_capability": "sm_90"}


def field_names(model) -> set[str]:
    """The keys a pydantic model accepts (names and aliases)."""
    return {name for key, field in model.model_fields.items() for name in (key, field.alias) if name}


def unknown_keys(raw: dict) -> list[str]:
    """Keys of the config (and of its dataset entries) outside Axolotl's schema, plugins included."""
    top, dataset = field_names(merge_input_args()[0]), field_names(SFTDataset)
    found = [key for key in raw if key not in top]
    for section in ("datasets", "test_datasets"):
        for index, entry in enumerate(raw.get(section) or []):
            found += [f"{section}[{index}].{key}" for key in entry if key not in dataset]
    return found


def check(path: Path) -> str | None:
    """None when Axolotl accepts the config, else the reason."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    config = DictDefault(raw)
    config.axolotl_config_path = str(path)
    prepare_plugins(config)
    try:
        validate_config(
            config, capabilities=GPU, env_capabilities={"torch_version": torch.__version__.split("+")[0]}
        )
    except Exception as exc:  # Axolotl raises ValueError and pydantic errors alike
        return " ".join(line.strip() for line in str(exc).splitlines()[:3])
    unknown = unknown_keys(raw)
    return f"keys Axolotl would ignore: {', '.join(unknown)}" if unknown else None


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    paths = [Path(arg) for arg in sys.argv[1:]] or sorted((root / "configs").glob("*.yaml"))
    failed = 0
    for path in paths:
        problem = check(path)
        print(f"{path}: {'valid' if problem is None else 'INVALID: ' + problem}")
        failed += problem is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
