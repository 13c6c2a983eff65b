"""The timeline layer of `scifi-llm check`: years, ages and the dead, against the lore's dates.

- A year or date the draft gives an event that the lore dates otherwise (the same statement, found as
  the facts layer finds one).
- An age that does not fit the birth year and the chapter's date (front matter `story_date`, else the
  latest year the chapter mentions), or an age the lore states for the book's present.
- A character acting after the date the lore records their death or disappearance, outside a memory
  (a sentence that remembers, mourns, or is set in an earlier year is left alone).
"""

import re
from dataclasses import dataclass

from scifi_llm.check.facts import SAME_STATEMENT, SUPPORTS, matches
from scifi_llm.check.names import Finding
from scifi_llm.check.reading import Draft, DraftSentence, mentions
from scifi_llm.claims import Claim, parse_number
from scifi_llm.lore import FactTable, LifeEvent, Statement

_NUMBER = r"(?P<age>\d{1,3}|[a-z]+(?:-[a-z]+)?)"
_AGE_AFTER = re.compile(
    rf"^(?:'s)?\s+(?:was|is|had turned|turned|would be|will be)\s+"
    rf"(?:now\s+|just\s+|nearly\s+|almost\s+)?{_NUMBER}"
    r"(?:\s+years?\s+old)?(?=\s*(?:$|[,.;:!?—–)]|\s(?:this|now|and|that|years?|today|in\b)))",
    re.IGNORECASE,
)
_AGE_APPOSITION = re.compile(rf"^,\s+{_NUMBER},", re.IGNORECASE)
_PAST_AGE = re.compile(
    r"\b(?:when|since|until|after|before|by the time|at the age of|from the age of)\b[^,;]*$", re.I
)
_DISPLACED = re.compile(r"\b(?:when|since|ago|back then|at the time|used to|in those days)\b", re.IGNORECASE)
_MEMORY = re.compile(
    r"\b(?:remember\w*|recall\w*|memor\w+|grave|funeral|ghost|dream\w*|photo\w*|picture|portrait|statue|plaque\w*|"
    r"late|dead|died|death|killed|buried|mourn\w*|used to|years? ago|in those days|back then|would have|once|"
    r"was alive|widow\w*|that night|the night of|name\w*|letter|wrote|"
    r"before (?:he|she|they) (?:died|went|vanished|disappeared))\b",
    re.IGNORECASE,
)
_ACTS = re.compile(r"^(?:'s)?\s+(?:\w+ly\s+)?(?P<verb>[a-z]+)\b", re.IGNORECASE)
_IRREGULAR = frozenset(
    """
    stood sat came went said took gave ran held made found got put told thought knew saw left brought
    felt kept began spoke wrote drank ate stole shook rose fell drew led met paid sent sang stuck swore
    threw tore wore won hung heard
    """.split()
)
# A verb before the name: "said Abel", "At the rail stood Piet Oyelaran".
_SAID_BY = re.compile(
    r"\b(?:said|asked|called|answered|shouted|whispered|replied|stood|sat|came|waited|walked)\s+$",
    re.IGNORECASE,
)


@dataclass
class Ages:
    """What the lore says about each character's age: a birth year, or an age at the book's present.

    A wrong age against a birth year is a timeline finding; against an age the lore states, a number."""

    born: dict[str, tuple[int, Statement]]
    stated: dict[str, tuple[int, Statement]]
    present: int

    @classmethod
    def from_table(cls, table: FactTable) -> "Ages":
        """Births from the table's life events; ages from sentences like "Maud is 52" or "Josiah Pell, 70"."""
        born = {
            name: (event.date[0], event.statement)
            for name, events in table.life.items()
            for event in events
            if event.kind == "born"
        }
        stated = {}
        for statement in table.statements:
            for name in statement.named:
                age = _age_after_name(statement.sentence, table.spellings(name))
                if age is not None and name not in born:
                    stated.setdefault(name, (age, statement))
        return cls(born, stated, table.present)

    def knows(self, name: str) -> bool:
        """True when the lore gives `name` a birth year or an age."""
        return name in self.born or name in self.stated

    def allowed(self, name: str, year: int) -> tuple[set[int], Statement, str] | None:
        """The ages the lore allows `name` in `year`, the statement it rests on, and the finding's kind;
        None when the lore says nothing."""
        if name in self.born:
            birth, statement = self.born[name]
            return {year - birth - 1, year - birth}, statement, "timeline"
        if name in self.stated and self.present:
            age, statement = self.stated[name]
            centre = age + year - self.present
            return {centre - 1, centre, centre + 1}, statement, "number"
        return None


