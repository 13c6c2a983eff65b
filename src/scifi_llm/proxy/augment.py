"""Putting lore into a chat request: what to search for, and where the lore goes.

The search query is the last user message, plus the turn before it when the last one is short ("and
her sister?" means little alone). The lore becomes one system message placed right after the client's
own system messages, its chunks in a fixed order (by source and position, not by score), so the same
lore gives the same prompt prefix and the engine's prefix cache can reuse it.
"""

from scifi_llm.lore.retrieve import Hit

SHORT_QUERY_WORDS = 12
LORE_HEADER = (
    "Relevant notes from the author's worldbuilding (use them for consistency; do not contradict them; "
    "do not mention that you were given notes):"
)


def message_text(message: dict) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def lore_query(messages: list[dict]) -> str:
    """What to search the lore for: the last user turn, with the previous turn if the last is short."""
    user_turns = [index for index, message in enumerate(messages) if message.get("role") == "user"]
    if not user_turns:
        return ""
    last = user_turns[-1]
    query = message_text(messages[last]).strip()
    if len(query.split()) < SHORT_QUERY_WORDS and last > 0:
        previous = message_text(messages[last - 1]).strip()
        query = f"{previous}\n{query}".strip()
    return query


def lore_message(hits: list[Hit]) -> dict:
    """One system message holding the chunks, each labelled with its source and heading."""
    ordered = sorted(hits, key=lambda hit: (hit.source, hit.chunk_id))
    blocks = [f"[{hit.source} — {hit.heading}]\n{hit.text}" for hit in ordered]
    return {"role": "system", "content": LORE_HEADER + "\n\n" + "\n\n".join(blocks)}


def inject(messages: list[dict], hits: list[Hit]) -> list[dict]:
    """The messages with the lore message after the leading system messages; unchanged without hits."""
    if not hits:
        return messages
    split = 0
    while split < len(messages) and messages[split].get("role") in ("system", "developer"):
        split += 1
    return [*messages[:split], lore_message(hits), *messages[split:]]


def sources(hits: list[Hit]) -> list[str]:
    """The distinct source files of the hits, in rank order."""
    return list(dict.fromkeys(hit.source for hit in hits))
