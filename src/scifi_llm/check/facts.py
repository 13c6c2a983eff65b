"""The facts layer of `scifi-llm check`: a number, colour, material or rank the draft gives differently
from the lore.

A claim in the draft is compared with the lore's claims of the same kind about the same thing ("people",
"m deep", "door"). A lore claim counts as the same statement when the two sentences share the entity
they are about and enough rare words; the draft is flagged only when such a statement gives another
value and none gives the draft's.
"""

import re
from dataclasses import dataclass

from scifi_llm.check.names import Finding
from scifi_llm.check.reading import Draft, DraftSentence, mentions
from scifi_llm.claims import COLOURS, MATERIALS, ROLE_ABBREVIATIONS, ROLE_RANKS, Claim, role_head
from scifi_llm.lore import FactTable, Statement

# Shared evidence (rare words, plus 2 for the same entity) that makes two sentences one statement. A look
# names its thing ("door", "greatcoat"), which says much; a count of "days" or "marks" says little.
SAME_STATEMENT = {"look": 3, "quantity": 3, "year": 3}
SUPPORTS = 1  # a lore claim with the draft's value needs less: any shared rare word or entity will do
_DURATIONS = frozenset(["s", "day"])  # hours, minutes, days, weeks: how long many things took
_COMMON = 0.04  # a word in more than this share of the lore's statements says nothing about which one


@dataclass(frozen=True)
class Match:
    """A lore claim that speaks about what a draft claim speaks about, and how sure that is."""

    claim: Claim
    statement: Statement
    evidence: int


def fact_findings(draft: Draft, table: FactTable) -> list[Finding]:
    """The draft's numbers, looks and ranks that the lore gives otherwise."""
    findings = []
    for sentence in draft.sentences:
        for claim in sentence.claims:
            if claim.kind in ("quantity", "look"):
                finding = _compare(draft, sentence, claim, table)
                if finding:
                    findings.append(finding)
        findings += _role_findings(draft, sentence, table)
    return findings


def matches(sentence: DraftSentence, claim: Claim, table: FactTable, threshold: int) -> list[Match]:
    """The lore claims of the same kind about the same thing that read as the same statement, best first."""
    found = []
    common = max(3, int(_COMMON * len(table.statements)))
    candidates = table.by_key.get((claim.kind, claim.key), [])
    if claim.kind == "quantity" and " " not in claim.key:  # "12 metres of her" and the lore's "18 m long"
        candidates = candidates + _with_dimension(table, claim.key)
    specific = int(claim.kind != "year" and len(candidates) <= 2)  # a measure or look given once or twice
    for lore_claim, statement in candidates:
        rare = {w for w in sentence.words & statement.words if table.document_frequency[w] <= common}
        evidence = len(rare) + _entity_evidence(sentence, statement) + specific
        if evidence >= threshold:
            found.append(Match(lore_claim, statement, evidence))
    return sorted(found, key=lambda match: -match.evidence)


def _with_dimension(table: FactTable, unit: str) -> list:
    """The lore's measures in `unit` with a dimension: "m long", "m deep" for "m"."""
    return [
        found
        for (kind, key), claims in table.by_key.items()
        if kind == "quantity" and key.startswith(unit + " ")
        for found in claims
    ]


def _entity_evidence(sentence: DraftSentence, statement: Statement) -> int:
    if set(sentence.meant) & set(statement.about):
        return 2
    return 1 if set(sentence.paragraph) & set(statement.about) else 0


def _compare(draft: Draft, sentence: DraftSentence, claim: Claim, table: FactTable) -> Finding | None:
    owner = _possessive(sentence.text[: claim.start])
    found = [m for m in matches(sentence, claim, table, SUPPORTS) if _may_own(table, m.statement, owner)]
    if any(_agree(claim, match.claim) for match in found):
        return None
    needed = SAME_STATEMENT[claim.kind] + (claim.key in _DURATIONS)  # "eleven hours" of what? say more
    found = [m for m in found if m.evidence >= needed and _comparable(claim, m.claim)]
    if not found:
        return None
    best = found[0]
    kind = "number" if claim.kind == "quantity" else "attribute"
    words = sentence.text[claim.start : claim.end]
    confidence = min(0.95, 0.5 + 0.1 * best.evidence)
    return Finding(
        draft.file, sentence.line, kind, words, sentence.text, _shown(best.claim, best.statement),
        best.statement.source, round(confidence, 2), best.statement.sentence, best.statement.heading,
    )  # fmt: skip


def _possessive(before: str) -> str:
    """ "he" or "she" when a look is given to his or her thing ("his grey eyes"), else ""."""
    match = re.search(r"\b(his|her)\s+(?:[\w-]+\s+)?$", before, re.IGNORECASE)
    return ({"his": "he", "her": "she"}[match.group(1).lower()]) if match else ""


def _may_own(table: FactTable, statement: Statement, owner: str) -> bool:
    """False when "his" eyes are compared with a woman's (or "her" coat with a man's)."""
    gender = table.gender.get(statement.about[0], "") if statement.about else ""
    return not owner or not gender or gender == owner


def _comparable(draft: Claim, lore: Claim) -> bool:
    """False for two quantities too far apart to be one measure given differently (180 km and 40 m)."""
    if draft.kind != "quantity" or not draft.value or not lore.value:
        return True
    return max(draft.value, lore.value) / min(draft.value, lore.value) <= _FAR_APART


