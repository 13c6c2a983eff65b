"""What a sentence claims that a checker can compare: quantities, colours and materials, years and dates.

The lore's notes and the writer's drafts are read by the same functions, so "61,000 people" in a note
and "ninety thousand people" in a chapter become the same kind of claim about the same thing (people),
with values that can be compared. Nothing here knows the world: the words are English, the things are
whatever the sentence counts or describes.
"""

import re
from dataclasses import dataclass

from scifi_llm.text import WORD

_SMALL = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORD = "|".join([*_SMALL, *_SCALES])
_NUMBER = re.compile(
    rf"(?<![\w.,])(?:(?P<digits>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    rf"|(?P<words>(?:an?[ -])?(?:{_NUMBER_WORD})"
    rf"(?:(?:[ -]|[ -]and[ -]|[ -]point[ -])(?:{_NUMBER_WORD}))*))(?![\w])",
    re.IGNORECASE,
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "twenty-first": 21, "twenty-second": 22, "twenty-third": 23, "twenty-fourth": 24,
    "twenty-fifth": 25, "twenty-sixth": 26, "twenty-seventh": 27, "twenty-eighth": 28,
    "twenty-ninth": 29, "thirtieth": 30, "thirty-first": 31,
}  # fmt: skip
_MONTH_NAMES = "january february march april may june july august september october november december"
MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES.split(), start=1)}
# A unit's spellings -> (the unit compared, the factor to it).
_UNITS = {
    "m": ("m", 1), "metre": ("m", 1), "meter": ("m", 1), "km": ("m", 1000), "kilometre": ("m", 1000),
    "kilometer": ("m", 1000), "cm": ("m", 0.01), "centimetre": ("m", 0.01), "centimeter": ("m", 0.01),
    "mm": ("m", 0.001), "millimetre": ("m", 0.001), "kg": ("kg", 1), "kilo": ("kg", 1),
    "kilogram": ("kg", 1), "tonne": ("kg", 1000), "ton": ("kg", 1000), "°c": ("°c", 1), "degree": ("°c", 1),
    "%": ("%", 1), "percent": ("%", 1), "second": ("s", 1), "sec": ("s", 1), "minute": ("s", 60),
    "min": ("s", 60), "hour": ("s", 3600), "day": ("day", 1), "week": ("day", 7), "g": ("g", 1),
    "n": ("n", 1), "newton": ("n", 1),
}  # fmt: skip
_DIMENSIONS = frozenset(["long", "deep", "wide", "high", "tall", "across", "thick", "away"])
# Words after a number that end the thing it counts: "37 brass plaques on ...", "61,000 people living".
_STOP_AFTER = frozenset(
    """
    of per in on at to for with from by who that which and or but as than when where while into onto
    over under against toward towards behind beside across through around along like near past inside
    outside beneath below above between among within without upon onto into each a an the is are was
    were be been has have had it its their his her our more less fewer older younger times ago before
    after later earlier since until years year old she he they we you i me him them us
    """.split()
)
_APPROXIMATE = re.compile(
    r"\b(?:about|around|roughly|nearly|almost|some|over|under|more than|less than|fewer than|up to|"
    r"approximately|at least|at most|close to|barely|just)\s+$",
    re.IGNORECASE,
)
COLOURS = {
    "white": "white", "snow": "white", "snowy": "white", "ivory": "white", "cream": "white",
    "pale": "white", "grey": "grey", "gray": "grey", "slate": "grey", "ashen": "grey", "ash": "grey",
    "silver": "grey", "steel": "grey", "pewter": "grey", "charcoal": "black", "black": "black",
    "dark": "black", "jet": "black", "ebony": "black", "inky": "black", "sooty": "black", "red": "red",
    "crimson": "red", "scarlet": "red", "rust": "red", "ruby": "red", "maroon": "red", "vermilion": "red",
    "cherry": "red", "wine": "red", "brick": "red", "blood": "red", "rose": "red", "pink": "red",
    "orange": "orange", "ochre": "orange", "amber": "orange", "copper": "orange", "tawny": "orange",
    "yellow": "yellow", "gold": "yellow", "golden": "yellow", "lemon": "yellow", "mustard": "yellow",
    "blond": "yellow", "blonde": "yellow", "straw": "yellow", "sand": "yellow", "sandy": "yellow",
    "green": "green", "emerald": "green", "olive": "green", "jade": "green", "lime": "green",
    "moss": "green", "bottle": "green", "sage": "green", "teal": "cyan", "cyan": "cyan", "blue": "blue",
    "navy": "blue", "azure": "blue", "cobalt": "blue", "sapphire": "blue", "indigo": "violet",
    "violet": "violet", "purple": "violet", "lilac": "violet", "lavender": "violet", "mauve": "violet",
    "plum": "violet", "brown": "brown", "chestnut": "brown", "hazel": "brown", "umber": "brown",
    "russet": "brown", "auburn": "brown", "tan": "brown", "bronze": "brown", "chocolate": "brown",
    "coffee": "brown", "mahogany": "brown", "sepia": "brown",
}  # fmt: skip
MATERIALS = frozenset(
    """
    brass copper silver gold iron steel tin lead bronze pewter titanium aluminium aluminum chrome nickel
    zinc platinum glass ceramic porcelain clay stone basalt granite marble slate obsidian flint jade
    crystal quartz amber bone ivory horn wood wooden oak pine ash ironwood teak cedar walnut birch
    bamboo leather hide suede silk wool woollen cotton linen hemp canvas velvet felt oilskin oilcloth
    rubber plastic carbon concrete paper parchment rope wire resin enamel lacquer
    """.split()
)
_GROUNDED = frozenset(["wire", "rope"])  # materials that are also things: "copper wire" is wire


