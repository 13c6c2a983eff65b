"""The writer's files for the desk: Markdown files in one folder (the drafts in writing/, the notes in
lore/), saved atomically, every save versioned.

A file is named by its path inside the folder (`chapter-03.md`, `part-1/arrival.md`). A name that leads
out of the folder (`..`, an absolute path, a link to elsewhere) is refused. Each save keeps the text it
replaces as a version in `<state>/versions/<name>/`, so any earlier text can be restored; a restore is a
save too, so it can itself be undone.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_write_text, outside
from scifi_llm.text import words_in

DRAFT_SUFFIXES = (".md", ".markdown", ".txt")
KEPT_VERSIONS = 200  # per draft; the oldest go first
_STAMP = "%Y%m%dT%H%M%S%fZ"


@dataclass(frozen=True)
class Draft:
    """A draft as the desk lists it."""

    name: str
    words: int
    modified: float


class Drafts:
    """The drafts (or notes) in `folder`, with their versions kept in `versions_dir`."""

    def __init__(self, folder: Path, versions_dir: Path) -> None:
        self.folder, self.versions_dir = folder, versions_dir

    def all(self) -> list[Draft]:
        """Every draft, by name."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.rglob("*")):
            if path.suffix.lower() in DRAFT_SUFFIXES and path.is_file() and not outside(path, [self.folder]):
                text = path.read_text(encoding="utf-8", errors="replace")
                name = path.relative_to(self.folder).as_posix()
                found.append(Draft(name, len(words_in(text)), path.stat().st_mtime))
        return found

    def read(self, name: str) -> str:
        """A draft's text."""
        path = self._path(name)
        if not path.is_file():
            raise UserError(f"no draft {name}")
        return path.read_text(encoding="utf-8", errors="replace")

    def save(self, name: str, text: str) -> bool:
        """Write a draft (creating it, and its folders); the text it replaces becomes a version. False when
        the text was already the same (nothing written)."""
        path = self._path(name)
        if path.is_file():
            before = path.read_text(encoding="utf-8", errors="replace")
            if before == text:
                return False
            self._keep_version(name, before)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        return True

    def rename(self, name: str, new_name: str) -> None:
        """Give a draft a new name; its versions follow it."""
        path, target = self._path(name), self._path(new_name)
        if not path.is_file():
            raise UserError(f"no draft {name}")
        if target.exists():
            raise UserError(f"{new_name} already exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
        versions = self.versions_dir / name
        if versions.is_dir():
            (self.versions_dir / new_name).parent.mkdir(parents=True, exist_ok=True)
            versions.rename(self.versions_dir / new_name)

    def versions(self, name: str) -> list[dict]:
        """A draft's kept versions, newest first: their id (the time saved over) and word count."""
        folder = self.versions_dir / self._checked(name)
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.glob("*.md"), reverse=True):
            when = datetime.strptime(path.stem, _STAMP).replace(tzinfo=UTC)
            text = path.read_text(encoding="utf-8")
            found.append(
                {"id": path.stem, "saved": when.isoformat(timespec="seconds"), "words": len(words_in(text))}
            )
        return found

    def restore(self, name: str, version: str) -> str:
        """Put a kept version back as the draft (the text it replaces is kept too); returns the text."""
        if not re.fullmatch(r"\d{8}T\d{12}Z", version):
            raise UserError(f"no version {version} of {name}")
        path = self.versions_dir / self._checked(name) / f"{version}.md"
        if not path.is_file():
            raise UserError(f"no version {version} of {name}")
        text = path.read_text(encoding="utf-8")
        self.save(name, text)
        return text

    def _keep_version(self, name: str, text: str) -> None:
        folder = self.versions_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / f"{datetime.now(UTC).strftime(_STAMP)}.md", text)
        for old in sorted(folder.glob("*.md"))[:-KEPT_VERSIONS]:
            old.unlink()

    def _path(self, name: str) -> Path:
        path = self.folder / self._checked(name)
        if outside(path, [self.folder]):
            raise UserError(f"{name} leads out of {self.folder.name}/")
        return path

    @staticmethod
    def _checked(name: str) -> str:
        """A draft name as given, if it is one: a relative path inside the folder with a text suffix."""
        pure = PurePosixPath(name)
        if (
            not name
            or pure.is_absolute()
            or "\\" in name
            or any(part in ("", ".", "..") or part.startswith(".") for part in pure.parts)
            or pure.suffix.lower() not in DRAFT_SUFFIXES
        ):
            raise UserError(f"{name!r} is not a draft name: a path inside the folder ending in .md or .txt")
        return pure.as_posix()
