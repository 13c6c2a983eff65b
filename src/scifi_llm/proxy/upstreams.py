"""The engines behind the proxy: which one gets a request, and how its answer comes back.

The healthy engine with the fewest requests in flight gets each request. One that cannot be reached or
does not answer in time is set aside for `retry_after` seconds; when all are set aside, the one set aside
longest is tried anyway (better a chance than a certain error).

An engine's own answer comes back unchanged, errors included: its status, body and `Retry-After`. Only
when the engine could not be reached, broke off or went silent does the proxy speak in its own words,
and those never show the engine's address (the log does). Three clocks bound a request: connecting, the
first byte of the answer (a long prompt's prefill takes tens of seconds), and the silence between two
chunks of a stream; a non-streamed answer arrives in one piece, so it has one clock for the whole.
"""

import asyncio
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from scifi_llm.openai_client import error_payload, sse_event
from scifi_llm.proxy.engine_http import EngineClient, EngineDropped, EngineResponse, EngineUnreachable
from scifi_llm.proxy.metrics import RequestRecord

log = logging.getLogger("scifi_llm.proxy")

_PASSED_HEADERS = ("content-type", "retry-after")


@dataclass(frozen=True)
class Timeouts:
    """How long the proxy waits for an engine, in seconds."""

    connect_s: float = 5.0
    first_byte_s: float = 120.0  # until a stream's first chunk
    idle_s: float = 60.0  # between two chunks of a stream
    answer_s: float = 600.0  # for a whole non-streamed answer


@dataclass
class Upstream:
    """One engine's OpenAI base URL and what the proxy knows of its state."""

    url: str
    in_flight: int = 0
    down_until: float = 0.0
    failures: int = 0
    models: frozenset[str] = frozenset()  # what it serves, as its /models said when last asked

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

    def pick(self, model: str | None = None) -> Upstream:
        """The healthy engine with the fewest requests in flight (the first on ties), among those that
        serve `model` when any is known to (engines that serve different models: a base and a tuned one)."""
        serving = [upstream for upstream in self.upstreams if model in upstream.models]
        candidates = serving or self.upstreams
        healthy = [upstream for upstream in candidates if upstream.healthy]
        if healthy:
            return min(healthy, key=lambda upstream: upstream.in_flight)
        return min(candidates, key=lambda upstream: upstream.down_until)

    @contextmanager
    def lease(self, model: str | None = None):
        """The engine for one request, counted in flight until the block ends, however it ends."""
        upstream = self.pick(model)
        upstream.in_flight += 1
        try:
            yield upstream
        finally:
            upstream.in_flight -= 1

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


class Reply:
    """The client's side of one request (an ASGI `send`), remembering whether the answer has begun."""

    def __init__(self, send) -> None:
        self.send = send
        self.started = False

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the status line and headers."""
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def write(self, chunk: bytes, more: bool = True) -> None:
        """Send part of the body (`more=False` ends it)."""
        await self.send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def whole(self, status: int, content: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """Send a complete answer."""
        await self.start(status, [(b"content-length", str(len(content)).encode()), *headers])
        await self.write(content, more=False)

    async def error(self, status: int, message: str, error_type: str, param: str | None = None) -> None:
        """Send an error in OpenAI's shape: a JSON answer, or a last event when a stream has begun."""
        payload = error_payload(message, error_type, status)
        if param:
            payload["error"]["param"] = param
        if self.started:
            await self.write(sse_event(payload), more=False)
        else:
            await self.whole(status, json.dumps(payload).encode(), [(b"content-type", b"application/json")])


