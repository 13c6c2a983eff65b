"""Chunking: short sections packed with their heading lines, long ones cut at sentences, nothing lost."""

import itertools
import re
from collections import Counter

from scifi_llm.lore.chunk import chunk_document
from scifi_llm.lore.markdown import parse_document
from scifi_llm.text import split_sentences
from scifi_llm.tokens import count_tokens

WIKI_SHEET = """---
name: Mara Quell
aliases: [Wick]
---
# Mara Quell
## Role
Chief of the coolant crews on Deck Four. She answers to the Hull Warden.
## Background
Born in year 271 in the aft ring. Apprenticed to her uncle at twelve.
## Details
- Prosthetic left hand, brass and bone.
- Never drinks.
## Rumour versus canon
### Rumour
She started the spoke fire.
### Canon
She put it out, and lost the hand doing so.
"""


def _long_note(sentences: int) -> str:
    body = " ".join(
        f"Sentence number {i} tells of the ship Meridian and her {i} crew." for i in range(sentences)
    )
    return f"# Meridian\n## History\n{body}\n## Crew\nFive people. They argue."


def _merged(chunks) -> str:
    """The chunks put back together as the retriever does for neighbours."""
    return chunks[0].text + "".join(chunk.joiner + chunk.own_text for chunk in chunks[1:])


def _sentences(text: str) -> list[str]:
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    return [sentence for line in lines for sentence in split_sentences(line)]


def test_short_sections_of_a_note_share_one_chunk_with_their_heading_lines():
    chunks = chunk_document(parse_document(WIKI_SHEET, "people/mara.md"), chunk_tokens=300, overlap_tokens=40)
    assert len(chunks) == 1
    chunk = chunks[0]
    for heading in (
        "# Mara Quell",
        "## Role",
        "## Details",
        "## Rumour versus canon",
        "### Rumour",
        "### Canon",
    ):
        assert heading + "\n" in chunk.text
    assert chunk.heading == "Mara Quell"  # the subject, as the embedded and keyword text start with it
    assert ("Mara Quell", "Rumour versus canon", "Canon") in chunk.sections


def test_packing_keeps_every_sentence_exactly_once_and_never_passes_the_size():
    document = parse_document(WIKI_SHEET + "\n" + _long_note(40).replace("# Meridian", "## Meridian"), "m.md")
    expected = Counter(s for section in document.sections for b in section.blocks for s in b.sentences)
    for size, overlap in ((40, 0), (60, 20), (120, 30), (300, 40)):
        chunks = chunk_document(document, size, overlap)
        own = Counter(_sentences("\n".join(chunk.own_text for chunk in chunks)))
        assert own == expected, size
        assert all(chunk.tokens <= size for chunk in chunks)
        assert _merged(chunks) == chunk_document(document, 10_000, 0)[0].text


def test_a_chunk_prefers_to_end_before_a_heading():
    chunks = chunk_document(parse_document(WIKI_SHEET, "people/mara.md"), chunk_tokens=40, overlap_tokens=0)
    assert len(chunks) > 1
    for chunk in chunks[1:]:
        assert chunk.own_text.lstrip().startswith("#")
    assert chunks[2].text.startswith("# Mara Quell\n")  # the open heading repeated as context


def test_long_sections_are_cut_at_sentences_with_overlap():
    chunks = chunk_document(parse_document(_long_note(60), "m.md"), chunk_tokens=80, overlap_tokens=20)
    history = [chunk for chunk in chunks if chunk.heading == "Meridian > History"]
    assert len(history) > 5
    assert all(chunk.tokens <= 80 for chunk in history)
    for first, second in itertools.pairwise(history):
        assert second.text.startswith("# Meridian\n## History\n")
        last_sentence = split_sentences(first.text.split("\n")[-1])[-1]
        assert last_sentence in second.text[: second.context_chars]
        assert last_sentence not in second.own_text


def test_without_overlap_no_sentence_repeats():
    chunks = chunk_document(parse_document(_long_note(40), "m.md"), chunk_tokens=80, overlap_tokens=0)
    sentences = _sentences("\n".join(chunk.text for chunk in chunks))
    assert len(sentences) == len(set(sentences))


def test_a_sentence_longer_than_a_chunk_is_cut_between_words_and_put_back_exactly():
    giant = "The Meridian " + " ".join(["very"] * 200) + " long."
    document = parse_document(f"# M\nShort one. {giant} After.", "m.md")
    chunks = chunk_document(document, 50, 10)
    assert all(chunk.tokens <= 50 for chunk in chunks) and len(chunks) >= 5
    assert _merged(chunks) == f"# M\nShort one. {giant} After."


def test_a_section_that_repeats_a_heading_keeps_its_heading_line():
    note = "# Ship\n## Log\n### Day 1\nCalm.\n## Log\n### Day 1\nStorm."
    chunks = chunk_document(parse_document(note, "ship.md"), 300, 0)
    assert chunks[0].text == "# Ship\n## Log\n### Day 1\nCalm.\n\n### Day 1\nStorm."


def test_a_table_cut_in_two_repeats_its_header_and_list_items_stay_whole():
    rows = "\n".join(f"| Ship {n} | crew {n} | built {2300 + n} |" for n in range(30))
    items = "\n".join(f"- Entry {n}: a one-line glossary entry about thing {n}." for n in range(30))
    note = f"# Fleet\n| Ship | Crew | Built |\n|---|---|---|\n{rows}\n\n## Glossary\n{items}"
    chunks = chunk_document(parse_document(note, "fleet.md"), chunk_tokens=120, overlap_tokens=0)
    table_chunks = [chunk for chunk in chunks if "| Ship 2" in chunk.own_text]
    assert len(table_chunks) > 1
    for chunk in table_chunks:
        assert chunk.text.split("\n")[1:3] == ["| Ship | Crew | Built |", "|---|---|---|"]
    lines = [line for chunk in chunks for line in chunk.own_text.split("\n") if line.startswith("- Entry")]
    assert lines == items.split("\n")


def test_links_are_kept_with_the_chunk_that_holds_them():
    note = "# Job\n## Crew\nWith [[Vesna Orlov|the Jackal]].\n## Place\nAt [[Kessler Arcology]]."
    chunks = chunk_document(parse_document(note, "job.md"), chunk_tokens=12, overlap_tokens=0)
    assert [chunk.links for chunk in chunks] == [("Vesna Orlov",), ("Kessler Arcology",)]


def test_token_estimate_counts_words_and_punctuation():
    assert count_tokens("Elena's arm, slate-blue.") == len(
        re.findall(r"\w+|[^\w\s]", "Elena's arm, slate-blue.")
    )
    assert count_tokens("") == 0
    assert count_tokens("electromagnetically") == 3
