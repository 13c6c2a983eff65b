"""The lore's fact table: what each note states about its entities, for the continuity checker.

At ingest every sentence of a note that states something checkable (a quantity, a colour or material,
a year or date, a birth, a death, an age, a rank) is kept with its claims and its heading path
(`note_statements`). When the table is opened, the entity registry of the whole lore says whom each
statement is about: the entities it names, or the note's (or section's) own entity when it names none,
or the one a leading pronoun points back to.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from scifi_llm.claims import ROLES, Claim, claims_in, content_words, without_title
from scifi_llm.config import Workspace
from scifi_llm.errors import UserError
from scifi_llm.lore.entities import Entity, EntityRegistry, NoteFacts
from scifi_llm.lore.markdown import Document
from scifi_llm.lore.store import FORMAT, LoreIndex
from scifi_llm.text import COMMON_OPENERS, WORD

_TRIGGERS = re.compile(r"\b(?:born|died|dies|dead|killed|murdered|executed|drowned|vanished|disappeared|"
                       r"missing|aged?|\d+|[A-Z][a-z]+ [A-Z])")  # fmt: skip
_PRONOUN_OPENER = re.compile(r"^\W*(?:He|She|They)\b")
# A death or a departure, as a verb: "dead" only as "among the 37 dead", not "the dead lattice".
_DEATH = re.compile(
    r"\b(?:(?P<died>died|dies|killed|murdered|executed|drowned|(?:among|of) the (?:\d+ )?dead|"
    r"is dead|was dead)"
    r"|(?P<gone>vanished|disappeared|(?:went|gone|is|was|has been|have been) missing"
    r"(?!\s+(?:a|an|the|his|her|their|its|one|two|three|four|five|several|some|\d)\b)))\b",
    re.IGNORECASE,
)
_FEMALE = frozenset(["she", "her", "hers", "herself"])
_MALE = frozenset(["he", "him", "his", "himself"])


def note_statements(document: Document) -> tuple[list[dict], list[int]]:
    """A note's checkable sentences (each {"sentence", "path", "claims"}), and its uses of she and he:
    [sentences opening with she/her, with he/his, all she/her words, all he/him/his words]."""
    statements = []
    for section in document.sections:
        for block in section.blocks:
            antecedent = ""  # the block's last sentence that names its subject
            for sentence in _fields_apart(block.sentences):
                claims = claims_in(sentence)
                opens_with_pronoun = _PRONOUN_OPENER.match(sentence)
                if (
                    claims
                    or _TRIGGERS.search(sentence)
                    or ROLES & {w.lower() for w in WORD.findall(sentence)}
                ):
                    statement = {
                        "sentence": sentence,
                        "path": list(section.path),
                        "claims": [c.to_dict() for c in claims],
                    }
                    if antecedent and opens_with_pronoun:
                        statement["previous"] = antecedent  # whom "He died in 2408" is about
                    statements.append(statement)
                antecedent = antecedent if opens_with_pronoun else sentence
    openers = Counter(
        _opening_word(sentence) for s in document.sections for b in s.blocks for sentence in b.sentences
    )
    words = Counter(
        w.lower() for s in document.sections for b in s.blocks for w in WORD.findall(" ".join(b.sentences))
    )
    pronouns = [
        sum(counts[w] for w in pronoun) for counts in (openers, words) for pronoun in (_FEMALE, _MALE)
    ]
    return statements, pronouns


_BOLD_FIELD = re.compile(r"\s(?=\*\*[A-Z][\w ]{0,24}:\*\*)")


def _fields_apart(sentences) -> list[str]:
    """Sentences with run-together `**Born:** ... **Title:** ...` lines split into one field each."""
    return [part for sentence in sentences for part in _BOLD_FIELD.split(sentence) if part.strip()]


def _opening_word(sentence: str) -> str:
    """A sentence's first word, lower case: in a note about someone, "She ..." is about them."""
    match = WORD.search(sentence.lstrip("-*> "))
    return match.group().lower() if match else ""


@dataclass
class Statement:
    """A sentence of the lore and what it claims, with the entities it is about."""

    sentence: str
    source: str
    heading: str
    claims: list[Claim]
    about: tuple[str, ...]  # entity names, most specific first
    named: tuple[str, ...]  # the entities (or, failing that, proper names) the sentence names itself
    words: set[str] = field(default_factory=set)
    previous: str = ""  # the sentence before, when this one opens with a pronoun


@dataclass(frozen=True)
class LifeEvent:
    """A birth, a death or a departure the lore dates."""

    entity: str
    kind: str  # "born", "died" or "gone"
    date: tuple[int, int, int]
    statement: Statement


