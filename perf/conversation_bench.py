"""The lore proxy in a writer's conversation: the note each request needs, and the engine's prefix cache.

1. Writer-style requests (each world's `requests.jsonl`: "Write the scene where Wick fixes the pump...",
   naming people by nickname, each needing one note) go through a real proxy; a request counts when its
   note is among the proxy's `x-lore-sources`.
2. A scripted 20-turn writing session on the example world goes through the proxy once per lore
   placement. The engine behind the proxy records what it receives; each request is rendered with a
   Llama-3 chat template and tokenized, and we measure the share of each request's prompt that is an
   exact prefix of the next one's (what an engine's prefix cache can reuse), and the tokens the engine
   must prefill over the whole session.

The engine here is synthetic (it records the request and answers with a fixed sentence): the session's
assistant turns are scripted, as a client replaying its history would send them.

    python perf/conversation_bench.py                      # the in-repo worlds
    python perf/conversation_bench.py --world DIR          # add a world kept outside the repository

Writes perf/results/conversation_bench.json and a line in perf/RESULTS.md.
"""

import argparse
import itertools
import json
import re
import sys
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from urllib.parse import unquote

import httpx

from proxy_bench import free_port
from record import add_table_row
from scifi_llm.config import LoreSettings, ProxySection
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.lore import MINILM, Embedder
from scifi_llm.proxy import ProxySettings, create_app
from scifi_llm.tiny_model import build_tokenizer
from worlds import ROOT, WORLDS, open_world, outside_world

sys.path.insert(0, str(ROOT / "tests"))  # the tests' helper that runs an ASGI app in a thread
from servers import serve_in_thread

RESULTS_JSON = ROOT / "perf" / "results" / "conversation_bench.json"
SYSTEM = (
    "You are the co-writer of a science-fiction novel. Write vivid, concrete prose in close third person, "
    "past tense. Keep every name, place and technical detail consistent with the world."
)
SESSION = [
    "Write the opening scene: Ledger alone in the cold hold of the Lark, her arm starting to lock up.",
    "Continue.",
    "Hollis comes down the ladder with coffee and news from Harrow Station.",
    "Continue.",
    "Now the Magistrate's message arrives. Write it as she would write it.",
    "Continue, and let Elena answer her.",
    "Cut to Tomas on the Wren, hearing about it over the comm.",
    "Continue.",
    "Have Tomas remember the cadet school and why he left it.",
    "Continue.",
    "Back on the Lark: Elena opens the cavity in her forearm.",
    "Continue.",
    "What does she find in there? Describe it exactly.",
    "Continue.",
    "Ilka Marsh calls. Write the conversation about the arm.",
    "Continue.",
    "The Lark drops toward Harrow Deep. Describe the approach.",
    "Continue.",
    "End the chapter on the docking clamps closing.",
    "Now give me three titles for this chapter.",
]


def recording_engine(bodies: list[dict]):
    """The synthetic engine: records each chat request and answers with one fixed sentence."""
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "synthetic", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        bodies.append(await request.json())
        message = {"role": "assistant", "content": "The engine wrote this."}
        return {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }

    return app


@contextmanager
def proxy_over(index_dir: Path, bodies: list[dict], placement: str):
    """A lore proxy with the shipped settings (and `placement`) in front of a recording engine."""
    lore, section = LoreSettings(), ProxySection()
    with serve_in_thread(recording_engine(bodies), free_port()) as engine:
        settings = ProxySettings(
            upstreams=(f"{engine}/v1",),
            index_dir=index_dir,
            collection="world",
            top_k=lore.top_k,
            budget_tokens=lore.budget_tokens,
            scan_depth=lore.scan_depth,
            placement=placement,
            carry_tokens=section.lore_carry_tokens,
        )
        with serve_in_thread(create_app(settings), free_port()) as proxy:
            yield f"{proxy}/v1"


def chat(url: str, messages: list[dict]) -> httpx.Response:
    response = httpx.post(
        f"{url}/chat/completions", json={"model": "synthetic", "messages": messages}, timeout=60
    )
    response.raise_for_status()
    return response


def writer_requests(world, index_dir: Path) -> dict:
    """Share of the world's writer-style requests whose note is among the proxy's lore sources."""
    requests = [json.loads(line) for line in world.requests.read_text().splitlines() if line.strip()]
    misses = []
    with proxy_over(index_dir, [], ProxySection().lore_placement) as url:
        for request in requests:
            messages = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": request["request"]},
            ]
            sources = chat(url, messages).headers["x-lore-sources"].split(",")
            if request["source"] not in [unquote(source) for source in sources]:
                misses.append(request["id"])
    return {"requests": len(requests), "found": round(1 - len(misses) / len(requests), 4), "misses": misses}


