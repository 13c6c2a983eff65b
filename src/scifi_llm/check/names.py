"""The names layer of `scifi-llm check`: a name in the draft that is a near miss of a name the lore uses.

The lore's names are its entities and their aliases, and every proper name its notes write ("Maren
Kisch", on a ship's crew list). A name in the draft that the lore does not know is compared with them:
- the same letters but for a dropped or added hyphen or space ("Harlan Okafor" for "Harlan-Okafor");
- one or two letters off ("Elena Vos", "Hollis Brant", "Ashgrove Wrenn");
- a known first name with another known person's surname ("Ebere Harlan" where the lore has Ebere Okafor
  and Nadia Harlan).
Each is a finding with the name the lore probably means. A capitalised name the lore does not know and
that is near nothing is reported apart, as "not in lore": new people are allowed.
"""

import difflib
import re
from dataclasses import dataclass

from scifi_llm.claims import parse_number
from scifi_llm.text import (
    COMMON_OPENERS,
    is_proper_word,
    parse_front_matter,
    split_sentences,
    strip_possessive,
    word_case_counts,
)

_RUN = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]*(?:[ \t]+[A-Z][\w'’-]*){0,3}")
_GLUE = frozenset({"the", "of", "and", "a", "an"})  # words inside names that are no name themselves
_CLOSE = 0.84  # SequenceMatcher ratio from which two names are one name misspelt
_TITLES = frozenset(
    [
        "captain",
        "magistrate",
        "madam",
        "mister",
        "mr",
        "mrs",
        "ms",
        "dr",
        "doctor",
        "engineer",
        "quartermaster",
        "pilot",
        "commander",
        "lieutenant",
        "sergeant",
        "marshal",
        "warden",
        "chief",
        "father",
        "mother",
        "sister",
        "brother",
        "old",
        "young",
        "saint",
    ]
)


@dataclass(frozen=True)
class Finding:
    """One place where a draft disagrees with the lore, or names what the lore does not know."""

    file: str
    line: int
    kind: str  # name, number, attribute, title, timeline, absent, judged; or "not in lore"
    text: str  # the words in the draft
    sentence: str
    expected: str  # what the lore says ("" for "not in lore")
    source: str  # the note that says it
    confidence: float
    quote: str = ""  # the note's sentence that says it
    heading: str = ""  # where in the note

    def to_dict(self) -> dict:
        """The JSON shape of a finding."""
        return self.__dict__.copy()


class KnownNames:
    """The names the lore uses, folded for comparison, each with the note it comes from."""

    def __init__(self, names: dict[str, str]) -> None:
        """`names`: each name as the lore writes it -> the note (source path) it comes from."""
        self.by_fold = {_fold(name): (name, source) for name, source in names.items()}
        self.squashed = {_squash(fold): fold for fold in self.by_fold}
        self.first_names = {fold.split()[0] for fold in self.by_fold if len(fold.split()) > 1} - _GLUE
        self.words = {word for fold in self.by_fold for word in fold.split()} - _GLUE
        self._closest_seen: dict[str, tuple[str, float]] = {}
        self.surnames = {}
        for fold in self.by_fold:
            if len(fold.split()) > 1:
                self.surnames.setdefault(fold.split()[-1], []).append(fold)

    def known(self, name: str) -> bool:
        """True when the lore writes this name (or a part of one of its names)."""
        fold = _fold(name)
        return fold in self.by_fold or any(fold in known.split() for known in self.by_fold if " " in known)

    def _closest(self, fold: str) -> tuple[str, float]:
        """The known name most like `fold`, and how alike (a drafts repeats its names: asked once each)."""
        if fold not in self._closest_seen:
            best, ratio = "", 0.0
            for known in self.by_fold:
                matcher = difflib.SequenceMatcher(None, fold, known)
                if (
                    matcher.real_quick_ratio() > ratio
                    and matcher.quick_ratio() > ratio
                    and matcher.ratio() > ratio
                ):
                    best, ratio = known, matcher.ratio()
            self._closest_seen[fold] = (best, ratio)
        return self._closest_seen[fold]

    def nearest(self, name: str) -> tuple[str, str, float] | None:
        """(the name the lore probably means, its note, confidence), or None when it means none."""
        fold = _fold(name)
        squashed = self.squashed.get(_squash(fold))
        if squashed is not None:
            return (*self.by_fold[squashed], 0.95)
        words = fold.split()
        surname = len(words) == 2 and words[1] in self.surnames and parse_number(words[1]) is None
        owners = (
            [fold for fold in self.surnames.get(words[1], []) if fold.split()[0] != words[0]]
            if surname
            else []
        )
        if owners and words[0] in self.first_names:  # not "Throat Two" for "Book Two"
            owner = owners[0]  # a known first name with another person's surname
            return (*self.by_fold[owner], 0.7)
        best, ratio = self._closest(fold)
        plural = _plural_pair(fold, best)
        if ratio >= _CLOSE and len(fold) >= 5 and _word_by_word(fold, best) and not plural:
            return (*self.by_fold[best], round(ratio, 2))
        return None


def name_findings(text: str, file: str, names: KnownNames, lore_case: dict) -> list[Finding]:
    """The near-miss names in a draft, and the names the lore does not know, line by line."""
    _fields, _error, body = parse_front_matter(text)
    front_matter_lines = text[: len(text) - len(body)].count("\n")  # the body is the text's tail
    draft_case = word_case_counts([s for line in body.splitlines() for s in split_sentences(line)])
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number <= front_matter_lines:
            continue
        for match in _RUN.finditer(line):
            name = _trim(match.group(), names, draft_case, lore_case)
            if not name or names.known(name):
                continue
            sentence = next((s for s in split_sentences(line) if name in s), line.strip())
            near = names.nearest(name)
            if near is not None:
                expected, source, confidence = near
                findings.append(Finding(file, number, "name", name, sentence, expected, source, confidence))
            elif len(name) >= 3:
                findings.append(Finding(file, number, "not in lore", name, sentence, "", "", 0.5))
    return findings


def _trim(run: str, names: KnownNames, draft_case: dict, lore_case: dict) -> str:
    """The proper name in a run of capitalised words: sentence-initial common words and titles dropped."""
    words = [strip_possessive(word) for word in run.split()]
    while words and (
        words[0].lower() in _TITLES
        or not (
            _is_name_word(words[0], names, draft_case, lore_case)
            or _opens_a_name(words, draft_case, lore_case)
        )
    ):
        words = words[1:]
    return " ".join(words)


def _opens_a_name(words: list[str], draft_case: dict, lore_case: dict) -> bool:
    """True for a first name that only ever opens sentences ("Perrin Vale kept the shop. Perrin ..."):
    a word never written in lower case, that is no common opener, before another capitalised word."""
    word = words[0].lower()
    never_lower = draft_case.get(word, (0, 0, 0))[2] == 0 and lore_case.get(word, (0, 0, 0))[2] == 0
    return len(words) > 1 and never_lower and word not in COMMON_OPENERS and word.isalpha()


def _is_name_word(word: str, names: KnownNames, draft_case: dict, lore_case: dict) -> bool:
    """A word of a name: part of a name the lore knows, written as a name by the lore, or capitalised
    inside the draft's sentences."""
    return (
        word.lower() in names.words
        or is_proper_word(word, lore_case)
        or _named_mid_sentence(word, draft_case)
    )


def _word_by_word(first: str, second: str) -> bool:
    """True when two names of as many words differ only by misspelt words: "Elena Vos" for "Elena Voss",
    not "Throat Two" for "Book Two"."""
    pairs = list(zip(first.split(), second.split(), strict=False))
    if len(first.split()) != len(second.split()):
        return False
    return all(a == b or difflib.SequenceMatcher(None, a, b).ratio() >= _CLOSE_WORD for a, b in pairs)


_CLOSE_WORD = 0.6  # "Vos" and "Voss" are one word misspelt; "Throat" and "Book" are two words


def _plural_pair(first: str, second: str) -> bool:
    """True when one is the other's plural ("berths", "adeyemis"): a plural is not a misspelling."""
    short, long = sorted((first, second), key=len)
    if long == short + "s":
        return not short.endswith("s")  # "vos" and "voss" are a misspelling
    return long == short + "es" and short.endswith(("s", "x", "ch", "sh"))


def _named_mid_sentence(word: str, case: dict) -> bool:
    """True when the draft writes `word` capitalised inside sentences at least as often as in lower case:
    a word that is capitalised only where sentences begin ("Beneath", "Everyone") is no name."""
    mid, _initial, lower = case.get(word.lower(), (0, 0, 0))
    return mid >= 1 and mid >= lower


def _fold(name: str) -> str:
    folded = re.sub(r"\s+", " ", name.replace("’", "'")).strip().rstrip("'").lower()
    return folded[4:] if folded.startswith("the ") else folded  # "Glass Widow" is "the Glass Widow"


def _squash(fold: str) -> str:
    return re.sub(r"[\s'-]", "", fold)
