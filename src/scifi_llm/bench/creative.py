"""`bench creative`: how well the model writes science fiction, with and without a judge.

The model answers our own set of writing prompts (`data/creative_prompts.txt`). Judge-free measures,
always: completion rate (the answer ended by itself, not by the token limit), distinct-2 (unique word
pairs over all word pairs), repetition (the share of each answer's 4-word sequences it already used),
and length. With a judge (any OpenAI-compatible endpoint), each answer is also scored 0-10 on each
criterion of our rubric; an answer's score is the mean times ten (0-100), and the run's score comes with
a bootstrap 95% confidence interval over answers. Unreadable judge answers are failures, never zeros.
"""

import asyncio
import itertools
import random
import statistics
from pathlib import Path

from scifi_llm.bench.loadgen import Load, run_load
from scifi_llm.bench.throughput import endpoint_info
from scifi_llm.errors import UserError
from scifi_llm.judge import ask_all, json_object
from scifi_llm.text import words_in

PROMPTS_FILE = Path(__file__).parent / "data" / "creative_prompts.txt"
SYSTEM = "You are a science fiction author. Write vivid, original fiction."
RUBRIC = {
    "adherence": "does exactly what the prompt asks",
    "originality": "fresh ideas and images, not stock science fiction",
    "prose": "sentence-level craft: precise, rhythmic, no filler",
    "voice": "a consistent, distinctive narrative voice",
    "character": "people with wants, fears and specific behaviour",
    "dialogue": "speech that sounds like these people and moves the scene (10 if none is needed or used)",
    "pacing": "the scene moves; nothing drags or rushes",
    "setting": "concrete sensory detail that makes the place real",
    "worldbuilding": "the science and society hold together and matter to the story",
    "emotion": "the scene makes the reader feel something",
    "structure": "a shaped scene with a beginning, a turn and an ending",
    "mechanics": "grammar, spelling and punctuation",
}
JUDGE_PROMPT = """You are a demanding fiction editor. Score the passage below, written for this prompt:

{prompt}

Passage:
{passage}

Score each criterion from 0 (absent) to 10 (exceptional):
{criteria}

Reply with JSON only, like {{"scores": {{"adherence": 7, ...}}}}, with every criterion above."""


def load_prompts(path: Path = PROMPTS_FILE) -> list[str]:
    """The writing prompts, one per line."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def creative_scores(
    url: str,
    judge_url: str | None = None,
    prompts: int | None = None,
    max_tokens: int = 512,
    concurrency: int = 4,
    seed: int = 0,
    judge_tokens: int = 400,
) -> dict:
    """Generate an answer to each prompt, measure them, and score them when a judge is given (allowed
    `judge_tokens` for each verdict)."""
    chosen = load_prompts()[:prompts]
    info = asyncio.run(endpoint_info(url))
    bodies = [
        {
            "model": info["model"],
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0.8,
        }
        for prompt in chosen
    ]
    results, _ = asyncio.run(
        run_load(url, bodies, Load(requests=len(bodies), concurrency=concurrency, warmup=0))
    )
    if not any(result.ok for result in results):
        raise UserError(f"no request to {url} was answered: {results[0].error}")
    answers = [result.text if result.ok else "" for result in results]
    report = {
        "endpoint": info,
        "prompts": len(chosen),
        "failed_generations": sum(not result.ok for result in results),
        "judge_free": judge_free([r for r in results if r.ok]),
        "samples": [{"prompt": p, "answer": a} for p, a in zip(chosen, answers, strict=True)][:3],
    }
    if judge_url is None:
        report["judge"] = None
        report["note"] = "no judge (--no-judge): judge-free measures only"
        return report
    answered = [(prompt, result.text) for prompt, result in zip(chosen, results, strict=True) if result.ok]
    prompts_given, answers_given = [p for p, _ in answered], [a for _, a in answered]
    report["judge"] = judge_scores(judge_url, prompts_given, answers_given, seed, judge_tokens)
    return report


def judge_free(results) -> dict:
    """Completion rate, distinct-2, repetition and length of the answers that came back."""
    texts = [result.text for result in results]
    words = [words_in(text.lower()) for text in texts]
    pairs = [pair for tokens in words for pair in itertools.pairwise(tokens)]
    return {
        "answers": len(texts),
        "completion_rate": round(sum(r.finish_reason == "stop" for r in results) / len(results), 3)
        if results
        else None,
        "distinct_2": round(len(set(pairs)) / len(pairs), 4) if pairs else None,
        "repetition_4gram": round(statistics.fmean(repetition(tokens) for tokens in words), 4)
        if words
        else None,
        "mean_words": round(statistics.fmean(len(tokens) for tokens in words), 1) if words else None,
        "mean_output_tokens": round(statistics.fmean(r.output_tokens for r in results), 1)
        if results
        else None,
    }


def repetition(tokens: list[str], n: int = 4) -> float:
    """The share of a text's n-word sequences that repeat an earlier one."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def parse_scores(answer: str) -> dict[str, int] | None:
    """The rubric scores in a judge's answer, or None unless every criterion has a whole number 0-10."""
    scores = (json_object(answer) or {}).get("scores")
    if not isinstance(scores, dict):
        return None
    picked = {name: scores.get(name) for name in RUBRIC}
    if not all(
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10
        for value in picked.values()
    ):
        return None
    return picked


def judge_scores(
    judge_url: str, prompts: list[str], answers: list[str], seed: int = 0, judge_tokens: int = 400
) -> dict:
    """Each answer scored on the rubric; the mean score (0-100) with a bootstrap 95% interval."""
    criteria = "\n".join(f"- {name}: {meaning}" for name, meaning in RUBRIC.items())
    questions = [
        JUDGE_PROMPT.format(prompt=prompt, passage=answer, criteria=criteria)
        for prompt, answer in zip(prompts, answers, strict=True)
    ]
    verdicts, unreadable = asyncio.run(ask_all(judge_url, questions, parse_scores, max_tokens=judge_tokens))
    scored = [verdict for verdict in verdicts if verdict is not None]
    overall = [statistics.fmean(verdict.values()) * 10 for verdict in scored]
    return {
        "scored": len(scored),
        "failures": len(verdicts) - len(scored),
        "unreadable_answers": unreadable,
        "score": round(statistics.fmean(overall), 2) if overall else None,
        "ci95": bootstrap_interval(overall, seed=seed),
        "per_criterion": {
            name: round(statistics.fmean(verdict[name] for verdict in scored), 2) for name in RUBRIC
        }
        if scored
        else None,
    }


def bootstrap_interval(values: list[float], resamples: int = 2000, seed: int = 0) -> list[float] | None:
    """The 2.5th and 97.5th percentiles of the mean over resamples with replacement."""
    if len(values) < 2:
        return None
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(resamples))
    return [round(means[int(0.025 * resamples)], 2), round(means[int(0.975 * resamples) - 1], 2)]