@dataclass(frozen=True)
class Claim:
    """One checkable thing a sentence says.

    kind: "quantity" (a number of a unit or thing), "look" (colours or materials of a thing), "year" (a
    year or a date). `key` is what the value is about ("people", "m deep", "door"; "" for a year);
    `value` is a number for quantities and years, a sorted tuple of words for looks. `start`, `end`
    locate the words in the sentence.
    """

    kind: str
    key: str
    value: float | tuple[str, ...]
    start: int
    end: int
    approximate: bool = False
    date: tuple[int, int, int] = (0, 0, 0)  # (year, month, day) for years; 0 where not said

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, values: dict) -> "Claim":
        """The inverse of `to_dict`."""
        values = dict(values)
        if isinstance(values["value"], list):
            values["value"] = tuple(values["value"])
        values["date"] = tuple(values.get("date", (0, 0, 0)))
        return cls(**values)


def parse_number(text: str) -> float | None:
    """The value of a number written in digits or words ("61,000", "1.55", "a hundred and eight")."""
    text = text.strip().lower().replace(",", "")
    try:
        return float(text)
    except ValueError:
        pass
    whole, point, decimals = text.partition(" point ")
    if point:  # "two point two million": the decimals are single digits, the scale comes last
        digits = [d for d in re.split(r"[ -]+", decimals) if d in _SMALL and _SMALL[d] < 10]
        scale = next((_SCALES[w] for w in re.split(r"[ -]+", decimals) if w in _SCALES), 1)
        head = parse_number(whole)
        return (
            None if head is None else (head + float("0." + "".join(str(_SMALL[d]) for d in digits))) * scale
        )
    total, current, seen = 0, 0, False
    for word in re.split(r"[ -]+", text):
        if word in ("a", "an"):
            current = max(current, 1)
        elif word in _SMALL:
            current += _SMALL[word]
            seen = True
        elif word == "hundred":
            current = max(current, 1) * 100
            seen = True
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current, seen = 0, True
    return float(total + current) if seen else None


def claims_in(sentence: str) -> list[Claim]:
    """The quantities, looks and years a sentence states. A year is a four-digit number that counts
    nothing, or any number followed by a calendar's era ("572 AR")."""
    clean = sentence.replace("*", " ").replace("_", " ")
    field = _FIELD.match(clean)
    return [*_years(clean), *_quantities(clean, field.group(1).lower() if field else ""), *_looks(clean)]


