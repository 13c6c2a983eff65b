"""The user turn of a training example: a writing request that the passage answers.

`heuristic` prompts are built offline from the passage itself: its named characters and places (words
the whole corpus writes capitalised mid-sentence) and its most salient word, in one of several phrasings
picked by a hash of the passage, so the same passage always gets the same request.
"""

import hashlib
import re
from collections import Counter

from scifi_llm.lore.entities import is_proper_word, word_case_counts

_CAPITALISED = re.compile(r"(?<![A-Za-z’'])[A-Z][a-z’']+")
_LOWER_WORD = re.compile(r"(?<![A-Za-z’'])[a-z][a-z’']{4,}")
_COMMON = frozenset(
    re.findall(
        r"\w+",
        """about above after again against almost along already although always among another around because
    before behind being below between beyond could doing during either enough every except first found
    going little might never other others over perhaps rather really should since something still their
    there these thing things those though three through under until upon where whether which while whole
    would years thought looked again turned asked""",
    )
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

    def __init__(self, corpus_sentences: list[str]) -> None:
        word_case = word_case_counts(corpus_sentences)
        self.names = frozenset(
            word for word in word_case if word not in _COMMON and is_proper_word(word, word_case)
        )

    def request(self, passage: str) -> str:
        """One writing request for the passage."""
        capitalised = (_strip_possessive(word) for word in _CAPITALISED.findall(passage))
        names = [
            word for word, _ in Counter(w for w in capitalised if w.lower() in self.names).most_common(2)
        ]
        lower = (_strip_possessive(word) for word in _LOWER_WORD.findall(passage))
        subjects = Counter(
            word
            for word in lower
            if len(word) >= 5 and word not in _COMMON and not word.endswith(("ed", "ly", "ing"))
        )
        subject = subjects.most_common(1)[0][0] if subjects else "moment"
        choice = int(hashlib.sha256(passage.encode()).hexdigest(), 16)
        templates = _WITH_NAMES if names else _WITHOUT_NAMES
        return templates[choice % len(templates)].format(names=" and ".join(names), subject=subject)


def _strip_possessive(word: str) -> str:
    return word[:-2] if word.endswith(("'s", "’s")) else word


BACK_TRANSLATION = (
    "Below is a passage of fiction. Write the one-sentence request a writer would give a writing assistant "
    "to get exactly this passage (who, where, what happens). Reply with the request only.\n\n{passage}"
)


def request_key(passage: str) -> str:
    """The cache key of a passage's request."""
    return hashlib.sha256(passage.encode()).hexdigest()


async def llm_requests(
    passages: list[str], base_url: str, cache: dict[str, str], model: str | None = None, concurrency: int = 8
) -> dict[str, str]:
    """Ask an OpenAI-compatible model for each passage's request (instruction back-translation).

    Returns the new answers by passage key (cached ones are not asked again); a passage whose request
    failed or came back empty is simply missing, so the caller falls back to the heuristic for it.
    """
    import asyncio

    import httpx

    from scifi_llm.errors import UserError
    from scifi_llm.openai_client import api_base, chat_text, first_model

    api_base(base_url)  # a malformed URL is a mistake to report, not a failure to fall back from
    wanted = [passage for passage in dict.fromkeys(passages) if request_key(passage) not in cache]
    answers: dict[str, str] = {}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120) as client:
        model = model or await first_model(client, base_url)

        async def ask(passage: str) -> None:
            body = {
                "model": model,
                "max_tokens": 80,
                "temperature": 1.0,
                "messages": [{"role": "user", "content": BACK_TRANSLATION.format(passage=passage)}],
            }
            async with limit:
                try:
                    text = await chat_text(client, base_url, body)
                except UserError:
                    return
            line = next((line.strip(" \"'“”") for line in text.splitlines() if line.strip()), "")
            if line:
                answers[request_key(passage)] = line[:300]

        await asyncio.gather(*(ask(passage) for passage in wanted))
    return answers
