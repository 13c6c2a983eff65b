"""`scifi-llm lore harvest`: what the drafts say that the lore does not, proposed for the writer to review.

Two kinds of proposal:
- a stub note for each person, place or thing the drafts name that the lore does not know, with the
  sentences that mention it and the shorter forms of its name the drafts use ("Perrin" for Perrin Vale);
- a new fact about a known entity that the lore does not state yet: a look the draft gives it ("his grey
  eyes", "Hollis Brandt's grey eyes") where the lore describes no such thing of it, a rank or trade where
  the lore gives none, an age where the lore has neither age nor birth year.
Contradictions are `check`'s business, not harvest's. Nothing is written into the lore unless applied:
then stubs become new notes under `lore/harvested/`, and facts a clearly marked section appended to
the entity's note.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from scifi_llm.check.drafts import Lore
from scifi_llm.check.facts import lore_roles, roles_of
from scifi_llm.check.names import name_findings
from scifi_llm.check.reading import DraftSentence, read_draft
from scifi_llm.check.timeline import age_said
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.text import split_sentences

HARVESTED_FOLDER = "harvested"
_MIN_MENTIONS = 2  # a name seen once may be a passer-by; twice, the story is building someone


@dataclass
class Mention:
    """Where a draft says something: file, line and the sentence."""

    file: str
    line: int
    sentence: str

    def shown(self) -> str:
        """`chapter.md:12: "..."`."""
        return f'{Path(self.file).name}:{self.line}: "{self.sentence}"'


@dataclass
class Stub:
    """A note the lore lacks: a name the drafts use, its shorter forms, and where it appears."""

    name: str
    aliases: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON shape of a proposal."""
        return {"kind": "stub", "name": self.name, "aliases": self.aliases,
                "mentions": [m.__dict__ for m in self.mentions]}  # fmt: skip


@dataclass
class NewFact:
    """Something the drafts say about a known entity that its note does not."""

    entity: str
    note: str  # the entity's note (source path)
    attribute: str  # "eyes", "role", "age"
    value: str
    mention: Mention

    def to_dict(self) -> dict:
        """The JSON shape of a proposal."""
        return {"kind": "fact", "entity": self.entity, "note": self.note, "attribute": self.attribute,
                "value": self.value, "mention": self.mention.__dict__}  # fmt: skip


def harvest_drafts(lore: Lore, drafts: dict[str, str]) -> tuple[list[Stub], list[NewFact]]:
    """Proposals from `drafts` (file name -> text): stubs for new names, new facts about known entities."""
    stubs: dict[str, Stub] = {}
    facts: list[NewFact] = []
    for file, text in drafts.items():
        for finding in name_findings(text, file, lore.names, lore.table.registry.word_case):
            if finding.kind == "not in lore":
                stub = stubs.setdefault(finding.text, Stub(finding.text))
                stub.mentions.append(Mention(file, finding.line, finding.sentence))
        for sentence in read_draft(text, file, lore.table).sentences:
            facts += _new_facts(file, sentence, lore)
    merged = _merge_stubs(stubs)
    for stub in merged:
        _add_short_forms(stub, drafts)
    return merged, _unique(facts)


def _add_short_forms(stub: Stub, drafts: dict[str, str]) -> None:
    """The lines that call a new name by one of its words alone ("Perrin never changed the sign")."""
    words = stub.name.split()
    if len(words) < 2:
        return
    seen = {(m.file, m.line) for m in stub.mentions}
    for word in (words[0], words[-1]):
        alone = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])(?!\s+{re.escape(words[-1])})")
        for file, text in drafts.items():
            for number, line in enumerate(text.splitlines(), start=1):
                sentence = next(
                    (s for s in split_sentences(line) if alone.search(s) and stub.name not in s), ""
                )
                if not sentence:
                    continue
                if word not in stub.aliases:
                    stub.aliases.append(word)
                if (file, number) not in seen:
                    stub.mentions.append(Mention(file, number, sentence))
                    seen.add((file, number))


def _merge_stubs(stubs: dict[str, Stub]) -> list[Stub]:
    """Fold a one-word name into the longer name it is part of ("Cass" into Cass Whitlow), as an alias;
    keep the names the drafts use often enough."""
    long_names = [name for name in stubs if " " in name]
    kept = []
    for name, stub in stubs.items():
        if not _is_a_name(name):
            continue
        owners = [long for long in long_names if name != long and name in long.split()]
        if len(owners) == 1:
            owner = stubs[owners[0]]
            owner.aliases.append(name)
            owner.mentions += stub.mentions
        else:
            kept.append(stub)
    return [stub for stub in kept if len(stub.mentions) >= _MIN_MENTIONS or " " in stub.name]


def _is_a_name(name: str) -> bool:
    """False for what the names layer lets through but no writer would make a note of: "I'm", "At ..."."""
    first = name.split()[0].lower()
    return "'" not in first and "’" not in first and first not in _NOT_NAMES


