"""`bench coherence`: does the model keep a character's facts straight over a long story?

A character sheet (our own, `data/coherence_sheet.json`) goes in the system prompt. The model writes a
story in continuations until it reaches the target length (default 4k tokens) or the context runs out.
Then, with the whole story in context and the sheet taken away, it answers one probe question per fact;
a fact is kept when the answer names it. So what is measured is what the story kept, not what the
sheet says. With a judge, the story is also scanned for statements that contradict the sheet, the
sheet's facts given as ground truth; an unreadable judge answer is a failure, never a clean bill.
"""

import asyncio
import json
from pathlib import Path

import httpx

from scifi_llm.bench.throughput import endpoint_info
from scifi_llm.errors import UserError
from scifi_llm.judge import ask_all, json_object
from scifi_llm.openai_client import chat_completion, chat_text

SHEET_FILE = Path(__file__).parent / "data" / "coherence_sheet.json"
STORY_REQUEST = (
    "Write a long science fiction story about Captain Vance and her crew, in scenes. Keep to the sheet."
)
CONTINUE = "Continue the story from where it stopped."
PROBE_SYSTEM = "You are a science fiction author. Answer questions about the story you wrote."
SCAN_PROMPT = """The facts below are true in this story's world.

Facts:
{facts}

Story:
{story}

List every statement in the story that contradicts one of the facts. Reply with JSON only, like
{{"contradictions": [{{"fact": "ship", "quote": "the exact words from the story"}}]}}, or
{{"contradictions": []}} when there are none. Use the fact ids given in brackets."""


def load_sheet(path: Path = SHEET_FILE) -> dict:
    """The character sheet and its facts (id, fact, probe question, expected words)."""
    return json.loads(path.read_text(encoding="utf-8"))


def coherence_scores(
    url: str,
    judge_url: str | None = None,
    target_tokens: int = 4096,
    chunk_tokens: int = 512,
    max_rounds: int = 24,
    judge_tokens: int = 800,
) -> dict:
    """Write the long story, probe every fact, and (with a judge) list contradictions."""
    sheet = load_sheet()
    info = asyncio.run(endpoint_info(url))
    story, rounds, tokens, stop = asyncio.run(
        _write_story(url, info["model"], sheet, target_tokens, chunk_tokens, max_rounds)
    )
    probes = asyncio.run(_probe(url, info["model"], sheet, story))
    kept = [probe for probe in probes if probe["kept"]]
    report = {
        "endpoint": info,
        "target_tokens": target_tokens,
        "story_tokens": tokens,
        "story_words": len(story.split()),
        "continuations": rounds,
        "stopped_because": stop,
        "facts": len(probes),
        "facts_kept": len(kept),
        "facts_kept_share": round(len(kept) / len(probes), 3),
        "probes": probes,
        "story_start": story[:1500],
    }
    report["contradictions"] = _scan(judge_url, sheet, story, judge_tokens) if judge_url else None
    if judge_url is None:
        report["note"] = "no judge (--no-judge): no contradiction scan, probes only"
    return report


async def _write_story(
    url: str, model: str, sheet: dict, target: int, chunk: int, max_rounds: int
) -> tuple[str, int, int, str]:
    """The story, how many requests wrote it, its tokens (the server's count), and why it stopped."""
    story, tokens = "", 0
    async with httpx.AsyncClient(timeout=600) as client:
        for round_number in range(1, max_rounds + 1):
            messages = [
                {"role": "system", "content": sheet["sheet"]},
                {"role": "user", "content": STORY_REQUEST},
            ]
            if story:
                messages += [{"role": "assistant", "content": story}, {"role": "user", "content": CONTINUE}]
            body = {
                "model": model,
                "messages": messages,
                "max_tokens": min(chunk, target - tokens),
                "temperature": 0.8,
            }
            try:
                reply = await chat_completion(client, url, body)
            except UserError as exc:  # typically: the story no longer fits the context
                return story, round_number - 1, tokens, f"round {round_number} failed: {exc}"
            text = reply["choices"][0]["message"].get("content") or ""
            story = f"{story}\n\n{text}".strip()
            tokens += (reply.get("usage") or {}).get("completion_tokens") or len(text.split())
            if tokens >= target:
                return story, round_number, tokens, "reached the target length"
    return story, max_rounds, tokens, f"stopped after {max_rounds} continuations"


async def _probe(url: str, model: str, sheet: dict, story: str) -> list[dict]:
    """Each fact's question answered with the whole story in context; kept when the answer names it."""
    async with httpx.AsyncClient(timeout=600) as client:
        answers = []
        for fact in sheet["facts"]:
            messages = [  # no sheet here: the answer must come from the story the model wrote
                {"role": "system", "content": PROBE_SYSTEM},
                {"role": "user", "content": STORY_REQUEST},
                {"role": "assistant", "content": story},
                {"role": "user", "content": f"Answer in one sentence: {fact['question']}"},
            ]
            body = {"model": model, "messages": messages, "max_tokens": 48, "temperature": 0}
            answer = await chat_text(client, url, body)
            kept = any(word in answer.lower() for word in fact["expect"])
            answers.append({"id": fact["id"], "question": fact["question"], "answer": answer, "kept": kept})
    return answers


def parse_contradictions(answer: str) -> list[dict] | None:
    """The judge's list of contradictions, or None unless it is a list of {fact, quote} objects."""
    found = (json_object(answer) or {}).get("contradictions")
    if not isinstance(found, list) or not all(
        isinstance(item, dict) and isinstance(item.get("fact"), str) and isinstance(item.get("quote"), str)
        for item in found
    ):
        return None
    return found


def _scan(judge_url: str, sheet: dict, story: str, judge_tokens: int) -> dict:
    facts = "\n".join(f"[{fact['id']}] {fact['fact']}" for fact in sheet["facts"])
    prompt = SCAN_PROMPT.format(facts=facts, story=story)
    [found], unreadable = asyncio.run(
        ask_all(judge_url, [prompt], parse_contradictions, max_tokens=judge_tokens)
    )
    if found is None:
        return {"scanned": False, "unreadable_answers": unreadable, "items": None}
    return {"scanned": True, "unreadable_answers": unreadable, "count": len(found), "items": found}
