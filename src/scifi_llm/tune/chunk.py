"""Cutting prose into training passages of `min_tokens`..`max_tokens` tokens of the model's tokenizer.

Passages break at scene boundaries first, then between paragraphs, then between sentences of a paragraph
too long to fit; never inside a sentence. A short tail joins the passage before it when both fit.

Tokens are counted with the real tokenizer. Every paragraph is counted once, all in one batch; a paragraph
that a passage must be cut inside then has each sentence's share counted (few do); every finished
passage is counted once more, exactly (joining text can merge tokens at the seams), and one that came out
too long is split.
"""

import itertools
from dataclasses import dataclass, field

from scifi_llm.tokens import TokenCounter
from scifi_llm.tune.corpus import Manuscript, Sentence

PARAGRAPH_SEPARATOR = "\n\n"


@dataclass
class Passage:
    """Consecutive sentences of one manuscript: the assistant text of one training example."""

    source: str
    break_tokens: int  # what a blank line between paragraphs costs in this tokenizer
    sentences: list[Sentence] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    exact_tokens: int | None = None

    def __post_init__(self) -> None:
        # running totals, so the estimate costs nothing however often the packer asks
        self._shares = sum(self.counts)
        self._paragraph_starts = sum(1 for sentence in self.sentences if sentence.starts_paragraph)

    @property
    def tokens(self) -> int:
        """The exact count once recounted; before that, the sentences' shares of their paragraphs' tokens
        plus the blank lines between paragraphs: within a token or two."""
        if self.exact_tokens is not None:
            return self.exact_tokens
        breaks = self._paragraph_starts - int(bool(self.sentences) and self.sentences[0].starts_paragraph)
        return self._shares + breaks * self.break_tokens

    def add(self, sentence: Sentence, tokens: int, at_start: bool = False) -> None:
        """Add a sentence at the end (or the start)."""
        position = 0 if at_start else len(self.sentences)
        self.sentences.insert(position, sentence)
        self.counts.insert(position, tokens)
        self._shares += tokens
        self._paragraph_starts += sentence.starts_paragraph
        self.exact_tokens = None

    def pop(self, from_start: bool = False) -> tuple[Sentence, int]:
        """Remove the first or last sentence."""
        position = 0 if from_start else -1
        sentence, tokens = self.sentences.pop(position), self.counts.pop(position)
        self._shares -= tokens
        self._paragraph_starts -= sentence.starts_paragraph
        self.exact_tokens = None
        return sentence, tokens

    def extend(self, sentences: list[Sentence], counts: list[int]) -> None:
        """Add sentences at the end."""
        for sentence, tokens in zip(sentences, counts, strict=True):
            self.add(sentence, tokens)

    def tokens_with(self, first: Sentence, tokens: int) -> int:
        """The estimate once `tokens` more, beginning with `first`, are added at the end."""
        joint = self.break_tokens if self.sentences and first.starts_paragraph else 0
        return self.tokens + joint + tokens

    def count_edge_exactly(self, from_start: bool, counter: TokenCounter) -> None:
        """Real shares for the sentences of the paragraph at one end, before sentences are moved off it."""
        starts = [i for i, sentence in enumerate(self.sentences) if sentence.starts_paragraph and i > 0]
        if from_start:
            begin, end = 0, (starts[0] if starts else len(self.sentences))
        else:
            begin, end = (starts[-1] if starts else 0), len(self.sentences)
        exact = counter.shares([sentence.text for sentence in self.sentences[begin:end]])
        self._shares += sum(exact) - sum(self.counts[begin:end])
        self.counts[begin:end] = exact

    @property
    def text(self) -> str:
        """The passage as prose: paragraphs separated by blank lines, sentences by spaces."""
        return _layout(self.sentences)

    @property
    def scenes(self) -> tuple[int, ...]:
        """The scenes this passage draws from."""
        return tuple(sorted({sentence.scene for sentence in self.sentences}))


@dataclass
class ChunkReport:
    """What chunking could not use, with reasons."""

    too_long_sentences: list[tuple[str, str]] = field(default_factory=list)
    short_passages: list[tuple[str, int]] = field(default_factory=list)


def _layout(sentences: list[Sentence]) -> str:
    """Sentences joined as passages join them: paragraphs by a blank line, sentences by a space."""
    parts: list[str] = []
    for sentence in sentences:
        if parts:
            parts.append(PARAGRAPH_SEPARATOR if sentence.starts_paragraph else " ")
        parts.append(sentence.text)
    return "".join(parts)


def _spread(tokens: int, sentences: list[Sentence]) -> list[int]:
    """A paragraph's tokens spread over its sentences by length: right in sum, a guess for each sentence
    until a passage has to be cut inside the paragraph and `TokenCounter.shares` gives the real ones."""
    if len(sentences) == 1:
        return [tokens]
    lengths = list(itertools.accumulate(len(sentence.text) + 1 for sentence in sentences))
    bounds = [0, *(round(tokens * length / lengths[-1]) for length in lengths)]
    return [later - earlier for earlier, later in itertools.pairwise(bounds)]


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
    paragraphs = [paragraph for manuscript in manuscripts for paragraph in manuscript.paragraphs]
    counts = iter(counter.count([" ".join(sentence.text for sentence in p) for p in paragraphs]))
    packer = _Packer(counter, min_tokens, max_tokens, report)
    drafts = [
        packer.draft(manuscript.source, [(paragraph, next(counts)) for paragraph in manuscript.paragraphs])
        for manuscript in manuscripts
    ]
    counted = _recount([passage for draft in drafts for passage in draft], counter, max_tokens)
    by_source: dict[str, list[Passage]] = {manuscript.source: [] for manuscript in manuscripts}
    for passage in counted:
        if passage.tokens >= min_tokens:
            by_source[passage.source].append(passage)
        else:
            report.short_passages.append((passage.source, passage.tokens))
    return [by_source[manuscript.source] for manuscript in manuscripts]