class FactTable:
    """Every statement the lore makes, indexed by entity and by what it is about."""

    def __init__(self, notes: dict[str, NoteFacts]) -> None:
        """`notes`: each note's facts as ingest stored them."""
        self.registry = EntityRegistry(notes)
        self.gender = {}
        self.statements: list[Statement] = []
        own = {entity.source: entity for entity in self.registry.entities if not entity.scope}
        sections = {(entity.source, entity.scope): entity for entity in self.registry.entities}
        for source, facts in notes.items():
            owner = own.get(source)
            if owner is not None:
                self.gender[owner.name] = _gender(facts.pronouns)
            for raw in facts.statements:
                self.statements.append(self._statement(source, raw, owner, sections))
        self.by_key: dict[tuple[str, str], list[tuple[Claim, Statement]]] = {}
        for statement in self.statements:
            for claim in statement.claims:
                self.by_key.setdefault((claim.kind, claim.key), []).append((claim, statement))
        self.document_frequency = Counter(word for s in self.statements for word in s.words)
        self.life = _life_events(self.statements, self)
        self.present = _present_year(self.statements)
        years = [c.date[0] for s in self.statements for c in s.claims if c.kind == "year"]
        self.latest_year = max(years, default=0)  # the lore's last dated event: its present, at the latest

    def _statement(self, source: str, raw: dict, owner: Entity | None, sections: dict) -> Statement:
        sentence = raw["sentence"]
        named = self.names_in(sentence)
        path = tuple(raw["path"])
        scoped = [
            sections[(source, path[:n])] for n in range(len(path), 1, -1) if (source, path[:n]) in sections
        ]
        home = tuple(dict.fromkeys(e.name for e in [*scoped, *([owner] if owner else [])]))
        about = tuple(dict.fromkeys([*named, *home]))
        claims = [Claim.from_dict(claim) for claim in raw["claims"]]
        words = content_words(sentence)
        return Statement(
            sentence, source, " > ".join(path), claims, about, named, words, raw.get("previous", "")
        )

    def spellings(self, name: str) -> list[str]:
        """How the lore writes an entity: its name and its capitalised aliases ("Old Glass")."""
        entity = next((e for e in self.registry.entities if e.name == name), None)
        aliases = [re.sub(r"^the\s+", "", alias) for alias in (entity.aliases if entity else ())]
        return [name, *(alias for alias in aliases if alias[:1].isupper())]

    def names_in(self, text: str) -> tuple[str, ...]:
        """Whom a text names: each entity by its own name, and other proper names the lore writes as they
        are written ("Abel Ferro", who has no note)."""
        lower = text.lower()
        opener = WORD.search(text)
        entities = [
            (lower.find(m.matched.lower()), m.entity.name, m.matched)
            for m in self.registry.find(text)
            if not m.matched[:1].islower()  # a name is written with its capital: "the ledger" is no "Ledger"
            and not (opener and m.matched == opener.group() and m.matched.lower() in COMMON_OPENERS)
        ]  # ...and a common word opening a sentence is no name: "Nobody made room" is not Saint Nobody
        covered = " ".join(matched.lower() for _, _, matched in entities)
        others = []
        for folded, name in self.registry.names_in(text).items():
            bare = without_title(name)
            if " " in bare and folded not in covered:
                others.append((lower.find(folded), bare, bare))
        return tuple(dict.fromkeys(name for _, name, _ in sorted([*entities, *others])))


def _gender(pronouns: list[int]) -> str:
    """ "she", "he", or "" when the note does not clearly say."""
    female, male, female_words, male_words = [*pronouns, 0, 0, 0, 0][:4]
    for she, he, least in ((female, male, 2), (female_words, male_words, 3)):  # openers say most
        if she >= least and she >= least * he:
            return "she"
        if he >= least and he >= least * she:
            return "he"
    return ""


def _life_events(statements: list[Statement], table: "FactTable") -> dict[str, list[LifeEvent]]:
    """Births (with the year the sentence gives), and deaths and departures (dated when the sentence
    gives a year; (0, 0, 0) when it does not: "the late Matriarch", "Status: Deceased")."""
    events: dict[str, list[LifeEvent]] = {}
    for statement in statements:
        dates = [claim.date for claim in statement.claims if claim.kind == "year"]
        date = dates[0] if dates else (0, 0, 0)
        sentence = statement.sentence
        found = [(m.start(), "born") for m in re.finditer(r"\bborn\b", sentence, re.IGNORECASE) if dates]
        found += [(m.start(), "died" if m.group("died") else "gone") for m in _DEATH.finditer(sentence)]
        for position, kind in found[:2]:
            subject = _subject(statement, table, position)
            if subject:
                events.setdefault(subject, []).append(LifeEvent(subject, kind, date, statement))
        for subject, kind in _stated_dead(statement, table):
            events.setdefault(subject, []).append(LifeEvent(subject, kind, date, statement))
    return events


