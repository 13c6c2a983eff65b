"""Cutting a lore note into chunks that fit any note style.

A note is read as one stream of units: heading lines, sentences, list items, table rows and code blocks.
Units are packed in order into chunks of at most `chunk_tokens`, so a wiki sheet's many short sections
share a chunk (each keeping its heading line) instead of each becoming a scrap that no longer says whom
it is about. A chunk prefers to end before a heading, then at the end of a paragraph, list or table, and
only then between two sentences; a list item, table row or sentence is never cut, unless it alone is
longer than a chunk (then between words).

A chunk that continues where the previous one stopped opens with context, so it reads on its own: the
heading lines it sits under, a table's header row when it starts mid-table, and (when it starts mid-
paragraph) the previous chunk's last sentences up to `overlap_tokens`. `context_chars` says how long that
opening is and `joiner` how the chunk's own text joins the previous chunk's, so neighbouring chunks can
be put back together exactly, with nothing repeated and nothing lost.
"""

from dataclasses import dataclass

from scifi_llm.lore.markdown import Document
from scifi_llm.tokens import count_tokens

HEADING_SEPARATOR = " > "


@dataclass(frozen=True)
class Chunk:
    """A run of a note's units, with the context that makes it readable alone."""

    text: str
    heading_path: tuple[str, ...]
    tokens: int
    context_chars: int = 0
    joiner: str = "\n\n"
    sections: tuple[tuple[str, ...], ...] = ()
    links: tuple[str, ...] = ()

    @property
    def heading(self) -> str:
        """The heading path as shown to people: `Elena Voss > Augmentations`."""
        return HEADING_SEPARATOR.join(self.heading_path)

    @property
    def own_text(self) -> str:
        """The chunk without its opening context: what it adds after the previous chunk."""
        return self.text[self.context_chars :]


@dataclass(frozen=True)
class _Unit:
    """A heading line, sentence, list item, table row or code block, and where it sits in the note."""

    text: str
    tokens: int
    section: int
    block: int  # -1 for a heading line
    joiner: str  # how the block joins its own units
    depth: int = -1  # for a heading line: its place in the section's path


