"""A chat request's body, read within its size limit and checked before anything acts on it.

Whatever would make the engine (or our own lore search, history or token counting) fail is refused here
with a 400, 413 or 422 in OpenAI's shape, naming the field: a request never turns into a 500.
"""

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

# Fields an engine would reject with a 400 or, worse, a 500 the proxy would report as the engine failing.
_NUMBERS = {"max_tokens": 1, "max_completion_tokens": 1, "n": 1, "temperature": 0, "top_p": 0}
_WHOLE = {"max_tokens", "max_completion_tokens", "n"}
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class LoreOptions:
    """What a request asks of the lore (its optional `lore` field over the proxy's settings)."""

    collection: str
    top_k: int
    budget_tokens: int
    enabled: bool = True
    pin: frozenset[str] = frozenset()  # notes always given (source paths, as `x-lore-sources` names them)
    block: frozenset[str] = frozenset()  # notes never given


_SCALARS = {"enabled": bool, "collection": str, "top_k": int, "budget_tokens": int}
_NOTE_LISTS = ("pin", "block")
MAX_STEERED_NOTES = 100


class BadRequest(Exception):
    """A client error, answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param


async def read_body(receive, limit: int) -> bytes:
    """The request body, counted as it arrives: past `limit` bytes, a 413 before the rest is read."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("the client left while sending its request")
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise BadRequest(413, f"request body over {limit} bytes")
        parts.append(part)
        if not message.get("more_body"):
            return b"".join(parts)


def parse_chat(raw: bytes) -> dict:
    """The JSON body of a chat request, checked field by field."""
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"request body is not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise BadRequest(422, "request body must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw):
        _refuse_lone_surrogates(body)
    _check_messages(body.get("messages"))
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


def lore_options(given, defaults: LoreOptions) -> LoreOptions:
    """The request's `lore` field over the proxy's defaults; wrong types are a 422."""
    if given is None:
        return defaults
    if not isinstance(given, dict):
        raise BadRequest(422, "lore must be an object", "lore")
    changes = {}
    for key, value in given.items():
        if key in _NOTE_LISTS:
            changes[key] = _note_list(key, value)
            continue
        expected = _SCALARS.get(key)
        if expected is None:
            options = ", ".join([*_SCALARS, *_NOTE_LISTS])
            raise BadRequest(422, f"lore.{key} is not a lore option ({options})", f"lore.{key}")
        if not isinstance(value, expected) or (expected is int and (isinstance(value, bool) or value < 1)):
            raise BadRequest(422, f"lore.{key} must be {expected.__name__}", f"lore.{key}")
        changes[key] = value
    return dataclasses.replace(defaults, **changes)


def _note_list(key: str, value) -> frozenset[str]:
    """A `pin` or `block` list: note paths as `x-lore-sources` names them."""
    if (
        not isinstance(value, list)
        or len(value) > MAX_STEERED_NOTES
        or not all(isinstance(note, str) and 0 < len(note) <= 500 for note in value)
    ):
        message = (
            f"lore.{key} must be a list of at most {MAX_STEERED_NOTES} note paths, e.g. characters/elena.md"
        )
        raise BadRequest(422, message, f"lore.{key}")
    return frozenset(value)


def _check_messages(messages) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadRequest(422, "messages must be a non-empty list", "messages")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(422, f"{where} needs a role (text)", f"{where}.role")
        content = message.get("content")
        if isinstance(content, list):
            _check_parts(content, f"{where}.content")
        elif not isinstance(content, str | None):
            raise BadRequest(422, f"{where}.content must be text or a list of parts", f"{where}.content")


def _check_parts(parts: list, where: str) -> None:
    for index, part in enumerate(parts):
        field = f"{where}[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadRequest(422, f"{field} must be an object with a type", field)
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise BadRequest(422, f"{field}.text must be text", f"{field}.text")


def _refuse_lone_surrogates(body: dict) -> None:
    for path, text in _strings(body, ""):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadRequest(
                400, f"{path or 'a key'} holds a lone surrogate (\\u{ord(text[exc.start]):04x})", path
            ) from exc


def _strings(value, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value (keys too), with where it is."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large a number")
    return value