def _quantities(sentence: str, field: str) -> list[Claim]:
    """Numbers with what they count. In a `Population: 41,000` line the field names what is counted."""
    claims = []
    for match in _NUMBER.finditer(sentence):
        value = parse_number(match.group())
        if value is None or _is_year(sentence, match):
            continue
        number_end = match.end()
        scale = re.match(r"\s+(million|thousand|billion)\b", sentence[number_end:], re.IGNORECASE)
        if match.group("digits") and scale:  # "2.2 million km"
            value *= {"million": 1e6, "thousand": 1e3, "billion": 1e9}[scale.group(1).lower()]
            number_end += scale.end()
        key, end = _counted_thing(sentence, number_end)
        if field and (not key or key in _UNITS):
            key = _field_key(field, key)
        if (
            not key
            or _interval(sentence, match, key, end)
            or (not field and _label(sentence, value, key, end))
        ):
            continue
        if key in ("metre", "meter") and (centimetres := _centimetres(sentence, end)):
            value, end = value + centimetres[0] / 100, centimetres[1]  # "one metre forty"
        unit, factor = _UNITS.get(key.split()[0], (None, 1))
        if unit is not None:
            key = " ".join([unit, *key.split()[1:]])
        approximate = bool(_APPROXIMATE.search(sentence[: match.start()]))
        claims.append(Claim("quantity", key, value * factor, match.start(), end, approximate))
    return claims


def _label(sentence: str, value: float, key: str, end: int) -> bool:
    """True for a number that names rather than counts: "Bore 6", "the 7 lock", "Six control room" (more
    than one of a thing is written in the plural)."""
    if key in _UNITS or key.split()[0] in _UNITS or " per " in key or value == 1:
        return False
    if re.search(r"\d-[a-z]+$", sentence[:end]):  # "a 24-jar carousel" counts jars, in the singular
        return False
    last = re.findall(r"[A-Za-z][\w-]*", sentence[:end])[-1].lower()
    return _singular(last) == last and last not in _SAME_IN_PLURAL


_SAME_IN_PLURAL = frozenset(
    "people crew staff sheep fish deer cattle craft aircraft folk kin personnel series species".split()
)


def _centimetres(sentence: str, end: int) -> tuple[float, int] | None:
    """The "forty" after "one metre": centimetres, and where they end."""
    match = re.match(r"\s+(\w+(?:-\w+)?)\b", sentence[end:])
    extra = parse_number(match.group(1)) if match else None
    return (extra, end + match.end()) if extra is not None and extra < 100 else None


def _interval(sentence: str, match: re.Match, key: str, end: int) -> bool:
    """True for a span of time that says when, not how long a thing is ("two days later", "one day")."""
    if key not in ("day", "s", "year", "month", "night", "morning", "evening", "week"):
        return False
    if match.group().lower() in ("one", "a", "an"):
        return True
    return bool(
        re.match(
            r"\s+(?:later|ago|earlier|before|after|afterwards|on|since|running|in a row)\b",
            sentence[end:],
            re.I,
        )
    )