_NOT_NAMES = frozenset(
    "at in on of to by for from with and but or the a an i i'm it he she they we you".split()
)


def _new_facts(file: str, sentence: DraftSentence, lore: Lore) -> list[NewFact]:
    found = []
    mention = Mention(file, sentence.line, sentence.text)
    for name in sentence.meant:
        note = _note_of(lore, name)
        if not note:
            continue
        for thing, values in _looks_owned(sentence, name, lore):
            if not _lore_describes(lore, name, thing):
                found.append(NewFact(name, note, thing, " ".join(values), mention))
        said = roles_of(sentence.text, name, lore.table.spellings(name))
        if said and not lore_roles(lore.table, name):
            head, rank = said[0]
            found.append(NewFact(name, note, "role", f"{rank} {head}".strip(), mention))
        age = age_said(sentence, name, lore.table)
        if age is not None and not lore.ages.knows(name):
            found.append(NewFact(name, note, "age", str(age), mention))
    return found


def _note_of(lore: Lore, name: str) -> str:
    entity = next((e for e in lore.table.registry.entities if e.name == name), None)
    return entity.source if entity else ""


def _looks_owned(sentence: DraftSentence, name: str, lore: Lore):
    """The looks the sentence gives to `name`'s own things: "his grey eyes", "Hollis Brandt's grey eyes"."""
    owners = [re.escape(spelling) + r"(?:'s|’s)" for spelling in lore.table.spellings(name)]
    gender = lore.table.gender.get(name)
    alike = [other for other in sentence.meant if lore.table.gender.get(other) == gender]
    if gender and alike == [name]:
        owners.append("his" if gender == "he" else "her")  # the only person the pronoun can stand for
    owner = re.compile(rf"\b(?:{'|'.join(owners)})\s+(?:[\w-]+\s+)?$", re.IGNORECASE)
    for claim in sentence.claims:
        if claim.kind == "look" and owner.search(sentence.text[: claim.start]):
            yield claim.key, claim.value


def _lore_describes(lore: Lore, name: str, thing: str) -> bool:
    return any(name in statement.about for _, statement in lore.table.by_key.get(("look", thing), []))


def _unique(facts: list[NewFact]) -> list[NewFact]:
    seen, kept = set(), []
    for fact in facts:
        key = (fact.entity, fact.attribute, fact.value)
        if key not in seen:
            seen.add(key)
            kept.append(fact)
    return kept


def review_text(stubs: list[Stub], facts: list[NewFact]) -> str:
    """The review file: every proposal, with where the drafts say it."""
    intro = "Proposals from the drafts. Nothing here is in the lore until `scifi-llm lore harvest --apply`."
    lines = [f"# Lore harvest, {date.today().isoformat()}", "", intro, ""]
    lines += ["## New names the lore does not know", ""] if stubs else []
    for stub in stubs:
        aliases = f" (also: {', '.join(stub.aliases)})" if stub.aliases else ""
        lines += [f"### {stub.name}{aliases}", "", *(f"- {m.shown()}" for m in stub.mentions), ""]
    lines += ["## New facts about known entities", ""] if facts else []
    for fact in facts:
        lines.append(
            f"- **{fact.entity}** ({fact.note}): {fact.attribute}: {fact.value}, from {fact.mention.shown()}"
        )
    return "\n".join(lines).rstrip() + "\n"


def apply_harvest(lore_dir: Path, stubs: list[Stub], facts: list[NewFact]) -> list[Path]:
    """Write the proposals into the lore: a new note per stub (never over an existing file), and one
    marked section appended to each note that gains facts. The files written, for ingest."""
    written = []
    for stub in stubs:
        path = lore_dir / HARVESTED_FOLDER / f"{_slug(stub.name)}.md"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, stub_note(stub))
        written.append(path)
    by_note: dict[str, list[NewFact]] = {}
    for fact in facts:
        by_note.setdefault(fact.note, []).append(fact)
    for note, gained in by_note.items():
        path = lore_dir / note
        text = path.read_text()
        lines = [
            line
            for f in gained
            if (line := f"- {f.attribute}: {f.value} (from {f.mention.shown()})") not in text
        ]
        if lines:  # applying twice adds nothing twice
            section = [f"\n\n## Harvested from the drafts ({date.today().isoformat()}, to review)\n", *lines]
            atomic_write_text(path, text.rstrip("\n") + "\n".join(section) + "\n")
            written.append(path)
    return written


def stub_note(stub: Stub) -> str:
    """A new note for a name the drafts introduced."""
    fields = yaml.safe_dump(
        {"name": stub.name, "aliases": stub.aliases, "tags": ["harvested"]}, sort_keys=False
    )
    head = ["---", fields.rstrip("\n"), "---", f"# {stub.name}", ""]
    notice = f"*Harvested from the drafts on {date.today().isoformat()}: review, then write what is true.*"
    body = [notice, "",
            "## Mentions", *(f"- {m.shown()}" for m in stub.mentions)]  # fmt: skip
    return "\n".join(head + body) + "\n"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unnamed"
