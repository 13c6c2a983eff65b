"""Reading the writer's prose folder as it is, and cleaning it down to the prose itself.

Files: `.txt`, `.md` and `.docx`, recursively. Text is decoded as UTF-8 (byte-order mark stripped), else
cp1252/Latin-1, said per file. Skipped with a reason: empty files, binaries (whatever their name),
unreadable `.docx`, other extensions. A file whose bytes repeat an earlier one is read once.

Cleaning removes what is not prose: YAML front matter, HTML comments, inline `[[...]]` notes, and lines
that are the author's notes (TODO, FIXME, NOTE TO SELF, plus patterns from settings). Headings and scene
breaks (`***`, `* * *`, `---`) become boundaries between scenes and never reach the training text. The
prose itself is kept as written; only whitespace is normalised (wrapped lines joined, runs of spaces
collapsed).
"""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from scifi_llm.fsutil import outside, outside_reason
from scifi_llm.text import parse_front_matter, split_sentences
from scifi_llm.textio import DEFAULT_NOTE_PATTERNS, NotText, read_text

WRITING_EXTENSIONS = (".txt", ".md", ".markdown", ".docx")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INLINE_NOTE = re.compile(r"\[\[.*?\]\]", re.DOTALL)
_SPACE_RUN = re.compile(r"[ \t]+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_SCENE_BREAK = re.compile(r"^\s*(?:\*\s*\*\s*\*[\s*]*|-{3,}|_{3,}|#)\s*$")


class Sentence(NamedTuple):
    """One sentence of a manuscript, with its scene and whether it begins a paragraph."""

    text: str
    scene: int
    starts_paragraph: bool


@dataclass
class Manuscript:
    """One file's prose: scenes, each a list of paragraphs."""

    source: str
    scenes: list[list[str]]
    modified: float = 0.0  # the file's modification time: of two near-duplicate drafts, the newer stays

    @cached_property
    def paragraphs(self) -> list[list[Sentence]]:
        """Every paragraph as its sentences, split once and shared by the style profile, the prompts and
        the chunker."""
        return [
            [
                Sentence(sentence, scene_index, position == 0)
                for position, sentence in enumerate(split_sentences(paragraph))
            ]
            for scene_index, scene in enumerate(self.scenes)
            for paragraph in scene
        ]

    @cached_property
    def sentences(self) -> list[Sentence]:
        """Every sentence in order."""
        return [sentence for paragraph in self.paragraphs for sentence in paragraph]


@dataclass
class ReadReport:
    """What reading the folder found, and everything it set aside with the reason."""

    files_read: int = 0
    decoded_with_fallback: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    note_lines_removed: int = 0


def read_writing(
    folder: Path, note_patterns: tuple[str, ...] = DEFAULT_NOTE_PATTERNS, outside_folders: Sequence[Path] = ()
) -> tuple[list[Manuscript], ReadReport]:
    """Every prose file under `folder`, cleaned, in path order; a symlink that leads out of the folder
    (except into `outside_folders`) is skipped and said so."""
    notes = re.compile("|".join(f"(?:{pattern})" for pattern in note_patterns), re.IGNORECASE | re.MULTILINE)
    report = ReadReport()
    manuscripts: list[Manuscript] = []
    seen: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        source = path.relative_to(folder).as_posix()
        target = outside(path, [folder, *outside_folders])
        if target is not None:
            report.skipped.append((source, outside_reason(target)))
            continue
        text = _read(path, source, seen, report)
        if text is None:
            continue
        scenes = clean(text, notes, report)
        if not any(scenes):
            report.skipped.append((source, "no prose left after removing notes"))
            continue
        report.files_read += 1
        manuscripts.append(Manuscript(source, scenes, path.stat().st_mtime))
    return manuscripts, report


def _read(path: Path, source: str, seen: dict[str, str], report: ReadReport) -> str | None:
    """The file's text, or None with the reason recorded."""
    if path.suffix.lower() not in WRITING_EXTENSIONS:
        report.skipped.append((source, f"unsupported extension {path.suffix or '(none)'}"))
        return None
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest in seen:
        report.duplicates.append((source, seen[digest]))
        return None
    seen[digest] = source
    if path.suffix.lower() == ".docx":
        return _read_docx(path, source, report)
    try:
        decoded = read_text(path)
    except NotText:
        report.skipped.append((source, "binary file, not text"))
        return None
    if decoded.used_fallback:
        report.decoded_with_fallback.append((source, decoded.encoding))
    if not decoded.text.strip():
        report.skipped.append((source, "empty file"))
        return None
    return decoded.text


def _read_docx(path: Path, source: str, report: ReadReport) -> str | None:
    """A .docx as Markdown-ish text: headings become `#` lines, paragraphs are separated by blank lines."""
    from docx import Document

    try:
        document = Document(str(path))
    except Exception as exc:  # python-docx raises several types for a damaged or fake file
        report.skipped.append((source, f"unreadable .docx ({type(exc).__name__}: {exc})"[:200]))
        return None
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        prefix = "# " if style.lower().startswith(("heading", "title")) else ""
        lines.append(prefix + paragraph.text)
    text = "\n\n".join(lines)
    if not text.strip():
        report.skipped.append((source, "empty file"))
        return None
    return text


def clean(text: str, notes: re.Pattern, report: ReadReport) -> list[list[str]]:
    """Prose scenes (lists of paragraphs) with front matter, comments, inline notes and note lines removed."""
    _, _, body = parse_front_matter(text)
    body = _INLINE_NOTE.sub("", _HTML_COMMENT.sub("", body))
    scenes: list[list[str]] = [[]]
    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            joined = " ".join(paragraph)
            if "  " in joined or "\t" in joined:
                joined = _SPACE_RUN.sub(" ", joined)
            scenes[-1].append(joined)
            paragraph.clear()

    for line in body.split("\n"):
        if notes.search(line):
            report.note_lines_removed += 1
            continue
        if _HEADING.match(line) or _SCENE_BREAK.match(line):
            end_paragraph()
            if scenes[-1]:
                scenes.append([])
        elif not line.strip():
            end_paragraph()
        else:
            paragraph.append(line.strip())
    end_paragraph()
    return [scene for scene in scenes if scene]
