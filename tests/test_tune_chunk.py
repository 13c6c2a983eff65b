"""Training passages: within token bounds by the real tokenizer, whole sentences, nothing lost."""

import pytest
from transformers import AutoTokenizer

from scifi_llm.text import split_sentences
from scifi_llm.tokens import TokenCounter
from scifi_llm.tune.chunk import ChunkReport, pack
from scifi_llm.tune.corpus import Manuscript

SENTENCE = (
    "Sentence {n} of the long night, when the Wheel turned and Elena counted the debts in her notebook."
)


@pytest.fixture(scope="module")
def counter(tiny_llama) -> TokenCounter:
    return TokenCounter(AutoTokenizer.from_pretrained(tiny_llama))


def paragraph(start: int, count: int) -> str:
    return " ".join(SENTENCE.format(n=n) for n in range(start, start + count))


def test_passages_stay_within_bounds_and_keep_every_sentence_once(counter):
    scenes = [[paragraph(0, 6), paragraph(6, 9)], [paragraph(15, 4)], [paragraph(19, 12), paragraph(31, 3)]]
    report = ChunkReport()
    passages = pack(Manuscript("a.md", scenes), counter, 120, 400, report)
    assert passages and not report.short_passages and not report.too_long_sentences
    exact = counter.count([passage.text for passage in passages])
    assert all(120 <= tokens <= 400 for tokens in exact)
    assert [passage.tokens for passage in passages] == exact
    found = [s for passage in passages for s in split_sentences(passage.text.replace("\n\n", " "))]
    assert found == [SENTENCE.format(n=n) for n in range(34)]


def test_an_over_long_paragraph_becomes_several_valid_passages(counter):
    giant = paragraph(0, 170)  # about 3,500 words, no line break
    assert len(giant.split()) > 3000
    passages = pack(Manuscript("g.md", [[giant]]), counter, 300, 1000, ChunkReport())
    assert len(passages) >= 3
    assert all(300 <= tokens <= 1000 for tokens in counter.count([p.text for p in passages]))
    assert " ".join(p.text for p in passages) == giant


def test_scene_breaks_are_preferred_boundaries(counter):
    scenes = [[paragraph(0, 8)], [paragraph(8, 8)]]
    passages = pack(Manuscript("s.md", scenes), counter, 100, 1000, ChunkReport())
    assert [passage.scenes for passage in passages] == [(0,), (1,)]


def test_a_short_tail_joins_its_neighbour_and_a_tiny_file_is_reported(counter):
    scenes = [[paragraph(0, 10)], [paragraph(10, 1)]]
    [passage] = pack(Manuscript("t.md", scenes), counter, 150, 1000, ChunkReport())
    assert passage.scenes == (0, 1)
    report = ChunkReport()
    assert pack(Manuscript("tiny.md", [["Just one line."]]), counter, 150, 1000, report) == []
    assert report.short_passages == [("tiny.md", counter.count(["Just one line."])[0])]


def test_exactly_min_and_exactly_max_are_accepted(counter):
    text = paragraph(0, 3)
    tokens = counter.count([text])[0]
    assert len(pack(Manuscript("m.md", [[text]]), counter, tokens, tokens, ChunkReport())) == 1
    report = ChunkReport()
    assert pack(Manuscript("m.md", [[text]]), counter, tokens + 1, tokens + 50, report) == []
    assert report.short_passages == [("m.md", tokens)]


def test_a_short_tail_that_cannot_join_borrows_sentences_and_nothing_is_lost(counter):
    scenes = [[paragraph(0, 12)], [paragraph(12, 2)]]  # about 380 tokens, then a 64-token tail
    report = ChunkReport()
    passages = pack(Manuscript("b.md", scenes), counter, 150, 400, report)
    assert len(passages) == 2 and not report.short_passages
    assert all(150 <= tokens <= 400 for tokens in counter.count([p.text for p in passages]))
    assert len(passages[1].sentences) > 2  # it borrowed from the passage before
    found = [s for passage in passages for s in split_sentences(passage.text.replace("\n\n", " "))]
    assert found == [SENTENCE.format(n=n) for n in range(14)]
