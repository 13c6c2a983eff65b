"""Putting lore into a chat request: what to search for, where the lore goes, and what a conversation keeps.

The search looks at the conversation, not at the system prompt: the last user message (with the end of
the turn before it when the message is short: "Continue." means little alone), and the entities named in
the last `scan_depth` turns stay in the running, as lorebooks do.

Where the lore goes decides what the engine's prefix cache can keep. `system` (the old placement) puts it
right after the client's system messages, so a change of lore between turns makes the engine prefill the
whole conversation again. `last_user` puts it just before the last user message: the conversation before
it stays byte-identical from turn to turn. `conversation` (the default) does the same and also keeps the
lore given in earlier turns where it was given, so each request is an exact prefix of the next one, and
the model keeps seeing what it was shown; a turn then adds only lore the conversation does not already
hold. `LoreMemory` remembers that lore by the exact conversation it was given in (up to `carry_tokens`).
"""

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the proxy's CLI imports this module; the lore library loads only when lore is used
    from scifi_llm.lore import Hit

Placement = Literal["conversation", "last_user", "system"]
SHORT_QUERY_WORDS = 12
PREVIOUS_TURN_WORDS = 80  # how much of the turn before a short message joins the query
# A pasted chapter is not a question: the search reads the end of it (what the writer asks about is
# there), which bounds the cost of every search, whatever a client sends.
MAX_QUERY_CHARS = 2000
MAX_RECENT_CHARS = 4000
LORE_HEADER = (
    "Relevant notes from the author's worldbuilding (use them for consistency; do not contradict them; "
    "do not mention that you were given notes):"
)
_TURN_ROLES = ("user", "assistant")


@dataclass(frozen=True)
class LoreRequest:
    """What one chat request searches the lore for: the query, and the recent turns whose entities count."""

    query: str
    recent: str = ""


def message_text(message: dict) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def lore_request(messages: list[dict], scan_depth: int = 4) -> LoreRequest:
    """The query (the last user turn, with the end of the turn before when it is short) and the text of
    the `scan_depth` turns before it, each cut to its last few thousand characters. System messages are
    never searched."""
    turns = [message for message in messages if message.get("role") in _TURN_ROLES]
    last = max((index for index, turn in enumerate(turns) if turn["role"] == "user"), default=None)
    if last is None:
        return LoreRequest("")
    query = _tail(message_text(turns[last]).strip(), MAX_QUERY_CHARS)
    if len(query.split()) < SHORT_QUERY_WORDS and last > 0:
        previous = _tail(message_text(turns[last - 1]), MAX_QUERY_CHARS).split()[-PREVIOUS_TURN_WORDS:]
        query = f"{' '.join(previous)}\n{query}".strip()
    earlier = turns[max(0, last - scan_depth) : last]
    recent = "\n".join(_tail(message_text(turn), MAX_RECENT_CHARS) for turn in earlier)
    return LoreRequest(query, _tail(recent, MAX_RECENT_CHARS))


def _tail(text: str, limit: int) -> str:
    """The last `limit` characters of `text`, starting at a word."""
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return cut[cut.find(" ") + 1 :] if " " in cut[:80] else cut


def lore_message(hits: list["Hit"]) -> dict:
    """One system message holding the passages, each labelled with its source and heading.

    The order is fixed (by source, then position), not by score, so the same lore gives the same bytes.
    """
    ordered = sorted(hits, key=lambda hit: (hit.source, hit.chunk_id))
    blocks = [f"[{hit.source} — {hit.heading}]\n{hit.text}" for hit in ordered]
    return {"role": "system", "content": LORE_HEADER + "\n\n" + "\n\n".join(blocks)}


@dataclass(frozen=True)
class Given:
    """Lore given before one user message of a conversation: the message itself and the chunks in it."""

    message: dict
    chunk_ids: frozenset[str]
    tokens: int


def place(
    messages: list[dict], lore: dict | None, placement: Placement, carried: dict[int, Given] | None = None
) -> list[dict]:
    """The messages with the new lore (and, for `conversation`, the carried lore) where the placement puts it.

    `carried` maps the index of an earlier user message to the lore given before it.
    """
    if placement == "system":
        split = 0
        while split < len(messages) and messages[split].get("role") in ("system", "developer"):
            split += 1
        return [*messages[:split], lore, *messages[split:]] if lore else messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages))
    placed = []
    for index, message in enumerate(messages):
        if index in (carried or {}):
            placed.append(carried[index].message)
        if index == last_user and lore:
            placed.append(lore)
        placed.append(message)
    return placed


class LoreMemory:
    """The lore given in each conversation, keyed by the exact messages it was given with.

    A request's earlier user messages are looked up by a hash of the conversation up to each of them, so
    a conversation that is continued carries its lore, and one that was edited or cut short does not.
    Whether a turn's lore is kept is decided once, when it is given: it is kept while the conversation's
    kept lore stays within `carry_tokens`. So the same conversation always carries the same lore and its
    prefix stays identical; past the limit, a turn's new lore is shown in that turn only, and the engine
    reuses the conversation up to it. At most `capacity` givings are remembered (least recently used go
    first).
    """

    def __init__(self, carry_tokens: int, capacity: int = 4096) -> None:
        self.carry_tokens = carry_tokens
        self.capacity = capacity
        self._given: OrderedDict[str, Given] = OrderedDict()

    def recall(self, messages: list[dict]) -> dict[int, Given]:
        """The lore to carry into this request: index of the user message -> the lore given before it."""
        carried = {}
        for index, key in _user_keys(messages)[:-1]:
            given = self._given.get(key)
            if given is not None:
                self._given.move_to_end(key)
                carried[index] = given
        return carried

    def remember(self, messages: list[dict], given: Given, carried_tokens: int) -> bool:
        """Keep the lore given before the last user message of `messages` for the next turns, if it fits
        beside the `carried_tokens` the conversation already keeps; True when it was kept."""
        keys = _user_keys(messages)
        if not keys or carried_tokens + given.tokens > self.carry_tokens:
            return False
        self._given[keys[-1][1]] = given
        self._given.move_to_end(keys[-1][1])
        while len(self._given) > self.capacity:
            self._given.popitem(last=False)
        return True


def _user_keys(messages: list[dict]) -> list[tuple[int, str]]:
    """(index, hash of the conversation up to and including it) for every user message."""
    digest = hashlib.sha256()
    keys = []
    for index, message in enumerate(messages):
        content = message.get("content")
        text = f"s{content}" if isinstance(content, str) else f"j{json.dumps(content, sort_keys=True)}"
        digest.update(json.dumps(message.get("role")).encode() + b"\x00")
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")  # no json.dumps of a whole chapter
        if message.get("role") == "user":
            keys.append((index, digest.copy().hexdigest()))
    return keys
