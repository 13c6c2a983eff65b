"""The proxy's front door, as a plain ASGI middleware: who may call, from where, and with what.

A proxy on 127.0.0.1 is still reachable from every web page the writer opens: a page can POST to it (a
cross-site request) and, through DNS rebinding, read from it. So the Host header must name the address
the proxy is bound to, a browser's cross-origin request is refused unless its origin is in the
allow-list (SillyTavern and other browser tools call from a page of their own), and POSTs must be JSON
(a form or `text/plain` POST is what a page can send without asking). Keys are compared in constant
time. Nothing here decodes a header as UTF-8: a header in another encoding is an answer, not a crash.
"""

import hmac
import ipaddress
from collections.abc import Iterable

from fastapi.responses import JSONResponse, Response

from scifi_llm.openai_client import error_payload

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
# Answered without a key: a liveness check, and the desk's page and script (the writer's text comes
# through routes that need the key). An open prefix ends with "/".
_OPEN = ("/health", "/desk", "/desk/static/")
_CORS_ALLOW_HEADERS = b"authorization, content-type"


class Guard:
    """Host, Origin, API key, content type and declared body size, checked before any route runs."""

    def __init__(
        self,
        app,
        bind_host: str,
        api_key: str | None,
        max_body_bytes: int,
        allowed_origins: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self.key = api_key.encode() if api_key else None
        self.hosts = host_names(bind_host, allowed_hosts)
        self.origins = frozenset(origin.rstrip("/").encode() for origin in allowed_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal:
            return await error_response(*refusal)(scope, receive, send)
        origin = headers.get(b"origin")
        if origin is None or origin == b"http://" + headers.get(b"host", b""):
            return await self.app(scope, receive, send)  # not a browser's cross-origin request
        if scope["method"] == "OPTIONS":  # an allowed origin's preflight
            return await Response(status_code=204, headers=_cors_headers(origin, preflight=True))(
                scope, receive, send
            )
        await self.app(scope, receive, _with_cors(send, origin))

    def _refusal(self, scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        """(status, message, type) when the request must be refused, else None."""
        host = headers.get(b"host", b"")
        if self.hosts is not None and _host_name(host) not in self.hosts:
            shown = host.decode("latin-1")
            return (
                403,
                f"Host {shown!r} is not this proxy's address (add it to proxy.allowed_hosts)",
                "forbidden",
            )
        origin = headers.get(b"origin")
        if origin is not None and origin != b"http://" + host and origin.rstrip(b"/") not in self.origins:
            shown = origin.decode("latin-1")
            return (
                403,
                f"requests from the web page {shown} are refused (add it to proxy.allowed_origins)",
                "forbidden",
            )
        preflight = scope["method"] == "OPTIONS" and origin is not None
        if self.key and not _is_open(scope["path"]) and not preflight and not self._authorized(headers):
            return 401, "missing or wrong API key (send Authorization: Bearer KEY)", "invalid_api_key"
        if scope["method"] in ("POST", "PUT"):
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json":
                return (
                    415,
                    "the request body must be JSON (Content-Type: application/json)",
                    "invalid_request_error",
                )
            length = headers.get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_body_bytes:
                return 413, f"request body over {self.max_body_bytes} bytes", "request_too_large"
        return None

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key)


def _is_open(path: str) -> bool:
    return any(path == name or (name.endswith("/") and path.startswith(name)) for name in _OPEN)


def host_names(bind_host: str, allowed_hosts: Iterable[str] = ()) -> frozenset[str] | None:
    """The names a request's Host may carry: the bound address (loopback goes by its usual names) and the
    allowed ones; None (any) when the proxy listens on every address and no names were allowed."""
    extra = {host.lower().strip("[]") for host in allowed_hosts}
    host = bind_host.lower().strip("[]")
    if host in ("0.0.0.0", "::", ""):
        return frozenset(extra) if extra else None
    names = {host, *extra}
    if host in LOOPBACK_NAMES or _is_loopback(host):
        names |= LOOPBACK_NAMES
    return frozenset(names)


def is_exposed(bind_host: str) -> bool:
    """True when other machines can reach an address bound to `bind_host`."""
    host = bind_host.lower().strip("[]")
    return host not in LOOPBACK_NAMES and not _is_loopback(host)


def error_response(status: int, message: str, error_type: str, param: str | None = None) -> JSONResponse:
    """An error in OpenAI's shape."""
    payload = error_payload(message, error_type, status)
    if param:
        payload["error"]["param"] = param
    return JSONResponse(payload, status_code=status)


def _host_name(host: bytes) -> str:
    """`127.0.0.1:8001` -> `127.0.0.1`, `[::1]:8001` -> `::1`."""
    text = host.decode("latin-1").lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cors_headers(origin: bytes, preflight: bool = False) -> dict[str, str]:
    headers = {"access-control-allow-origin": origin.decode("latin-1"), "vary": "Origin"}
    headers["access-control-expose-headers"] = "x-lore-sources, x-lore-request-id, x-lore-retrieval-ms"
    if preflight:
        headers |= {
            "access-control-allow-methods": "GET, POST, OPTIONS",
            "access-control-allow-headers": _CORS_ALLOW_HEADERS.decode(),
            "access-control-max-age": "600",
        }
    return headers


def _with_cors(send, origin: bytes):
    """`send` that adds the allowed origin's CORS headers to the response."""
    extra = [(name.encode(), value.encode("latin-1")) for name, value in _cors_headers(origin).items()]

    async def send_with_cors(message):
        if message["type"] == "http.response.start":
            message = message | {"headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_cors
