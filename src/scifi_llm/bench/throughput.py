"""`bench throughput`: single-stream decode speed (the old plan's headline) and a concurrency sweep.

Every request has the same prompt length (prose from the example writing, cut to the token count) and
asks for the same number of output tokens (vLLM is told to ignore end-of-sequence so every answer has
that length; other engines may stop early, and the token counts say so).
"""

import asyncio
from pathlib import Path

import httpx

from scifi_llm.bench.loadgen import CountTokens, Load, require_answers, run_load, summarize
from scifi_llm.config import example_dir
from scifi_llm.errors import UserError
from scifi_llm.openai_client import model_info

DEFAULT_LEVELS = (1, 4, 9, 16)


async def endpoint_info(url: str) -> dict:
    """The served model's id, who serves it and its maximum length, from /v1/models."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await model_info(client, url)


def prose_prompt(tokens: int, count_tokens: CountTokens | None, source: Path | None = None) -> str:
    """Real prose of `tokens` tokens (exactly, with a tokenizer; about, by words, without one): the example
    writing, repeated as needed."""
    source = source or example_dir() / "writing"
    words = " ".join(path.read_text(encoding="utf-8") for path in sorted(source.glob("*.md"))).split()
    if not words:
        raise UserError(f"no prose in {source} to build prompts from (reinstall scifi-llm)")
    while len(words) < tokens * 2:
        words = words + words
    if count_tokens is None:
        return " ".join(words[: int(tokens * 0.75)])
    low, high = 1, len(words)
    while low < high:  # the most words whose tokens fit
        middle = (low + high + 1) // 2
        low, high = (middle, high) if count_tokens(" ".join(words[:middle])) <= tokens else (low, middle - 1)
    return " ".join(words[:low])


def request_body(model: str, prompt: str, output_tokens: int, engine: str | None) -> dict:
    """A chat request for exactly `output_tokens` tokens where the engine allows it."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": output_tokens,
        "temperature": 0,
    }
    return body | ({"ignore_eos": True} if engine == "vllm" else {})


def throughput_sweep(
    url: str,
    input_tokens: int = 256,
    output_tokens: int = 128,
    levels: tuple[int, ...] = DEFAULT_LEVELS,
    requests_per_level: int = 2,
    count_tokens: CountTokens | None = None,
    rate: float | None = None,
) -> dict:
    """Single-stream decode tok/s, a summary per concurrency level, and (with `rate`) an open-loop run of
    Poisson arrivals at that many requests per second."""
    info = asyncio.run(endpoint_info(url))
    body = request_body(
        info["model"], prose_prompt(input_tokens, count_tokens), output_tokens, info["owned_by"]
    )
    single = asyncio.run(run_load(url, [body], Load(requests=3, concurrency=1), count_tokens))
    single_summary = require_answers(summarize(*single, Load(requests=3)), url)
    sweep = []
    for level in levels:
        load = Load(requests=max(level * requests_per_level, 2), concurrency=level)
        sweep.append(summarize(*asyncio.run(run_load(url, [body], load, count_tokens)), load))
    open_loop = None
    if rate is not None:
        load = Load(
            requests=max(max(levels) * requests_per_level * 4, 8), concurrency=max(levels) * 4, rate=rate
        )
        open_loop = summarize(*asyncio.run(run_load(url, [body], load, count_tokens)), load)
    tpot = single_summary["median_tpot_ms"]
    return {
        "endpoint": info,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "single_stream": single_summary,
        "single_stream_decode_tok_s": round(1000 / tpot, 2) if tpot else None,
        "sweep": sweep,
        "open_loop": open_loop,
    }


def plot(result: dict, path: Path) -> None:
    """Output throughput against median end-to-end latency, one point per concurrency level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4))
    points = [
        (row["median_e2el_ms"], row["output_throughput"], row["max_concurrency"]) for row in result["sweep"]
    ]
    points = [point for point in points if point[0] is not None]
    axis.plot([p[0] for p in points], [p[1] for p in points], marker="o")
    for latency, tokens, level in points:
        axis.annotate(f"c{level}", (latency, tokens))
    axis.set_xlabel("median end-to-end latency (ms)")
    axis.set_ylabel("output tokens/s")
    axis.set_title("throughput against latency")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