def _counted_thing(sentence: str, position: int) -> tuple[str, int]:
    """What the number ending at `position` counts: a unit ("m deep", "marks per day") or the last word
    of the noun phrase after it ("brass plaques" -> "plaque"); ("", position) when nothing is counted."""
    rest = sentence[position:]
    if re.match(r"\s?(?:%|per ?cent\b)", rest, re.I):
        return "%", position + len(re.match(r"\s?(?:%|per ?cent)", rest, re.I).group())
    if re.match(r"\s?°\s?C\b", rest):
        return "°c", position + len(re.match(r"\s?°\s?C", rest).group())
    compound = re.match(r"-([a-z]+)\b", rest)  # "a 24-jar carousel"
    if compound and compound.group(1) not in _SMALL:
        return _singular(compound.group(1)), position + compound.end()
    words: list[tuple[str, int]] = []
    for match in re.finditer(r"\s+([A-Za-z][\w-]*)", rest):
        if match.start() != (words[-1][1] - position if words else 0):
            break
        word = match.group(1)
        lower = word.lower()
        verb_like = lower.endswith(("ing", "ed")) and (words or lower.endswith("ing"))
        if lower in _STOP_AFTER or word[0].isupper() or verb_like or len(words) == 3 or lower in _SMALL:
            break
        words.append((lower, position + match.end()))
        if _singular(lower) in _UNITS:
            break
    if not words:
        return "", position
    thing, end = _singular(words[-1][0]), words[-1][1]
    if words[-1][0] in _PEOPLE:
        thing = "people"
    rate = r"(?:per|an?|each|every)\s+(hour|day|week|month|year|second|minute)\b"
    after = re.match(rf"\s+(?:{rate}|(\w+))", sentence[end:], re.IGNORECASE)
    if after and after.group(1):  # "120 marks per day", "eleven kilometres an hour"
        return f"{thing} per {_singular(after.group(1).lower())}", end + after.end()
    if thing in _UNITS:
        if after and after.group(2) and after.group(2).lower() in _DIMENSIONS:
            dimension = "high" if after.group(2).lower() == "tall" else after.group(2).lower()
            return f"{thing} {dimension}", end + after.end()
        return thing, end
    if words[-1][0] in COLOURS or (words[-1][0] in MATERIALS and words[-1][0] not in _GROUNDED):
        return "", position
    return thing, end


_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]{1,24}?)\s*:\s+\S")  # "Population: 41,000", "Length: 4.1 km"
_FIELD_DIMENSIONS = {"length": "long", "height": "high", "depth": "deep", "width": "wide", "span": "wide"}
_PEOPLE = frozenset(
    "people person souls soul residents resident inhabitants population citizens folk".split()
)


def _field_key(field: str, unit: str) -> str:
    """The key of a number in a `Field: value` line: the unit and the field's dimension ("m long"), or the
    field itself ("crew")."""
    if unit and field in _FIELD_DIMENSIONS:
        return f"{unit} {_FIELD_DIMENSIONS[field]}"
    if unit:
        return unit
    return "people" if field in _PEOPLE else _singular(field.split()[-1])


def _is_year(sentence: str, match: re.Match) -> bool:
    digits = match.group("digits")
    if not digits or "," in digits or "." in digits:
        return False
    after = re.match(r"\s?([A-Z]{2,3})\b", sentence[match.end() :])
    if after and after.group(1) not in _UPPER_UNITS:  # a calendar's era: "572 AR"
        return True
    if _counted_unit(sentence, match.end()) or len(digits) not in (3, 4):
        return False
    if len(digits) == 4 and 1000 <= int(digits) <= 3999:
        return True
    return bool(_YEAR_BEFORE.search(sentence[: match.start()]))  # "in 638", "since 609" in a younger calendar


_YEAR_BEFORE = re.compile(
    r"\b(?:in|since|until|till|by|from|before|after|circa|c\.|year|"
    r"(?:spring|summer|autumn|winter|year|end|start) of)\s+$",
    re.IGNORECASE,
)


_UPPER_UNITS = frozenset(
    ["AU", "LY", "GW", "MW", "KW", "KG", "KM", "PSI", "RPM", "HP", "CM", "MM", "GHZ", "MHZ", "PM", "AM"]
)


def _counted_unit(sentence: str, position: int) -> bool:
    after = re.match(r"\s*([a-z°%][\w]*)", sentence[position:])
    return bool(after) and _singular(after.group(1)) in {*_UNITS, "mark", "credit", "people", "person"}


_DATE = re.compile(
    r"(?:(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+|(?:the\s+)?(?P<ordinal>[a-z]+(?:-[a-z]+)?)\s+of\s+)?"
    r"(?P<month>January|February|March|April|May|June|July|August|September|October|November|December)"
    r"(?:\s+(?P<mday>\d{1,2})(?:st|nd|rd|th)?)?,?\s+(?P<year>\d{1,4})",
    re.IGNORECASE,
)
_YEAR_FIRST = re.compile(
    r"(?P<year>\d{3,4}),\s+(?:(?P<day>\d{1,2})\s+)?(?P<month>January|February|March|April|May|June|July|"
    r"August|September|October|November|December)(?:\s+(?P<mday>\d{1,2}))?",
    re.IGNORECASE,
)


