"""Cutting prose into training passages of `min_tokens`..`max_tokens` tokens of the model's tokenizer.

Passages break at scene boundaries first, then between paragraphs, then between sentences of a paragraph
too long to fit; never inside a sentence. A short tail joins the passage before it when both fit.
Tokens are counted with the real tokenizer, in batches: every unit once, then every finished passage
once more (joining text can merge tokens at the seams), splitting any passage that came out too long.
"""

import bisect
import itertools
from dataclasses import dataclass, field

from scifi_llm.lore.markdown import split_sentences
from scifi_llm.tune.corpus import Manuscript

PARAGRAPH_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Unit:
    """A paragraph, or a sentence of an over-long paragraph, with where it sits."""

    text: str
    scene: int
    starts_paragraph: bool


@dataclass
class Passage:
    """Consecutive units of one manuscript: the assistant text of one training example."""

    source: str
    units: list[Unit] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    exact_tokens: int | None = None

    @property
    def tokens(self) -> int:
        """The exact count once recounted; before that, the units' counts plus one per paragraph break
        (a space between sentences merges into the next word's token in Llama-style tokenizers)."""
        if self.exact_tokens is not None:
            return self.exact_tokens
        return sum(self.counts) + sum(1 for unit in self.units[1:] if unit.starts_paragraph)

    def add(self, unit: Unit, tokens: int, at_start: bool = False) -> None:
        """Add a unit at the end (or the start)."""
        position = 0 if at_start else len(self.units)
        self.units.insert(position, unit)
        self.counts.insert(position, tokens)
        self.exact_tokens = None

    def pop(self, from_start: bool = False) -> tuple[Unit, int]:
        """Remove the first or last unit."""
        position = 0 if from_start else -1
        self.exact_tokens = None
        return self.units.pop(position), self.counts.pop(position)

    @property
    def text(self) -> str:
        """The passage as prose: paragraphs separated by blank lines, sentences by spaces."""
        parts: list[str] = []
        for unit in self.units:
            if parts:
                parts.append(PARAGRAPH_SEPARATOR if unit.starts_paragraph else " ")
            parts.append(unit.text)
        return "".join(parts)

    @property
    def scenes(self) -> tuple[int, ...]:
        """The scenes this passage draws from."""
        return tuple(sorted({unit.scene for unit in self.units}))


@dataclass
class ChunkReport:
    """What chunking could not use, with reasons."""

    too_long_sentences: list[tuple[str, str]] = field(default_factory=list)
    short_passages: list[tuple[str, int]] = field(default_factory=list)


