"""The entity registry: names from front matter, titles, headings and prose; matching in queries."""

from scifi_llm.lore.entities import EntityRegistry, note_facts, stated_aliases
from scifi_llm.lore.markdown import parse_document


def registry(notes: dict[str, str]) -> EntityRegistry:
    return EntityRegistry(
        {source: note_facts(parse_document(text, source)) for source, text in notes.items()}
    )


def found(reg: EntityRegistry, query: str) -> list[tuple[str, str]]:
    return sorted((mention.entity.name, mention.matched) for mention in reg.find(query))


WORLD = {
    "elena.md": "---\nname: Elena Voss\naliases: [Ledger, the Captain]\n---\n# Elena Voss\n"
    "Elena Voss flies the Lark. Her crew call her Ledger.\n## Augmentations\nThe arm is slate-blue.\n"
    "## History\nShe was born on Calla in 2386, in the history of the mines.",
    "marcus.md": "# Marcus Voss\nMarcus Voss is Elena's uncle. He lives on Calla.",
    "tomas.md": '# Tomas Adeyemi\nTomas "Rook" Adeyemi was born in 2388. Tomas trains cadets on Calla.',
    "ilka.md": '# Ilka Marsh\nKnown up and down Tern Street as "Old Glass", Ilka builds arms. '
    "Ilka lives on Calla.",
    "ships.md": "# Ships\n## Meridian\nThe Meridian is a tug. The Meridian hauls ice.\n"
    "## Meridian's Wake\nMeridian's Wake is her sister ship. The crew of Meridian's Wake mutinied.",
    "lark.md": "# The Lark\nThe Lark goes by Old Lark on Calla. Elena Voss bought the Lark in 2411.",
}


def test_front_matter_name_and_aliases_are_found_case_insensitively():
    reg = registry(WORLD)
    assert found(reg, "What does ledger carry?") == [("Elena Voss", "ledger")]
    assert found(reg, "Where was the captain born?") == [("Elena Voss", "captain")]


def test_prose_aliases_are_found():
    reg = registry(WORLD)
    assert found(reg, "Who taught Rook?") == [("Tomas Adeyemi", "Rook")]
    assert found(reg, "Where does Old Glass work?") == [("Ilka Marsh", "Old Glass")]
    assert found(reg, "Who owns Old Lark?") == [("The Lark", "Old Lark")]


def test_unique_first_names_are_aliases_but_shared_surnames_are_not():
    reg = registry(WORLD)
    assert found(reg, "Is Elena afraid of the cold?") == [("Elena Voss", "Elena")]
    assert found(reg, "What does Voss want?") == []
    assert found(reg, "What does Marcus Voss want?") == [("Marcus Voss", "Marcus Voss")]


def test_longest_name_wins_between_confusable_ships():
    reg = registry(WORLD)
    assert found(reg, "Who mutinied on Meridian's Wake?") == [("Meridian's Wake", "Meridian's Wake")]
    assert found(reg, "What does the Meridian haul?") == [("Meridian", "Meridian")]


def test_names_match_whole_words_only():
    reg = registry(WORLD)
    assert found(reg, "Elenas and Ledgers and Rooky") == []


def test_possessives_still_match():
    assert found(registry(WORLD), "Describe Elena's arm") == [("Elena Voss", "Elena")]


def test_generic_section_headings_are_not_entities_but_named_sections_are():
    reg = registry(WORLD)
    names = {entity.name for entity in reg.entities}
    assert "Augmentations" not in names and "History" not in names
    assert {"Meridian", "Meridian's Wake"} <= names
    wake = next(entity for entity in reg.entities if entity.name == "Meridian's Wake")
    assert wake.source == "ships.md" and wake.scope == ("Ships", "Meridian's Wake")


def test_stated_aliases_patterns():
    assert stated_aliases('Tomas "Rook" Adeyemi laughed.') == ["Rook", "Tomas Adeyemi"]
    assert stated_aliases("The station, known to haulers as the Wheel, turns.") == ["Wheel"]
    assert stated_aliases("She is called 'the old woman' by the crew.") == ["the old woman"]
    assert stated_aliases("He goes by Magpie now.") == ["Magpie"]
    assert stated_aliases("They called for help.") == []


def test_front_matter_lists_may_be_comma_separated_strings():
    text = "---\nname: Harrow\naliases: the Wheel, Harrow Ring\ntags: place\n---\nText."
    facts = note_facts(parse_document(text, "h.md"))
    assert (facts.title, facts.aliases, facts.tags) == ("Harrow", ["the Wheel", "Harrow Ring"], ["place"])


def test_a_name_shared_by_many_entities_triggers_none():
    notes = {f"c{i}.md": f"---\naliases: [the Captain]\n---\n# Captain Number{i}\nText." for i in range(5)}
    reg = registry({**notes, "d.md": "---\naliases: [the Doctor]\n---\n# Doctor One\nText."})
    assert found(reg, "Who is the captain?") == []
    assert found(reg, "Who is the doctor?") == [("Doctor One", "doctor")]


def test_a_wikilink_label_that_is_a_name_becomes_a_nickname_of_its_note():
    reg = registry(
        {
            "Characters/Crew/Vesna Orlov.md": "# Vesna Orlov\nShe cracks safes.",
            "Sessions/Job 01.md": "# Job 01\n[[vesna orlov|the Jackal]] went in first, [[Vesna Orlov|her]] "
            "gun drawn, past [[Kessler Arcology#Sublevel 9|the Sublevel]].",
        }
    )
    assert found(reg, "What does the Jackal carry?") == [("Vesna Orlov", "Jackal")]
    assert found(reg, "Who is her?") == []  # a label that is not a name is no nickname
    assert found(reg, "Where is the Sublevel?") == []  # a heading link names the heading, not the note


def test_the_names_a_text_uses_are_the_ones_the_lore_writes_as_names():
    reg = registry(WORLD)
    names = reg.names_in("Then Elena Voss's uncle Marcus Voss met the crew on Calla. The arm held.")
    assert names == {"elena voss": "Elena Voss", "marcus voss": "Marcus Voss", "calla": "Calla"}


def test_a_front_matter_name_and_its_heading_are_one_entity():
    reg = registry({"moth.md": "---\nname: Lantern Moth\n---\n# The Lantern Moth\n## Crew\nFour people."})
    names = [entity.name for entity in reg.entities]
    assert names.count("Lantern Moth") == 1 and "The Lantern Moth" not in names
    document = parse_document("---\nname: Lantern Moth\n---\n# The Lantern Moth\n## Crew\nFour.", "moth.md")
    assert [section.path for section in document.sections] == [("Lantern Moth", "Crew")]
