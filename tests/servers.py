"""Servers for tests: the proxy in a background thread, fault-injecting fake engines, and a tap.

FaultyEngine and RacyEngine are fakes that exist because a real engine will not, on demand, cut a stream in
the middle, hang, stall, send a malformed stream, answer 429 or 500, close a kept-alive connection just as
it is reused, or report when a client went away. ScriptedModel answers what a test scripts: the verdict of
a judge, a quote to verify, which the tiny model cannot give. Every other test talks to a real
`transformers serve` process. EngineTap is not a fake: it passes each request on to the real engine
and keeps a copy of the body, so a test can read exactly what the engine received.
"""

import asyncio
import json
import re
import threading
import time
from contextlib import contextmanager

import httpx
import openai
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from scifi_llm.proxy import ProxySettings, create_app

ELENA_QUESTION = "What does Ledger keep hidden in her forearm?"


@contextmanager
def running_proxy(index_dir, engine_url: str, tmp_path, port: int):
    """A lore proxy on `index_dir` in front of one engine, in a thread; yields its /v1 URL."""
    settings = ProxySettings(upstreams=(engine_url,), index_dir=index_dir, history_path=tmp_path / "h.db")
    with serve_in_thread(create_app(settings), port) as url:
        yield f"{url}/v1"


def sdk(base_url: str, api_key: str = "unused") -> openai.OpenAI:
    """The official openai SDK pointed at `base_url`, without retries."""
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


def ask(client, content: str, **extra):
    """One short chat completion of a single user message."""
    return client.chat.completions.create(
        model=extra.pop("model", "tiny"),
        max_tokens=8,
        messages=[{"role": "user", "content": content}],
        **extra,
    )


@contextmanager
def serve_in_thread(app, port: int):
    """Run an ASGI app with uvicorn on 127.0.0.1:port until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _chunk(text: str) -> str:
    event = {
        "id": "x",
        "object": "chat.completion.chunk",
        "model": "faulty",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }
    return f"data: {json.dumps(event)}\n\n"


class FaultyEngine:
    """A fake engine whose behaviour is picked by the request's model name: cut, hang, slow, stall,
    open (the last event left without its blank line), flood (4 MB as fast as it can), or an error: busy
    (429), refuse (400), crash (500).
    """

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)
        self.app.get("/v1/models")(self.models)

    async def models(self):
        return {"object": "list", "data": [{"id": "faulty", "object": "model"}]}

    async def chat(self, request: Request):
        body = await request.json()
        behaviour = body.get("model")
        if behaviour == "hang":  # says nothing, not even headers, until the client leaves
            while not await request.is_disconnected():
                await asyncio.sleep(0.05)
            self.cancelled.set()
            return JSONResponse({}, status_code=499)
        if behaviour in ERRORS:
            status, headers = ERRORS[behaviour]
            error = {"message": f"{behaviour}!", "type": "engine_error", "param": "model", "code": status}
            return JSONResponse({"error": error}, status_code=status, headers=headers)
        if behaviour == "stall":
            return StreamingResponse(self._stall(), media_type="text/event-stream")
        if behaviour == "open":
            return StreamingResponse(self._open(), media_type="text/event-stream")
        if behaviour == "flood":
            return StreamingResponse(self._flood(), media_type="text/event-stream")
        if behaviour == "cut":
            return StreamingResponse(self._cut(), media_type="text/event-stream")
        if behaviour == "slow":
            return StreamingResponse(self._slow(), media_type="text/event-stream")
        return JSONResponse({"error": {"message": f"unknown behaviour {behaviour}"}}, status_code=400)

    async def _cut(self):
        for word in ("one ", "two ", "three "):
            yield _chunk(word)
        raise RuntimeError("engine died mid-stream")  # uvicorn drops the connection without finishing

    async def _stall(self):
        yield _chunk("one ")
        yield _chunk("two ")
        await asyncio.sleep(3600)

    async def _flood(self):
        for index in range(400):
            yield _chunk(f"{index:04d}" + "x" * 10_000)
        yield "data: [DONE]\n\n"

    async def _open(self):
        yield _chunk("one ")
        yield _chunk("two").removesuffix("\n\n")  # the last event without the blank line that ends it

    async def _slow(self):
        finished = False
        try:
            for index in range(100):
                yield _chunk(f"{index} ")
                await asyncio.sleep(0.1)
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.cancelled.set()


ERRORS = {"busy": (429, {"retry-after": "7"}), "refuse": (400, {}), "crash": (500, {})}


class ScriptedModel:
    """An OpenAI-compatible model whose every answer the test chooses: `reply(messages)` gives the text
    (a judge's verdict, a malformed answer, one that is right only on the retry), streamed word by word
    `pace_s` apart when the client asks for a stream. `asked` keeps every request's messages."""

    def __init__(self, reply, pace_s: float = 0.0, name: str = "scripted") -> None:
        self.reply, self.pace_s, self.name = reply, pace_s, name
        self.asked: list[list[dict]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)
        self.app.get("/v1/models")(self.models)

    async def models(self):
        return {"object": "list", "data": [{"id": self.name, "object": "model", "owned_by": "scripted"}]}

    async def chat(self, request: Request):
        body = await request.json()
        self.asked.append(body["messages"])
        text = self.reply(body["messages"])
        if body.get("stream"):
            return StreamingResponse(self._stream(text), media_type="text/event-stream")
        words = len(text.split())
        return {
            "id": "scripted",
            "object": "chat.completion",
            "model": self.name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": words, "total_tokens": words + 1},
        }

    async def _stream(self, text: str):
        for word in re.findall(r"\S+\s*", text):
            yield _chunk(word)
            await asyncio.sleep(self.pace_s)
        yield "data: [DONE]\n\n"


def in_turn(*answers: str):
    """A `reply` that gives `answers` one after another, the last one ever after."""
    given = iter(answers)
    return lambda _messages: next(given, answers[-1])


class RacyEngine:
    """A fake engine that answers the first request on each connection and keeps it alive, then closes it
    without a word when a second request arrives on it: the moment an engine closes an idle connection
    just as the proxy reuses it. Counts connections and dropped requests."""

    def __init__(self) -> None:
        self.connections = 0
        self.dropped = 0

    @contextmanager
    def running(self):
        """Serve on a free port in a thread; yields the /v1 URL."""
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    async def _connection(self, reader, writer) -> None:
        self.connections += 1
        answered = False
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if answered:
                    self.dropped += 1
                    return
                answer = json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
                writer.write(b"content-length: %d\r\n\r\n%s" % (len(answer), answer))
                await writer.drain()
                answered = True
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class EngineTap:
    """A pass-through in front of a real engine that records every chat request body it forwards."""

    def __init__(self, engine_url: str) -> None:
        self.engine_url = engine_url
        self.bodies: list[dict] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)
        self.app.get("/v1/models")(self.models)

    async def models(self):
        async with httpx.AsyncClient(timeout=30) as client:
            return (await client.get(f"{self.engine_url}/models")).json()

    async def chat(self, request: Request):
        body = await request.json()
        self.bodies.append(body)
        async with httpx.AsyncClient(timeout=120) as client:
            answer = await client.post(f"{self.engine_url}/chat/completions", json=body)
        kind = answer.headers.get("content-type", "application/json")  # a stream is passed on whole
        return Response(answer.content, status_code=answer.status_code, media_type=kind)
