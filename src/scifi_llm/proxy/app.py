"""The lore proxy: an OpenAI-compatible server that adds the relevant lore to every chat request.

Requests stream through chunk by chunk. Lore retrieval never takes a request down: when it fails or is
too slow, the request goes on without lore, and the log and /stats say so. The engine's own answers,
errors included, come back unchanged; when the engine cannot be reached the answer is a 502, when it
stays silent a 504, and a stream that breaks off or stalls ends with an error event (`upstreams.py`).
Every request has a bounded cost: its body is counted as it arrives (`validate.py`), its lore search
reads a bounded query, and large bodies take their turn (`ProxyState._answer`).
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scifi_llm.lore import LoreService, Retrieval, Steer
from scifi_llm.proxy.augment import (
    Given,
    LoreMemory,
    LoreRequest,
    lore_message,
    lore_request,
    place,
)
from scifi_llm.proxy.desk import Checker, desk_routes
from scifi_llm.proxy.guard import Guard, error_response
from scifi_llm.proxy.history import History
from scifi_llm.proxy.metrics import ProxyMetrics, RequestRecord
from scifi_llm.proxy.settings import ProxySettings
from scifi_llm.proxy.upstreams import Engines, Reply
from scifi_llm.proxy.validate import BadRequest, LoreOptions, lore_options, parse_chat, read_body
from scifi_llm.tokens import count_tokens

log = logging.getLogger("scifi_llm.proxy")
LARGE_BODY_BYTES = 256 * 1024
LARGE_BODY_PAUSE_S = 0.02
GIVEN_KEPT = 256  # requests whose lore `/lore/{id}` can show
_ANY = contextlib.nullcontext()
_NOTHING = Retrieval("", [])  # no lore: disabled, nothing to search for, or the search failed


def create_app(settings: ProxySettings, checker: Checker | None = None):
    """The proxy as an ASGI app (run it with uvicorn): the guard, the chat route, and the other routes.
    `checker` gives the desk its continuity marks (the CLI passes `scifi_llm.check`'s)."""
    state = ProxyState(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await asyncio.to_thread(state.lore.preload, settings.collection)
        yield
        await state.engines.aclose()
        if state.history:
            state.history.close()

    routes = FastAPI(title="scifi-llm lore proxy", lifespan=lifespan)
    routes.state.proxy = state
    if settings.workspace_root is not None:
        routes.include_router(desk_routes(settings.workspace_root, state, checker))

    @routes.get("/v1/models")
    async def models():
        status, content = await state.engines.models()
        return Response(content, status_code=status, media_type="application/json")

    @routes.get("/health")
    async def health():
        return await state.health()

    @routes.get("/stats")
    async def stats():
        return state.stats()

    @routes.get("/lore/{request_id}")
    async def given(request_id: str):
        found = state.given(request_id)
        if found is None:
            message = f"no lore kept for request {request_id} (the proxy keeps the latest {GIVEN_KEPT})"
            return error_response(404, message, "not_found")
        return found

    @routes.get("/metrics")
    async def metrics():
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @routes.exception_handler(Exception)
    async def unexpected(_request, exc: Exception):
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, f"the proxy failed ({type(exc).__name__}); see its log", "internal_error")

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/v1/chat/completions" and scope["method"] == "POST":
            return await state.chat(receive, send)
        await routes(scope, receive, send)

    return Guard(
        app,
        settings.host,
        settings.api_key,
        settings.max_body_bytes,
        settings.allowed_origins,
        settings.allowed_hosts,
    )


class ProxyState:
    """The proxy's moving parts and the request path through them."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.lore = LoreService(settings.index_dir)
        self.engines = Engines(list(settings.upstreams), settings.timeouts)
        self.metrics = ProxyMetrics()
        self.memory = LoreMemory(settings.carry_tokens)
        self.history = (
            History(settings.history_path, settings.history_limit) if settings.history_path else None
        )
        self.lore_defaults = LoreOptions(settings.collection, settings.top_k, settings.budget_tokens)
        self._default_model: str | None = None
        self._large = asyncio.Semaphore(1)
        self._given: OrderedDict[str, dict] = OrderedDict()  # the lore of the latest requests, by id

    async def chat(self, receive, send) -> None:
        """One chat request as a plain ASGI exchange, abandoned the moment the client leaves.

        The answer is worked out in a task of its own while this one listens for the client going away;
        if it does, the task is cancelled, which closes the engine's connection and so stops its work.
        """
        reply = Reply(send)
        try:
            raw = await read_body(receive, self.settings.max_body_bytes)
        except BadRequest as exc:
            return await reply.error(exc.status, str(exc), "invalid_request_error", exc.param)
        except ConnectionAbortedError:
            return
        answer = asyncio.create_task(self._answer(raw, reply))
        gone = asyncio.create_task(_client_gone(receive))
        await asyncio.wait((answer, gone), return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            answer.cancel()
        gone.cancel()
        try:
            await answer
        except asyncio.CancelledError:
            if not gone.done() or gone.cancelled():
                raise  # cancelled from outside (the server is shutting down), not by the client leaving

    async def _answer(self, raw: bytes, reply: Reply) -> None:
        """Check, retrieve, inject, forward and relay; whatever happens, the request is counted and
        recorded."""
        started = time.perf_counter()
        record, found = RequestRecord(), _NOTHING
        try:
            # A large body takes tens of milliseconds of parsing, hashing and encoding, all holding the
            # event loop: large ones are prepared one at a time, with pauses between the steps, so a
            # flood of them takes at most about half of the loop and delays the others by a step.
            large = len(raw) > LARGE_BODY_BYTES
            async with self._large if large else _ANY:
                body = parse_chat(raw)
                await _pause(large)
                options = lore_options(body.pop("lore", None), self.lore_defaults)
                body["messages"], found = await self.with_lore(body["messages"], options, record)
                if "model" not in body:
                    body["model"] = await self._model()
                payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
                await _pause(large)
            record.added_ms = round((time.perf_counter() - started) * 1000, 2)
            stream, model = bool(body.get("stream")), body.get("model")
            record.model = str(model or "")
            await self.engines.chat(payload, stream, reply, record, _lore_headers(record), model)
        except BadRequest as exc:
            record.status = exc.status
            await reply.error(exc.status, str(exc), "invalid_request_error", exc.param)
        except asyncio.CancelledError:
            record.status = 499
            raise
        except Exception as exc:  # a bug of ours: an OpenAI-shaped 500 and a history row, never a bare 500
            log.exception("unexpected error in a chat request")
            record.status = 500
            await reply.error(500, f"the proxy failed ({type(exc).__name__}); see its log", "internal_error")
        finally:
            self._finish(record, found)

    async def with_lore(
        self, messages: list[dict], options: LoreOptions, record: RequestRecord
    ) -> tuple[list[dict], Retrieval]:
        """The messages with the lore placed as the settings say, and what the search found: the new
        passages, and what it left out and why (`record` is told).

        With placement `conversation`, the lore given earlier in this conversation is put back where it
        was (also when this request asks for no new lore) and not given again, and this turn's lore is
        remembered for the next turns while the conversation's kept lore stays within `carry_tokens`.
        """
        placement = self.settings.placement
        carried = self.memory.recall(messages) if placement == "conversation" else {}
        held = frozenset(chunk for given in carried.values() for chunk in given.chunk_ids)
        request = lore_request(messages, self.settings.scan_depth)
        found = await self._retrieve(request, options, held, record)
        hits = found.results
        lore = lore_message(hits) if hits else None
        record.carried_tokens = sum(given.tokens for given in carried.values())
        self._keep_given(record, found)
        if lore and placement == "conversation":
            chunk_ids = frozenset(chunk for hit in hits for chunk in hit.chunk_ids)
            given = Given(lore, chunk_ids, count_tokens(lore["content"]))
            self.memory.remember(messages, given, record.carried_tokens)
        return place(messages, lore, placement, carried), found

    async def _retrieve(
        self, request: LoreRequest, options: LoreOptions, held: frozenset[str], record: RequestRecord
    ) -> Retrieval:
        """Lore for the request, less what the conversation already holds (`held`); on failure or timeout,
        none (and the record says why)."""
        record.query = request.query
        if not options.enabled or not request.query:
            record.lore = "disabled" if not options.enabled else "no query"
            return _NOTHING
        started = time.perf_counter()
        search = self.lore.search(
            request.query,
            options.collection,
            options.top_k,
            options.budget_tokens,
            self.settings.mode,
            request.recent,
            Steer(options.pin, options.block, held),
        )
        try:
            retrieval = await asyncio.wait_for(search, self.settings.retrieval_timeout_s)
        except TimeoutError:
            log.warning(
                "lore retrieval took over %.1f s; answering without lore", self.settings.retrieval_timeout_s
            )
            record.lore = "timed out"
            return _NOTHING
        except Exception as exc:  # fail open: a broken index must never take a request down
            log.warning("lore retrieval failed (%s: %s); answering without lore", type(exc).__name__, exc)
            record.lore = "failed"
            return _NOTHING
        finally:
            record.retrieval_ms = round((time.perf_counter() - started) * 1000, 2)
        record.sources = retrieval.sources
        record.lore = "used" if retrieval.sources else "none found"
        return retrieval

    def _keep_given(self, record: RequestRecord, found: Retrieval) -> None:
        """Keep what the request is given for `/lore/{id}`, from before its answer starts."""
        self._given[record.id] = {
            "id": record.id,
            "query": record.query,
            "lore": record.lore,
            "sources": record.sources,
            "passages": [hit.to_dict() for hit in found.results],
            "dropped": found.dropped,
            "carried_tokens": record.carried_tokens,
        }
        while len(self._given) > GIVEN_KEPT:
            self._given.popitem(last=False)

    def _finish(self, record: RequestRecord, found: Retrieval) -> None:
        """Count the request and write its history row."""
        self.metrics.observe(record, sum(hit.tokens for hit in found.results))
        if self.history:
            self.history.add(
                record.query,
                record.sources,
                record.retrieval_ms,
                record.upstream_ttft_ms,
                record.status,
                record.lore,
                record.model,
            )

    def given(self, request_id: str) -> dict | None:
        """The lore one of the latest requests was given (its `x-lore-request-id`), or None."""
        return self._given.get(request_id)

    async def _model(self) -> str:
        """The engine's first model, for requests that name none (remembered once the engine answers)."""
        if self._default_model is None:
            status, content = await self.engines.models()
            if status != 200:
                return "default"
            models = json.loads(content).get("data") or [{"id": "default"}]
            self._default_model = models[0]["id"]
        return self._default_model

    async def health(self) -> dict:
        """The proxy is up; is each engine reachable, and is there an index?"""
        upstreams = await self.engines.reachable()
        chunks = await asyncio.to_thread(self.lore.chunks, self.settings.collection)
        return {
            "proxy": "ok",
            "upstreams": upstreams,
            "index": {"collection": self.settings.collection, "chunks": chunks},
        }

    def stats(self) -> dict:
        """Totals, recent requests and latency percentiles."""
        totals = self.history.totals() if self.history else None
        recent = [record.__dict__ for record in reversed(self.metrics.recent)][:20]
        return {
            "total_queries": totals["requests"] if totals else self.metrics.total,
            "since_start": self.metrics.total,
            "totals": totals,
            "recent_queries": recent,
            "chunks_available": self.lore.chunks(self.settings.collection),
            "collection": self.settings.collection,
            "upstreams": self.engines.pool.describe(),
            "retrieval_failures": sum(1 for r in self.metrics.recent if r.lore in ("failed", "timed out")),
            "latency_ms": {
                name: self.metrics.percentiles(attribute)
                for name, attribute in (
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


async def _pause(large: bool) -> None:
    """Let the other requests run between the steps of a large one."""
    if large:
        await asyncio.sleep(LARGE_BODY_PAUSE_S)


async def _client_gone(receive) -> None:
    """Returns when the client disconnects (the body has been read: nothing else can arrive)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _lore_headers(record: RequestRecord) -> list[tuple[bytes, bytes]]:
    """The response headers that tell a client which lore was used."""
    sources = ",".join(quote(source, safe="/ ") for source in record.sources)
    headers = [(b"x-lore-sources", sources.encode()), (b"x-lore-request-id", record.id.encode())]
    if record.retrieval_ms is not None:
        headers.append((b"x-lore-retrieval-ms", str(record.retrieval_ms).encode()))
    return headers
