"""Heuristic writing requests: grammatical, naming only real names, about a noun of the passage.

Checked on the example prose and on prose the code was not written against: the long essays of
perf/worlds/essays, written by an outside author.
"""

import re
from pathlib import Path

import pytest

from scifi_llm.text import parse_front_matter, split_sentences
from scifi_llm.tune.prompts import HeuristicPrompts

from conftest import EXAMPLES, ROOT

SHAPES = [
    r"Write a scene with (?P<names>.+) that turns on the (?P<subject>[a-z]+)\.",
    r"Continue the story with (?P<names>.+), around the (?P<subject>[a-z]+)\.",
    r"In my voice, write a passage featuring (?P<names>.+) and the (?P<subject>[a-z]+)\.",
    r"Write a scene about the (?P<subject>[a-z]+)\.",
    r"In my voice, write a passage centred on the (?P<subject>[a-z]+)\.",
    r"Write a scene with (?P<names>.+)\.",
    r"Continue the story with (?P<names>.+)\.",
    r"Continue the story in my voice\.",
]
NOT_NOUNS = {"that", "this", "them", "themselves", "anyway", "alone", "began", "than", "what", "when"}


def passages_of(folder: Path) -> list[str]:
    """The folder's prose in passages of four paragraphs (headings and front matter left out)."""
    passages = []
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".md", ".txt"):
            body = parse_front_matter(path.read_text(encoding="utf-8"))[2]
            paragraphs = [
                p.strip() for p in re.split(r"\n\s*\n", body) if p.strip() and not p.startswith("#")
            ]
            passages += ["\n\n".join(paragraphs[i : i + 4]) for i in range(0, len(paragraphs), 4)]
    return passages


@pytest.mark.parametrize(
    "folder", [EXAMPLES / "writing", ROOT / "perf" / "worlds" / "essays" / "lore"], ids=["example", "essays"]
)
def test_every_heuristic_request_is_well_formed_and_names_only_names(folder):
    passages = passages_of(folder)
    sentences = [s for passage in passages for p in passage.split("\n\n") for s in split_sentences(p)]
    lowercase = set(re.findall(r"(?<![\w’'-])[a-z][\w’'-]*", " ".join(sentences)))  # guild-moot is one word
    prompts = HeuristicPrompts(sentences)
    for passage in passages:
        request = prompts.request(passage)
        shape = next((re.fullmatch(s, request) for s in SHAPES if re.fullmatch(s, request)), None)
        assert shape, request
        for name in re.split(r" and ", shape.groupdict().get("names") or ""):
            for word in name.split():
                assert "'" not in word and "’" not in word and word.lower() not in lowercase, request
        subject = shape.groupdict().get("subject")
        if subject:
            assert subject not in NOT_NOUNS and not subject.endswith(("ed", "ing", "ly")), request
            assert re.search(
                rf"\b(?:the|a|an|his|her|their|its|my|our|your)\s+(?:\S+\s+){{0,2}}{subject}\b", passage
            )
