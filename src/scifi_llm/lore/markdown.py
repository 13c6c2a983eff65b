"""Reading a lore note into its parts: front matter, title, and sections under their heading paths.

A section is the text under one heading, as blocks (paragraphs, list items, table rows, code), each block
already split into sentences, so the chunker can pack whole sentences and never cut one.

Obsidian's syntax is read as Obsidian shows it: `[[Note|shown text]]` becomes the shown text (followed by
the note's name in brackets when the shown text does not say it, so a nickname keeps its owner), the link
targets are kept with their block for the retriever's second hop, `%% comments %%` and HTML comments are
dropped, and callout and quote markers are removed from the text they mark.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from scifi_llm.text import parse_front_matter, split_sentences
from scifi_llm.textio import DEFAULT_NOTE_PATTERNS

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}")
_WIKILINK = re.compile(r"(!?)\[\[([^\[\]|\n]*)(?:\|([^\[\]\n]*))?\]\]")
_COMMENT = re.compile(r"%%.*?%%|<!--.*?-->", re.DOTALL)
_NOTE_TO_SELF = re.compile("|".join(DEFAULT_NOTE_PATTERNS), re.IGNORECASE)
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_CALLOUT = re.compile(r"^\s{0,3}>\s?\[![\w-]+\][+-]?\s*")
_NOT_A_NOTE = re.compile(r"\.(?!md$|markdown$|txt$)\w+$", re.IGNORECASE)
_NOTE_SUFFIX = re.compile(r"\.(?:md|markdown|txt)$", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """A paragraph, list, table or code block, as the sentences (or items, rows) it is made of."""

    sentences: tuple[str, ...]
    joiner: str = " "
    kind: str = "paragraph"  # paragraph, list, table or code
    links: tuple[str, ...] = ()  # the notes its wikilinks point to, as written, without `#heading`

    @property
    def table_header(self) -> tuple[str, ...]:
        """A table's header row and its `|---|` line: what a reader needs to read any later row."""
        if self.kind != "table":
            return ()
        if len(self.sentences) > 1 and _TABLE_RULE.match(self.sentences[1]):
            return self.sentences[:2]
        return self.sentences[:1]


@dataclass
class Section:
    """The blocks under one heading; `path` is the heading path from the document title down.

    `levels` holds each path element's Markdown heading level, 0 for a title that was not a heading
    in the note (one taken from front matter or the file name).
    """

    path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)
    levels: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        """The section's prose as plain text, one block per paragraph."""
        return "\n\n".join(block.joiner.join(block.sentences) for block in self.blocks)


@dataclass
class Document:
    """A parsed lore note; `links` pairs each wikilink's note with its label ("" when none)."""

    title: str
    front_matter: dict
    front_matter_error: str | None
    sections: list[Section]
    links: list[tuple[str, str]] = field(default_factory=list)


def title_from_path(relative_path: str) -> str:
    """A readable title from a file name: `characters/elena_voss.md` -> `Elena Voss`."""
    stem = PurePosixPath(relative_path).stem
    words = re.split(r"[_\-\s]+", stem)
    return " ".join(word[:1].upper() + word[1:] for word in words if word)


def parse_document(text: str, relative_path: str, title: str | None = None) -> Document:
    """Parse a Markdown or plain-text note into front matter, title and sections (`title`, when given,
    is the note's title: for a later piece of a long note, see `note_pieces`)."""
    fields, error, body = parse_front_matter(text)
    raw_sections = _split_by_headings(_COMMENT.sub("", body))
    opens_with_heading = len(raw_sections) > 1 and not "".join(raw_sections[0][2]).strip()
    first_heading = raw_sections[1][0][0] if opens_with_heading else None
    name = fields.get("name") or fields.get("title")
    title = title or (str(name).strip() if isinstance(name, str | int) and str(name).strip() else None)
    title = title or first_heading or title_from_path(relative_path)
    sections, links = [], []
    for path, levels, lines in raw_sections:
        if path and _same_name(path[0], title):  # `name: Lantern Moth` and `# The Lantern Moth`: one title
            path = (title, *path[1:])
        else:
            path, levels = (title, *path), (0, *levels)
        blocks = _blocks(lines, links)
        if blocks:
            sections.append(Section(path, blocks, levels))
    return Document(title, fields, error, sections, links)


def note_pieces(lines: Iterable[str], piece_chars: int) -> Iterator[str]:
    """A long note's lines (each ending in a newline) as pieces of about `piece_chars` characters, so it
    is never parsed whole: each piece ends just before a heading (or, after twice the size with no
    heading, at a blank line), never inside a code fence or a comment, and opens with the heading lines
    it sits under, so it parses to its sections with their full heading paths."""
    piece: list[str] = []
    size, in_fence, open_html, open_obsidian = 0, False, 0, False
    stack: list[tuple[int, str]] = []  # the open headings: (level, line)
    prefix: list[str] = []
    for line in lines:
        closed = not (in_fence or open_html or open_obsidian)
        heading = _HEADING.match(line.rstrip("\n")) if closed else None
        at_blank = not line.strip() and size >= 2 * piece_chars
        if size >= piece_chars and closed and (heading or at_blank):
            yield "".join(prefix + piece)
            level = len(heading.group(1)) if heading else 7
            prefix, piece, size = [text for depth, text in stack if depth < level], [], 0
        if _FENCE.match(line):
            in_fence = not in_fence
        open_html = max(0, open_html + line.count("<!--") - line.count("-->"))
        open_obsidian ^= line.count("%%") % 2 == 1
        if heading:
            level = len(heading.group(1))
            stack = [*(entry for entry in stack if entry[0] < level), (level, line)]
        piece.append(line)
        size += len(line)
    if piece:
        yield "".join(prefix + piece)


