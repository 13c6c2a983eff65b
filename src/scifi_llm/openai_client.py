"""The one client for OpenAI-compatible endpoints (engines and our proxy): URLs, errors, streaming.

Used by the proxy to reach the engine, by `ask` to reach the proxy, and by the benchmarks.
"""

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx

from scifi_llm.errors import UserError


def api_base(url: str) -> str:
    """An OpenAI base URL ending in /v1, whether or not the user wrote it: http://h:8000 -> http://h:8000/v1."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"{url!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/v1")
    return url if url.endswith("/v1") else f"{url}/v1"


def error_payload(message: str, error_type: str, code: str | int | None = None) -> dict:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": error_type, "code": code}}


def sse_event(payload: dict) -> bytes:
    """One server-sent event carrying `payload` as JSON."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


@dataclass
class StreamedReply:
    """A streamed chat completion as it arrived: the text, timing, usage and any response headers."""

    text: str = ""
    chunks: int = 0
    ttft_s: float | None = None
    total_s: float = 0.0
    headers: dict | None = None
    chunk_times_s: list[float] = field(default_factory=list)  # since the request, one per content chunk
    usage: dict | None = None  # the server's token counts, when it sends them
    finish_reason: str | None = None
    done: bool = False  # the stream ended with `data: [DONE]`, as a whole one does

    @property
    def lore_sources(self) -> list[str]:
        """The notes the lore proxy used for this answer (its `x-lore-sources` header); [] elsewhere."""
        listed = (self.headers or {}).get("x-lore-sources", "")
        return [unquote(source) for source in listed.split(",") if source]


async def stream_chat(
    base_url: str,
    body: dict,
    api_key: str | None = None,
    timeout: float = 600.0,
    client: httpx.AsyncClient | None = None,
) -> AsyncIterator[tuple[str, StreamedReply]]:
    """POST a streaming chat completion; yields (new text, reply so far) per content chunk, then ("", reply)
    at the end. Pass `client` to share one connection pool between many requests.

    Errors (HTTP status, error events, broken connections) raise UserError with the server's message.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    reply = StreamedReply()
    started = time.perf_counter()
    try:
        async with contextlib.AsyncExitStack() as stack:
            client = client or await stack.enter_async_context(httpx.AsyncClient(timeout=timeout))
            response = await stack.enter_async_context(
                client.stream(
                    "POST",
                    f"{api_base(base_url)}/chat/completions",
                    json={**body, "stream": True},
                    headers=headers,
                )
            )
            reply.headers = dict(response.headers)
            if response.status_code >= 400:
                raise UserError(
                    f"{base_url}: HTTP {response.status_code}: {error_message(await response.aread())}"
                )
            async for line in response.aiter_lines():
                text = _read_event(line, reply)
                if text:
                    now = time.perf_counter() - started
                    reply.ttft_s = reply.ttft_s or now
                    reply.chunk_times_s.append(now)
                    reply.text += text
                    reply.chunks += 1
                    yield text, reply
    except httpx.HTTPError as exc:
        raise UserError(f"{base_url}: {type(exc).__name__}: {exc or 'connection failed'}") from exc
    reply.total_s = time.perf_counter() - started
    yield "", reply


def _read_event(line: str, reply: StreamedReply) -> str:
    """The text delta of one SSE line (usage and finish reason go into `reply`); UserError on an error
    event."""
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    reply.done = reply.done or data == "[DONE]"
    if not data or data == "[DONE]":
        return ""
    try:
        event = json.loads(data)
    except ValueError:
        raise UserError(f"the server sent a malformed event: {data[:120]}") from None
    if not isinstance(event, dict):
        raise UserError(f"the server sent a malformed event: {data[:120]}")
    if "error" in event:
        raise UserError(f"the server reported: {error_message(data.encode())}")
    reply.usage = event.get("usage") or reply.usage
    choices = event.get("choices") or [{}]
    reply.finish_reason = choices[0].get("finish_reason") or reply.finish_reason
    return (choices[0].get("delta") or {}).get("content") or ""


def error_message(raw: bytes) -> str:
    """The message of an OpenAI-shaped (or FastAPI-shaped) error body, else the start of the body."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:300]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message"))
    return str(payload.get("detail", payload) if isinstance(payload, dict) else payload)[:300]


async def chat_completion(client: httpx.AsyncClient, base_url: str, body: dict) -> dict:
    """One non-streaming chat completion, whole (choices, usage); UserError with the server's reason."""
    try:
        response = await client.post(f"{api_base(base_url)}/chat/completions", json={**body, "stream": False})
    except httpx.HTTPError as exc:
        raise UserError(f"{base_url}: {type(exc).__name__}: {exc or 'connection failed'}") from exc
    if response.status_code >= 400:
        raise UserError(f"{base_url}: HTTP {response.status_code}: {error_message(response.content)}")
    try:
        reply = response.json()
        reply["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UserError(f"{base_url}: the reply is not an OpenAI chat completion") from exc
    return reply


async def chat_text(client: httpx.AsyncClient, base_url: str, body: dict) -> str:
    """The text of one non-streaming chat completion; UserError with the server's reason on failure."""
    return (await chat_completion(client, base_url, body))["choices"][0]["message"].get("content") or ""


async def model_info(client: httpx.AsyncClient, base_url: str) -> dict:
    """The first model an endpoint lists: its id, who serves it and its maximum length (None where not
    reported); the id "default" for an endpoint that lists none (most then ignore the name)."""
    try:
        entry = (await client.get(f"{api_base(base_url)}/models")).json()["data"][0]
        return {
            "model": entry["id"],
            "owned_by": entry.get("owned_by"),
            "max_model_len": entry.get("max_model_len"),
        }
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return {"model": "default", "owned_by": None, "max_model_len": None}


async def first_model(client: httpx.AsyncClient, base_url: str) -> str:
    """The id of the first model an endpoint lists ("default" when it lists none)."""
    return (await model_info(client, base_url))["model"]