def timeline_findings(draft: Draft, table: FactTable, ages: Ages) -> list[Finding]:
    """The draft's years, ages and appearances that the lore's dates rule out."""
    findings = []
    for sentence in draft.sentences:
        for claim in sentence.claims:
            if claim.kind == "year":
                finding = _year_finding(draft, sentence, claim, table)
                if finding:
                    findings.append(finding)
        findings += _age_findings(draft, sentence, table, ages)
        findings += _absent_findings(draft, sentence, table)
    return findings


def _year_finding(draft: Draft, sentence: DraftSentence, claim: Claim, table: FactTable) -> Finding | None:
    if claim.date[0] == draft.story_date[0]:
        return None  # the chapter's own year: a dated entry, "this year"
    found = matches(sentence, claim, table, SUPPORTS)
    if any(_same_date(claim.date, match.claim.date) for match in found):
        return None
    found = [match for match in found if match.evidence >= SAME_STATEMENT["year"]]
    if not found:
        return None
    best = found[0]
    lore_words = best.statement.sentence.replace("*", " ")[best.claim.start : best.claim.end]
    return Finding(
        draft.file, sentence.line, "timeline", sentence.text[claim.start : claim.end], sentence.text,
        lore_words, best.statement.source, round(min(0.9, 0.5 + 0.1 * best.evidence), 2),
        best.statement.sentence, best.statement.heading,
    )  # fmt: skip


def _same_date(first: tuple[int, int, int], second: tuple[int, int, int]) -> bool:
    """Equal where both say: the year, and the month and day when both give them."""
    return all(a == b for a, b in zip(first, second, strict=True) if a and b)


def _age_findings(draft: Draft, sentence: DraftSentence, table: FactTable, ages: Ages) -> list[Finding]:
    year = draft.story_date[0]
    if not year or _DISPLACED.search(sentence.paragraph_text):
        return []  # in a paragraph that looks back ("He was seven. ... years ago") an age is a past one
    findings = []
    for name, age in _ages_said(sentence, table):
        allowed = ages.allowed(name, year)
        if allowed is None or age in allowed[0]:
            continue
        ages_allowed, statement, kind = allowed
        expected = f"{min(ages_allowed)} to {max(ages_allowed)} in {year}"
        findings.append(
            Finding(draft.file, sentence.line, kind, str(age), sentence.text, expected, statement.source,
                    0.8, statement.sentence, statement.heading)
        )  # fmt: skip
    return findings


def _ages_said(sentence: DraftSentence, table: FactTable) -> list[tuple[str, int]]:
    """(whom, age) for each present age the sentence gives: "Tomas was thirty-three", "She was forty"."""
    said = []
    for name in sentence.named:
        age = _age_after_name(sentence.text, table.spellings(name))
        if age is not None:
            said.append((name, age))
    if said:
        return said
    for match in re.finditer(r"\b(?:he|she)\b", sentence.text, re.IGNORECASE):
        meant = [
            n
            for n in sentence.meant
            if n not in sentence.named and table.gender.get(n) == match.group().lower()
        ]
        age = _age_at(sentence.text, match.end()) if meant else None
        if age is not None:
            return [(meant[0], age)]
    return said


def age_said(sentence: DraftSentence, name: str, table: FactTable) -> int | None:
    """The present age the sentence gives `name`, if any."""
    return next((age for whom, age in _ages_said(sentence, table) if whom == name), None)


def _age_after_name(text: str, spellings: list[str]) -> int | None:
    for found in mentions(text, spellings):
        age = _age_at(text, found.end())
        if age is not None:
            return age
    return None


