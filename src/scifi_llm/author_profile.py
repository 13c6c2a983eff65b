"""The author's style, measured across the corpus, and the system prompt that describes it.

Measured on narration (text outside quotation marks): point of view from pronouns, tense from common
past and present verb forms, sentence length, the share of text that is dialogue, and register from word
length. Simple counts, but stable and explainable: `style_profile.json` shows the numbers behind the words.
"""

import re
from dataclasses import asdict, dataclass

from scifi_llm.text import words_in

_QUOTED = re.compile(r"[\"“][^\"”]*[\"”]")
_FIRST = {"i", "me", "my", "mine", "myself", "we", "us", "our"}
_THIRD = {"he", "him", "his", "she", "her", "hers", "they", "them", "their"}
_PAST = {"was", "were", "had", "did", "said", "went", "came", "saw", "knew", "thought", "took", "looked"}
_PRESENT = {"is", "are", "has", "does", "says", "goes", "comes", "sees", "knows", "thinks", "takes", "looks"}


@dataclass(frozen=True)
class StyleProfile:
    """Numbers that describe the prose, and the words chosen from them."""

    point_of_view: str
    tense: str
    mean_sentence_words: float
    dialogue_share: float
    mean_word_letters: float
    sentence_style: str
    dialogue: str
    register: str

    def system_prompt(self) -> str:
        """The system message of every training example."""
        return (
            f"You are a science fiction author writing in a {self.sentence_style}, {self.point_of_view} "
            f"{self.tense}-tense style with {self.dialogue} dialogue and {self.register} diction."
        )

    def to_dict(self) -> dict:
        """A JSON-ready dict, with the system prompt."""
        return asdict(self) | {"system_prompt": self.system_prompt()}


def profile(sentences: list[str]) -> StyleProfile:
    """Measure the style of the given prose, sentence by sentence."""
    text = "\n".join(sentences)
    narration = _QUOTED.sub(" ", text)
    words = [word.lower() for word in words_in(narration)]
    all_words = words_in(text)
    mean_words = len(all_words) / max(len(sentences), 1)
    quoted = sum(len(match) for match in _QUOTED.findall(text))
    dialogue_share = quoted / max(len(text), 1)
    letters = sum(map(len, all_words)) / max(len(all_words), 1)
    first, third = (sum(word in group for word in words) for group in (_FIRST, _THIRD))
    past, present = (sum(word in group for word in words) for group in (_PAST, _PRESENT))
    return StyleProfile(
        point_of_view="first-person" if first > third else "third-person",
        tense="present" if present > past else "past",
        mean_sentence_words=round(mean_words, 1),
        dialogue_share=round(dialogue_share, 3),
        mean_word_letters=round(letters, 2),
        sentence_style="terse" if mean_words < 12 else ("measured" if mean_words <= 20 else "long-sentenced"),
        dialogue="sparse" if dialogue_share < 0.1 else ("some" if dialogue_share < 0.3 else "plenty of"),
        register="plain" if letters < 4.3 else ("literary" if letters > 4.8 else "measured"),
    )
