"""Reading training data back: the JSONL that `tune prepare` writes, checked line by line."""

import json
from pathlib import Path

from scifi_llm.errors import UserError


def load_examples(path: Path) -> list[dict]:
    """The examples of a training JSONL as prompt (system + request) and completion (the passage);
    a clear error names the file and line of anything malformed."""
    if not path.is_file():
        raise UserError(f"training data {path} does not exist: run `scifi-llm tune prepare` first")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte {exc.start}); `scifi-llm tune prepare` writes it"
        ) from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        examples.append(_example(line, f"{path}:{number}"))
    if not examples:
        raise UserError(f"{path} holds no examples: run `scifi-llm tune prepare` on your writing")
    return examples


def _example(line: str, where: str) -> dict:
    try:
        messages = json.loads(line)["messages"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f'{where}: not a JSON object with "messages" ({type(exc).__name__})') from exc
    if (
        not isinstance(messages, list)
        or len(messages) < 2
        or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
    ):
        raise UserError(f'{where}: "messages" must be a list of {{"role", "content"}} objects')
    if messages[-1].get("role") != "assistant" or not messages[-1]["content"].strip():
        raise UserError(f"{where}: the last message must be the assistant's passage")
    clean = [{"role": m.get("role"), "content": m["content"]} for m in messages]
    return {"prompt": clean[:-1], "completion": clean[-1:]}
