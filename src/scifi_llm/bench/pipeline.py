"""`bench pipeline`: the whole path, through the lore proxy, on questions with known answers.

For each question: the proxy's retrieval time and the sources it injected (from its response headers),
time to first token through the proxy and directly from the engine (the same request), whether the file
holding the answer was among the sources, and whether the answer states a gold fact.
"""

import asyncio
import statistics
from pathlib import Path
from urllib.parse import unquote

import httpx

from scifi_llm.bench.throughput import endpoint_info
from scifi_llm.errors import UserError
from scifi_llm.lore import Question, load_questions
from scifi_llm.openai_client import stream_chat

SYSTEM = "You are a science fiction author's assistant. Answer from the world's notes when given."


def pipeline_scores(
    proxy_url: str, engine_url: str, questions_file: Path, questions: int = 5, max_tokens: int = 64
) -> dict:
    """Per-question timings and facts, and their summary."""
    loaded, errors = load_questions(questions_file)
    chosen = loaded[:questions]
    info = asyncio.run(endpoint_info(engine_url))
    rows = asyncio.run(_measure_all(proxy_url, engine_url, info["model"], chosen, max_tokens))
    done = [row for row in rows if row["error"] is None]
    return {
        "endpoint": info,
        "proxy": proxy_url,
        "questions": len(chosen),
        "failed": len(rows) - len(done),
        "median_retrieval_ms": _median(row["retrieval_ms"] for row in done),
        "median_ttft_proxy_ms": _median(row["ttft_proxy_ms"] for row in done),
        "median_ttft_direct_ms": _median(row["ttft_direct_ms"] for row in done),
        "median_prompt_tokens": _median(row["prompt_tokens"] for row in done),
        "median_completion_tokens": _median(row["completion_tokens"] for row in done),
        "median_prompt_tokens_direct": _median(row["prompt_tokens_direct"] for row in done),
        "gold_source_injected": _share(row["gold_source_injected"] for row in done),
        "answers_using_gold_facts": _share(row["answer_uses_gold"] for row in done),
        "rows": rows,
        "skipped_lines": [{"line": error.line, "message": error.message} for error in errors],
    }


async def _measure_all(
    proxy_url: str, engine_url: str, model: str, questions: list[Question], max_tokens: int
):
    async with httpx.AsyncClient(timeout=600) as client:
        return [
            await _measure(client, proxy_url, engine_url, model, question, max_tokens)
            for question in questions
        ]


async def _measure(
    client, proxy_url: str, engine_url: str, model: str, question: Question, max_tokens: int
) -> dict:
    body = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question.question}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream_options": {"include_usage": True},  # the token counts, as the server saw the request
    }
    row = {"id": question.id, "question": question.question, "error": None}
    try:
        through, direct = await _stream(client, proxy_url, body), await _stream(client, engine_url, body)
    except UserError as exc:
        return row | {"error": str(exc)}
    headers = through.headers or {}
    sources = [unquote(source) for source in headers.get("x-lore-sources", "").split(",") if source]
    retrieval = headers.get("x-lore-retrieval-ms")
    return row | {
        "sources": sources,
        "retrieval_ms": float(retrieval) if retrieval else None,
        "ttft_proxy_ms": round(through.ttft_s * 1000, 2) if through.ttft_s else None,
        "ttft_direct_ms": round(direct.ttft_s * 1000, 2) if direct.ttft_s else None,
        "gold_source_injected": question.source in sources if question.source else None,
        "answer_uses_gold": any(phrase.lower() in through.text.lower() for phrase in question.gold_phrases),
        "answer": through.text,
        "prompt_tokens": (through.usage or {}).get("prompt_tokens"),  # the lore included
        "completion_tokens": (through.usage or {}).get("completion_tokens"),
        "prompt_tokens_direct": (direct.usage or {}).get("prompt_tokens"),  # the same request without lore
    }


async def _stream(client, url: str, body: dict):
    reply = None
    async for _, streamed in stream_chat(url, body, client=client):
        reply = streamed
    return reply


def _median(values) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 2) if present else None


def _share(flags) -> float | None:
    known = [flag for flag in flags if flag is not None]
    return round(sum(known) / len(known), 3) if known else None