def _age_at(text: str, position: int) -> int | None:
    """The age stated right after a name or pronoun ending at `position`, unless it is a past one ("when
    Tomas was eleven")."""
    if _PAST_AGE.search(text[:position]):
        return None
    match = _AGE_AFTER.match(text[position:]) or _AGE_APPOSITION.match(text[position:])
    if not match:
        return None
    value = parse_number(match.group("age"))
    return int(value) if value is not None and 1 <= value <= 150 else None


def _absent_findings(draft: Draft, sentence: DraftSentence, table: FactTable) -> list[Finding]:
    if not draft.story_date[0] or _MEMORY.search(sentence.text) or _earlier_year(sentence, draft):
        return []
    findings = []
    for name in sentence.named:
        gone = [
            e for e in table.life.get(name, []) if e.kind in ("died", "gone") and _gone_by(e, draft, table)
        ]
        if gone and _acts(sentence.text, table.spellings(name)):
            event = gone[0]
            expected = f"{'died' if event.kind == 'died' else 'gone'} {_date_text(event.date)}".strip()
            findings.append(
                Finding(draft.file, sentence.line, "absent", name, sentence.text, expected,
                        event.statement.source, 0.75, event.statement.sentence, event.statement.heading)
            )  # fmt: skip
    return findings


def _earlier_year(sentence: DraftSentence, draft: Draft) -> bool:
    """True when the sentence is set in an earlier year than the chapter (a flashback)."""
    return any(c.kind == "year" and c.date[0] < draft.story_date[0] for c in sentence.claims)


def _gone_by(event: LifeEvent, draft: Draft, table: FactTable) -> bool:
    """True when the death or departure is surely before the chapter: dated before it, or undated in a
    lore whose last dated event the chapter does not precede."""
    if event.date[0]:
        return _before(event.date, draft.story_date)
    return bool(table.latest_year) and draft.story_date[0] >= table.latest_year


def _before(event: tuple[int, int, int], story: tuple[int, int, int]) -> bool:
    """True when the event is surely before the story's date (at the precision both give)."""
    for mine, theirs in zip(event, story, strict=True):
        if not mine or not theirs:
            return False
        if mine != theirs:
            return mine < theirs
    return False


def _acts(text: str, spellings: list[str]) -> bool:
    """True when a spelling of the name is the subject of a verb in the narrative's present ("Anselm Tay
    stood", "said Abel"), not an object, a memory in dialogue, or a past perfect ("had written")."""
    return any(_acting_at(text, found) for found in mentions(text, spellings))


def _acting_at(text: str, found: re.Match) -> bool:
    if _SAID_BY.search(text[: found.start()]):
        return True
    before = text[: found.start()].rstrip().split()[-3:]
    if before and before[-1].lower() in ("of", "for", "about", "to", "with", "from", "by", "and", "like"):
        return False
    if {word.lower() for word in before} & _PAST_CLAUSE or _in_quotes(text, found.start()):
        return False
    verb = _ACTS.match(text[found.end() :])
    if not verb:
        return False
    word = verb.group("verb").lower()
    following = (text[found.end() + verb.end() :].split()[:1] or [""])[0].lower()
    if word in ("was", "were"):
        return following.endswith("ing")  # "Anselm Tay was preaching"
    if word == "had":
        return following in ("a", "an", "the", "his", "her", "their", "its")  # "had the ramp down"
    return word in _IRREGULAR or (word.endswith("ed") and len(word) > 4)


_PAST_CLAUSE = frozenset(["since", "when", "after", "before", "until", "once"])


def _in_quotes(text: str, position: int) -> bool:
    """True inside dialogue: what characters say about the dead is not the dead acting."""
    return (
        text[:position].count('"') + text[:position].count("“") - text[:position].count("”")
    ) % 2 == 1 or (text[:position].count("“") > text[:position].count("”"))


def _date_text(date: tuple[int, int, int]) -> str:
    year, month, day = date
    months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
    return " ".join(str(p) for p in [day or "", months[month - 1] if month else "", year] if p)