class Engines:
    """The pool of engines, the lean client that relays chat requests, and httpx for the rest."""

    def __init__(self, urls: list[str], timeouts: Timeouts = Timeouts()) -> None:
        self.pool = UpstreamPool(urls)
        self.timeouts = timeouts
        self.chat_client = EngineClient(timeouts.connect_s)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=timeouts.connect_s))

    async def chat(
        self,
        payload: bytes,
        stream: bool,
        reply: Reply,
        record: RequestRecord,
        headers,
        model: str | None = None,
    ):
        """Send a chat request (its JSON `payload`) to an engine that serves `model` and relay the answer to
        `reply`; `record` gets the status."""
        if model and len(self.pool.upstreams) > 1 and not any(up.models for up in self.pool.upstreams):
            await self.models()  # learn, once, which engine serves which model
        with self.pool.lease(model) as upstream:
            url = f"{upstream.url}/chat/completions"
            try:
                await self._relay(url, payload, stream, reply, record, headers)
            except asyncio.CancelledError:
                record.status = 499  # the client left; closing the engine's connection cancelled its work
                raise
            except (EngineUnreachable, EngineDropped, TimeoutError) as exc:
                await self._failed(upstream, exc, reply, record)
            else:
                self.pool.succeeded(upstream)

    async def _relay(self, url: str, payload: bytes, stream: bool, reply: Reply, record, headers) -> None:
        loop, sent = asyncio.get_running_loop(), time.perf_counter()
        response = None
        try:
            async with asyncio.timeout(
                self.timeouts.first_byte_s if stream else self.timeouts.answer_s
            ) as clock:
                response = await self._send(url, payload)
                if not stream or response.status >= 400:
                    content = await response.read()
                    record.upstream_ttft_ms = round((time.perf_counter() - sent) * 1000, 2)
                    record.status = response.status
                    return await reply.whole(response.status, content, [*_passed(response), *headers])
                await reply.start(200, [(b"content-type", b"text/event-stream"), *headers])
                record.status, tail = 200, b""
                async for chunk in response.chunks():
                    clock.reschedule(loop.time() + self.timeouts.idle_s)
                    if record.upstream_ttft_ms is None:
                        record.upstream_ttft_ms = round((time.perf_counter() - sent) * 1000, 2)
                    tail = chunk[-64:] if len(chunk) >= 64 else (tail + chunk)[-64:]
                    await reply.write(chunk)
                closing = _event_end(tail) + (b"" if b"[DONE]" in tail else b"data: [DONE]\n\n")
                await reply.write(closing, more=False)
        finally:
            if response is not None:
                response.close()

    async def _send(self, url: str, payload: bytes) -> EngineResponse:
        try:
            return await self.chat_client.post(url, payload)
        except EngineDropped as exc:
            if not exc.reused:
                raise
            # The engine closed a kept-alive connection just as it was reused: the request never reached
            # it. Once more, on a new connection; the engine is not set aside for that.
            log.info("the engine closed a kept-alive connection as it was reused; sending once more")
            return await self.chat_client.post(url, payload, fresh=True)

    async def _failed(self, upstream: Upstream, exc: Exception, reply: Reply, record: RequestRecord) -> None:
        """The engine could not be reached, broke off or went silent: our own error, without its address."""
        timed_out = isinstance(exc, TimeoutError)
        record.status = 504 if timed_out else 502
        if timed_out:
            what = "went silent" if reply.started else "did not answer in time"
        else:
            what = "broke off the stream" if reply.started else "closed the connection without answering"
            what = "is unreachable" if isinstance(exc, EngineUnreachable) else what
        log.warning("engine %s %s: %r", upstream.url, what, exc)
        if not reply.started:  # a stream that breaks off says nothing about the engine's health
            self.pool.failed(upstream)
        await reply.error(record.status, f"the engine {what}", "upstream_error")

    async def models(self) -> tuple[int, bytes]:
        """Every model the engines serve, as one OpenAI model list (each engine remembers its own, for
        routing); a 502 when no engine answers."""
        listed, answered = {}, False
        for upstream in self.pool.upstreams:
            try:
                response = await self.client.get(f"{upstream.url}/models", timeout=10.0)
                entries = response.json().get("data") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                self.pool.failed(upstream)
                log.warning("engine %s gave no model list: %r", upstream.url, exc)
                entries = None
            if not isinstance(entries, list):
                continue
            answered = True
            entries = [
                entry for entry in entries if isinstance(entry, dict) and isinstance(entry.get("id"), str)
            ]
            upstream.models = frozenset(entry["id"] for entry in entries)
            for entry in entries:
                listed.setdefault(entry["id"], entry)
        if not answered:
            return 502, json.dumps(
                error_payload("no engine lists its models", "upstream_error", 502)
            ).encode()
        return 200, json.dumps({"object": "list", "data": list(listed.values())}).encode()

    async def reachable(self) -> list[dict]:
        """Each engine's URL and whether it answers now (for /health)."""
        found = []
        for upstream in self.pool.upstreams:
            try:
                answers = (await self.client.get(f"{upstream.url}/models", timeout=2.0)).status_code == 200
            except httpx.HTTPError:
                answers = False
            found.append({"url": upstream.url, "reachable": answers})
        return found

    async def aclose(self) -> None:
        """Close the connections."""
        self.chat_client.close()
        await self.client.aclose()


def _passed(response: EngineResponse) -> list[tuple[bytes, bytes]]:
    """The engine's headers a client needs: its content type and `Retry-After`."""
    found = response.headers
    return [
        (name.encode(), found[name].encode("latin-1", "replace")) for name in _PASSED_HEADERS if name in found
    ]


def _event_end(tail: bytes) -> bytes:
    """What closes the stream's last event when the engine left it open (our own event must not join it)."""
    if not tail or tail.endswith((b"\n\n", b"\r\n\r\n")):
        return b""
    return b"\n" if tail.endswith(b"\n") else b"\n\n"
