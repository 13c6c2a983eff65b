"""Files that are safe to trust: atomic writes, exclusive locks, and paths that stay inside their folder.

A crash never leaves a half-written file that looks complete; two runs never write one output at once;
a symlink never smuggles a file from elsewhere on the disk into the lore or the training data.
"""

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from scifi_llm.errors import UserError


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(final: Path, staging: Path | None = None, replace: bool = False) -> Iterator[Path]:
    """A folder built in a hidden staging folder beside `final` (`.<name>.partial` unless named) and renamed
    to `final` only when the block ends without an error, so a crash never leaves a half-built folder that
    looks complete. A staging folder left by a killed run is removed first; with `replace`, so is `final`
    once the new one is complete."""
    staging = staging or final.parent / f".{final.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if replace:
        shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)


@contextmanager
def exclusive_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Hold `lock_file` exclusively for the block, or fail at once with one line naming the holder's pid.

    The lock is the kernel's (flock): it goes with the process, so a killed run never leaves it behind.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UserError(f"another {what} is running (pid {holder}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def outside(path: Path, folders: Sequence[Path]) -> Path | None:
    """Where `path` really leads, when a symlink takes it outside every one of `folders`; else None."""
    target = path.resolve()
    if any(target.is_relative_to(folder.resolve()) for folder in folders):
        return None
    return target


def outside_reason(target: Path) -> str:
    """Why a file that links out of its folder was skipped, and how to allow it."""
    return f"links to {target}, outside the folder (allow that folder in lore.outside_folders)"