def _years(sentence: str) -> list[Claim]:
    claims: list[Claim] = []
    taken: list[tuple[int, int]] = []
    for pattern in (_DATE, _YEAR_FIRST):
        for match in pattern.finditer(sentence):
            day = match.group("day") or match.group("mday")
            ordinal = match.groupdict().get("ordinal")
            day_number = int(day) if day else _ORDINALS.get((ordinal or "").lower(), 0)
            date = (int(match.group("year")), MONTHS[match.group("month").lower()], day_number)
            claims.append(Claim("year", "", float(date[0]), match.start(), match.end(), date=date))
            taken.append(match.span())
    for match in _NUMBER.finditer(sentence):
        inside = any(start <= match.start() < end for start, end in taken)
        if not inside and match.group("digits") and _is_year(sentence, match):
            year = int(match.group("digits"))
            claims.append(Claim("year", "", float(year), match.start(), match.end(), date=(year, 0, 0)))
    return claims


_LOOK_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")


def _looks(sentence: str) -> list[Claim]:
    """Colours and materials with the thing they describe: "a green door", "a cane of polished Calla
    basalt", "her hair went white"."""
    words = [(m.group(), m.start(), m.end()) for m in _LOOK_WORD.finditer(sentence)]
    claims = []
    index = 0
    while index < len(words):
        run_end = index
        while run_end < len(words) and _look_values(words[run_end][0]):
            run_end += 1
        if run_end == index:
            index += 1
            continue
        run = [word for word, _, _ in words[index:run_end]]
        start, end = words[index][1], words[run_end - 1][2]
        thing = _thing_after(words, run_end) or _thing_before(words, index)
        if thing:
            claims.append(Claim("look", _singular(thing), _values(run), start, end))
        material = run[-1].lower()
        colours = tuple(sorted({v for word in run[:-1] for v in _look_values(word) if v in COLOURS}))
        if material in MATERIALS and material not in COLOURS and (colours or material in _GROUNDED):
            values = colours or _values(
                run
            )  # "her bottle-green oilskin", "copper wire": the material is the thing
            if values != (material,):
                claims.append(Claim("look", material, values, start, end))
        index = run_end
    return claims


def _values(words) -> tuple[str, ...]:
    """The run's colours and materials, without a thing-like material when others describe it ("copper
    wire" -> copper)."""
    values = {value for word in words for value in _look_values(word)}
    return tuple(sorted(values - _GROUNDED if values - _GROUNDED else values))


def _look_values(word: str) -> list[str]:
    """The colours and materials a word names: "rust-red" -> ["red", "rust"]; [] for other words."""
    parts = word.lower().split("-")
    if not any(part in COLOURS or part in MATERIALS for part in parts):
        return []
    if not all(part in COLOURS or part in MATERIALS or part in _SHADE for part in parts):
        return []
    return [part for part in parts if part not in _SHADE]


_SHADE = frozenset(["light", "deep", "bright", "dull", "pale", "faded", "smoked", "burnished"])


def _thing_after(words: list, index: int) -> str:
    """The noun a colour or material run describes: the next word, past one proper adjective ("Navy-blue
    Concord greatcoat"); "" when a participle or function word follows ("copper wire wound ...")."""
    for offset in range(2):
        if index + offset >= len(words):
            return ""
        written = words[index + offset][0]
        word = written.lower()
        if written[0].isupper() and offset == 0:
            continue
        if word in _STOP_AFTER or written[0].isupper() or word.endswith(("ed", "ing")):
            return ""
        return word
    return ""


