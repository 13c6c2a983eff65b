"""An LLM judge through any OpenAI-compatible endpoint, read strictly.

The judge must answer with JSON; an answer that does not parse into what was asked is asked again, and
after the last try it is counted as a failure, never as a zero: a judge that cannot answer must not drag
a model's score down, nor hide behind an average.
"""

import asyncio
import json
import re
from collections.abc import Callable

import httpx

from scifi_llm.errors import UserError
from scifi_llm.openai_client import chat_text, first_model

Parser = Callable[[str], object | None]
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def json_object(answer: str) -> dict | None:
    """The first JSON object in an answer (judges like to wrap it in prose or code fences), or None."""
    match = _JSON_OBJECT.search(answer)
    if match is None:
        return None
    try:
        value = json.loads(match.group())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


RETRY_REMINDER = (
    "Your answer could not be read. Reply again, in exactly the format asked for and nothing else."
)


async def ask_all(
    url: str,
    prompts: list[str],
    parse: Parser,
    tries: int = 2,
    max_tokens: int = 400,
    concurrency: int = 4,
    model: str | None = None,
) -> tuple[list[object | None], int]:
    """Each prompt's parsed verdict (None after `tries` unreadable answers), and how many answers were
    unreadable in all; `model` defaults to the first the endpoint lists. A judge that cannot be reached
    is an error (a wrong URL), not a verdict."""
    unreadable = 0
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600) as client:
        model = model or await first_model(client, url)

        async def verdict(prompt: str) -> object | None:
            nonlocal unreadable
            messages = [{"role": "user", "content": prompt}]
            for _ in range(tries):
                body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
                async with limit:
                    answer = await chat_text(client, url, body)
                parsed = parse(answer)
                if parsed is not None:
                    return parsed
                unreadable += 1
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer},
                    {"role": "user", "content": RETRY_REMINDER},
                ]
            return None

        try:
            verdicts = await asyncio.gather(*(verdict(prompt) for prompt in prompts))
        except UserError as exc:
            raise UserError(f"the judge could not be asked: {exc}") from exc
    return list(verdicts), unreadable


async def judge_model(url: str) -> str:
    """The model a judge endpoint answers with (the first it lists)."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await first_model(client, url)
