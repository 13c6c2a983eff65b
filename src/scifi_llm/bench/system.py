"""`bench system`: the old plan's real goal, both at once: does the tuned model write like the author
*and* keep the world's facts, compared with the base model, each behind the lore proxy?

On the same prompts for both models:
- voice: each model writes to the first N requests of the held-out validation set, and its passages are
  measured against the author's own with the judge-free style distances of `tune compare` (Burrows'
  Delta, sentence lengths, type-token ratio, dialogue share);
- lore: each model answers the lore questions through the proxy (which injects the notes), and an answer
  counts when it states one of the question's gold facts (as `bench pipeline` counts them).
"""

import asyncio
import json
from pathlib import Path

import httpx

from scifi_llm.errors import UserError
from scifi_llm.lore import load_questions
from scifi_llm.openai_client import chat_text
from scifi_llm.stylometry import burrows_delta, style_distance, style_numbers

MODELS = ("base", "tuned")
LORE_SYSTEM = "You are a science fiction author's assistant. Answer from the world's notes when given."


def system_scores(
    endpoints: dict[str, tuple[str, str]],
    validation_file: Path,
    questions_file: Path,
    prompts: int = 5,
    questions: int = 5,
    max_tokens: int = 200,
) -> dict:
    """Voice and lore for each model; `endpoints` maps "base" and "tuned" to (proxy URL, model name)."""
    requests, author = _validation(validation_file, prompts)
    asked, errors = load_questions(questions_file)
    asked = asked[:questions]
    passages = {name: asyncio.run(_answers(*endpoints[name], requests, max_tokens)) for name in MODELS}
    deltas = burrows_delta(author, passages)
    lore = {name: _lore(endpoints[name], asked) for name in MODELS}
    models = {
        name: {
            "url": endpoints[name][0],
            "model": endpoints[name][1],
            "voice": {"burrows_delta": deltas[name]} | style_distance(author, passages[name]),
            "lore_facts_right": lore[name]["share"],
        }
        for name in MODELS
    }
    return {
        "prompts": len(requests),
        "questions": len(asked),
        "author": style_numbers(author),
        "models": models,
        "samples": [
            {"request": request[-1]["content"], "author": passage} | {n: passages[n][i] for n in MODELS}
            for i, (request, passage) in enumerate(zip(requests, author, strict=True))
        ],
        "lore_answers": {name: lore[name]["answers"] for name in MODELS},
        "skipped_question_lines": [{"line": error.line, "message": error.message} for error in errors],
    }


def _lore(endpoint: tuple[str, str], asked: list) -> dict:
    """The model's answers to the lore questions, and the share that state a gold fact."""
    answers = asyncio.run(_answers(*endpoint, [_lore_request(question.question) for question in asked], 96))
    rows = [
        {"id": q.id, "answer": answer, "gold": any(p.lower() in answer.lower() for p in q.gold_phrases)}
        for q, answer in zip(asked, answers, strict=True)
    ]
    share = round(sum(row["gold"] for row in rows) / len(rows), 3) if rows else None
    return {"share": share, "answers": rows}


def _validation(path: Path, count: int) -> tuple[list[list[dict]], list[str]]:
    """The first `count` requests of the validation set (system and user turns) and the author's passages."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs = [(row["messages"][:-1], row["messages"][-1]["content"]) for row in rows[:count]]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UserError(f"{path}: not a set of chat examples ({exc}); run `scifi-llm tune prepare`") from exc
    if not pairs:
        raise UserError(
            f"{path} holds no examples: run `scifi-llm tune prepare` (it writes validation.jsonl)"
        )
    return [messages for messages, _ in pairs], [passage for _, passage in pairs]


def _lore_request(question: str) -> list[dict]:
    return [{"role": "system", "content": LORE_SYSTEM}, {"role": "user", "content": question}]


async def _answers(url: str, model: str, conversations: list[list[dict]], max_tokens: int) -> list[str]:
    """The model's reply to each conversation, one at a time (both models get the same load)."""
    async with httpx.AsyncClient(timeout=600) as client:
        return [
            await chat_text(client, url, _body(model, messages, max_tokens)) for messages in conversations
        ]


def _body(model: str, messages: list[dict], max_tokens: int) -> dict:
    return {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
