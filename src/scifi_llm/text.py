"""Prose as the rest of the package reads it: words, sentences, names and front matter.

One definition of each, shared by the lore index, the training data, the style measures and the
benchmarks, so that a word or a sentence is the same thing everywhere.
"""

import re
from collections import Counter

import yaml

# A word: a letter (any alphabet), then letters, digits, apostrophes or hyphens, ending on a letter or
# digit: "Voss", "Voss's", "don't", "Okonkwo-Reyes", "Zoë", "R2".
WORD = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?")
_SENTENCE_END = re.compile(r"[.!?…]+[\"”’')\]]*\s+")
_SENTENCE_START = re.compile(r"[\"“‘(\[]?[A-Z0-9]")
_ABBREVIATIONS = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "st",
        "no",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "capt",
        "lt",
        "cmdr",
        "gen",
        "col",
        "sgt",
        "prof",
        "jr",
        "sr",
        "mt",
        "ft",
        "approx",
        "fig",
        "adm",
        "maj",
        "cpl",
    ]
)


# Words that open sentences capitalised without being names ("Later", "Nobody", "Beneath").
COMMON_OPENERS = frozenset(
    """
    after before beneath below above behind beyond between by during for from in inside into on onto
    outside over since through under until when where while with without later then there here now
    once yes no still even only just so but and or yet because although though if as at of to the a
    an this that these those every each all some most many few both either neither his her their my
    our your its it he she they we you i what who why how not nobody everyone everybody someone
    somebody nothing something across along around against toward towards upstairs downstairs
    outside tonight today tomorrow yesterday
    """.split()
)


def words_in(text: str) -> list[str]:
    """The words of `text`, as written."""
    return WORD.findall(text)


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at . ! ? followed by a capital, skipping abbreviations and initials."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if not _SENTENCE_START.match(text, match.end()):
            continue
        last_words = text[start : match.start() + 1].split()
        last_word = last_words[-1].rstrip(".").lower() if last_words else ""
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def parse_front_matter(text: str) -> tuple[dict, str | None, str]:
    """Split YAML front matter from the body: (fields, error or None, body). Broken YAML stays in the body."""
    if not text.startswith("---\n"):
        return {}, None, text
    end = re.search(r"^(?:---|\.\.\.)\s*$", text[4:], flags=re.MULTILINE)
    if end is None:
        return {}, "front matter has no closing '---'", text
    try:
        fields = yaml.safe_load(text[4 : 4 + end.start()]) or {}
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        return {}, f"front matter is not valid YAML ({reason})", text
    if not isinstance(fields, dict):
        return {}, "front matter is not a mapping of fields", text
    return fields, None, text[4 + end.end() :].lstrip("\n")


def strip_possessive(word: str) -> str:
    """`Voss's` -> `Voss`."""
    return word[:-2] if word.endswith(("'s", "’s")) else word


def is_proper_word(word: str, word_case: dict) -> bool:
    """True when a text writes `word` as a name: capitalised mid-sentence, rarely if ever lowercase.

    `word_case` maps lower-cased words to (mid-sentence capitalised, sentence-initial, lowercase) counts.
    """
    mid, initial, lower = word_case.get(strip_possessive(word).lower(), (0, 0, 0))
    return (mid >= 1 and mid >= lower) or (initial >= 1 and lower == 0)


def word_case_counts(sentences: list[str]) -> dict[str, list[int]]:
    """How a text capitalises its words: lower-cased word -> [mid-sentence capitalised, sentence-initial,
    lowercase] uses. Counted per distinct spelling, so a whole corpus takes one pass of the regex."""
    spellings = Counter(WORD.findall("\n".join(sentences)))
    openers = Counter(match.group() for sentence in sentences if (match := WORD.search(sentence)))
    case: dict[str, list[int]] = {}
    for spelling, uses in spellings.items():
        word = strip_possessive(spelling)
        case.setdefault(word.lower(), [0, 0, 0])[2 if word[0].islower() else 0] += uses
    for spelling, uses in openers.items():
        word = strip_possessive(spelling)
        if not word[0].islower():
            counts = case[word.lower()]
            counts[0] -= uses
            counts[1] += uses
    return case