def chunk_document(document: Document, chunk_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """All chunks of a document, in reading order; more than `chunk_tokens` only where one unit (with
    its heading lines) is."""
    units, blocks = _units(document, chunk_tokens)
    chunks: list[Chunk] = []
    start, context = 0, []
    while start < len(units):
        end = _chunk_end(units, start, chunk_tokens - _size(context))
        chunks.append(_chunk(document, units, blocks, context, start, end))
        if end < len(units):
            room = chunk_tokens - units[end].tokens
            context = _context(document, units, blocks, end, overlap_tokens, room)
        start = end
    return chunks


def _units(document: Document, limit: int) -> tuple[list[_Unit], list]:
    """The note as a stream of units, a heading line wherever a section opens; and the blocks by number.

    A section repeats only the heading lines it does not share with the one before, but always its own.
    A unit longer than `limit` (a run-on sentence, a huge list item) is cut between words (code between
    lines) into pieces of half that, so that with the heading lines above it every chunk fits the budget
    a search hands over and the window of an embedding model.
    """
    units: list[_Unit] = []
    blocks = []
    open_path: tuple[str, ...] = ()
    for index, section in enumerate(document.sections):
        shared = min(_shared_depth(open_path, section.path), len(section.path) - 1)
        for depth in range(shared, len(section.path)):
            if section.levels[depth] > 0:
                units.append(_heading_unit(document, index, depth))
        open_path = section.path
        for block in section.blocks:
            blocks.append(block)
            for text in block.sentences:
                units += _pieces(text, limit, index, len(blocks) - 1, block.joiner)
    return units, blocks


def _pieces(text: str, limit: int, section: int, block: int, joiner: str) -> list[_Unit]:
    """One unit, or the pieces of a unit over `limit` tokens (joined as they were written)."""
    tokens = count_tokens(text)
    if tokens <= limit:
        return [_Unit(text, tokens, section, block, joiner)]
    limit = max(1, limit // 2)
    separator = "\n" if "\n" in text else " "
    groups: list[list[str]] = [[]]
    size = 0
    for part in text.split(separator):
        part_tokens = count_tokens(part)  # tokens never span whitespace, so parts add up exactly
        if groups[-1] and size + part_tokens > limit:
            groups.append([])
            size = 0
        groups[-1].append(part)
        size += part_tokens
    texts = [separator.join(group) for group in groups]
    return [
        _Unit(piece, count_tokens(piece), section, block, joiner if last else separator)
        for piece, last in zip(texts, [False] * (len(texts) - 1) + [True], strict=True)
    ]


def _heading_unit(document: Document, section: int, depth: int) -> _Unit:
    levels, path = document.sections[section].levels, document.sections[section].path
    text = f"{'#' * levels[depth]} {path[depth]}"
    return _Unit(text, count_tokens(text), section, -1, "\n", depth)


def _shared_depth(first: tuple[str, ...], second: tuple[str, ...]) -> int:
    depth = 0
    while depth < min(len(first), len(second)) and first[depth] == second[depth]:
        depth += 1
    return depth


def _chunk_end(units: list[_Unit], start: int, room: int) -> int:
    """Where the chunk starting at `start` ends: as many units as fit, then back to the best break.

    A break before a heading is best, then one between blocks, as long as the chunk keeps at least half
    of what would fit. A chunk never ends on a heading line: heading lines take at least the first unit
    under them along, even past the size.
    """
    end, size = start + 1, units[start].tokens
    while end < len(units) and size + units[end].tokens <= room:
        size += units[end].tokens
        end += 1
    if end == len(units):
        return end
    half = _size(units[start:end]) / 2
    for wanted in (_before_heading, _between_blocks):
        for candidate in range(end, start, -1):
            if _size(units[start:candidate]) < half:
                break
            if wanted(units, candidate):
                return candidate
    while end - 1 > start and units[end - 1].block == -1:
        end -= 1
    while end < len(units) and units[end - 1].block == -1:  # heading lines alone: take what they head
        end += 1
    return end


def _before_heading(units: list[_Unit], index: int) -> bool:
    return units[index].block == -1 and units[index - 1].block != -1


def _between_blocks(units: list[_Unit], index: int) -> bool:
    return units[index].block != units[index - 1].block and units[index - 1].block != -1


def _context(
    document: Document, units: list[_Unit], blocks: list, start: int, overlap_tokens: int, room: int
) -> list[_Unit]:
    """What a chunk starting at `start` repeats first: open headings, a table header, overlap sentences."""
    first, previous = units[start], units[start - 1]
    open_depth = first.depth if first.block == -1 else len(document.sections[first.section].path)
    if previous.section != first.section and first.block == -1:
        open_depth = min(
            open_depth,
            _shared_depth(document.sections[previous.section].path, document.sections[first.section].path),
        )
    section = document.sections[first.section]
    context = [
        _heading_unit(document, first.section, depth)
        for depth in range(open_depth)
        if section.levels[depth] > 0
    ]
    if first.block == previous.block and first.block != -1:
        block = blocks[first.block]
        header = [
            _Unit(row, count_tokens(row), first.section, first.block, "\n") for row in block.table_header
        ]
        overlap = _overlap(units[:start], first.block, min(overlap_tokens, room - _size(header)))
        context += [row for row in header if row.text not in {unit.text for unit in overlap}]
        context += overlap
    return context


def _overlap(before: list[_Unit], block: int, limit: int) -> list[_Unit]:
    """The last whole units of `block` before the break that fit in `limit` tokens."""
    tail: list[_Unit] = []
    for unit in reversed(before):
        if unit.block != block or _size(tail) + unit.tokens > limit:
            break
        tail.insert(0, unit)
    return tail


def _chunk(
    document: Document, units: list[_Unit], blocks: list, context: list[_Unit], start: int, end: int
) -> Chunk:
    own = units[start:end]
    prefix = _join(context)
    text = _join(context + own)
    joiner = _separator(units[start - 1], units[start]) if start else ""
    sections = tuple(dict.fromkeys(document.sections[unit.section].path for unit in own))
    links = tuple(
        dict.fromkeys(
            link for block in {u.block for u in own if u.block >= 0} for link in blocks[block].links
        )
    )
    context_chars = len(prefix) + (len(_separator(context[-1], own[0])) if context else 0)
    return Chunk(text, _common_path(sections), count_tokens(text), context_chars, joiner, sections, links)


def _common_path(paths: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    common = paths[0]
    for path in paths[1:]:
        common = common[: _shared_depth(common, path)]
    return common


def _size(units: list[_Unit]) -> int:
    return sum(unit.tokens for unit in units)


def _separator(before: _Unit, after: _Unit) -> str:
    """What goes between two units: the block's own joiner inside a block, a newline after a heading,
    a blank line between blocks."""
    if before.block == after.block and before.block != -1:
        return before.joiner
    return "\n" if before.block == -1 else "\n\n"


def _join(units: list[_Unit]) -> str:
    parts: list[str] = []
    for previous, unit in zip([None, *units], units, strict=False):
        if previous is not None:
            parts.append(_separator(previous, unit))
        parts.append(unit.text)
    return "".join(parts)
