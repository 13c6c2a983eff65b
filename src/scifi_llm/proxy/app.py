"""The lore proxy: an OpenAI-compatible server that adds the relevant lore to every chat request.

Requests stream through chunk by chunk. Lore retrieval never takes a request down: when it fails or is
too slow, the request goes on without lore, and the log and /stats say so. Engine failures come back
in OpenAI's error shape: 502 when the engine is down or fails, 504 when it is too slow, and an error
event at the end of a stream that breaks off.
"""

import asyncio
import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scifi_llm.config import RetrievalMode
from scifi_llm.lore.retrieve import Hit, Retrieval, Retriever
from scifi_llm.lore.store import LoreIndex
from scifi_llm.openai_client import error_message, error_payload, sse_event
from scifi_llm.proxy.augment import (
    Given,
    LoreMemory,
    LoreRequest,
    Placement,
    lore_message,
    lore_request,
    place,
)
from scifi_llm.proxy.history import History
from scifi_llm.proxy.metrics import ProxyMetrics, RequestRecord
from scifi_llm.proxy.upstreams import Upstream, UpstreamPool
from scifi_llm.tokens import count_tokens

log = logging.getLogger("scifi_llm.proxy")


@dataclass(frozen=True)
class ProxySettings:
    """Everything the proxy needs to run."""

    upstreams: tuple[str, ...]
    index_dir: Path
    collection: str = "scifi_world"
    top_k: int = 5
    budget_tokens: int = 1500
    mode: RetrievalMode = "hybrid"
    scan_depth: int = 4
    placement: Placement = "conversation"
    carry_tokens: int = 6000
    api_key: str | None = None
    max_body_bytes: int = 4 * 2**20
    retrieval_timeout_s: float = 5.0
    upstream_timeout_s: float = 600.0
    history_path: Path | None = None
    history_limit: int = 100_000


@dataclass
class _Loaded:
    """A collection's retriever and the index version it was built from."""

    retriever: Retriever
    version: tuple[str, int]
    checked: float


@dataclass
class _Question:
    """One request's lore search, waiting for the batch it joins."""

    request: LoreRequest
    exclude: frozenset[str]
    collection: str
    k: int
    budget: int
    mode: RetrievalMode
    answer: asyncio.Future


