"""Servers for tests: the proxy in a background thread, a fault-injecting fake engine, and a tap.

FaultyEngine is the only fake in the suite. It exists because a real engine will not, on demand, cut a
stream in the middle, hang, or report when a client went away; every other test talks to a real
`transformers serve` process. EngineTap is not a fake: it passes each request on to the real engine
and keeps a copy of the body, so a test can read exactly what the engine received.
"""

import asyncio
import json
import threading
import time
from contextlib import contextmanager

import httpx
import openai
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from scifi_llm.proxy.app import ProxySettings, create_app

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
    """A fake engine whose behaviour is picked by the request's model name: cut, hang or slow."""

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
        if behaviour == "hang":
            await asyncio.sleep(3600)
        if behaviour == "cut":
            return StreamingResponse(self._cut(), media_type="text/event-stream")
        if behaviour == "slow":
            return StreamingResponse(self._slow(), media_type="text/event-stream")
        return JSONResponse({"error": {"message": f"unknown behaviour {behaviour}"}}, status_code=400)

    async def _cut(self):
        for word in ("one ", "two ", "three "):
            yield _chunk(word)
        raise RuntimeError("engine died mid-stream")  # uvicorn drops the connection without finishing

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


class EngineTap:
    """A pass-through in front of a real engine that records every chat request body it forwards."""

    def __init__(self, engine_url: str) -> None:
        self.engine_url = engine_url
        self.bodies: list[dict] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)

    async def chat(self, request: Request):
        body = await request.json()
        self.bodies.append(body)
        async with httpx.AsyncClient(timeout=120) as client:
            answer = await client.post(f"{self.engine_url}/chat/completions", json=body)
        return JSONResponse(answer.json(), status_code=answer.status_code)