@dataclass
class _Packer:
    """Greedy passages from estimated counts, for one set of bounds."""

    counter: TokenCounter
    min_tokens: int
    max_tokens: int
    report: ChunkReport

    def draft(self, source: str, paragraphs: list[tuple[list[Sentence], int]]) -> list[Passage]:
        """End a passage at a scene break once long enough, else before the paragraph that does not fit,
        else (still too short, or one huge paragraph) between sentences."""
        passages: list[Passage] = []
        current = Passage(source, self.counter.break_tokens)
        for sentences, tokens in paragraphs:
            new_scene = bool(current.sentences) and sentences[0].scene != current.sentences[-1].scene
            if new_scene and current.tokens >= self.min_tokens:
                passages.append(current)
                current = Passage(source, current.break_tokens)
            if current.tokens_with(sentences[0], tokens) <= self.max_tokens:
                current.extend(sentences, _spread(tokens, sentences))
            elif current.tokens >= self.min_tokens and tokens <= self.max_tokens:
                passages.append(current)
                current = Passage(source, current.break_tokens, list(sentences), _spread(tokens, sentences))
            else:
                current = self._cut_inside(source, sentences, current, passages)
        if current.sentences:
            passages.append(current)
        return self._merge_short(passages)

    def _cut_inside(
        self, source: str, sentences: list[Sentence], current: Passage, passages: list[Passage]
    ) -> Passage:
        """Add a paragraph sentence by sentence, ending passages between sentences as they fill."""
        if current.tokens >= self.min_tokens:  # long enough already: start the paragraph afresh
            passages.append(current)
            current = Passage(source, current.break_tokens)
        shares = self.counter.shares([sentence.text for sentence in sentences])
        for sentence, tokens in zip(sentences, shares, strict=True):
            if tokens > self.max_tokens:
                self.report.too_long_sentences.append((source, sentence.text[:80]))
                continue
            if current.sentences and current.tokens_with(sentence, tokens) > self.max_tokens:
                passages.append(current)
                current = Passage(source, current.break_tokens)
            current.add(sentence, tokens)
        return current

    def _merge_short(self, passages: list[Passage]) -> list[Passage]:
        """Fix passages under the minimum: join a neighbour when both fit, else borrow sentences from one."""
        index = 0
        while index < len(passages):
            passage = passages[index]
            if passage.tokens >= self.min_tokens or len(passages) == 1:
                index += 1
                continue
            previous = passages[index - 1] if index > 0 else None
            following = passages[index + 1] if index + 1 < len(passages) else None
            if previous and _joined_tokens(previous, passage) <= self.max_tokens:
                previous.extend(passage.sentences, passage.counts)
                passages.pop(index)
            elif following and _joined_tokens(passage, following) <= self.max_tokens:
                passage.extend(following.sentences, following.counts)
                passages[index + 1] = passage
                passages.pop(index)
            else:
                self._borrow(passage, previous, following)
                index += 1
        return passages

    def _borrow(self, short: Passage, previous: Passage | None, following: Passage | None) -> None:
        """Move whole sentences into a short passage from the end of the one before (or the start of the
        next) while the lender stays at or above the minimum."""
        for lender, from_start in ((previous, False), (following, True)):
            if lender is None:
                continue
            lender.count_edge_exactly(from_start, self.counter)
            while short.tokens < self.min_tokens and len(lender.sentences) > 1:
                moved = lender.pop(from_start=from_start)
                if lender.tokens < self.min_tokens:
                    lender.add(*moved, at_start=from_start)
                    break
                short.add(*moved, at_start=not from_start)
                if (moved[0] if not from_start else lender.sentences[0]).starts_paragraph:
                    lender.count_edge_exactly(from_start, self.counter)


def _joined_tokens(first: Passage, second: Passage) -> int:
    """The estimated count of two consecutive passages joined into one."""
    return first.tokens_with(second.sentences[0], second.tokens)


def _recount(passages: list[Passage], counter: TokenCounter, max_tokens: int) -> list[Passage]:
    """Exact counts of the joined texts; a passage over the maximum is split in two between sentences."""
    result: list[Passage] = []
    pending = list(passages)
    while pending:
        counts = counter.count([passage.text for passage in pending])
        retry = []
        for passage, tokens in zip(pending, counts, strict=True):
            passage.exact_tokens = tokens
            if tokens <= max_tokens or len(passage.sentences) == 1:
                result.append(passage)
            else:
                middle = len(passage.sentences) // 2
                retry += [
                    Passage(
                        passage.source,
                        passage.break_tokens,
                        passage.sentences[:middle],
                        passage.counts[:middle],
                    ),
                    Passage(
                        passage.source,
                        passage.break_tokens,
                        passage.sentences[middle:],
                        passage.counts[middle:],
                    ),
                ]
        pending = retry
    order = {id(sentence): index for index, sentence in enumerate(s for p in passages for s in p.sentences)}
    return sorted(result, key=lambda passage: order[id(passage.sentences[0])])
