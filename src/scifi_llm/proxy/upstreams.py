"""The engines behind the proxy: pick the healthy one with the fewest requests in flight.

An engine that fails to answer is taken out for `retry_after` seconds, then tried again; when all are
out, the one that has been out longest is tried anyway (better a chance than a certain error).
"""

import time
from dataclasses import dataclass


@dataclass
class Upstream:
    """One engine's OpenAI base URL and what the proxy knows of its state."""

    url: str
    in_flight: int = 0
    down_until: float = 0.0
    failures: int = 0

    @property
    def healthy(self) -> bool:
        """False while the engine is taken out after a failure."""
        return time.monotonic() >= self.down_until


class UpstreamPool:
    """Least-loaded choice among engines, with failing ones set aside for a while."""

    def __init__(self, urls: list[str], retry_after: float = 10.0) -> None:
        if not urls:
            raise ValueError("the proxy needs at least one upstream")
        self.upstreams = [Upstream(url) for url in urls]
        self.retry_after = retry_after

    def pick(self) -> Upstream:
        """The healthy engine with the fewest requests in flight (the first on ties)."""
        healthy = [upstream for upstream in self.upstreams if upstream.healthy]
        if healthy:
            return min(healthy, key=lambda upstream: upstream.in_flight)
        return min(self.upstreams, key=lambda upstream: upstream.down_until)

    def failed(self, upstream: Upstream) -> None:
        """Set an engine aside after a connection failure or timeout."""
        upstream.failures += 1
        upstream.down_until = time.monotonic() + self.retry_after

    def succeeded(self, upstream: Upstream) -> None:
        """An engine answered: it is healthy again."""
        upstream.down_until = 0.0

    def describe(self) -> list[dict]:
        """The pool's state for /stats and /health."""
        return [
            {
                "url": upstream.url,
                "healthy": upstream.healthy,
                "in_flight": upstream.in_flight,
                "failures": upstream.failures,
            }
            for upstream in self.upstreams
        ]