class LoreService:
    """Retrievers per collection, opened on first use, searched in a worker thread.

    Requests that arrive while a search runs wait and are then searched together, their query embeddings
    computed in one batch: under load, one forward pass of the embedding model serves many requests
    instead of each waiting for its own. Every few seconds a search also checks whether the collection
    changed on disk (`lore ingest` while the proxy runs) and, if so, reloads it, keeping the embedding
    model: new lore reaches requests without a restart.
    """

    RELOAD_CHECK_S = 2.0

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()
        self._waiting: list[_Question] = []
        self._worker: asyncio.Task | None = None

    async def search(
        self,
        request: LoreRequest,
        collection: str,
        k: int,
        budget: int,
        mode: RetrievalMode,
        exclude: frozenset[str] = frozenset(),
    ) -> Retrieval:
        """The lore for a request; chunks in `exclude` (already in the conversation) are not given again."""
        loop = asyncio.get_running_loop()
        question = _Question(request, exclude, collection, k, budget, mode, loop.create_future())
        self._waiting.append(question)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._answer_waiting())
        return await question.answer

    async def _answer_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            outcomes = await asyncio.to_thread(self._search_batch, batch)
            for question, outcome in zip(batch, outcomes, strict=True):
                if question.answer.done():  # the request gave up waiting (its retrieval timed out)
                    continue
                if isinstance(outcome, Exception):
                    question.answer.set_exception(outcome)
                else:
                    question.answer.set_result(outcome)

    def _search_batch(self, batch: list[_Question]) -> list[Retrieval | Exception]:
        """Each question's lore (or the error that stopped it), one embedding batch per kind of search."""
        outcomes: list[Retrieval | Exception] = [Retrieval("", []) for _ in batch]
        groups: dict[tuple, list[int]] = {}
        for index, question in enumerate(batch):
            groups.setdefault((question.collection, question.k, question.budget, question.mode), []).append(
                index
            )
        with self._lock:
            for (collection, k, budget, mode), indices in groups.items():
                questions = [batch[i] for i in indices]
                try:
                    found = self._retriever(collection).search_many(
                        [question.request.query for question in questions],
                        k,
                        mode,
                        budget,
                        recent=[question.request.recent for question in questions],
                        exclude=[question.exclude for question in questions],
                    )
                except Exception as exc:  # fail open, per request: the proxy answers without lore
                    found = [exc] * len(indices)
                for index, retrieval in zip(indices, found, strict=True):
                    outcomes[index] = retrieval
        return outcomes

    def preload(self, collection: str) -> None:
        """Open a collection and load its embedding model now, so the first request is not slow."""
        try:
            with self._lock:
                self._retriever(collection)
        except Exception as exc:  # the proxy still serves, without lore, until the index exists
            log.warning("lore collection %s not loaded (%s); requests go without lore", collection, exc)

    def _retriever(self, collection: str) -> Retriever:
        loaded, now = self._loaded.get(collection), time.monotonic()
        if loaded is not None and now - loaded.checked < self.RELOAD_CHECK_S:
            return loaded.retriever
        fresh = LoreIndex(self.index_dir).open(collection)
        if loaded is None or fresh.version != loaded.version:
            same_model = loaded is not None and loaded.retriever.collection.model_name == fresh.model_name
            if loaded is not None:
                log.info("lore collection %s changed on disk: reloading it", collection)
            retriever = Retriever(fresh, loaded.retriever.embedder if same_model else None)
            loaded = self._loaded[collection] = _Loaded(retriever, fresh.version, now)
        loaded.checked = now
        return loaded.retriever

    def chunks(self, collection: str) -> int | None:
        """Chunks in a collection, or None when there is no such collection."""
        index = LoreIndex(self.index_dir)
        return index.open(collection).count() if collection in index.names() else None


