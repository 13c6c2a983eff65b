"""What the proxy counts: Prometheus metrics for /metrics, recent requests and percentiles for /stats."""

import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class RequestRecord:
    """One proxied chat request, as /stats shows it."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])  # the x-lore-request-id header
    query: str = ""
    sources: list[str] = field(default_factory=list)
    retrieval_ms: float | None = None
    added_ms: float = 0.0
    upstream_ttft_ms: float | None = None
    status: int = 200
    lore: str = "used"  # used, none found, disabled, failed, timed out
    carried_tokens: int = 0  # lore from earlier turns kept in place (placement "conversation")
    model: str = ""  # the model the request asked for (or the engine's first)
    time: float = field(default_factory=time.time)


class ProxyMetrics:
    """Prometheus collectors in a registry of their own, plus a window of recent requests."""

    def __init__(self, window: int = 1000) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "scifi_proxy_requests", "Chat requests by HTTP status", ["status"], registry=self.registry
        )
        self.retrieval_failures = Counter(
            "scifi_proxy_retrieval_failures",
            "Requests answered without lore because retrieval failed or timed out",
            registry=self.registry,
        )
        self.retrieval_seconds = Histogram(
            "scifi_proxy_retrieval_seconds",
            "Lore retrieval time",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft_seconds = Histogram(
            "scifi_proxy_upstream_ttft_seconds",
            "Upstream time to first byte",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lore_tokens = Counter("scifi_proxy_lore_tokens", "Lore tokens injected", registry=self.registry)
        self.recent: deque[RequestRecord] = deque(maxlen=window)
        self.total = 0

    def observe(self, record: RequestRecord, lore_tokens: int = 0) -> None:
        """Count a finished request."""
        self.total += 1
        self.recent.append(record)
        self.requests.labels(status=str(record.status)).inc()
        if record.retrieval_ms is not None:
            self.retrieval_seconds.observe(record.retrieval_ms / 1000)
        if record.upstream_ttft_ms is not None:
            self.ttft_seconds.observe(record.upstream_ttft_ms / 1000)
        if record.lore in ("failed", "timed out"):
            self.retrieval_failures.inc()
        self.lore_tokens.inc(lore_tokens)

    def percentiles(self, name: str) -> dict:
        """p50 and p95 of a RequestRecord field over the recent window."""
        values = sorted(getattr(record, name) for record in self.recent if getattr(record, name) is not None)
        if not values:
            return {"p50": None, "p95": None}
        pick = lambda pct: round(values[min(len(values) - 1, int(pct / 100 * len(values)))], 2)  # noqa: E731
        return {"p50": pick(50), "p95": pick(95)}
