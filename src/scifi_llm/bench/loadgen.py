"""The one load generator: streaming chat requests against any OpenAI-compatible endpoint, timed.

Per request: time to first token (TTFT), time per output token after the first (TPOT), the gaps between
streamed chunks (ITL), end-to-end latency (E2EL), and token counts from the server's `usage` (asked for
with `stream_options.include_usage`), else from a tokenizer, else the chunk count (said in the summary).
Load is closed-loop (N requests in flight) or open-loop (Poisson arrivals at a rate). Warm-up requests
are sent first and not counted. Failed requests are counted, never dropped. Summary fields and units
follow `vllm bench serve` (`mean_ttft_ms`, `median_tpot_ms`, `p99_itl_ms`, `output_throughput`, ...), so
numbers compare with vLLM's own tool.
"""

import asyncio
import itertools
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from scifi_llm.errors import UserError
from scifi_llm.openai_client import stream_chat

CountTokens = Callable[[str], int]  # a text's tokens in the served model's tokenizer


@dataclass
class RequestResult:
    """One request as the client saw it."""

    ok: bool
    e2el_s: float
    ttft_s: float | None = None
    itls_s: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    output_tokens: int = 0
    tokens_from: str = "usage"  # usage | tokenizer | chunks
    finish_reason: str | None = None
    text: str = ""
    error: str | None = None
    truncated: bool = False  # the stream ended without `data: [DONE]`
    lore_sources: list[str] = field(default_factory=list)  # the lore proxy's x-lore-sources

    @property
    def tpot_s(self) -> float | None:
        """Seconds per output token after the first (vLLM's definition)."""
        if self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.e2el_s - self.ttft_s) / (self.output_tokens - 1)


@dataclass(frozen=True)
class Load:
    """How to send the requests: `concurrency` in flight, or Poisson arrivals at `rate` per second."""

    requests: int
    concurrency: int = 1
    rate: float | None = None
    warmup: int = 1
    seed: int = 0


async def one_request(
    client: httpx.AsyncClient, url: str, body: dict, count_tokens: CountTokens | None = None
) -> RequestResult:
    """Send one streaming request and time it; a failure is returned, not raised."""
    started = time.perf_counter()
    body = body | {"stream_options": {"include_usage": True}}
    try:
        async for _, streamed in stream_chat(url, body, client=client):
            reply = streamed  # the last yield carries the finished reply
    except UserError as exc:
        return RequestResult(ok=False, e2el_s=time.perf_counter() - started, error=str(exc))
    times = reply.chunk_times_s
    result = RequestResult(
        ok=True,
        e2el_s=reply.total_s,
        ttft_s=reply.ttft_s,
        itls_s=[later - earlier for earlier, later in itertools.pairwise(times)],
        finish_reason=reply.finish_reason,
        text=reply.text,
        truncated=not reply.done,
        lore_sources=reply.lore_sources,
    )
    usage = reply.usage or {}
    if usage.get("completion_tokens") is not None:
        result.output_tokens, result.prompt_tokens = usage["completion_tokens"], usage.get("prompt_tokens")
    elif count_tokens is not None:
        result.output_tokens, result.tokens_from = count_tokens(reply.text), "tokenizer"
    else:
        result.output_tokens, result.tokens_from = reply.chunks, "chunks"
    return result


async def run_load(
    url: str,
    bodies: list[dict],
    load: Load,
    count_tokens: CountTokens | None = None,
    timeout: float = 600,
    on_result: Callable[[RequestResult], None] | None = None,
) -> tuple[list[RequestResult], float]:
    """Send `load.requests` requests (bodies used in turn) after the warm-up; returns the results and
    the wall time of the counted part. `on_result` hears of each counted request as it ends (progress)."""
    limits = httpx.Limits(
        max_connections=max(load.concurrency, 1) + 4, max_keepalive_connections=load.concurrency
    )
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        for index in range(load.warmup):
            await one_request(client, url, bodies[index % len(bodies)], count_tokens)
        slots = asyncio.Semaphore(load.concurrency)
        arrivals = arrival_times(load)
        started = time.perf_counter()

        async def send(index: int) -> RequestResult:
            if arrivals is not None:
                await asyncio.sleep(max(0.0, started + arrivals[index] - time.perf_counter()))
            async with slots:
                result = await one_request(client, url, bodies[index % len(bodies)], count_tokens)
            if on_result:
                on_result(result)
            return result

        results = await asyncio.gather(*(send(index) for index in range(load.requests)))
        return list(results), time.perf_counter() - started


def arrival_times(load: Load) -> list[float] | None:
    """Poisson arrival times (seconds from the start) for an open-loop run, else None."""
    if load.rate is None:
        return None
    rng = random.Random(load.seed)
    moment, times = 0.0, []
    for _ in range(load.requests):
        moment += rng.expovariate(load.rate)
        times.append(moment)
    return times


def summarize(results: list[RequestResult], duration_s: float, load: Load) -> dict:
    """Totals and latency statistics with `vllm bench serve`'s names and units (ms, tokens/s)."""
    done = [result for result in results if result.ok]
    output = sum(result.output_tokens for result in done)
    prompt = sum(result.prompt_tokens or 0 for result in done)
    summary = {
        "completed": len(done),
        "failed": len(results) - len(done),
        "truncated": sum(result.truncated for result in done),
        "errors": sorted({result.error for result in results if result.error})[:5],
        "max_concurrency": load.concurrency,
        "request_rate": load.rate if load.rate is not None else "inf",
        "duration": round(duration_s, 4),
        "total_input_tokens": prompt,
        "total_output_tokens": output,
        "tokens_counted_from": sorted({result.tokens_from for result in done}),
        "request_throughput": round(len(done) / duration_s, 4) if duration_s else 0.0,
        "output_throughput": round(output / duration_s, 4) if duration_s else 0.0,
        "total_token_throughput": round((output + prompt) / duration_s, 4) if duration_s else 0.0,
    }
    series = {
        "ttft": [r.ttft_s for r in done if r.ttft_s is not None],
        "tpot": [r.tpot_s for r in done if r.tpot_s is not None],
        "itl": [gap for r in done for gap in r.itls_s],
        "e2el": [r.e2el_s for r in done],
    }
    for name, values in series.items():
        summary |= _stats(name, [value * 1000 for value in values])
    return summary


def _stats(name: str, values_ms: list[float]) -> dict:
    if not values_ms:
        return {f"{kind}_{name}_ms": None for kind in ("mean", "median", "std", "p99")}
    p99 = (
        statistics.quantiles(values_ms, n=100, method="inclusive")[98] if len(values_ms) > 1 else values_ms[0]
    )
    return {
        f"mean_{name}_ms": round(statistics.fmean(values_ms), 4),
        f"median_{name}_ms": round(statistics.median(values_ms), 4),
        f"std_{name}_ms": round(statistics.pstdev(values_ms), 4),
        f"p99_{name}_ms": round(p99, 4),  # linear interpolation, as numpy's percentile (vLLM's tool)
    }


def require_answers(summary: dict, url: str) -> dict:
    """The summary, or a one-line error when not a single request was answered (a wrong URL, a dead
    server): numbers made of failures would only mislead."""
    if summary["completed"] == 0:
        reason = summary["errors"][0] if summary["errors"] else "no answer"
        raise UserError(f"no request to {url} was answered: {reason}")
    return summary