class BadRequest(Exception):
    """A client error, answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param


def create_app(settings: ProxySettings) -> FastAPI:
    """The proxy as an ASGI app (run it with uvicorn)."""
    state = _ProxyState(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await asyncio.to_thread(state.lore.preload, settings.collection)
        yield
        await state.client.aclose()
        if state.history:
            state.history.close()

    app = FastAPI(title="scifi-llm lore proxy", lifespan=lifespan)
    app.state.proxy = state

    app.add_middleware(_Guard, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = await _read_body(request, settings.max_body_bytes)
            return await state.chat(body)
        except BadRequest as exc:
            return _error(exc.status, str(exc), "invalid_request_error", exc.param)

    @app.get("/v1/models")
    async def models():
        return await state.passthrough_get("/models")

    @app.get("/health")
    async def health():
        return await state.health()

    @app.get("/stats")
    async def stats():
        return state.stats()

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class _Guard:
    """API key and body-size checks as a plain ASGI middleware (no per-request buffering or task hops)."""

    def __init__(self, app, api_key: str | None, max_body_bytes: int) -> None:
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            authorized = headers.get(b"authorization", b"").decode() == f"Bearer {self.api_key}"
            length = headers.get(b"content-length", b"")
            if self.api_key and scope["path"] != "/health" and not authorized:
                message = "missing or wrong API key (send Authorization: Bearer KEY)"
                return await _error(401, message, "invalid_api_key")(scope, receive, send)
            if length.isdigit() and int(length) > self.max_body_bytes:
                message = f"request body over {self.max_body_bytes} bytes"
                return await _error(413, message, "request_too_large")(scope, receive, send)
        await self.app(scope, receive, send)


class _ProxyState:
    """The proxy's moving parts and the request path through them."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.lore = LoreService(settings.index_dir)
        self.pool = UpstreamPool(list(settings.upstreams))
        self.metrics = ProxyMetrics()
        self.memory = LoreMemory(settings.carry_tokens)
        self.history = (
            History(settings.history_path, settings.history_limit) if settings.history_path else None
        )
        timeout = httpx.Timeout(settings.upstream_timeout_s, connect=5.0)
        self.client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=256))
        self._default_model: str | None = None

    async def chat(self, body: dict) -> Response:
        """Retrieve, inject, forward, and relay the answer (streamed or whole)."""
        started = time.perf_counter()
        options = _lore_options(body.pop("lore", None), self.settings)
        body["messages"], hits, record = await self._with_lore(body["messages"], options)
        if "model" not in body:
            body["model"] = await self._model()
        record.added_ms = round((time.perf_counter() - started) * 1000, 2)
        headers = {"x-lore-sources": ",".join(quote(source, safe="/ ") for source in record.sources)}
        if record.retrieval_ms is not None:
            headers["x-lore-retrieval-ms"] = str(record.retrieval_ms)
        upstream = self.pool.pick()
        upstream.in_flight += 1
        sent = time.perf_counter()
        try:
            response = await self.client.send(
                self.client.build_request("POST", f"{upstream.url}/chat/completions", json=body),
                stream=bool(body.get("stream")),
            )
        except httpx.HTTPError as exc:
            upstream.in_flight -= 1
            return self._upstream_failed(upstream, exc, record, hits)
        self.pool.succeeded(upstream)
        if not body.get("stream") or response.status_code >= 400:
            return await self._whole(response, upstream, record, hits, headers, sent)
        relay = self._relay(response, upstream, record, hits, sent)
        return StreamingResponse(relay, media_type="text/event-stream", headers=headers)

    async def _with_lore(
        self, messages: list[dict], options: dict
    ) -> tuple[list[dict], list[Hit], RequestRecord]:
        """The messages with the lore placed as the settings say, the new passages, and the record.

        With placement `conversation`, the lore given earlier in this conversation is put back where it
        was (also when this request asks for no new lore) and not given again, and this turn's lore is
        remembered for the next turns while the conversation's kept lore stays within `carry_tokens`.
        """
        placement = self.settings.placement
        carried = self.memory.recall(messages) if placement == "conversation" else {}
        held = frozenset(chunk for given in carried.values() for chunk in given.chunk_ids)
        hits, record = await self._retrieve(lore_request(messages, self.settings.scan_depth), options, held)
        lore = lore_message(hits) if hits else None
        record.carried_tokens = sum(given.tokens for given in carried.values())
        if lore and placement == "conversation":
            chunk_ids = frozenset(chunk for hit in hits for chunk in hit.chunk_ids)
            given = Given(lore, chunk_ids, count_tokens(lore["content"]))
            self.memory.remember(messages, given, record.carried_tokens)
        return place(messages, lore, placement, carried), hits, record

    async def _retrieve(
        self, request: LoreRequest, options: dict, held: frozenset[str]
    ) -> tuple[list[Hit], RequestRecord]:
        """Lore for the request, less what the conversation already holds (`held`); on failure or timeout,
        none (and the record says why)."""
        record = RequestRecord(query=request.query, sources=[], retrieval_ms=None, added_ms=0.0)
        if not options["enabled"] or not request.query:
            record.lore = "disabled" if not options["enabled"] else "no query"
            return [], record
        started = time.perf_counter()
        search = self.lore.search(
            request,
            options["collection"],
            options["top_k"],
            options["budget_tokens"],
            self.settings.mode,
            held,
        )
        try:
            retrieval = await asyncio.wait_for(search, self.settings.retrieval_timeout_s)
        except TimeoutError:
            log.warning(
                "lore retrieval took over %.1f s; answering without lore", self.settings.retrieval_timeout_s
            )
            record.lore = "timed out"
            return [], record
        except Exception as exc:  # fail open: a broken index must never take a request down
            log.warning("lore retrieval failed (%s: %s); answering without lore", type(exc).__name__, exc)
            record.lore = "failed"
            return [], record
        finally:
            record.retrieval_ms = round((time.perf_counter() - started) * 1000, 2)
        record.sources = retrieval.sources
        record.lore = "used" if retrieval.sources else "none found"
        return retrieval.results, record

    async def _whole(
        self,
        response: httpx.Response,
        upstream: Upstream,
        record: RequestRecord,
        hits: list[Hit],
        headers: dict[str, str],
        sent: float,
    ) -> Response:
        """Relay a whole (non-streamed) answer, or the engine's error in OpenAI's shape."""
        try:
            content = await response.aread()
        finally:
            await response.aclose()
            upstream.in_flight -= 1
        record.upstream_ttft_ms = round((time.perf_counter() - sent) * 1000, 2)
        status = response.status_code
        if status >= 400:
            message = error_message(content)
            status = 502 if status >= 500 else status
            self._finish(record, status, hits)
            return _error(status, f"upstream {upstream.url}: {message}", "upstream_error")
        self._finish(record, 200, hits)
        return Response(content, media_type="application/json", headers=headers)

    async def _relay(
        self,
        response: httpx.Response,
        upstream: Upstream,
        record: RequestRecord,
        hits: list[Hit],
        sent: float,
    ):
        """Pass the engine's stream on chunk by chunk, ending it with `data: [DONE]` as OpenAI does (some
        engines leave it out); a stream that breaks off ends with an error event instead."""
        status = 200
        tail = b""
        try:
            async for chunk in response.aiter_raw():
                if record.upstream_ttft_ms is None:
                    record.upstream_ttft_ms = round((time.perf_counter() - sent) * 1000, 2)
                tail = (tail + chunk)[-64:]
                yield chunk
            if b"[DONE]" not in tail:
                yield b"data: [DONE]\n\n"
        except httpx.HTTPError as exc:
            status = 502
            log.warning("upstream %s broke off a stream: %s", upstream.url, exc)
            yield sse_event(
                error_payload(f"upstream {upstream.url} broke off the stream", "upstream_error", 502)
            )
        except asyncio.CancelledError:
            status = 499  # the client went away; closing the response below cancels the engine's work
            raise
        finally:
            await response.aclose()
            upstream.in_flight -= 1
            self._finish(record, status, hits)

    def _upstream_failed(
        self, upstream: Upstream, exc: httpx.HTTPError, record: RequestRecord, hits: list[Hit]
    ) -> Response:
        """The engine could not be reached or timed out: set it aside and answer 502 or 504."""
        self.pool.failed(upstream)
        timed_out = isinstance(exc, httpx.TimeoutException)
        status = 504 if timed_out else 502
        self._finish(record, status, hits)
        what = "did not answer in time" if timed_out else f"is unreachable ({type(exc).__name__})"
        log.warning("upstream %s %s", upstream.url, what)
        return _error(status, f"upstream {upstream.url} {what}", "upstream_error")

    def _finish(self, record: RequestRecord, status: int, hits: list[Hit]) -> None:
        """Count the request and write its history row."""
        record.status = status
        self.metrics.observe(record, sum(count_tokens(hit.text) for hit in hits))
        if self.history:
            self.history.add(
                record.query,
                record.sources,
                record.retrieval_ms,
                record.upstream_ttft_ms,
                status,
                record.lore,
            )

    async def _model(self) -> str:
        """The engine's first model, for requests that name none (remembered once the engine answers)."""
        if self._default_model is None:
            response = await self.passthrough_get("/models")
            if response.status_code != 200:
                return "default"
            models = json.loads(response.body).get("data") or [{"id": "default"}]
            self._default_model = models[0]["id"]
        return self._default_model

    async def passthrough_get(self, path: str) -> Response:
        """GET an engine endpoint and return its answer as is."""
        upstream = self.pool.pick()
        try:
            response = await self.client.get(f"{upstream.url}{path}", timeout=10.0)
        except httpx.HTTPError as exc:
            self.pool.failed(upstream)
            return _error(
                502, f"upstream {upstream.url} is unreachable ({type(exc).__name__})", "upstream_error"
            )
        return Response(response.content, status_code=response.status_code, media_type="application/json")

    async def health(self) -> dict:
        """The proxy is up; is each engine reachable, and is there an index?"""
        upstreams = []
        for upstream in self.pool.upstreams:
            try:
                reachable = (await self.client.get(f"{upstream.url}/models", timeout=2.0)).status_code == 200
            except httpx.HTTPError:
                reachable = False
            upstreams.append({"url": upstream.url, "reachable": reachable})
        chunks = await asyncio.to_thread(self.lore.chunks, self.settings.collection)
        return {
            "proxy": "ok",
            "upstreams": upstreams,
            "index": {"collection": self.settings.collection, "chunks": chunks},
        }

    def stats(self) -> dict:
        """Totals, recent requests and latency percentiles."""
        recent = [record.__dict__ for record in reversed(self.metrics.recent)][:20]
        return {
            "total_queries": self.metrics.total,
            "recent_queries": recent,
            "chunks_available": self.lore.chunks(self.settings.collection),
            "collection": self.settings.collection,
            "upstreams": self.pool.describe(),
            "retrieval_failures": sum(1 for r in self.metrics.recent if r.lore in ("failed", "timed out")),
            "latency_ms": {
                name: self.metrics.percentiles(field)
                for name, field in (
                    ("retrieval", "retrieval_ms"),
                    ("added", "added_ms"),
                    ("upstream_ttft", "upstream_ttft_ms"),
                )
            },
            "history": {
                "enabled": self.history is not None,
                "rows": self.history.count() if self.history else 0,
            },
        }