class TokenCounter:
    """Exact token counts from a Hugging Face tokenizer, a batch at a time."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self._backend = getattr(tokenizer, "backend_tokenizer", None)  # the Rust tokenizer of a fast one

    def count(self, texts: list[str]) -> list[int]:
        """Tokens in each text, without special tokens."""
        if not texts:
            return []
        if self._backend is not None:
            return [
                len(encoding.ids) for encoding in self._backend.encode_batch(texts, add_special_tokens=False)
            ]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def count_pieces_many(self, layouts: list[tuple[str, list[int]]]) -> list[list[int]]:
        """For each (text, starts): tokens of each piece of the text that begins at a start (ascending,
        the first 0) and runs to the next. Each text is tokenized once, all in one batch; every token is
        given to the piece it starts in."""
        if self._backend is None:
            return [self.count(_pieces(text, starts)) for text, starts in layouts]
        encodings = self._backend.encode_batch([text for text, _ in layouts], add_special_tokens=False)
        counts = []
        for (text, starts), encoding in zip(layouts, encodings, strict=True):
            offsets = [start for start, _ in encoding.offsets]
            bounds = [bisect.bisect_left(offsets, start) for start in [*starts, len(text) + 1]]
            counts.append([later - earlier for earlier, later in itertools.pairwise(bounds)])
        return counts


def _units_of(
    manuscripts: list[Manuscript], counter: TokenCounter, max_tokens: int, report: ChunkReport
) -> list[list[tuple[Unit, int]]]:
    """Every sentence of each manuscript with its token count (all manuscripts tokenized in one batch);
    sentences over `max_tokens` are reported."""
    all_units = [
        [
            Unit(sentence, scene_index, position == 0)
            for scene_index, scene in enumerate(manuscript.scenes)
            for text in scene
            for position, sentence in enumerate(split_sentences(text))
        ]
        for manuscript in manuscripts
    ]
    counts = counter.count_pieces_many([_layout(units) for units in all_units])
    result = []
    for manuscript, units, unit_counts in zip(manuscripts, all_units, counts, strict=True):
        counted = []
        for unit, tokens in zip(units, unit_counts, strict=True):
            if tokens > max_tokens:
                report.too_long_sentences.append((manuscript.source, unit.text[:80]))
            else:
                counted.append((unit, tokens))
        result.append(counted)
    return result


def _pieces(text: str, starts: list[int]) -> list[str]:
    return [text[begin:end] for begin, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def _layout(units: list[Unit]) -> tuple[str, list[int]]:
    """All units as one text (as passages join them) and where each begins."""
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for unit in units:
        if parts:
            separator = PARAGRAPH_SEPARATOR if unit.starts_paragraph else " "
            parts.append(separator)
            length += len(separator)
        starts.append(length)
        parts.append(unit.text)
        length += len(unit.text)
    return "".join(parts), starts


def pack(
    manuscript: Manuscript, counter: TokenCounter, min_tokens: int, max_tokens: int, report: ChunkReport
) -> list[Passage]:
    """Passages of one manuscript within the bounds; any still under `min_tokens` is reported, not kept."""
    return pack_all([manuscript], counter, min_tokens, max_tokens, report)[0]


def pack_all(
    manuscripts: list[Manuscript],
    counter: TokenCounter,
    min_tokens: int,
    max_tokens: int,
    report: ChunkReport,
) -> list[list[Passage]]:
    """`pack` for many manuscripts, tokenizing them all in one batch (the tokenizer runs in parallel)."""
    drafts = [
        _draft(manuscript.source, units, min_tokens, max_tokens)
        for manuscript, units in zip(
            manuscripts, _units_of(manuscripts, counter, max_tokens, report), strict=True
        )
    ]
    counted = _recount([passage for draft in drafts for passage in draft], counter, max_tokens)
    by_source: dict[str, list[Passage]] = {manuscript.source: [] for manuscript in manuscripts}
    for passage in counted:
        if passage.tokens >= min_tokens:
            by_source[passage.source].append(passage)
        else:
            report.short_passages.append((passage.source, passage.tokens))
    return [by_source[manuscript.source] for manuscript in manuscripts]


def _draft(source: str, units: list[tuple[Unit, int]], min_tokens: int, max_tokens: int) -> list[Passage]:
    """Greedy passages from estimated counts: end at a scene break once long enough, else when full."""
    passages: list[Passage] = []
    current = Passage(source)
    for unit, tokens in units:
        new_scene = bool(current.units) and unit.scene != current.units[-1].scene
        if current.units and new_scene and current.tokens >= min_tokens:
            passages.append(current)
            current = Passage(source)
        elif current.units and current.tokens + tokens + int(unit.starts_paragraph) > max_tokens:
            passages.append(current)
            current = _carry_partial_paragraph(current, min_tokens)
        current.add(unit, tokens)
    if current.units:
        passages.append(current)
    return _merge_short(passages, min_tokens, max_tokens)


def _carry_partial_paragraph(full: Passage, min_tokens: int) -> Passage:
    """Start the next passage with the unfinished paragraph at the end of `full`, when `full` keeps
    enough without it, so passages end between paragraphs where they can."""
    carried = Passage(full.source)
    starts = [index for index, unit in enumerate(full.units) if unit.starts_paragraph and index > 0]
    if not starts:
        return carried
    keep = starts[-1]
    if sum(full.counts[:keep]) < min_tokens:
        return carried
    while len(full.units) > keep:
        carried.add(*full.pop(), at_start=True)
    return carried


def _merge_short(passages: list[Passage], min_tokens: int, max_tokens: int) -> list[Passage]:
    """Fix passages under the minimum: join a neighbour when both fit, else borrow units from one."""
    index = 0
    while index < len(passages):
        passage = passages[index]
        if passage.tokens >= min_tokens or len(passages) == 1:
            index += 1
            continue
        previous = passages[index - 1] if index > 0 else None
        following = passages[index + 1] if index + 1 < len(passages) else None
        neighbour = previous if previous and previous.tokens + passage.tokens + 1 <= max_tokens else None
        neighbour = neighbour or (
            following if following and following.tokens + passage.tokens + 1 <= max_tokens else None
        )
        if neighbour is previous and previous is not None:
            for unit, tokens in zip(passage.units, passage.counts, strict=True):
                previous.add(unit, tokens)
            passages.pop(index)
        elif neighbour is following and following is not None:
            for unit, tokens in reversed(list(zip(passage.units, passage.counts, strict=True))):
                following.add(unit, tokens, at_start=True)
            passages.pop(index)
        else:
            _borrow(passage, previous, following, min_tokens)
            index += 1
    return passages


def _borrow(short: Passage, previous: Passage | None, following: Passage | None, min_tokens: int) -> None:
    """Move whole units into a short passage from the end of the one before (or the start of the next)
    while the lender stays at or above the minimum."""
    for lender, from_start in ((previous, False), (following, True)):
        while lender and short.tokens < min_tokens and len(lender.units) > 1:
            tokens = lender.counts[0 if from_start else -1]
            if lender.tokens - tokens - 1 < min_tokens:
                break
            short.add(*lender.pop(from_start=from_start), at_start=not from_start)


def _recount(passages: list[Passage], counter: TokenCounter, max_tokens: int) -> list[Passage]:
    """Exact counts of the joined texts; a passage over the maximum is split in two at a unit boundary."""
    result: list[Passage] = []
    pending = list(passages)
    while pending:
        counts = counter.count([passage.text for passage in pending])
        retry = []
        for passage, tokens in zip(pending, counts, strict=True):
            passage.exact_tokens = tokens
            if tokens <= max_tokens or len(passage.units) == 1:
                result.append(passage)
            else:
                middle = len(passage.units) // 2
                retry += [
                    Passage(passage.source, passage.units[:middle]),
                    Passage(passage.source, passage.units[middle:]),
                ]
        pending = retry
    order = {id(unit): index for index, unit in enumerate(u for p in passages for u in p.units)}
    return sorted(result, key=lambda passage: order[id(passage.units[0])])
