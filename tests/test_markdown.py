"""Parsing notes: headings, blocks, wikilinks, pieces of long notes."""

from scifi_llm.lore.markdown import note_pieces, parse_document, title_from_path


def test_heading_paths_follow_the_heading_levels():
    document = parse_document(
        "# Elena Voss\nIntro.\n## Augmentations\nThe arm.\n### Flaws\nCold.\n## History\nBorn 2386.", "x.md"
    )
    assert document.title == "Elena Voss"
    assert [section.path for section in document.sections] == [
        ("Elena Voss",),
        ("Elena Voss", "Augmentations"),
        ("Elena Voss", "Augmentations", "Flaws"),
        ("Elena Voss", "History"),
    ]


def test_title_comes_from_front_matter_then_heading_then_file_name():
    assert parse_document("---\nname: The Wheel\n---\n# Harrow\nText.", "h.md").title == "The Wheel"
    assert parse_document("# Harrow Station\nText.", "h.md").title == "Harrow Station"
    assert parse_document("Just text.", "places/harrow_deep.txt").title == "Harrow Deep"
    assert title_from_path("ships/the-patient_hour.md") == "The Patient Hour"


def test_sections_without_a_top_heading_get_the_title_as_root():
    document = parse_document("Loose intro.\n## Crew\nFive people.", "ships/lark.md")
    assert [section.path for section in document.sections] == [("Lark",), ("Lark", "Crew")]


def test_headings_inside_code_fences_are_not_headings():
    document = parse_document("# Note\n```\n# not a heading\n```\nAfter.", "n.md")
    assert [section.path for section in document.sections] == [("Note",)]
    assert "# not a heading" in document.sections[0].text


def test_list_items_and_table_rows_stay_whole_lines():
    document = parse_document(
        "# Ship\n- Length 68 m. Ochre paint.\n- Crew of five.\n\n| a | b |\n| 1 | 2 |", "s.md"
    )
    blocks = document.sections[0].blocks
    assert blocks[0].sentences == ("- Length 68 m. Ochre paint.", "- Crew of five.")
    assert blocks[0].joiner == "\n"
    assert blocks[1].sentences == ("| a | b |", "| 1 | 2 |")


def test_heading_markup_is_removed():
    document = parse_document("# **Elena** [Voss](x.md)\nText.", "e.md")
    assert document.title == "Elena Voss"


def test_wikilinks_read_as_obsidian_shows_them_and_keep_their_targets():
    document = parse_document(
        "# Job 01\nThe crew followed [[Vesna Orlov|the Jackal]] and [[Vesna Orlov|Vesna]] down to "
        "[[Kessler Arcology#Sublevel 9]]. ![[map.png]]\n\nAsk [[dana wu]].",
        "Sessions/Job 01.md",
    )
    first, second = document.sections[0].blocks
    assert first.sentences == (
        "The crew followed the Jackal (Vesna Orlov) and Vesna down to Kessler Arcology > Sublevel 9.",
    )
    assert first.links == ("Vesna Orlov", "Kessler Arcology")
    assert second.sentences == ("Ask dana wu.",) and second.links == ("dana wu",)
    embeds = parse_document("# Map\n![[Map.canvas]] ![[Vesna Orlov.md]] stays.", "m.md").sections[0].blocks
    assert embeds[0].sentences == ("Vesna Orlov stays.",)
    assert document.links == [("Vesna Orlov", "the Jackal"), ("Vesna Orlov", "Vesna"),
                              ("Kessler Arcology", ""), ("dana wu", "")]  # fmt: skip


def test_comments_are_dropped_and_callout_and_quote_markers_removed():
    document = parse_document(
        "# Heron\n%% private: kill him in book 3 %%\n<!-- old draft -->\n> [!warning] Off the books\n"
        "> He works alone.\n> Nobody trusts him.\n",
        "heron.md",
    )
    assert [block.sentences for block in document.sections[0].blocks] == [
        ("Off the books",),
        ("He works alone.", "Nobody trusts him."),
    ]


def test_blocks_know_their_kind_and_tables_their_header():
    document = parse_document("# Fleet\n| Ship | Crew |\n|---|---|\n| Gull | 4 |\n\n- one\n- two", "f.md")
    table, items = document.sections[0].blocks
    assert (table.kind, table.table_header) == ("table", ("| Ship | Crew |", "|---|---|"))
    assert (items.kind, items.table_header) == ("list", ())
    assert document.sections[0].levels == (1,)


def test_a_long_note_in_pieces_parses_to_the_same_sections():
    """Pieces end before a heading, never inside a code fence or a comment, and open with the headings
    they sit under: parsed one by one, they give the whole note's sections with the same paths."""
    parts = ["# Archive\n", "Intro line.\n"]
    for n in range(60):
        parts.append(f"## Deck {n}\n")
        parts.append(f"Deck {n} holds {n * 7} vaults.\n\n")
        if n % 10 == 3:
            parts += ["```\n", "# not a heading\n", "```\n", "<!-- a\n", "# hidden\n", "-->\n"]
        if n % 20 == 5:
            parts += [f"### Hold {n}\n", "Cold.\n"]
    text = "".join(parts)
    pieces = list(note_pieces(iter(text.splitlines(keepends=True)), piece_chars=200))
    assert len(pieces) > 5
    whole = parse_document(text, "archive.md")
    pieced = [parse_document(piece, "archive.md", "Archive") for piece in pieces]
    paths = [section.path for document in pieced for section in document.sections]
    assert paths == [section.path for section in whole.sections]
    sentences = [
        s for document in pieced for section in document.sections for b in section.blocks for s in b.sentences
    ]
    assert sentences == [s for section in whole.sections for b in section.blocks for s in b.sentences]
    assert all(piece.startswith("# Archive\n") for piece in pieces)
