"""Cutting a lore note into chunks: whole sentences, one heading path each, about `chunk_tokens` long."""

from dataclasses import dataclass

from scifi_llm.lore.markdown import Document, Section
from scifi_llm.tokens import count_tokens

HEADING_SEPARATOR = " > "


@dataclass(frozen=True)
class Chunk:
    """A piece of one section of a note, made of whole sentences."""

    text: str
    heading_path: tuple[str, ...]
    tokens: int

    @property
    def heading(self) -> str:
        """The heading path as shown to people: `Elena Voss > Augmentations`."""
        return HEADING_SEPARATOR.join(self.heading_path)


@dataclass(frozen=True)
class _Unit:
    """One sentence (or list item, table row, code block) and the block it came from."""

    text: str
    block: int
    joiner: str
    tokens: int


def chunk_document(document: Document, chunk_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """All chunks of a document, section by section, in reading order."""
    chunks: list[Chunk] = []
    for section in document.sections:
        chunks.extend(chunk_section(section, chunk_tokens, overlap_tokens))
    return chunks


def chunk_section(section: Section, chunk_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """Pack a section's sentences into chunks of at most `chunk_tokens` (a longer sentence stands alone).

    Each chunk after the first repeats the last sentences of the one before, up to `overlap_tokens`,
    so a fact that straddles a boundary is whole in at least one chunk.
    """
    units = [
        _Unit(sentence, index, block.joiner, count_tokens(sentence))
        for index, block in enumerate(section.blocks)
        for sentence in block.sentences
    ]
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    for unit in units:
        if current and _size(current) + unit.tokens > chunk_tokens:
            groups.append(current)
            current = _overlap_tail(current, overlap_tokens, chunk_tokens - unit.tokens)
        current.append(unit)
    if current:
        groups.append(current)
    return [Chunk(_join(group), section.path, _size(group)) for group in groups]


def _size(units: list[_Unit]) -> int:
    return sum(unit.tokens for unit in units)


def _overlap_tail(units: list[_Unit], overlap_tokens: int, room: int) -> list[_Unit]:
    """The last whole sentences of `units` that fit both the overlap and the room left for the next one."""
    tail: list[_Unit] = []
    for unit in reversed(units):
        if _size(tail) + unit.tokens > min(overlap_tokens, room):
            break
        tail.insert(0, unit)
    return tail


def _join(units: list[_Unit]) -> str:
    """Sentences of one block joined by the block's joiner; blocks separated by a blank line."""
    parts: list[str] = []
    for previous, unit in zip([None, *units], units, strict=False):
        if previous is not None:
            parts.append(previous.joiner if previous.block == unit.block else "\n\n")
        parts.append(unit.text)
    return "".join(parts)
