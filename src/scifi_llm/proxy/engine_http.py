"""A lean HTTP/1.1 client for the one hot connection: the proxy's chat requests to the engine.

A streamed answer is a hundred or more small chunks, and a general client spends tens of microseconds of
pure Python on each. Here an asyncio protocol hands the bytes to httptools' C parser (the one uvicorn
uses), which undoes the chunked encoding; the relay gets each chunk's body as it arrives. Connections
are kept alive per engine. The client knows whether a connection was reused, so an engine that closed an
idle connection just as it was reused (the request never reached it) is told apart from one that failed.

Leaving early is closing: when the relay stops reading (the client left, a clock ran out), the connection
is closed, and the engine sees the disconnect and stops generating.
"""

import asyncio
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

_PAUSE_BYTES = 2**20  # stop reading from the engine while this much waits for a slow client


class EngineUnreachable(Exception):
    """The engine's address refused or did not answer the connection."""


class EngineDropped(Exception):
    """The engine closed the connection before its answer was complete; `reused` and `answered` say
    whether it was a kept-alive connection and whether any of the answer had come."""

    def __init__(self, message: str, reused: bool, answered: bool) -> None:
        super().__init__(message)
        self.reused, self.answered = reused, answered


class _Connection(asyncio.Protocol):
    """One connection to the engine and the response being read on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self._wake: asyncio.Future | None = None
        self._paused = False
        self.begin()

    def begin(self) -> None:
        """Get ready for the next response on this connection."""
        self.parser = httptools.HttpResponseParser(self)
        self.status, self.headers, self.body = 0, {}, []
        self.buffered, self.headers_done, self.complete, self.error = 0, False, False, None
        self.keep_alive = False
        if self._paused:
            self._paused = False
            self.transport.resume_reading()

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = EngineDropped(f"the engine sent a malformed answer ({exc})", self.reused, True)
            self.close()
        if self.buffered > _PAUSE_BYTES and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._notify()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            reason = f"the engine closed the connection ({exc or 'no answer'})"
            self.error = EngineDropped(reason, self.reused, self.headers_done)
        self._notify()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status, self.headers_done = self.parser.get_status_code(), True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete, self.keep_alive = True, self.parser.should_keep_alive()  # only known right here

    async def wait(self) -> None:
        """Until more of the answer (or its end, or a failure) arrives."""
        if self._paused and self.buffered < _PAUSE_BYTES // 2:
            self._paused = False
            self.transport.resume_reading()
        self._wake = asyncio.get_running_loop().create_future()
        try:
            await self._wake
        finally:
            self._wake = None

    def take(self) -> list[bytes]:
        """The body parts that arrived since the last call."""
        parts, self.body, self.buffered = self.body, [], 0
        return parts

    def close(self) -> None:
        """Close the connection (the engine sees the client leave)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)


class EngineResponse:
    """An engine's answer: status and headers at once, the body as it streams in."""

    def __init__(self, connection: _Connection, release) -> None:
        self._connection, self._release = connection, release
        self.status, self.headers = connection.status, connection.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, part by part as it arrives (chunked encoding undone)."""
        connection = self._connection
        while True:
            for part in connection.take():
                yield part
            if connection.complete:
                return
            if connection.error is not None:
                raise connection.error
            await connection.wait()

    async def read(self) -> bytes:
        """The whole body."""
        return b"".join([part async for part in self.chunks()])

    def close(self) -> None:
        """Done with the answer: a fully read one leaves its connection for the next request."""
        release, self._release = self._release, None
        connection = self._connection
        if release is None:
            return
        if connection.complete and connection.keep_alive and not connection.body and not connection.closed:
            return release(connection)
        connection.close()


class EngineClient:
    """POST requests to engines over kept-alive HTTP/1.1 connections, one pool per address."""

    def __init__(self, connect_timeout_s: float, keep_per_engine: int = 64) -> None:
        self.connect_timeout_s, self.keep_per_engine = connect_timeout_s, keep_per_engine
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def post(self, url: str, body: bytes, fresh: bool = False) -> EngineResponse:
        """Send a JSON POST and wait for the answer's status and headers (`fresh`: on a new connection).

        Raises EngineUnreachable when no connection can be made, EngineDropped when the engine closes
        the connection before answering."""
        parts = urlsplit(url)
        address = (parts.scheme, parts.hostname or "127.0.0.1", parts.port or _default_port(parts.scheme))
        connection = None if fresh else self._take_idle(address)
        if connection is None:
            connection = await self._connect(address)
        connection.begin()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            connection.transport.write(head.encode("latin-1") + body)
            while not connection.headers_done:
                if connection.error is not None:
                    raise connection.error
                await connection.wait()
        except BaseException:
            connection.close()
            raise
        return EngineResponse(connection, lambda done: self._give_back(address, done))

    async def _connect(self, address: tuple[str, str, int]) -> _Connection:
        scheme, host, port = address
        context = ssl.create_default_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, connection = await loop.create_connection(_Connection, host, port, ssl=context)
        except (OSError, TimeoutError) as exc:
            raise EngineUnreachable(f"{type(exc).__name__}: {exc}") from None
        return connection

    def _take_idle(self, address: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(address, [])
        while idle:
            connection = idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
        return None

    def _give_back(self, address: tuple[str, str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(address, [])
        if len(idle) < self.keep_per_engine:
            idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Close every kept connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
