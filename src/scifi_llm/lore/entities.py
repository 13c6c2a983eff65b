"""The entity registry: the names, titles and nicknames of the world's people, ships and places.

Writers rarely tag everything, so names come from several places: front matter (`name`, `aliases`),
a note's title, headings that are proper names (judged by how the whole lore capitalises their words),
aliases stated in prose ("known as the Magistrate", Tomas "Rook" Adeyemi), and unambiguous parts of
multi-word names ("Elena" for Elena Voss, unless another entity is also an Elena).

Ingest stores one `NoteFacts` per file; the registry is rebuilt from all of them when a collection is
opened, because whether a word is a proper name depends on the whole lore.
"""

import re
from dataclasses import asdict, dataclass, field

from scifi_llm.lore.links import LinkResolver
from scifi_llm.lore.markdown import Document
from scifi_llm.text import is_proper_word, strip_possessive, word_case_counts, words_in

_ALIAS_TRIGGER = re.compile(
    r"\b(?:known(?:\s[^.;:\"“]{0,40}?)?\s+as|referred to as|remembered as|nicknamed|dubbed|a\.k\.a\.|aka|"
    r"goes by|go by|went by|answers to|called|calls?\s+(?:her|him|them|it)|call)\s+",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"(?:the\s+)?[\"“‘']([^\"”’'\n]{2,40})[\"”’']")
_CAPITALISED = re.compile(r"(?:[Tt]he\s+)?([A-Z][\w’'-]*(?:\s+(?:of\s+the\s+|of\s+)?[A-Z][\w’'-]*){0,3})")
_NICKNAME = re.compile(r"\s+[\"“][^\"”\n]{2,30}[\"”]\s+")
_NICKNAME_IN_NAME = re.compile(r"\b([A-Z][\w’'-]+)\s+[\"“]([^\"”\n]{2,30})[\"”]\s+([A-Z][\w’'-]+)")
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "by",
        "from",
        "as",
        "before",
        "after",
        "under",
        "over",
    ]
)
_GENERIC_WORDS = _STOPWORDS | frozenset(
    [
        "station",
        "moon",
        "planet",
        "world",
        "city",
        "port",
        "colony",
        "base",
        "ship",
        "fleet",
        "vessel",
        "class",
        "drive",
        "engine",
        "core",
        "empire",
        "republic",
        "union",
        "guild",
        "order",
        "house",
        "council",
        "company",
        "corps",
        "war",
        "wars",
        "battle",
        "treaty",
        "system",
        "belt",
        "ring",
        "gate",
        "project",
        "protocol",
        "captain",
        "commander",
        "admiral",
        "doctor",
        "sergeant",
        "lieutenant",
        "general",
        "old",
        "new",
        "north",
        "south",
        "east",
        "west",
        "upper",
        "lower",
        "great",
        "little",
        "first",
        "second",
        "third",
        "mk",
        "mark",
    ]
)


# A name shared by more entities than this ("the Captain" in a world of captains) triggers none of them.
MAX_SHARED_ALIAS = 3


