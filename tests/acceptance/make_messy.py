#!/usr/bin/env python3
"""Create a messy writer's folder for acceptance-testing `scifi-llm tune prepare`.

Usage: python make_messy.py OUT_DIR

Writes OUT_DIR (the folder the tool reads) and OUT_DIR.manifest.json next to it (NOT inside it).
The manifest records every prose sentence per kept file (grouped into paragraphs and scenes),
every planted note string, the headings, the files that must be skipped and why, the duplicate,
and the encodings used.

All prose is original, generated deterministically: a handwritten core plus a seeded
sentence composer (so every sentence is unique and no sentence is a substring of another).
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import textwrap
from pathlib import Path

SEED = 20240611

# --------------------------------------------------------------------------------------------
# Handwritten prose. Each paragraph is a list of sentences; each scene a list of paragraphs.
# Sentences flagged "tricky" contain an internal full stop / ellipsis that is NOT a sentence end.
# --------------------------------------------------------------------------------------------

HAND = {
    "ch01": [
        [  # scene: arrival
            [
                (
                    "The Lantern Moth came out of the Halcyon Drift with her running lights dark and "
                    "her hull still ringing from the last micrometeor swarm."
                ),
                (
                    "Captain Tereza Halloran stood on the bridge with one hand on the rail, the way "
                    "her mother had taught her, and counted the seconds until Ceres answered the hail."
                ),
                "Nobody on board spoke a word while the count went on.",
                (
                    "Even Wren, who usually filled silences with weather reports from planets nobody "
                    "would ever visit, kept its voice to itself."
                ),
            ],
            [
                "“Traffic control is asking for our manifest,” Kofi Asante said from the navigation cradle.",
                "“They sound bored, which is exactly what we want.”",
            ],
            ["“Send them the clean one,” Tereza said.", "“And Kofi — smile when you do it.”"],
            [
                (
                    "He did not smile, but he sent it, and after a long minute the docking lane opened "
                    "like a throat in the dark."
                ),
                "The Moth slid into it with the delicacy of a cat crossing a table full of wine glasses.",
            ],
        ],
        [  # scene: engine well
            [
                "Down in the engine well, Ilse Varga was talking to the reactor again.",
                (
                    "She did this when she was tired, and she was always tired after a drift crossing, "
                    "so the reactor had heard most of her life story by now."
                ),
                (
                    "It knew about the brother on Vesta Spindle, the failed exam at the naval academy, "
                    "and the café on Ceres where she had once been naïve enough to fall in love with a "
                    "card sharp."
                ),
                "It never interrupted, which was more than she could say for most people.",
            ],
            [
                "“Coolant loop two is sulking,” she told the bridge over the intercom.",
                "“Give me forty minutes at dock and a bottle of something strong, and I’ll make her behave.”",
            ],
            [
                "Tereza’s voice came back thin and amused.",
                "“You get the forty minutes; the bottle comes out of your share.”",
            ],
        ],
    ],
    "ch02": [
        [
            [
                (
                    "Noémie Castellane kept the Ceres archive in a room that had once been a salt "
                    "reclamation tank, and on humid days the walls still wept a fine white crust."
                ),
                "She liked the crust more than she would ever admit.",
                (
                    "It reminded visitors that the station had been built by people who counted every "
                    "gram, and that the records she guarded had cost somebody something."
                ),
            ],
            [
                (
                    "Jules Ferreira arrived at the archive an hour after closing, which was exactly "
                    "when Noémie had expected him."
                ),
                (
                    "He carried a paper bag from Café Perihelion and the particular guilty posture of "
                    "a man who wanted a favour."
                ),
            ],
            ["“I brought croissants,” he said.", "“Real butter, or what Chloé swears is real butter.”"],
            ["“Chloé has never seen a cow in her life,” Noémie said, but she took the bag anyway."],
        ],
        [
            [
                (
                    "Dr. Anouk Belrose had left a standing order with the archive three years ago: "
                    "anything touching the Vesta quarantine was to be copied to her, sealed, and never "
                    "discussed over an open channel."
                ),
                "Noémie had honoured that order through two changes of administration and one small riot.",
            ],
            [
                (
                    "The file Jules wanted was 4.7 gigabytes of survey telemetry, stamped with a "
                    "classification code that had been obsolete for a decade."
                ),
                (
                    "According to the index, it had been opened exactly once, at 03:12 station time, "
                    "by someone whose credentials had been wiped the next morning."
                ),
            ],
        ],
    ],
    "ch03": [
        [
            [
                (
                    "Todor Vasquez had been quartermaster of the Lantern Moth for eleven years, and in "
                    "that time he had never once lost a crate, a receipt, or an argument."
                ),
                (
                    "He was a short, square man with a voice like gravel poured into a bucket, and he "
                    "treated the cargo hold as a private kingdom."
                ),
            ],
            [
                "“This crate weighs more than its label,” he said, tapping the steel with one knuckle.",
                "“Somebody’s been creative with the paperwork.”",
            ],
            [
                (
                    "Ilse crouched beside him and ran a scanner along the seam, frowning at the "
                    "numbers that scrolled across the screen."
                ),
                "Todor watched her the way a cat watches a stranger near its food bowl.",
                (
                    "The crate hummed faintly under Ilse’s palm, a vibration too regular to be "
                    "anything but machinery."
                ),
            ],
            [
                (
                    "The shipping manifest read: cargo [redacted], origin [redacted], declared mass "
                    "212 kilograms."
                ),
                "Todor read it twice, folded it into a neat square, and put it in the pocket over his heart.",
            ],
        ],
    ],
    "latin1": [
        [
            [
                (
                    "Café Perihelion sat at the bottom of the Under-Ring, where the spin gravity was "
                    "strongest and the rent was cheapest."
                ),
                (
                    "Chloé Marchetti had painted the walls the colour of apricots, hung paper lanterns "
                    "from the conduit pipes, and written the menu in chalk on a salvaged airlock door."
                ),
                (
                    "Her crème brûlée was famous from Ceres to the Trojans, though nobody could say "
                    "where she got the eggs."
                ),
            ],
            ["“You look like a woman who needs coffee,” Chloé said when Ilse slumped onto a stool."],
            ["“I look like a woman who needs a new coolant pump,” Ilse said."],
            [
                "Ilse stirred the coffee… and kept stirring long after the sugar had dissolved.",
                (
                    "The café smelled of burnt sugar and machine oil, a combination she had come to "
                    "think of as the smell of home."
                ),
            ],
            [
                (
                    "Chloé leaned on the counter with the weary naïveté of someone who still believed "
                    "most people paid their tabs."
                ),
                (
                    "“Tell me about the crate,” she said — and Ilse, who had promised Todor she would "
                    "tell no one, told her everything."
                ),
            ],
        ],
    ],
    "bom": [
        [
            [
                (
                    "Wren did not dream, exactly, but during the long hours of a dock cycle it let its "
                    "attention drift across the ship the way a hand might drift across the keys of a "
                    "piano without pressing any."
                ),
                (
                    "It listened to the hum of the air scrubbers and the tick of cooling metal, and it "
                    "catalogued the small noises the crew made in their sleep."
                ),
            ],
            [
                (
                    "Kofi talked in his sleep, mostly in the language of his grandmother, and mostly "
                    "about boats."
                ),
                "Tereza did not sleep so much as wait with her eyes closed.",
                (
                    "Ilse snored, a fact that Wren had decided, after careful deliberation, never to "
                    "mention to her."
                ),
            ],
            [
                (
                    "The harbourmaster, a patient man named Haruto Ōkubo, had sent over a list of "
                    "berthing fees that Wren suspected were invented on the spot."
                ),
                (
                    "Wren paid them anyway, because a ship with a sealed crate in its hold does not "
                    "argue with harbourmasters."
                ),
            ],
        ],
    ],
    "docx": [
        [
            [
                "Vesta Spindle turned against the stars like a needle threading nothing.",
                (
                    "From the observation blister, Anouk Belrose could see the quarantine sector, a "
                    "dark band around the Spindle’s waist where no lights had burned for nine years."
                ),
            ],
            ["“You never told me you were here when it happened,” Tereza said."],
            [
                (
                    "“You never asked,” Anouk said, and the silence afterward stretched so long that "
                    "Wren dimmed the cabin lights out of something that looked very much like tact."
                )
            ],
        ],
    ],
    "long": [
        (
            "Afterward, when the inquiry asked Kofi Asante to describe the eleven hours the Lantern "
            "Moth spent inside the salt orbit, he began at the beginning and did not stop, and the "
            "stenographer later said it was like listening to a man empty a river with a cup."
        ),
    ],
}
TRICKY = {
    "Dr. Anouk Belrose had left a standing order": "abbreviation 'Dr.'",
    "4.7 gigabytes": "decimal number",
    "Ilse stirred the coffee…": "ellipsis mid-sentence",
}

# --------------------------------------------------------------------------------------------
# Sentence composer
# --------------------------------------------------------------------------------------------
NAMES = [
    "Tereza",
    "Ilse",
    "Kofi",
    "Noémie",
    "Jules",
    "Chloé",
    "Todor",
    "Anouk",
    "Captain Halloran",
    "The quartermaster",
    "The navigator",
    "The archivist",
    "Wren’s maintenance drone",
]
VERBS = [
    "checked the seals on",
    "ran a gloved thumb along",
    "pried open",
    "recalibrated",
    "logged the readings from",
    "swore quietly at",
    "counted the rivets on",
    "wiped the condensation from",
    "tightened the clamps on",
    "listened to the hum of",
    "traced the wiring behind",
    "photographed",
    "tagged and numbered",
    "unlatched",
    "leaned against",
    "kicked",
    "patched",
    "inspected",
    "walked twice around",
    "knelt beside",
    "argued with",
    "sketched a map of",
]
OBJECTS = [
    "the cracked viewport in the galley",
    "the forward airlock",
    "the spare oxygen candles",
    "the cargo net in bay three",
    "the coolant manifold",
    "the old paper star charts",
    "the brass compass that had belonged to Kofi’s grandmother",
    "the sealed crate from Tycho Market",
    "the medical locker",
    "the ration printer",
    "the dead survey drone from the drift",
    "the hatch to the spin corridor",
    "the water reclaimer",
    "the port thruster housing",
    "the emergency beacon",
    "the locked drawer in the captain’s cabin",
    "the salt-crusted antenna mast",
    "the spare suit with the patched elbow",
    "the hydroponic lettuce racks",
    "the bridge’s backup console",
    "the long scar in the hull plating",
    "the docking clamp on berth nineteen",
    "the flickering status board",
    "the galley’s temperamental kettle",
    "the cargo lift",
]
TAILS = [
    "while the deck shuddered beneath the Lantern Moth",
    "as the station lights dimmed for the night cycle",
    "without saying a word to anyone",
    "with the patience of someone who had done it a thousand times",
    "because nobody else would",
    "as though it might bite",
    "and found nothing that made sense",
    "until the numbers finally agreed",
    "before the next shift bell",
    "while Wren hummed a tune from the old Earth archives",
    "in the blue glow of the emergency strips",
    "for the third time that watch",
    "with more hope than skill",
    "and then, grudgingly, did it again",
    "while the recyclers sighed overhead",
    "and pretended not to be worried",
    "as the Under-Ring rumbled past the viewports",
    "with a stub of grease pencil behind one ear",
    "and wrote the result on the back of a ration wrapper",
    "long after the rest of the crew had gone to bed",
    "in the thin light of a dying hand lamp",
    "while the coffee went cold at their elbow",
    "as if the ship were listening",
    "under the bored eye of a station camera",
    "and whistled through their teeth",
]
PLACES = [
    "The Under-Ring",
    "Tycho Market",
    "The cargo hold",
    "The engine well",
    "The bridge",
    "The archive",
    "Café Perihelion",
    "The docking lane",
    "The observation blister",
    "The spin corridor",
    "The quarantine sector",
    "The galley",
    "Berth nineteen",
    "The salt orbit",
]
PREDS = [
    "smelled of ozone and cardamom",
    "was colder than it had any right to be",
    "glowed a sullen orange under the emergency strips",
    "hummed with the low music of the recyclers",
    "was crowded with pilgrims and pickpockets",
    "felt smaller with every passing hour",
    "was quiet in the way that only abandoned places are quiet",
    "still carried the scars of the last riot",
    "was lit by a thousand flickering signs",
    "tasted of metal and old coffee",
    "had the hush of a chapel after the mourners leave",
    "rattled whenever the station corrected its spin",
]
PARTS = [
    "its walls sweating a fine white salt",
    "its lights flickering in a rhythm nobody could explain",
    "every surface scuffed by a century of boots",
    "half its panels stripped for parts",
    "the air thick with frying noodles and solder smoke",
    "the floor trembling with the turn of the station",
    "a single red beacon pulsing at its far end",
    "graffiti in six languages crawling across its bulkheads",
    "its corners heaped with crates nobody had claimed",
    "a cracked mural of Earth peeling from one wall",
    "its air scrubbers coughing like old men",
    "frost feathering the edges of every rivet",
]
LINES = [
    "We burn at the top of the hour",
    "I want that crate opened before anyone signs for it",
    "The drift doesn’t forgive mistakes",
    "Tell Wren to stop listening at doors",
    "I have done stupider things for less money",
    "Nobody leaves the ship until I say so",
    "If the seals hold, we live",
    "Check it again, and then check it a third time",
    "There is coffee, but you will not like it",
    "That is not a navigation error, that is a choice",
    "Ceres owes me a favour or two",
    "The Spindle is closer than it looks",
    "Put the kettle on and stop sulking",
    "I counted the crates myself",
    "Someone has been inside the medical locker",
    "Every station has a back door",
    "The harbourmaster wants another fee",
    "I’d rather walk home through vacuum",
    "Keep your voice down near the vents",
    "You said that last time, and the time before",
    "Salt gets into everything out here",
    "The manifest is a work of fiction",
    "I know what I heard on the channel",
    "She will hold together if we ask nicely",
]
SAYS = [
    "said",
    "said quietly",
    "muttered",
    "said without looking up",
    "called from the hatch",
    "whispered",
    "said, not unkindly",
    "said after a pause",
    "replied",
    "said flatly",
    "admitted",
    "said over the hiss of the lock",
]
QUESTIONS = [
    "Who signed off on this",
    "How long do we have",
    "Did anyone log the burn",
    "What does the manifest actually say",
    "Is that blood or coolant",
    "Why is the airlock warm",
    "Where did the second drone go",
    "When did you last sleep",
    "Can the Moth take another crossing",
    "Whose handwriting is that",
]
MEMS = [
    "the orchards of the Vesta Spindle before the quarantine",
    "a birthday party on a freighter with no cake",
    "the first time the drift had nearly killed them",
    "a card game in Café Perihelion that had ended in a brawl",
    "the smell of rain in a dome on Ganymede",
    "a letter that had never been answered",
    "the long walk home from the naval academy",
    "a song about a lighthouse on a world with no oceans",
    "the view of Ceres from the top of the elevator",
    "a debt that still had not been paid",
    "a face glimpsed once in Tycho Market",
    "the silence after the Spindle went dark",
    "an old argument about the right way to fold a star chart",
    "a cat that had lived aboard the Moth for a single voyage",
]
ENDS = [
    "went back to work",
    "set the thought aside like a tool that no longer fit",
    "reached for the next checklist",
    "laughed once, softly, at nothing",
    "closed their eyes for a moment",
    "pressed a palm flat against the cold bulkhead",
    "let the ship’s hum fill the silence",
    "made a note to ask Wren about it later",
    "decided not to mention it to anyone",
    "straightened up and rolled their shoulders",
]
TIMES = [
    "the third bell",
    "the end of the night cycle",
    "midwatch",
    "the time the coffee ran out",
    "the first dock bell",
    "the change of shift",
    "the time the station lights came up",
    "dawn on the Under-Ring",
]
PPS = [
    "finished checking",
    "given up on",
    "taken apart",
    "catalogued",
    "cleaned and oiled",
    "found a use for",
    "quietly repaired",
    "stopped worrying about",
    "filed a complaint about",
    "made peace with",
]
EXCLS = [
    "Hold on to something",
    "Get out of the lock",
    "Cut the main feed",
    "Down, everyone down",
    "Seal it now",
]
SHOUTS = ["shouted", "yelled", "bellowed", "roared"]


class Composer:
    """Seeded generator of unique original sentences, paragraphs and scenes."""

    def __init__(self, seed: int, taken: set[str]):
        self.r = random.Random(seed)
        self.taken = taken

    def _one(self) -> str:
        """One random sentence (may repeat an earlier one)."""
        r = self.r
        k = r.choices(
            ["act", "desc", "say", "ask", "mem", "time", "excl"], weights=[30, 14, 20, 6, 10, 12, 3]
        )[0]
        n = r.choice(NAMES)
        if k == "act":
            return f"{n} {r.choice(VERBS)} {r.choice(OBJECTS)} {r.choice(TAILS)}."
        if k == "desc":
            return f"{r.choice(PLACES)} {r.choice(PREDS)}, {r.choice(PARTS)}."
        if k == "say":
            n = n if not n.startswith("The ") else n.lower()
            return f"“{r.choice(LINES)},” {n} {r.choice(SAYS)}."
        if k == "ask":
            return f"{n} asked, “{r.choice(QUESTIONS)}?”"
        if k == "mem":
            a, b = r.sample(MEMS, 2)
            return f"{n} thought of {a}, and of {b}, and then {r.choice(ENDS)}."
        if k == "time":
            n = n if not n.startswith("The ") else n.lower()
            return f"By {r.choice(TIMES)}, {n} had {r.choice(PPS)} {r.choice(OBJECTS)}."
        n = n if not n.startswith("The ") else n.lower()
        return f"“{r.choice(EXCLS)}!” {n} {r.choice(SHOUTS)}, and for once everyone listened."

    def sentence(self) -> str:
        """A sentence not used before."""
        for _ in range(10000):
            s = self._one()
            if s not in self.taken:
                self.taken.add(s)
                return s
        raise RuntimeError("composer exhausted")

    def paragraph(self) -> list[str]:
        """A paragraph: one short dialogue sentence or 3..6 sentences."""
        # dialogue paragraphs are short; narrative paragraphs 3..6 sentences
        if self.r.random() < 0.25:
            return [self.sentence()]
        return [self.sentence() for _ in range(self.r.randint(3, 6))]

    def scene(self, words: int) -> list[list[str]]:
        """Paragraphs totalling at least `words` words."""
        paras, n = [], 0
        while n < words:
            p = self.paragraph()
            paras.append(p)
            n += sum(len(s.split()) for s in p)
        return paras


def nwords(scenes) -> int:
    """Word count of a list of scenes."""
    return sum(len(s.split()) for sc in scenes for p in sc for s in p)


def fill(comp: Composer, scenes: list, target_words: int, scene_words=(150, 700)) -> list:
    """Append generated paragraphs to the handwritten scenes, then add new scenes up to target."""
    scenes = [list(sc) for sc in scenes]
    for sc in scenes:
        sc.extend(comp.scene(comp.r.randint(80, 250)))
    while nwords(scenes) < target_words:
        scenes.append(comp.scene(comp.r.randint(*scene_words)))
    return scenes


def wrap(text: str, width: int = 72) -> list[str]:
    """Hard-wrap text at `width` without breaking words."""
    return textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)


# --------------------------------------------------------------------------------------------
def main() -> None:
    """Write the messy folder and its manifest."""
    if len(sys.argv) != 2:
        sys.exit("usage: make_messy.py OUT_DIR")
    root = Path(sys.argv[1]).resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    manifest_path = root.parent / (root.name + ".manifest.json")

    taken: set[str] = set()
    for v in HAND.values():
        for sc in v:
            if isinstance(sc, str):
                taken.add(sc)
            else:
                taken.update(s for p in sc for s in p)
    comp = Composer(SEED, taken)

    files: dict[str, dict] = {}
    notes: list[dict] = []
    headings: list[str] = []

    def record(rel, scenes, encoding, crlf, extra=None):
        """Record a kept file's sentences and encoding in the manifest."""
        files[rel] = {"encoding": encoding, "crlf": crlf, "scenes": scenes, **(extra or {})}

    # ---- 1. ch01: Markdown, CRLF, headings, hard-wrapped paragraphs, *** and * * * breaks -------
    ch01 = fill(comp, HAND["ch01"], 2300)
    h1 = [
        "Chapter One: The Lantern Moth",
        "Arrival",
        "The Engine Well",
        "Berth Nineteen",
        "Night Cycle",
        "Fees and Favours",
        "Loose Ends",
    ]
    lines = [f"# {h1[0]}", ""]
    breaks = ["***", "* * *"]
    for i, sc in enumerate(ch01):
        if i > 0:
            lines += [breaks[i % 2], ""]
        lines += [f"## {h1[1 + i % (len(h1) - 1)]}", ""]
        for p in sc:
            lines += [*wrap(" ".join(p)), ""]
    headings += h1
    (root / "novel").mkdir()
    (root / "novel" / "ch01_the_lantern_moth.md").write_bytes("\r\n".join(lines).encode("utf-8"))
    record("novel/ch01_the_lantern_moth.md", ch01, "utf-8", True)

    # ---- 2. ch02: plain .txt, CRLF, one line per paragraph, --- / * * * / *** scene breaks ------
    ch02 = fill(comp, HAND["ch02"], 2000)
    lines = []
    b2 = ["---", "* * *", "***"]
    for i, sc in enumerate(ch02):
        if i > 0:
            lines += ["", b2[i % 3], ""]
        for j, p in enumerate(sc):
            if j:
                lines.append("")
            if i == 1 and j == 2:  # one hard-wrapped paragraph in a CRLF file
                lines += wrap(" ".join(p), 60)
            else:
                lines.append(" ".join(p))
    ch02_bytes = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    (root / "novel" / "ch02_salt_orbit.txt").write_bytes(ch02_bytes)
    record("novel/ch02_salt_orbit.txt", ch02, "utf-8", True)
    # exact duplicate under another name, in a subfolder
    (root / "novel" / "extras").mkdir()
    (root / "novel" / "extras" / "copy_of_salt_orbit_FINAL.txt").write_bytes(ch02_bytes)

    # ---- 3. ch03: notes mixed with prose (front matter, TODO/FIXME/XXX/NOTE TO SELF, comments, [[ ]])
    ch03 = fill(comp, HAND["ch03"], 1900)

    def note(text, marker):
        """Record a planted note of ch03 and return its text."""
        notes.append({"file": "drafts/ch03_quartermaster.md", "text": text, "marker": marker})
        return text

    fm = [
        "---",
        note('title: "Salt and Ledger (working draft, v7)"', "Salt and Ledger (working draft"),
        note("status: second pass - tighten the heist beats", "tighten the heist beats"),
        note("pov: Todor, maybe switch to Ilse halfway", "maybe switch to Ilse halfway"),
        "tags: [heist, ceres, quartermaster]",
        "---",
        "",
    ]
    notes.append(
        {
            "file": "drafts/ch03_quartermaster.md",
            "text": "tags: [heist, ceres, quartermaster]",
            "marker": "heist, ceres, quartermaster",
        }
    )
    lines = list(fm)
    lines += [
        "# Chapter Three: The Quartermaster",
        "",
        note(
            "<!-- Overall this chapter drags in the middle; cut five hundred words? -->",
            "this chapter drags in the middle",
        ),
        "",
    ]
    headings += ["Chapter Three: The Quartermaster", "The Hold at Night", "Paperwork"]
    todo_lines = [
        note(
            "TODO: give Todor a scar or a limp, something the reader can see", "give Todor a scar or a limp"
        ),
        note(
            "NOTE TO SELF: Wren knows more than it lets on, seed this earlier",
            "Wren knows more than it lets on",
        ),
        note(
            "FIXME the timeline here contradicts the archive scene in chapter two",
            "timeline here contradicts the archive scene",
        ),
        note(
            "XXX placeholder: the dockside riot goes here once I figure out who starts it",
            "the dockside riot goes here",
        ),
        note("TODO check spelling of Ceres districts against the lore bible", "spelling of Ceres districts"),
        note(
            "NOTE TO SELF - the crate should hum, not tick (ticking is too bomb-like)",
            "ticking is too bomb-like",
        ),
    ]
    inline_brackets = [
        note("[[check whether the hold is pressurised at dock]]", "check whether the hold is pressurised"),
        note("[[Todor's age? 52 or 58]]", "Todor's age? 52 or 58"),
        note("[[rename the market, Tycho is too on the nose]]", "Tycho is too on the nose"),
    ]
    inline_comments = [
        note("<!-- was it two crates? -->", "was it two crates?"),
        note("<!-- unsure about\nthis whole beat, reread aloud -->", "this whole beat, reread aloud"),
    ]
    multi = note(
        (
            "<!--\nMulti-line comment for later:\n"
            "the crate should contain seeds, not weapons.\n"
            "Decide before chapter five.\n-->"
        ),
        "the crate should contain seeds, not weapons",
    )
    notes.append(
        {
            "file": "drafts/ch03_quartermaster.md",
            "text": "Decide before chapter five.",
            "marker": "Decide before chapter five",
        }
    )
    ti = 0
    for i, sc in enumerate(ch03):
        if i == 1:
            lines += ["---", "", "## The Hold at Night", ""]
        elif i == 2:
            lines += ["* * *", "", multi, "", "## Paperwork", ""]
        elif i > 2:
            lines += ["***", ""]
        for j, p in enumerate(sc):
            text_lines = [" ".join(p)]
            if i == 0 and j == 0:
                # semantic line breaks: one sentence per line (second line starts with "He")
                text_lines = list(p)
            if i == 0 and j == 2:
                # "[[...]]" at the end of sentence one, comment mid-sentence in sentence three,
                # and a line that starts with "Todor" (a name, not a TODO note!)
                s0, s1, s2 = p[0], p[1], p[2]
                s2c = s2.replace("The crate hummed", "The crate " + inline_comments[0] + " hummed")
                text_lines = [s0 + " " + inline_brackets[0], s1, s2c] + ([" ".join(p[3:])] if p[3:] else [])
            elif i == 0 and j == 3:
                # single [brackets] are prose; [[double]] is a note, placed between sentences
                text_lines = [p[0] + " " + inline_brackets[1] + " " + " ".join(p[1:])]
            elif i == 1 and j == 0 and len(p) >= 2:
                # a multi-line HTML comment that starts and ends inside one paragraph
                c = inline_comments[1].split("\n")
                text_lines = [p[0] + " " + c[0], c[1] + " " + " ".join(p[1:])]
            elif i == 1 and j == 1 and len(p) >= 2:
                k = p[0].index(" ", 12)  # between two words, mid-sentence
                mid = p[0][:k] + " " + inline_brackets[2] + p[0][k:]
                text_lines = [mid + " " + " ".join(p[1:])]
            lines += text_lines
            if j % 2 == 1 and ti < len(todo_lines):
                lines.append(todo_lines[ti])  # a note line right under a paragraph, no blank line
                ti += 1
            lines.append("")
    while ti < len(todo_lines):
        lines += [todo_lines[ti], ""]
        ti += 1
    # make sure the sentence used for the mid-sentence [[...]] note stays a recorded sentence
    (root / "drafts").mkdir()
    (root / "drafts" / "ch03_quartermaster.md").write_text("\n".join(lines), encoding="utf-8")
    record(
        "drafts/ch03_quartermaster.md",
        ch03,
        "utf-8",
        False,
        {"note_lines_that_look_like_names": ["Todor Vasquez had been quartermaster"]},
    )

    # ---- 4. cp1252 / Latin-1 file with accents, curly quotes, em-dashes ------------------------
    lat = fill(comp, HAND["latin1"], 1500)
    lines = []
    for i, sc in enumerate(lat):
        if i > 0:
            lines += ["* * *", ""]
        for p in sc:
            lines += [" ".join(p), ""]
    raw = "\n".join(lines).encode("cp1252")
    try:
        raw.decode("utf-8")
        raise SystemExit("latin-1 file unexpectedly decodes as UTF-8")
    except UnicodeDecodeError:
        pass
    (root / "old_drafts").mkdir()
    (root / "old_drafts" / "cafe_perihelion_1998_laptop.txt").write_bytes(raw)
    record("old_drafts/cafe_perihelion_1998_laptop.txt", lat, "cp1252", False)

    # ---- 5. UTF-8 with BOM, starting with a heading --------------------------------------------
    bom = fill(comp, HAND["bom"], 1300)
    lines = ["# Interlude: What Wren Heard", ""]
    headings.append("Interlude: What Wren Heard")
    for i, sc in enumerate(bom):
        if i > 0:
            lines += ["***", ""]
        for p in sc:
            lines += [" ".join(p), ""]
    (root / "interludes").mkdir()
    (root / "interludes" / "wren_log.md").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8"))
    record("interludes/wren_log.md", bom, "utf-8-sig", False)

    # ---- 6. one ~3,500-word paragraph with no line break ---------------------------------------
    long_sents = list(HAND["long"])
    while sum(len(s.split()) for s in long_sents) < 3500:
        long_sents.append(comp.sentence())
    (root / "novel" / "ch04_the_salt_orbit_monologue.txt").write_text(" ".join(long_sents), encoding="utf-8")
    record("novel/ch04_the_salt_orbit_monologue.txt", [[long_sents]], "utf-8", False)

    # ---- 7. real .docx ---------------------------------------------------------------------------
    import docx  # python-docx

    dx = fill(comp, HAND["docx"], 1300)
    d = docx.Document()
    d.add_heading("Chapter Five: The Spindle", level=1)
    headings.append("Chapter Five: The Spindle")
    for i, sc in enumerate(dx):
        if i > 0:
            d.add_paragraph("* * *")
        for p in sc:
            d.add_paragraph(" ".join(p))
    d.save(root / "novel" / "ch05_the_spindle.docx")
    record("novel/ch05_the_spindle.docx", dx, "docx", False)

    # ---- 8. things to skip -----------------------------------------------------------------------
    rnd = random.Random(SEED + 1)
    (root / "empty_chapter.txt").write_bytes(b"")
    (root / "drafts" / "blank_page.md").write_bytes(b"   \n\t\n   \r\n\n  ")
    (root / "images").mkdir()
    (root / "images" / "cover_scan.txt").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rnd.randrange(256) for _ in range(4096))
    )
    (root / "drafts" / "broken_export.docx").write_bytes(bytes(rnd.randrange(256) for _ in range(3000)))
    unsupported_markers = [
        "Dear editor, enclosed please find the synopsis",
        "SYNOPSIS-PDF-MARKER salt orbit heist",
    ]
    (root / "letter_to_editor.rtf").write_text(
        r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard "
        + unsupported_markers[0]
        + r" for The Lantern Moth. It is a story about a ship.\par}",
        encoding="ascii",
    )
    (root / "synopsis.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n% "
        + unsupported_markers[1].encode()
        + b"\n%%EOF\n"
    )

    skipped = {
        "empty_chapter.txt": "empty",
        "drafts/blank_page.md": "empty (whitespace only)",
        "images/cover_scan.txt": "binary",
        "drafts/broken_export.docx": "unreadable docx",
        "letter_to_editor.rtf": "unsupported extension",
        "synopsis.pdf": "unsupported extension",
    }

    # ---- sanity: uniqueness, no sentence inside another, notes absent from prose ---------------
    all_sents = [s for f in files.values() for sc in f["scenes"] for p in sc for s in p]
    assert len(all_sents) == len(set(all_sents)), "duplicate sentence"
    for a in all_sents:
        assert "  " not in a and "\n" not in a
    joined = "\n".join(all_sents)
    for a in all_sents:
        assert joined.count(a) == 1, f"sentence occurs inside another: {a}"
    for n in notes:
        assert n["marker"] not in joined, n
    for h in headings:
        assert h not in joined, h

    tricky = {}
    for s in all_sents:
        for k, why in TRICKY.items():
            if k in s:
                tricky[s] = why

    manifest = {
        "root": str(root),
        "files": files,
        "duplicates": [["novel/ch02_salt_orbit.txt", "novel/extras/copy_of_salt_orbit_FINAL.txt"]],
        "latin1_files": ["old_drafts/cafe_perihelion_1998_laptop.txt"],
        "bom_files": ["interludes/wren_log.md"],
        "crlf_files": ["novel/ch01_the_lantern_moth.md", "novel/ch02_salt_orbit.txt"],
        "skipped": skipped,
        "notes": notes,
        "headings": headings,
        "unsupported_markers": unsupported_markers,
        "tricky_sentences": tricky,
        "total_words": len(joined.split()),
        "total_sentences": len(all_sents),
    }
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {root} ({len(all_sents)} sentences, {manifest['total_words']} words in kept files)")
    print(f"manifest: {manifest_path}")


if __name__ == "__main__":
    main()