def render_wikilinks(line: str) -> tuple[str, list[tuple[str, str]]]:
    """A line with its wikilinks shown as Obsidian shows them, and each link's (note, label).

    `[[Vesna Orlov|the Jackal]]` reads "the Jackal (Vesna Orlov)", so the nickname keeps its owner;
    `[[Vesna Orlov|Vesna]]` reads "Vesna"; `[[Kessler Arcology#Sublevel 9]]` reads
    "Kessler Arcology > Sublevel 9"; an embedded image (`![[map.png]]`) is dropped. The label is kept
    only when it names the note itself (no `#heading`), as a nickname the note may go by.
    """
    links: list[tuple[str, str]] = []

    def shown(match: re.Match) -> str:
        target, label = match.group(2).strip(), (match.group(3) or "").strip()
        note, _, heading = target.partition("#")
        note, heading = note.strip(), heading.strip(" ^")
        shown_note = _NOTE_SUFFIX.sub("", note)
        if (match.group(1) and _NOT_A_NOTE.search(note)) or _NOTE_TO_SELF.match(target):
            return ""  # an embedded image, or `[[TODO: ...]]`: an editor's note, not a link
        plain = " > ".join(part for part in (shown_note, heading) if part)
        if note:
            links.append((note, "" if heading else label))
        if not label:
            return plain
        says_it = not note or _folded(label) in _folded(plain) or _folded(shown_note) in _folded(label)
        return label if says_it else f"{label} ({shown_note})"

    return _WIKILINK.sub(shown, line), links


def _same_name(first: str, second: str) -> bool:
    """True for two spellings of one name: case, a leading "the" and punctuation aside."""
    strip = lambda name: re.sub(r"^the ", "", _folded(name))  # noqa: E731
    return strip(first) == strip(second)


def _folded(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _split_by_headings(body: str) -> list[tuple[tuple[str, ...], tuple[int, ...], list[str]]]:
    """Lines grouped under their heading path (and its levels); headings in code fences are not headings."""
    sections: list[tuple[tuple[str, ...], tuple[int, ...], list[str]]] = [((), (), [])]
    stack: list[tuple[int, str]] = []
    in_fence = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is None:
            sections[-1][2].append(line)
            continue
        level, title = len(heading.group(1)), _plain(render_wikilinks(heading.group(2))[0])
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        sections.append((tuple(name for _, name in stack), tuple(lvl for lvl, _ in stack), []))
    return sections


def _plain(heading: str) -> str:
    """A heading without Markdown emphasis or link syntax."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[*_`]+", "", heading).strip()


def _blocks(lines: list[str], links: list[tuple[str, str]]) -> list[Block]:
    """Group a section's lines into blocks: paragraphs (split into sentences), lists, tables and code.

    List items and table rows are kept whole, one line each; code blocks are one unit. Wikilinks are
    rendered and their targets kept with their block (and added to `links`); quote and callout markers
    are removed.
    """
    blocks: list[Block] = []
    paragraph: list[str] = []
    rows: list[str] = []
    targets: list[str] = []
    fence: list[str] | None = None

    def flush() -> None:
        if paragraph:
            blocks.append(Block(tuple(split_sentences(" ".join(paragraph))), links=tuple(targets)))
            paragraph.clear()
        if rows:
            kind = "table" if rows[0].startswith("|") else "list"
            blocks.append(Block(tuple(rows), "\n", kind, tuple(targets)))
            rows.clear()
        targets.clear()

    for line in lines:
        if fence is not None:
            fence.append(line)
            if _FENCE.match(line):
                blocks.append(Block(("\n".join(fence),), "\n", "code"))
                fence = None
            continue
        if _FENCE.match(line):
            flush()
            fence = [line]
            continue
        if _NOTE_TO_SELF.match(line):  # TODO, FIXME, NOTE TO SELF: for the writer, not for the model
            continue
        callout = _CALLOUT.match(line)
        line, found = render_wikilinks(line[callout.end() :] if callout else _QUOTE.sub("", line, count=1))
        stripped = line.strip()
        if not stripped or callout:
            flush()
        if callout and stripped:  # a callout's title is a line of its own
            paragraph.append(stripped)
            links.extend(found)
            targets.extend(note for note, _ in found if note not in targets)
            flush()
        if not stripped or callout:
            continue
        if stripped.startswith("|") or _LIST_ITEM.match(line):
            if paragraph or (rows and rows[0].startswith("|") != stripped.startswith("|")):
                flush()
            rows.append(stripped)
        elif rows and line[:1].isspace():
            rows[-1] += " " + stripped
        else:
            if rows:
                flush()
            paragraph.append(stripped)
        links.extend(found)
        targets.extend(note for note, _ in found if note not in targets)
    if fence is not None:
        blocks.append(Block(("\n".join(fence),), "\n", "code"))
    flush()
    return blocks