def _thing_before(words: list, index: int) -> str:
    """The thing in "a cane of polished Calla basalt" or "her hair went white": the word before the link,
    past at most two describing words."""
    position = index - 1
    skipped = 0
    while position >= 0 and skipped < 2 and words[position][0].lower() not in _LINKS:
        if words[position][0].lower() in _STOP_AFTER:
            return ""
        position, skipped = position - 1, skipped + 1
    if position < 1 or words[position][0].lower() not in _LINKS:
        return ""
    thing = words[position - 1][0]
    return thing.lower() if thing.isalpha() and thing.lower() not in _STOP_AFTER | _LINKS else ""


_LINKS = frozenset(["of", "went", "turned", "is", "are", "was", "were", "gone", "going"])


def _singular(word: str) -> str:
    """A plain singular: "plaques" -> "plaque", "people" stays, "glasses" -> "glass"."""
    word = word.lower()
    if word.endswith(("ss", "us", "is")) or len(word) <= 3:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def stem(word: str) -> str:
    """A rough stem for comparing sentences: "walks", "walked", "walking" -> "walk"; "running" -> "run"."""
    word = _singular(word.lower())
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    return word.rstrip("e")


def content_words(sentence: str) -> set[str]:
    """The stems of a sentence's words that carry meaning (no function words, numbers or months)."""
    return {
        stem(word)
        for word in WORD.findall(sentence)
        if len(word) >= 3 and word.lower() not in _FUNCTION_WORDS and word.lower() not in _NUMBER_WORDS
    }


_NUMBER_WORDS = frozenset([*_SMALL, *_SCALES, *_ORDINALS, *MONTHS])
_FUNCTION_WORDS = _STOP_AFTER | frozenset(
    """
    she he they them him hers theirs this these those there here then than what which whom whose not no
    nor yet also just only very much many some any all both every one once still even ever never again
    about because would could should will shall might must can did does done do said says say like into
    onto out off up down through across between against along around among upon within without your you
    our we us i me my mine it's that's were being
    """.split()
)


# The head nouns of ranks, titles and trades ("chief engineer", "levy assessor", "Lt."), as the checker
# reads them before and after names.
ROLES = frozenset(
    """
    captain commander lieutenant ensign admiral commodore general colonel major sergeant corporal
    private marshal officer engineer mechanic medic doctor surgeon nurse pilot navigator helmsman gunner
    quartermaster bosun boatswain deckhand cook steward purser clerk assessor magistrate judge governor
    mayor chair chairman chairwoman chairperson secretary treasurer president keeper warden master mate
    priest priestess preacher reverend abbot abbess bishop technician supervisor foreman forewoman
    rigger miner smuggler trader merchant hauler hydrologist scientist professor teacher apprentice
    guard soldier agent envoy ambassador queen king prince princess duke duchess lord lady chief founder
    elder smith owner bookkeeper accountant architect surveyor cartographer archivist librarian healer
    herbalist ferryman pilgrim cantor deacon sheriff constable inspector detective senator councillor
    councilor minister chancellor regent steward mistress headman headwoman director manager
    administrator overseer
    """.split()
)
ROLE_ABBREVIATIONS = {
    "lt": "lieutenant", "capt": "captain", "cmdr": "commander", "dr": "doctor", "sgt": "sergeant",
    "gen": "general", "col": "colonel", "adm": "admiral", "maj": "major",
}  # fmt: skip
# Words that set two roles of one trade apart: a "second engineer" is no "chief engineer".
ROLE_RANKS = frozenset(
    """
    chief second first third junior senior deputy assistant vice head under acting
    """.split()
)


def without_title(name: str) -> str:
    """A name without the ranks written before it: "Keeper Josiah Pell" -> "Josiah Pell" (two words stay)."""
    words = name.split()
    while len(words) > 2 and role_head(words[0]):
        words = words[1:]
    return " ".join(words)


def role_head(word: str) -> str:
    """The role a word names ("Lt." -> "lieutenant", "pilot-in-training" -> "pilot"), or ""."""
    word = word.lower().strip(".*_")
    word = word.split("-in-")[0]
    word = ROLE_ABBREVIATIONS.get(word, word)
    return word if word in ROLES else ""