@dataclass
class NoteFacts:
    """What one note says about names, and the sentences it states checkable facts in (see `lore.facts`):
    stored with the note's chunks, merged into the registry and the fact table later."""

    title: str
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    headings: list[list[str]] = field(default_factory=list)
    prose_aliases: list[tuple[str, list[str]]] = field(default_factory=list)
    word_case: dict[str, list[int]] = field(default_factory=dict)
    link_labels: list[tuple[str, str]] = field(default_factory=list)
    statements: list[dict] = field(default_factory=list)
    pronouns: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # see lore.facts.note_statements

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def add(self, later: "NoteFacts") -> None:
        """Take in the facts of a later piece of the same note (its title and front matter are this one's)."""
        self.headings += later.headings
        self.prose_aliases += later.prose_aliases
        self.link_labels = list(dict.fromkeys([*self.link_labels, *later.link_labels]))
        self.statements += later.statements
        self.pronouns = [mine + theirs for mine, theirs in zip(self.pronouns, later.pronouns, strict=True)]
        self.word_case = {word: list(counts) for word, counts in _merge_word_case([self, later]).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "NoteFacts":
        """The inverse of `to_dict`."""
        values = dict(values)
        values["prose_aliases"] = [(alias, list(path)) for alias, path in values.get("prose_aliases", [])]
        values["link_labels"] = [(note, label) for note, label in values.get("link_labels", [])]
        return cls(**values)


@dataclass(frozen=True)
class Entity:
    """A named thing and where the lore describes it: a whole note, or one section path within it."""

    name: str
    source: str
    scope: tuple[str, ...]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mention:
    """An entity named in a query, and the words that named it."""

    entity: Entity
    matched: str

    @property
    def by_alias(self) -> bool:
        """True when the query used a nickname or alias rather than the entity's own name."""
        return _normal(self.matched) != _normal(self.entity.name)


def note_facts(document: Document) -> NoteFacts:
    """Collect the names a note declares or states, and how it capitalises its words."""
    facts = NoteFacts(
        title=document.title,
        aliases=_front_matter_list(document.front_matter, "aliases"),
        tags=_front_matter_list(document.front_matter, "tags"),
        link_labels=list(dict.fromkeys((note, label) for note, label in document.links if label)),
    )
    sentences: list[str] = []
    for section in document.sections:
        if len(section.path) > 1:
            facts.headings.append(list(section.path))
        for block in section.blocks:
            sentences.extend(block.sentences)
            for sentence in block.sentences:
                facts.prose_aliases.extend((alias, list(section.path)) for alias in stated_aliases(sentence))
    facts.word_case = word_case_counts(sentences)
    return facts


def stated_aliases(sentence: str) -> list[str]:
    """Aliases a sentence states: `known as the Magistrate`, `called "Rook"`, Tomas "Rook" Adeyemi."""
    aliases = []
    for match in _NICKNAME_IN_NAME.finditer(sentence):
        aliases.extend([match.group(2), f"{match.group(1)} {match.group(3)}"])
    for trigger in _ALIAS_TRIGGER.finditer(sentence):
        rest = sentence[trigger.end() :]
        quoted = _QUOTED.match(rest)
        named = quoted or _CAPITALISED.match(rest)
        if named:
            aliases.append(named.group(1).strip(" ,.;:"))
    return [alias for alias in aliases if 2 <= len(alias) <= 40 and len(alias.split()) <= 5]


class EntityRegistry:
    """All entities of a collection, and a matcher that finds them in a query (whole words, any case)."""

    def __init__(self, notes: dict[str, NoteFacts]) -> None:
        self.word_case = _merge_word_case(notes.values())
        self.entities = self._build(notes)
        self._by_alias: dict[str, list[Entity]] = {}
        for entity in self.entities:
            for alias in {entity.name, *entity.aliases}:
                key = _normal(alias)
                if key and entity not in self._by_alias.setdefault(key, []):
                    self._by_alias[key].append(entity)
        self._by_alias = {
            key: found for key, found in self._by_alias.items() if len(found) <= MAX_SHARED_ALIAS
        }
        body = _trie_pattern(self._by_alias)
        self._pattern = re.compile(rf"(?<!\w)(?:the\s+)?({body})(?!\w)", re.IGNORECASE) if body else None

    def find(self, query: str) -> list[Mention]:
        """The entities named in `query`, longest names first where they overlap, each entity once."""
        if self._pattern is None:
            return []
        mentions: dict[Entity, Mention] = {}
        for match in self._pattern.finditer(query):
            for entity in self._by_alias[_normal(match.group(1))]:
                mentions.setdefault(entity, Mention(entity, match.group(1)))
        return list(mentions.values())

    def names_in(self, text: str) -> dict[str, str]:
        """The proper names a text uses (runs of capitalised words the lore writes as names): folded name
        -> the name as written."""
        names: dict[str, str] = {}
        for match in _CAPITALISED.finditer(text):
            words = [strip_possessive(word) for word in match.group(1).split()]
            while words and not (self.is_proper(words[0]) and words[0].lower() not in _GENERIC_WORDS):
                words = words[1:]
            if words and (len(words) > 1 or len(words[0]) >= 3):
                names.setdefault(_normal(" ".join(words)), " ".join(words))
        return names

    def is_proper(self, word: str) -> bool:
        """True when the lore writes `word` as a name: capitalised mid-sentence, rarely if ever lowercase."""
        return is_proper_word(word, self.word_case)

    def _build(self, notes: dict[str, NoteFacts]) -> list[Entity]:
        draft: dict[tuple[str, tuple[str, ...]], tuple[str, list[str]]] = {}
        for source, facts in notes.items():
            draft[(source, ())] = (facts.title, list(facts.aliases))
            for path in facts.headings:
                if self._names_a_thing(path[-1]):
                    draft[(source, tuple(path))] = (path[-1], [])
        names = {_normal(name) for name, _ in draft.values()}
        for source, facts in notes.items():
            for alias, path in facts.prose_aliases:
                owner = _innermost_scope(draft, source, tuple(path))
                if _normal(alias) not in names or _normal(alias) == _normal(draft[owner][0]):
                    draft[owner][1].append(alias)
        self._add_link_labels(draft, notes, names)
        part_owners = self._name_parts(draft)
        entities = []
        for (source, scope), (name, aliases) in draft.items():
            owner = _normal(_NICKNAME.sub(" ", name))
            parts = [part for part, owners in part_owners.items() if owners == {owner}]
            unique = tuple(
                dict.fromkeys(alias for alias in [*aliases, *parts] if _normal(alias) != _normal(name))
            )
            entities.append(Entity(name, source, scope, unique))
        return entities

    @staticmethod
    def _add_link_labels(draft: dict, notes: dict[str, NoteFacts], names: set[str]) -> None:
        """A wikilink's label that is a name (`[[Vesna Orlov|the Jackal]]`) is a nickname of its note."""
        resolver = LinkResolver(list(notes))
        for facts in notes.values():
            for note, label in facts.link_labels:
                target = resolver.resolve(note)
                named = [w for w in words_in(label) if w[0].isupper() and w.lower() not in _GENERIC_WORDS]
                if target is not None and named and _normal(label) not in names:
                    draft[(target, ())][1].append(label)

    def _names_a_thing(self, heading: str) -> bool:
        """A heading names a thing when it is in Title Case and its specific words are proper names."""
        words = [word for word in words_in(heading) if word.lower() not in _STOPWORDS]
        if not words or not all(word[0].isupper() for word in words):
            return False
        named = [word for word in words if word.lower() not in _GENERIC_WORDS]
        return bool(named) and all(self.is_proper(word) for word in named)

    def _name_parts(self, draft: dict) -> dict[str, set]:
        """Single proper words of names and aliases, with the names of the entities using them.

        Owners are counted by name, so a person with a note of their own and a section in a roster
        (Wren Asheby, Wren "Wick" Asheby) still owns their first name.
        """
        owners: dict[str, set] = {}
        for _key, (name, aliases) in draft.items():
            owner = _normal(_NICKNAME.sub(" ", name))
            for full in (name, *aliases):
                for word in words_in(full):
                    word = strip_possessive(word)
                    if len(word) >= 3 and word.lower() not in _GENERIC_WORDS and self.is_proper(word):
                        owners.setdefault(word, set()).add(owner)
        return owners


def _trie_pattern(keys) -> str:
    """One regular expression matching any of `keys`, the longest first, built as a trie: a text is read
    once per position whatever the number of names (an alternation of thousands of names, tried one by
    one, made a registry of a large world slow on every chunk it read)."""
    trie: dict = {}
    for key in keys:
        node = trie
        for char in key:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_branch(trie) if trie else ""


def _trie_branch(node: dict) -> str:
    branches = [_trie_char(char) + _trie_branch(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def _trie_char(char: str) -> str:
    return {" ": r"\s+", "'": "['’]"}.get(char, re.escape(char))


def _front_matter_list(front_matter: dict, key: str) -> list[str]:
    """A list field of front matter, also accepted as one comma-separated string."""
    values = front_matter.get(key) or []
    if isinstance(values, str):
        values = values.split(",")
    if not isinstance(values, list):
        return []
    return [str(value).strip() for value in values if str(value).strip()]


def _merge_word_case(notes) -> dict[str, tuple[int, int, int]]:
    totals: dict[str, list[int]] = {}
    for facts in notes:
        for word, counts in facts.word_case.items():
            total = totals.setdefault(word, [0, 0, 0])
            for index, count in enumerate(counts):
                total[index] += count
    return {word: tuple(counts) for word, counts in totals.items()}


def _innermost_scope(draft: dict, source: str, path: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    for depth in range(len(path), 1, -1):
        if (source, path[:depth]) in draft:
            return (source, path[:depth])
    return (source, ())


def _normal(name: str) -> str:
    """A name folded for matching: lower case, single spaces, no leading `the`, no surrounding quotes."""
    name = re.sub(r"\s+", " ", name.strip(" \"“”‘’'.,;:")).lower().replace("’", "'")
    return name[4:] if name.startswith("the ") else name