_STATUS = re.compile(
    r"^\W*status\W*:\W*(?:(?P<died>deceased|dead|died|killed|executed)|(?P<gone>missing|lost|gone))\b", re.I
)
_THE_LATE = re.compile(r"\bthe late\s+", re.IGNORECASE)


def _stated_dead(statement: Statement, table: "FactTable") -> list[tuple[str, str]]:
    """ "Status: Deceased" in a note about someone, and "the late Imane Varga" anywhere."""
    found = []
    status = _STATUS.match(statement.sentence.replace("*", ""))
    home = [name for name in statement.about if name not in statement.named]
    if status and home:
        found.append((home[0], "died" if status.group("died") else "gone"))
    for late in _THE_LATE.finditer(statement.sentence):
        named = table.names_in(statement.sentence[late.end() :])
        after = statement.sentence[late.end() :].split()
        if named and after and named[0].split()[-1] in " ".join(after[:4]):
            found.append((named[0], "died"))
    return found


_RELATIVES = re.compile(
    r"\b(?:mother|father|parents?|wife|husband|son|daughter|brother|sister|grandmother|grandfather|"
    r"child|children|crew|family|friend|predecessor|successor|cousin|partner)\b",
    re.IGNORECASE,
)


def _subject(statement: Statement, table: "FactTable", position: int) -> str:
    """Whom a birth or death word at `position` is about: the name just before it ("Abel Ferro killed",
    "Ruth Adeyemi among the 37 dead"), the one a leading pronoun points back to, the note's own entity
    for "Born ...", or the name after "among them"; "" when unclear."""
    sentence = statement.sentence
    before = sentence[:position]
    closest = None
    for name in table.names_in(before):
        written = _written(before, name, table)
        if written is None:
            continue
        between = before[written[1] :]
        if (
            len(between.split()) <= 4
            and not _RELATIVES.search(between)
            and (not closest or written[0] > closest[0])
        ):
            closest = (written[0], name)
    if closest:
        return closest[1]
    if _PRONOUN_OPENER.match(sentence) and len(before.split()) <= 2:
        earlier = table.names_in(statement.previous) if statement.previous else ()
        home = [name for name in statement.about if name not in statement.named]
        return earlier[0] if earlier else (home[0] if home else "")
    opener = sentence.lstrip("*_ ").split(" ", 1)[0].lower().strip("*:")
    home = [name for name in statement.about if name not in statement.named]
    if home and opener == "born":
        return home[0]
    after = re.search(r"\bamong (?:them|whom|the dead)\W+(.+)", sentence[position:], re.IGNORECASE)
    if after:
        named = table.names_in(after.group(1))
        return named[0] if named else ""
    return ""


def _written(text: str, name: str, table: "FactTable") -> tuple[int, int] | None:
    """Where `name` (or one of its aliases) last appears in `text`: (start, end)."""
    entity = next((e for e in table.registry.entities if e.name == name), None)
    spellings = [name, *(entity.aliases if entity else ())]
    best = None
    for spelling in spellings:
        for match in re.finditer(rf"(?<!\w){re.escape(spelling)}(?!\w)", text, re.IGNORECASE):
            if best is None or match.start() > best[0]:
                best = match.span()
    return best


def _present_year(statements: list[Statement]) -> int:
    """The book's present as the lore states it ("Present day of the book: mid-2417"), or 0."""
    for statement in statements:
        years = [claim.date[0] for claim in statement.claims if claim.kind == "year"]
        if years and re.search(r"\bpresent\b", statement.sentence, re.IGNORECASE):
            return years[-1]
    return 0


def lore_version(workspace: Workspace, collection: str | None = None) -> tuple:
    """The version of a collection's index: it changes with every ingest that changes something."""
    name = collection or workspace.settings.lore.collection
    index = LoreIndex(workspace.index_dir)
    return index.open(name).version if name in index.names() else ()


def open_facts(workspace: Workspace, collection: str | None = None) -> FactTable:
    """The fact table of one of the workspace's collections (its `[lore] collection` unless named), read
    from the index without loading the embedding model."""
    name = collection or workspace.settings.lore.collection
    index = LoreIndex(workspace.index_dir)
    if name not in index.names():
        raise UserError(
            f"no lore collection {name!r} in {workspace.index_dir}: run `scifi-llm lore ingest` first"
        )
    stored = index.open(name)
    if stored.format != FORMAT:
        raise UserError(
            f"lore collection {name} was written by an older scifi-llm: "
            "run `scifi-llm lore ingest` to rebuild it"
        )
    rows = stored.rows(["source", "facts"], where="facts != ''")
    return FactTable({row["source"]: NoteFacts.from_dict(json.loads(row["facts"])) for row in rows})
