"""Reading a lore note into its parts: front matter, title, and sections under their heading paths.

A section is the text under one heading, as blocks (paragraphs, list items, table rows, code), each block
already split into sentences, so the chunker can pack whole sentences and never cut one.
"""

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"[.!?…]+[\"”’')\]]*\s+")
_SENTENCE_START = re.compile(r"[\"“‘(\[]?[A-Z0-9]")
_ABBREVIATIONS = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "st",
        "no",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "capt",
        "lt",
        "cmdr",
        "gen",
        "col",
        "sgt",
        "prof",
        "jr",
        "sr",
        "mt",
        "ft",
        "approx",
        "fig",
        "adm",
        "maj",
        "cpl",
    ]
)


@dataclass(frozen=True)
class Block:
    """A paragraph, list item, table or code block, as the sentences it is made of."""

    sentences: tuple[str, ...]
    joiner: str = " "


@dataclass
class Section:
    """The blocks under one heading; `path` is the heading path from the document title down."""

    path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The section's prose as plain text, one block per paragraph."""
        return "\n\n".join(block.joiner.join(block.sentences) for block in self.blocks)


@dataclass
class Document:
    """A parsed lore note."""

    title: str
    front_matter: dict
    front_matter_error: str | None
    sections: list[Section]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at . ! ? followed by a capital, skipping abbreviations and initials."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if not _SENTENCE_START.match(text, match.end()):
            continue
        words = text[start : match.start() + 1].split()
        last_word = words[-1].rstrip(".").lower() if words else ""
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def parse_front_matter(text: str) -> tuple[dict, str | None, str]:
    """Split YAML front matter from the body: (fields, error or None, body). Broken YAML stays in the body."""
    if not text.startswith("---\n"):
        return {}, None, text
    end = re.search(r"^(?:---|\.\.\.)\s*$", text[4:], flags=re.MULTILINE)
    if end is None:
        return {}, "front matter has no closing '---'", text
    try:
        fields = yaml.safe_load(text[4 : 4 + end.start()]) or {}
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        return {}, f"front matter is not valid YAML ({reason})", text
    if not isinstance(fields, dict):
        return {}, "front matter is not a mapping of fields", text
    return fields, None, text[4 + end.end() :].lstrip("\n")


def title_from_path(relative_path: str) -> str:
    """A readable title from a file name: `characters/elena_voss.md` -> `Elena Voss`."""
    stem = PurePosixPath(relative_path).stem
    words = re.split(r"[_\-\s]+", stem)
    return " ".join(word[:1].upper() + word[1:] for word in words if word)


def parse_document(text: str, relative_path: str) -> Document:
    """Parse a Markdown or plain-text note into front matter, title and sections."""
    fields, error, body = parse_front_matter(text)
    raw_sections = _split_by_headings(body)
    opens_with_heading = len(raw_sections) > 1 and not "".join(raw_sections[0][1]).strip()
    first_heading = raw_sections[1][0][0] if opens_with_heading else None
    name = fields.get("name")
    title = str(name).strip() if isinstance(name, str | int) and str(name).strip() else None
    title = title or first_heading or title_from_path(relative_path)
    sections = []
    for path, lines in raw_sections:
        full_path = path if path and path[0] == title else (title, *path)
        blocks = _blocks(lines)
        if blocks:
            sections.append(Section(full_path, blocks))
    return Document(title, fields, error, sections)


def _split_by_headings(body: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Lines grouped under their heading path; headings inside code fences are not headings."""
    sections: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    stack: list[tuple[int, str]] = []
    in_fence = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is None:
            sections[-1][1].append(line)
            continue
        level, title = len(heading.group(1)), _plain(heading.group(2))
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        sections.append((tuple(name for _, name in stack), []))
    return sections


def _plain(heading: str) -> str:
    """A heading without Markdown emphasis or link syntax."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[*_`]+", "", heading).strip()


def _blocks(lines: list[str]) -> list[Block]:
    """Group a section's lines into blocks: paragraphs (split into sentences), lists, tables and code.

    List items and table rows are kept whole, one line each; code blocks are one unit.
    """
    blocks: list[Block] = []
    paragraph: list[str] = []
    rows: list[str] = []
    fence: list[str] | None = None

    def flush() -> None:
        if paragraph:
            blocks.append(Block(tuple(split_sentences(" ".join(paragraph)))))
            paragraph.clear()
        if rows:
            blocks.append(Block(tuple(rows), "\n"))
            rows.clear()

    for line in lines:
        stripped = line.strip()
        if fence is not None:
            fence.append(line)
            if _FENCE.match(line):
                blocks.append(Block(("\n".join(fence),), "\n"))
                fence = None
        elif _FENCE.match(line):
            flush()
            fence = [line]
        elif not stripped:
            flush()
        elif stripped.startswith("|") or _LIST_ITEM.match(line):
            if paragraph:
                flush()
            rows.append(stripped)
        elif rows and line[:1].isspace():
            rows[-1] += " " + stripped
        else:
            if rows:
                flush()
            paragraph.append(stripped)
    if fence is not None:
        blocks.append(Block(("\n".join(fence),), "\n"))
    flush()
    return blocks
