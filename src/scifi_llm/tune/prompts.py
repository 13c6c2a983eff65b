"""The user turn of a training example: a writing request that the passage answers.

`heuristic` prompts are built offline from the passage itself: its named characters and places and its
subject, in one of several phrasings picked by a hash of the passage, so the same passage always gets the
same request. A name is a word the whole corpus writes capitalised in the middle of sentences and never
in lower case (so "Don't", "Engine" at the start of a line, or a verb opening a sentence are not names);
the subject is the noun the passage most often puts after "the", "a" or a possessive ("the hold", "her
arm"), never a verb.
"""

import hashlib
import re
from collections import Counter

from scifi_llm.text import strip_possessive, word_case_counts

_NAME_RUN = re.compile(r"(?<![A-Za-z’'])[A-Z][a-z]+(?:['’]s)?(?:\s+[A-Z][a-z]+(?:['’]s)?)*")
# A noun phrase: a determiner, at most two modifiers, and the head noun, where the phrase ends: before
# punctuation or a word that cannot be part of it ("the hold was cold", "her left arm, stiff").
_NOUN = re.compile(
    r"\b(?:the|a|an|his|her|their|its|my|our|your)\s+(?:[a-z'’-]+\s+){0,2}?([a-z]{4,})"
    r"(?=\s*[,.;:!?)\"”’]|\s+(?:of|and|or|but|was|were|is|are|in|on|at|to|had|has|with|that|from|for|as|"
    r"into|over|under|behind|he|she|they|it|then|again)\b)"
)
_NOT_NOUNS = ("ly", "ed", "ing")  # adverbs, and the participles that stand after "the" as adjectives
_COMMON = frozenset(
    re.findall(
        r"\w+",
        """about above after again against almost along already although always among another around because
    before behind being below between beyond could doing during either enough every except first found
    going little might never other others over perhaps rather really should since something still their
    there these thing things those though three through under until upon where whether which while whole
    would years thought looked again turned asked same last next only other each more most much such very
    time times moment moments way ways kind sort side half rest while back front end part anyway alone
    began apart aside ahead away today tonight instead anything nothing everything someone anyone everyone
    nobody somebody anywhere nowhere everywhere somewhere already almost together that this them than then
    what when themselves himself herself itself ourselves yourself myself""",
    )
)
_WITH_NAMES = (
    "Write a scene with {names} that turns on the {subject}.",
    "Continue the story with {names}, around the {subject}.",
    "In my voice, write a passage featuring {names} and the {subject}.",
)
_WITHOUT_NAMES = (
    "Write a scene about the {subject}.",
    "In my voice, write a passage centred on the {subject}.",
)
_NAMES_ONLY = ("Write a scene with {names}.", "Continue the story with {names}.")
_NEITHER = ("Continue the story in my voice.",)


class HeuristicPrompts:
    """Writing requests from a passage's names and subject, with names judged on the whole corpus."""

    def __init__(self, corpus_sentences: list[str]) -> None:
        word_case = word_case_counts(corpus_sentences)
        self.names = frozenset(
            word
            for word, (mid, _, lower) in word_case.items()
            if mid >= 1 and lower == 0 and len(word) > 1 and word not in _COMMON
        )

    def request(self, passage: str) -> str:
        """One writing request for the passage."""
        runs = (
            " ".join(strip_possessive(word) for word in run.split()) for run in _NAME_RUN.findall(passage)
        )
        named = (run for run in runs if all(word.lower() in self.names for word in run.split()))
        names = [name for name, _ in Counter(named).most_common(2)]
        nouns = Counter(
            word for word in _NOUN.findall(passage) if word not in _COMMON and not word.endswith(_NOT_NOUNS)
        )
        subject = nouns.most_common(1)[0][0] if nouns else None
        choice = int(hashlib.sha256(passage.encode()).hexdigest(), 16)
        templates = {
            (True, True): _WITH_NAMES,
            (False, True): _WITHOUT_NAMES,
            (True, False): _NAMES_ONLY,
            (False, False): _NEITHER,
        }[bool(names), subject is not None]
        return templates[choice % len(templates)].format(names=" and ".join(names), subject=subject)


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
