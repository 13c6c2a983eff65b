"""Chunking: whole sentences, bounded size, overlap, heading paths."""

import itertools
import re

from scifi_llm.lore.chunk import chunk_document
from scifi_llm.lore.markdown import parse_document, split_sentences
from scifi_llm.tokens import count_tokens


def _long_note(sentences: int) -> str:
    body = " ".join(
        f"Sentence number {i} tells of the ship Meridian and her {i} crew." for i in range(sentences)
    )
    return f"# Meridian\n## History\n{body}\n## Crew\nFive people. They argue."


def test_chunks_never_cut_a_sentence_and_cover_every_sentence():
    text = _long_note(60)
    chunks = chunk_document(parse_document(text, "m.md"), chunk_tokens=80, overlap_tokens=20)
    sentences = split_sentences(text.split("## History\n")[1].split("\n## Crew")[0])
    joined = "\n".join(chunk.text for chunk in chunks)
    for sentence in sentences:
        assert sentence in joined
    for chunk in chunks:
        for piece in split_sentences(chunk.text.replace("\n", " ")):
            assert piece in sentences or piece in ("Five people.", "They argue.")


def test_chunks_respect_the_size_and_overlap_by_whole_sentences():
    chunks = chunk_document(parse_document(_long_note(60), "m.md"), chunk_tokens=80, overlap_tokens=20)
    history = [chunk for chunk in chunks if chunk.heading == "Meridian > History"]
    assert len(history) > 5
    assert all(chunk.tokens <= 80 for chunk in history)
    for first, second in itertools.pairwise(history):
        last_sentence = split_sentences(first.text)[-1]
        assert second.text.startswith(last_sentence)


def test_without_overlap_no_sentence_repeats():
    chunks = chunk_document(parse_document(_long_note(40), "m.md"), chunk_tokens=80, overlap_tokens=0)
    sentences = [s for chunk in chunks for s in split_sentences(chunk.text)]
    assert len(sentences) == len(set(sentences))


def test_a_sentence_longer_than_the_chunk_size_stands_alone_uncut():
    giant = "The Meridian " + " ".join(["very"] * 200) + " long."
    chunks = chunk_document(parse_document(f"# M\nShort one. {giant} After.", "m.md"), 50, 10)
    assert any(chunk.text == giant for chunk in chunks)


def test_chunks_keep_their_heading_path_and_section_boundaries():
    chunks = chunk_document(parse_document(_long_note(3), "m.md"), chunk_tokens=300, overlap_tokens=40)
    assert [chunk.heading for chunk in chunks] == ["Meridian > History", "Meridian > Crew"]
    assert chunks[1].text == "Five people. They argue."


def test_token_estimate_counts_words_and_punctuation():
    assert count_tokens("Elena's arm, slate-blue.") == len(
        re.findall(r"\w+|[^\w\s]", "Elena's arm, slate-blue.")
    )
    assert count_tokens("") == 0
    assert count_tokens("electromagnetically") == 3
