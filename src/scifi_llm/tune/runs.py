"""What a training run's folder holds, and how a writer names a checkpoint in it.

`checkpoints/<run>/` holds `checkpoint-N/` folders (the newest few, and the best by validation loss,
which rotation keeps), the final `adapter/`, and `best.json` naming the best checkpoint. `RUN:best` and
`RUN:last` name those two wherever an adapter is asked for (`tune merge`, `serve --lora`, `tune compare`).
"""

import json
from pathlib import Path

from scifi_llm.errors import UserError

ADAPTER_FOLDER = "adapter"
BEST_NAME = "best.json"


def checkpoint_path(spec: str, root: Path) -> Path:
    """The folder a `RUN:best` or `RUN:last` spec names (RUN: a run folder, or a run's name under
    checkpoints/); any other spec is a path as it is."""
    run, sep, which = spec.rpartition(":")
    if not sep or which not in ("best", "last") or not run:
        return Path(spec)
    run_dir = next(
        (path for path in (Path(run), root / run, root / "checkpoints" / run) if path.is_dir()), None
    )
    if run_dir is None:
        raise UserError(f"{spec}: no run folder {run} (here, or under {root / 'checkpoints'})")
    if which == "last":
        return run_dir / ADAPTER_FOLDER
    try:
        best = json.loads((run_dir / BEST_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{spec}: {run_dir / BEST_NAME} is missing: the run kept no best checkpoint (it had no "
            "validation data, or was trained by an older scifi-llm)"
        ) from exc
    return run_dir / best["checkpoint"]