async def _read_body(request: Request, limit: int) -> dict:
    raw = await request.body()
    if len(raw) > limit:
        raise BadRequest(413, f"request body over {limit} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"request body is not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise BadRequest(422, "request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(422, "messages must be a non-empty list", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(422, f"messages[{index}] needs a role (text)", f"messages[{index}].role")
        if not isinstance(message.get("content"), str | list | None):
            raise BadRequest(
                422,
                f"messages[{index}].content must be text or a list of parts",
                f"messages[{index}].content",
            )
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest(422, "stream must be true or false", "stream")
    for field, minimum in _NUMBERS.items():
        value, whole = body.get(field), field in _WHOLE
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float) or value < minimum:
            kind = "a whole number" if whole else "a number"
            raise BadRequest(422, f"{field} must be {kind} of at least {minimum}", field)
    return body


# Fields an engine would reject with a 400 or, worse, a 500 the proxy would report as the engine failing.
_NUMBERS = {"max_tokens": 1, "max_completion_tokens": 1, "n": 1, "temperature": 0, "top_p": 0}
_WHOLE = {"max_tokens", "max_completion_tokens", "n"}


def _lore_options(given, settings: ProxySettings) -> dict:
    """The request's `lore` field over the proxy's defaults; wrong types are a 422."""
    options = {
        "enabled": True,
        "collection": settings.collection,
        "top_k": settings.top_k,
        "budget_tokens": settings.budget_tokens,
    }
    if given is None:
        return options
    if not isinstance(given, dict):
        raise BadRequest(422, "lore must be an object", "lore")
    expected = {"enabled": bool, "collection": str, "top_k": int, "budget_tokens": int}
    for key, value in given.items():
        if key not in expected:
            raise BadRequest(422, f"lore.{key} is not a lore option ({', '.join(expected)})", f"lore.{key}")
        if not isinstance(value, expected[key]) or (
            expected[key] is int and (isinstance(value, bool) or value < 1)
        ):
            raise BadRequest(422, f"lore.{key} must be {expected[key].__name__}", f"lore.{key}")
    return options | given


def _error(status: int, message: str, error_type: str, param: str | None = None) -> JSONResponse:
    payload = error_payload(message, error_type, status)
    if param:
        payload["error"]["param"] = param
    return JSONResponse(payload, status_code=status)
