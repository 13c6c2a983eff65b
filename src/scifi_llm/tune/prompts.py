"""The user turn of a training example: a writing request that the passage answers.

`heuristic` prompts are built offline from the passage itself: its named characters and places (words
the whole corpus writes capitalised mid-sentence) and its most salient word, in one of several phrasings
picked by a hash of the passage, so the same passage always gets the same request.
"""

import hashlib
import re
from collections import Counter

from scifi_llm.lore.entities import count_word_case, is_proper_word
from scifi_llm.lore.markdown import split_sentences

_WORD = re.compile(r"[A-Za-z][a-z’']+")
_COMMON = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "against",
        "almost",
        "along",
        "already",
        "although",
        "always",
        "among",
        "another",
        "around",
        "because",
        "before",
        "behind",
        "being",
        "below",
        "between",
        "beyond",
        "could",
        "doing",
        "during",
        "either",
        "enough",
        "every",
        "except",
        "first",
        "found",
        "going",
        "little",
        "might",
        "never",
        "other",
        "others",
        "over",
        "perhaps",
        "rather",
        "really",
        "should",
        "since",
        "something",
        "still",
        "their",
        "there",
        "these",
        "thing",
        "things",
        "those",
        "though",
        "three",
        "through",
        "under",
        "until",
        "upon",
        "where",
        "whether",
        "which",
        "while",
        "whole",
        "would",
        "years",
        "thought",
        "looked",
        "again",
        "turned",
        "asked",
    ]
)
_WITH_NAMES = (
    "Write a scene where {names} deal with the {subject}.",
    "Write the scene in which {names} and the {subject} come together.",
    "Continue the story with {names}: a scene that turns on the {subject}.",
    "In my voice, write a passage featuring {names}, centred on the {subject}.",
)
_WITHOUT_NAMES = (
    "Write a scene about the {subject}.",
    "In my voice, write a passage centred on the {subject}.",
)


class HeuristicPrompts:
    """Writing requests from a passage's names and salient words, with names judged on the whole corpus."""

    def __init__(self, corpus_paragraphs: list[str]) -> None:
        self.word_case: dict = {}
        counts: dict[str, Counter] = {}
        for paragraph in corpus_paragraphs:
            for sentence in split_sentences(paragraph):
                count_word_case(sentence, counts)
        self.word_case = {word: (c["mid"], c["initial"], c["lower"]) for word, c in counts.items()}

    def request(self, passage: str) -> str:
        """One writing request for the passage."""
        words = [word[:-2] if word.endswith(("'s", "’s")) else word for word in _WORD.findall(passage)]
        names = [word for word, _ in Counter(w for w in words if self._is_name(w)).most_common(2)]
        subjects = Counter(
            w
            for w in words
            if w.islower() and len(w) >= 5 and w not in _COMMON and not w.endswith(("ed", "ly", "ing"))
        )
        subject = subjects.most_common(1)[0][0] if subjects else "moment"
        choice = int(hashlib.sha256(passage.encode()).hexdigest(), 16)
        templates = _WITH_NAMES if names else _WITHOUT_NAMES
        return templates[choice % len(templates)].format(names=" and ".join(names), subject=subject)

    def _is_name(self, word: str) -> bool:
        return word[0].isupper() and word.lower() not in _COMMON and is_proper_word(word, self.word_case)
