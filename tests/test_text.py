"""Prose as the package reads it: words, sentences, names, front matter."""

from scifi_llm.text import (
    is_proper_word,
    parse_front_matter,
    split_sentences,
    strip_possessive,
    word_case_counts,
    words_in,
)


def test_a_word_is_any_alphabet_with_inner_apostrophes_and_hyphens():
    text = "Zoë's crew—Okonkwo-Reyes, R2 and the 'Lark'—didn't wait; 2259 came."
    assert words_in(text) == [
        "Zoë's",
        "crew",
        "Okonkwo-Reyes",
        "R2",
        "and",
        "the",
        "Lark",
        "didn't",
        "wait",
        "came",
    ]
    assert strip_possessive("Zoë's") == "Zoë" and strip_possessive("Voss’s") == "Voss"


def test_a_name_is_a_word_the_text_capitalises_mid_sentence_and_never_writes_lower_case():
    sentences = [
        "The Lark left Harrow at dawn.",
        "Harrow was cold.",
        "A lark sang.",
        "The lark flew.",
        "It was the end.",
    ]
    case = word_case_counts(sentences)
    assert is_proper_word("Harrow's", case)
    assert not is_proper_word("Lark", case)  # more often written "lark"
    assert not is_proper_word("The", case)


def test_sentences_split_at_terminal_punctuation_but_not_abbreviations_or_initials():
    text = 'Dr. Marsh fitted the arm. It cost 38,000 marks! Was it worth it? "Yes," said J. R. Hask. Done.'
    assert split_sentences(text) == [
        "Dr. Marsh fitted the arm.",
        "It cost 38,000 marks!",
        "Was it worth it?",
        '"Yes," said J. R. Hask.',
        "Done.",
    ]


def test_sentence_ending_inside_quotes_keeps_the_quote():
    assert split_sentences('She said "Go." Then she left.') == ['She said "Go."', "Then she left."]


def test_front_matter_fields_are_parsed_and_removed_from_the_body():
    fields, error, body = parse_front_matter("---\nname: Elena Voss\naliases: [Ledger]\n---\n# Elena\nText.")
    assert fields == {"name": "Elena Voss", "aliases": ["Ledger"]}
    assert error is None
    assert body == "# Elena\nText."


def test_broken_front_matter_is_reported_and_kept_as_text():
    text = "---\nname: [unclosed\n---\nBody."
    fields, error, body = parse_front_matter(text)
    assert fields == {}
    assert "not valid YAML" in error
    assert body == text


def test_front_matter_that_is_not_a_mapping_is_reported():
    _, error, _ = parse_front_matter("---\n- a\n- b\n---\nBody.")
    assert error == "front matter is not a mapping of fields"


def test_unclosed_front_matter_is_reported():
    _, error, _ = parse_front_matter("---\nname: x\nBody without end.")
    assert error == "front matter has no closing '---'"
