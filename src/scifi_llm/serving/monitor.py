"""What `scifi-llm monitor` shows: the engine's Prometheus metrics and the proxy's /stats, as snapshots.

vLLM exports `vllm:*` metrics (requests running and waiting, KV-cache usage, token counters, a TTFT
histogram); `transformers serve` exports none, so for it the view shows health only. Rates come from
the difference of two snapshots' counters. A source that does not answer is reported as down.
"""

import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

_GAUGES = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
}
_COUNTERS = {"prompt_tokens": "vllm:prompt_tokens", "generation_tokens": "vllm:generation_tokens"}
_TTFT = "vllm:time_to_first_token_seconds"


@dataclass
class EngineSnapshot:
    """The engine at one moment."""

    url: str
    up: bool
    taken_at: float = field(default_factory=time.monotonic)
    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    ttft_buckets: list[tuple[float, float]] = field(default_factory=list)
    has_metrics: bool = False


def parse_metrics(text: str) -> tuple[dict[str, float], dict[str, float], list[tuple[float, float]]]:
    """Gauges, counter totals and TTFT buckets (upper bound, cumulative count) from Prometheus text."""
    samples: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{_TTFT}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
            else:
                samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    gauges = {key: samples[name] for key, names in _GAUGES.items() for name in names if name in samples}
    counters = {
        key: samples[f"{name}_total"] for key, name in _COUNTERS.items() if f"{name}_total" in samples
    }
    return gauges, counters, sorted(buckets.items())


def histogram_quantile(buckets: list[tuple[float, float]], quantile: float) -> float | None:
    """The quantile of a cumulative histogram, interpolated linearly inside its bucket (as PromQL does)."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = quantile * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def engine_snapshot(base_url: str, timeout: float = 2.0) -> EngineSnapshot:
    """Read the engine's /health and /metrics (base_url is its OpenAI /v1 URL)."""
    root = base_url.removesuffix("/v1")
    try:
        up = httpx.get(f"{root}/health", timeout=timeout).status_code == 200
        metrics = httpx.get(f"{root}/metrics", timeout=timeout)
    except httpx.HTTPError:
        return EngineSnapshot(base_url, up=False)
    if metrics.status_code != 200:
        return EngineSnapshot(base_url, up=up)
    gauges, counters, buckets = parse_metrics(metrics.text)
    return EngineSnapshot(
        base_url, up, gauges=gauges, counters=counters, ttft_buckets=buckets, has_metrics=True
    )


def proxy_snapshot(base_url: str, api_key: str | None = None, timeout: float = 2.0) -> dict | None:
    """The proxy's /stats, or None when it does not answer."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url.removesuffix('/v1')}/stats", headers=headers, timeout=timeout)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def engine_view(now: EngineSnapshot, before: EngineSnapshot | None) -> dict:
    """What to show of the engine: gauges, token rates since the last snapshot, TTFT percentiles."""
    view: dict = {"url": now.url, "up": now.up, "metrics": now.has_metrics, **now.gauges}
    if before is not None and before.has_metrics and now.has_metrics:
        elapsed = max(now.taken_at - before.taken_at, 1e-6)
        for key, total in now.counters.items():
            view[f"{key}_per_s"] = round((total - before.counters.get(key, total)) / elapsed, 1)
    for quantile in (0.5, 0.95):
        value = histogram_quantile(now.ttft_buckets, quantile)
        view[f"ttft_p{int(quantile * 100)}_ms"] = None if value is None else round(value * 1000, 1)
    return view