_FAR_APART = 12  # a changed number stays near the lore's: 9 tonnes for 900 kg, not 2 km for 40 km


def _agree(draft: Claim, lore: Claim) -> bool:
    if draft.kind == "quantity":
        tolerance = 0.15 if draft.approximate or lore.approximate else 0.02
        return abs(draft.value - lore.value) <= tolerance * max(abs(draft.value), abs(lore.value))
    return looks_agree(draft.value, lore.value)


def looks_agree(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    """False when two descriptions of one thing clash: materials that share none, or colours of no common
    family ("bottle-green" and "rust-red"); true when they agree or describe different aspects."""
    for kind in (_materials, _colour_families):
        mine, theirs = kind(first), kind(second)
        if mine and theirs and not mine & theirs:
            return False
    return True


def _materials(values) -> set[str]:
    return {value for value in values if value in MATERIALS}


def _colour_families(values) -> set[str]:
    return {COLOURS[value] for value in values if value in COLOURS and value not in MATERIALS} or {
        COLOURS[value] for value in values if value in COLOURS
    }


def _shown(claim: Claim, statement: Statement) -> str:
    """The lore's words for a claim."""
    return statement.sentence.replace("*", " ")[claim.start : claim.end] or statement.sentence


# "Captain Sandoval", "Lt. Corin Aske"; "Maren Kisch, the Lark's medic"; "Ines was chair of ..."
_BEFORE = r"(?P<role>(?:[\w.-]+,?\s+){1,2})$"
_AFTER = re.compile(
    r"^(?:,\s+|\s+(?:was|is|had been|has been|became|served as|worked as)\s+)"
    r"(?:(?:the|a|an|its|their|her|his)\s+)?(?:[\w*’'-]+(?:'s|’s)\s+)?(?P<role>(?:[\w-]+\s+){0,2}[\w.-]+)",
)


def roles_of(text: str, name: str, spellings: list[str]) -> list[tuple[str, str]]:
    """The roles `text` gives the entity `name` (written as any of `spellings`): (head, rank word or "")."""
    roles = []
    for found in mentions(text, spellings):
        before = re.search(_BEFORE, text[: found.start()])
        if before:
            words = before.group("role").split()
            sentence_end = words[-1].endswith(".") and words[-1].lower().rstrip(".") not in ROLE_ABBREVIATIONS
            head = "" if sentence_end else role_head(words[-1].rstrip(","))
            # "Warden Josiah Pell", "its secretary, Ines Okoro", "the deckhand Abel Ferro, ..."; not "the best
            # engineer Elena had"
            if head and (words[-1][0].isupper() or re.match(r"\s*[,(;.]", text[found.end() :])):
                roles.append((head, _rank(words[:-1])))
        after = _AFTER.match(text[found.end() :])
        if after:
            roles += _phrase_roles(after.group("role"))
    return roles


def _phrase_roles(phrase: str) -> list[tuple[str, str]]:
    """A role phrase's head ("second engineer" -> (engineer, second)); [] when it names no role."""
    words = phrase.split()
    for index in range(len(words) - 1, -1, -1):  # the head comes last: "chief engineer" is an engineer
        head = role_head(words[index])
        if head and (index == 0 or words[index][:1].islower() or words[0][:1].isupper()):
            return [(head, _rank(words[:index]))]
    return []


def _rank(words: list[str]) -> str:
    return next((w.lower() for w in words if w.lower() in ROLE_RANKS), "")


def lore_roles(table: FactTable, name: str) -> list[tuple[tuple[str, str], Statement]]:
    """Every role the lore gives an entity, with the statement that gives it."""
    spellings = table.spellings(name)
    found = []
    for statement in table.statements:
        if name in statement.named:
            found += [
                (role, statement) for role in roles_of(statement.sentence.replace("*", ""), name, spellings)
            ]
        elif name in statement.about and statement.heading.count(">") <= 1:
            field = _ROLE_FIELD.match(statement.sentence)  # "**Position:** Chief Engineer, ..."
            opener = re.match(
                r"^\W*((?:[\w-]+\s+){0,2}[\w-]+)\s+(?:of|and|on|for|at|to)\b", statement.sentence
            )
            if field or opener:  # or "Commander of the Concord cutter ...", in the entity's own note
                phrases = re.split(r"[,;/]| and ", field.group(1)) if field else [opener.group(1)]
                found += [(role, statement) for phrase in phrases for role in _phrase_roles(phrase)]
    return found


_ROLE_FIELD = re.compile(
    r"^\W*(?:position|rank|title|role|occupation|office|job|post)\W*:\W*(.+)", re.IGNORECASE
)


def _role_findings(draft: Draft, sentence: DraftSentence, table: FactTable) -> list[Finding]:
    findings = []
    for name in sentence.named:
        said = roles_of(sentence.text, name, table.spellings(name))
        if not said:
            continue
        known = lore_roles(table, name)
        if not known:
            continue
        for head, rank in said:
            ranks = {r for (h, r), _ in known if h == head}
            if ranks and (not rank or rank in ranks or ranks == {""}):
                continue  # the lore's trade, at a rank it gives (or gives none of)
            statement = known[0][1]
            expected = ", ".join(dict.fromkeys(f"{r} {h}".strip() for (h, r), _ in known))
            findings.append(
                Finding(draft.file, sentence.line, "title", f"{rank} {head}".strip(), sentence.text, expected,
                        statement.source, 0.7, statement.sentence, statement.heading)
            )  # fmt: skip
    return findings
