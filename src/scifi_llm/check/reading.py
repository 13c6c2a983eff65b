"""A draft read for checking: its story date, and its sentences with whom each one is about.

A sentence is about the people and things it names, and, when it names no one of that gender itself, the
one person a "she" or "he" can point back to: the only one of that gender named earlier in the paragraph
(or, in a paragraph that names no one, in the paragraph before). Where two could be meant, the pronoun is
left alone: a wrong guess would put one character's facts on another.
"""

import datetime
import re
from dataclasses import dataclass, field

from scifi_llm.claims import MONTHS, Claim, claims_in, content_words, role_head
from scifi_llm.lore import FactTable
from scifi_llm.text import parse_front_matter, split_sentences

_SHE = re.compile(r"\b(?:she|her|hers|herself)\b", re.IGNORECASE)
_HE = re.compile(r"\b(?:he|him|his|himself)\b", re.IGNORECASE)


@dataclass
class DraftSentence:
    """One sentence of a draft, where it is, whom it is about, and what it claims."""

    line: int
    text: str
    named: tuple[str, ...]  # the entities and proper names it writes
    meant: tuple[str, ...]  # those, and the one its pronoun points back to
    paragraph: tuple[str, ...]  # everyone named earlier in its paragraph
    claims: list[Claim]
    words: set[str] = field(default_factory=set)
    paragraph_text: str = ""


@dataclass
class Draft:
    """A draft file as the checker reads it."""

    file: str
    story_date: tuple[int, int, int]  # (year, month, day); zeros where unknown
    sentences: list[DraftSentence]


def read_draft(text: str, file: str, table: FactTable) -> Draft:
    """Split a draft into sentences with their line numbers, names, pronoun references and claims."""
    fields, _error, body = parse_front_matter(text)
    first_line = text[: len(text) - len(body)].count("\n") + 1
    sentences: list[DraftSentence] = []
    carried: dict[str, str] = {}  # the pronoun references a paragraph that names no one inherits
    for number, line in enumerate(body.splitlines(), start=first_line):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        earlier: list[str] = []
        resolved = dict(carried)
        for sentence in split_sentences(line.strip()):
            named = table.names_in(sentence)
            meant = list(named)
            for gender, pattern in (("she", _SHE), ("he", _HE)):
                if not pattern.search(sentence):
                    continue
                candidates = {name for name in [*earlier, *named] if table.gender.get(name) == gender}
                if len(candidates) == 1:
                    resolved[gender] = candidates.pop()
                elif candidates:
                    resolved.pop(gender, None)
                if gender in resolved and not any(table.gender.get(name) == gender for name in named):
                    meant.append(resolved[gender])
            claims = claims_in(sentence)
            sentences.append(
                DraftSentence(
                    number,
                    sentence,
                    named,
                    tuple(meant),
                    tuple(earlier),
                    claims,
                    content_words(sentence),
                    line,
                )
            )
            earlier.extend(name for name in named if name not in earlier)
        carried = resolved if not earlier else {g: n for g, n in resolved.items() if n in earlier}
    date = story_date(fields.get("story_date"), sentences)
    for sentence in sentences:
        sentence.claims = [claim for claim in sentence.claims if not _clock_time(claim, sentence.text, date)]
    return Draft(file, date, sentences)


def _clock_time(claim: Claim, text: str, date: tuple[int, int, int]) -> bool:
    """True for a log's 24-hour time read as a year: "14 February, 2100." in a chapter of February 2157
    (the chapter's own month, the time after a comma), or "Dock Eleven, 1248." (centuries off)."""
    year = claim.date[0]
    if claim.kind != "year" or not date[0] or year == date[0] or year // 100 >= 24 or year % 100 >= 60:
        return False
    after_comma = text[claim.start : claim.end].rstrip().endswith(f", {year}")
    return abs(year - date[0]) > 100 or (after_comma and claim.date[1] == date[1])


def mentions(text: str, spellings: list[str]):
    """Where `text` writes one of `spellings` as a whole name: not "Voss" inside "Amara Voss"."""
    for spelling in spellings:
        for found in re.finditer(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", text):
            before = text[: found.start()].split()[-1:]
            inside_a_name = before and before[0][:1].isupper() and before[0][-1:].isalpha()
            if (
                inside_a_name and " " not in spelling and not role_head(before[0])
            ):  # "Captain Sandoval" is his
                continue
            yield found


def story_date(value, sentences: list[DraftSentence]) -> tuple[int, int, int]:
    """The chapter's date: its front matter's `story_date` (2416-12-12, "June 2417", "641 AR"), else the
    latest year it mentions, else (0, 0, 0)."""
    if isinstance(value, datetime.date):
        return (value.year, value.month, value.day)
    if isinstance(value, int):
        return (value, 0, 0)
    if isinstance(value, str):
        iso = re.match(r"\s*(\d{1,4})-(\d{1,2})(?:-(\d{1,2}))?", value)
        if iso:
            return (int(iso.group(1)), int(iso.group(2)), int(iso.group(3) or 0))
        numbers = re.findall(r"\b(\d{1,4})\b", value)  # "14 Ashmonth 641 AR": the year comes last
        month = next((number for name, number in MONTHS.items() if name in value.lower()), 0)
        if numbers:
            return (int(numbers[-1]), month, int(numbers[0]) if month and len(numbers) > 1 else 0)
    years = [claim.date for sentence in sentences for claim in sentence.claims if claim.kind == "year"]
    return max(years) if years else (0, 0, 0)