def session_prose() -> list[str]:
    """Scripted assistant turns: the example prose, a few paragraphs at a time (250-450 words each)."""
    paragraphs = [
        p.strip()
        for path in sorted((ROOT / "examples" / "writing").glob("*.md"))
        for p in re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))
        if p.strip() and not p.startswith("#")
    ]
    turns, current = [], []
    for paragraph in itertools.cycle(paragraphs):
        current.append(paragraph)
        if len(" ".join(current).split()) >= 250:
            turns.append("\n\n".join(current))
            current = []
        if len(turns) == len(SESSION):
            return turns
    raise AssertionError("unreachable")


def session(index_dir: Path, placement: str, tokenizer) -> dict:
    """The scripted session through the proxy: prefix reuse between consecutive requests, prefill work."""
    bodies: list[dict] = []
    messages = [{"role": "system", "content": SYSTEM}]
    with proxy_over(index_dir, bodies, placement) as url:
        for turn, prose in zip(SESSION, session_prose(), strict=True):
            messages.append({"role": "user", "content": turn})
            chat(url, messages)
            messages.append({"role": "assistant", "content": prose})
    prompts = [tokens(tokenizer, body["messages"]) for body in bodies]
    shares, reused = [], [0]
    for earlier, later in itertools.pairwise(prompts):
        common = shared_prefix(earlier, later)
        shares.append(common / len(earlier))
        reused.append(common)
    return {
        "turns": len(prompts),
        "prefix_share_mean": round(mean(shares), 4),
        "prefix_share_min": round(min(shares), 4),
        "prompt_tokens_last": len(prompts[-1]),
        "prefill_tokens": sum(len(prompt) - hit for prompt, hit in zip(prompts, reused, strict=True)),
        "lore_messages_last": sum(
            1 for m in bodies[-1]["messages"] if m["content"].startswith("Relevant notes")
        ),
    }


def tokens(tokenizer, messages: list[dict]) -> list[int]:
    """The prompt an engine builds from `messages`: the chat template, then the tokenizer."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def shared_prefix(first: list[int], second: list[int]) -> int:
    """How many leading tokens two prompts share."""
    for index, (a, b) in enumerate(zip(first, second, strict=False)):
        if a != b:
            return index
    return min(len(first), len(second))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--world", type=Path, action="append", default=[], help="a world kept outside the repo"
    )
    args = parser.parse_args()
    embedder = Embedder(MINILM)
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "embedding_model": MINILM}
    lore = LoreSettings()
    with tempfile.TemporaryDirectory() as scratch:
        for world in [*WORLDS, *(outside_world(folder) for folder in args.world)]:
            index_dir = Path(scratch) / world.name
            open_world(world, index_dir, embedder, lore.chunk_tokens, lore.chunk_overlap)
            if world.requests is not None:
                results.setdefault("requests", {})[world.name] = writer_requests(world, index_dir)
                print(world.name, results["requests"][world.name], flush=True)
            if world.name == "example":
                texts = [p.read_text(encoding="utf-8") for p in (ROOT / "examples").rglob("*.md")]
                tokenizer = build_tokenizer(texts, vocab_size=4096)
                results["session"] = {
                    placement: session(index_dir, placement, tokenizer)
                    for placement in ("conversation", "last_user", "system")
                }
                print(json.dumps(results["session"]), flush=True)
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    append_summary(results)


def append_summary(results: dict) -> None:
    """One line in perf/RESULTS.md."""
    requests = results.get("requests", {})
    found = sum(r["found"] * r["requests"] for r in requests.values()) / sum(
        r["requests"] for r in requests.values()
    )
    parts = [
        f"gold note in x-lore-sources: {found:.3f} of {sum(r['requests'] for r in requests.values())} "
        f"writer requests (" + ", ".join(f"{name} {r['found']:.2f}" for name, r in requests.items()) + ")"
    ]
    for placement, row in results["session"].items():
        parts.append(
            f"{placement}: prefix share {row['prefix_share_mean']:.3f} (min {row['prefix_share_min']:.3f}), "
            f"prefill {row['prefill_tokens']} tokens, last prompt {row['prompt_tokens_last']} tokens"
        )
    line = f"| {results['date'][:10]} | `python perf/conversation_bench.py` | {'; '.join(parts)} |"
    add_table_row("| date | command | conversation |", line)


if __name__ == "__main__":
    main()
