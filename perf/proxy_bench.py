"""What the lore proxy adds to a request, measured against calling the engine directly in the same run.

A synthetic engine (its own process) streams 100 chunks at a fixed pace, so any difference is the
proxy's own cost. Three paths: direct, proxy with lore off, proxy with lore on (minilm, the example
world). For each: time to first chunk and the gap between chunks, p50/p99, at concurrency 1 and 32.
Then a load run: 1,000 streamed requests at concurrency 32 through the proxy (lore on), counting errors,
truncated streams and history rows.

    python perf/proxy_bench.py                # about 2 minutes
    python perf/proxy_bench.py --large        # lore from a 10,000-chunk world (about 8 minutes)
    python perf/proxy_bench.py --serve-engine PORT [--pace S]   # (internal) run the synthetic engine

Writes perf/results/proxy_bench.json and a line in perf/RESULTS.md.
"""

import argparse
import asyncio
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from record import add_table_row
from scifi_llm.fsutil import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "proxy_bench.json"
CHUNKS, CHUNK_PACE_S = 100, 0.002
PROMPT = "Write the bar scene where Ledger's arm locks up in the cold."


def serve_engine(port: int, pace_s: float = CHUNK_PACE_S) -> None:
    """The synthetic engine: /v1/models, and a chat stream of CHUNKS chunks at a fixed pace (0: as fast
    as it can), the last with the usage an engine reports."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "synthetic", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat():
        async def stream():
            for index in range(CHUNKS):
                event = {
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": f"w{index} "}}],
                }
                yield f"data: {json.dumps(event)}\n\n"
                await asyncio.sleep(pace_s)
            usage = {"prompt_tokens": 16, "completion_tokens": CHUNKS, "total_tokens": CHUNKS + 16}
            final = {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
            }
            yield f"data: {json.dumps(final | {'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


async def one_request(client: httpx.AsyncClient, url: str, lore: bool | None) -> dict:
    """Stream one chat completion; returns TTFT, inter-chunk gaps, chunk count and completeness."""
    body = {"model": "synthetic", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    if lore is not None:
        body["lore"] = {"enabled": lore}
    started = time.perf_counter()
    stamps, done, status = [], False, 0
    try:
        async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
            status = response.status_code
            async for line in response.aiter_lines():
                if line.startswith("data: {") and '"content"' in line:
                    stamps.append(time.perf_counter())
                done = done or line == "data: [DONE]"
    except httpx.HTTPError:
        status = -1
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    return {
        "ttft": stamps[0] - started if stamps else None,
        "gaps": gaps,
        "chunks": len(stamps),
        "complete": done and len(stamps) == CHUNKS,
        "status": status,
    }


async def run_load(url: str, lore: bool | None, requests: int, concurrency: int) -> list[dict]:
    """`requests` streamed requests by `concurrency` workers."""
    queue = list(range(requests))
    results: list[dict] = []
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def worker():
            while queue:
                queue.pop()
                results.append(await one_request(client, url, lore))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda pct: round(ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))] * 1000, 3)  # noqa: E731
    return {"p50_ms": pick(50), "p99_ms": pick(99)} if ordered else {"p50_ms": None, "p99_ms": None}


def summarize(results: list[dict]) -> dict:
    return {
        "requests": len(results),
        "ttft": percentiles([r["ttft"] for r in results if r["ttft"] is not None]),
        "chunk_gap": percentiles([gap for r in results for gap in r["gaps"]]),
        "errors": sum(1 for r in results if r["status"] != 200),
        "truncated": sum(1 for r in results if r["status"] == 200 and not r["complete"]),
    }


def start_proxy(workspace: Path, engine_url: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "SCIFI_LLM_PROXY__PORT": str(port),
        "SCIFI_LLM_PROXY__UPSTREAM": engine_url,
    }
    command = [sys.executable, "-m", "scifi_llm", "--workspace", str(workspace), "proxy"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve-engine", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pace", type=float, default=CHUNK_PACE_S, help=argparse.SUPPRESS)
    parser.add_argument("--load-requests", type=int, default=1000)
    parser.add_argument("--large", action="store_true", help="lore from a 10,000-chunk world (+6 minutes)")
    args = parser.parse_args()
    if args.serve_engine:
        return serve_engine(args.serve_engine, args.pace)
    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "chunks_per_stream": CHUNKS,
        "chunk_pace_ms": CHUNK_PACE_S * 1000,
    }
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch) / "novel"

        def run(*arguments: str) -> None:
            subprocess.run([sys.executable, "-m", "scifi_llm", *arguments], check=True, capture_output=True)

        run("init", str(workspace), "--example")
        if args.large:
            sys.path.insert(0, str(ROOT / "perf"))
            from lore_bench import build_large_corpus

            build_large_corpus(workspace / "lore" / "more", 40)
        run("--workspace", str(workspace), "lore", "ingest", "--embedding-model", "minilm")
        results["lore_chunks"] = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "scifi_llm",
                    "--workspace",
                    str(workspace),
                    "lore",
                    "status",
                    "--json",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )["collections"][0]["chunks"]
        engine_port, proxy_port = free_port(), free_port()
        engine = subprocess.Popen([sys.executable, __file__, "--serve-engine", str(engine_port)])
        engine_url = f"http://127.0.0.1:{engine_port}/v1"
        proxy = start_proxy(workspace, engine_url, proxy_port)
        proxy_url = f"http://127.0.0.1:{proxy_port}/v1"
        try:
            wait_healthy(f"{engine_url}/models")
            wait_healthy(f"http://127.0.0.1:{proxy_port}/health")
            asyncio.run(run_load(proxy_url, True, 5, 1))  # warm up
            for concurrency, requests in ((1, 50), (32, 320)):
                for name, url, lore in (
                    ("direct", engine_url, None),
                    ("proxy_lore_off", proxy_url, False),
                    ("proxy_lore_on", proxy_url, True),
                ):
                    key = f"c{concurrency}_{name}"
                    results[key] = summarize(asyncio.run(run_load(url, lore, requests, concurrency)))
                    print(key, json.dumps(results[key]), flush=True)
            stats_before = httpx.get(f"http://127.0.0.1:{proxy_port}/stats").json()["history"]["rows"]
            load = summarize(asyncio.run(run_load(proxy_url, True, args.load_requests, 32)))
            time.sleep(0.5)
            rows = (
                sqlite3.connect(workspace / ".scifi-llm" / "history.db")
                .execute("SELECT COUNT(*) FROM requests")
                .fetchone()[0]
            )
            load["history_rows_added"] = rows - stats_before
            results["load"] = load
            print("load", json.dumps(load), flush=True)
        finally:
            for child in (proxy, engine):
                child.terminate()
                child.wait(timeout=30)
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    append_summary(results)


def added(results: dict, concurrency: int, path: str, metric: str) -> str:
    base, via = results[f"c{concurrency}_direct"][metric], results[f"c{concurrency}_{path}"][metric]
    return f"+{via['p50_ms'] - base['p50_ms']:.2f}/+{via['p99_ms'] - base['p99_ms']:.2f}"


def append_summary(results: dict) -> None:
    """One line at the end of the proxy table of perf/RESULTS.md."""
    parts = []
    for concurrency in (1, 32):
        for path in ("proxy_lore_off", "proxy_lore_on"):
            parts.append(
                f"c{concurrency} {path[6:]}: TTFT {added(results, concurrency, path, 'ttft')} ms, "
                f"chunk gap {added(results, concurrency, path, 'chunk_gap')} ms"
            )
    load = results["load"]
    parts.append(
        f"load {load['requests']} req @32: {load['errors']} errors, {load['truncated']} truncated, "
        f"{load['history_rows_added']} history rows"
    )
    command = "python perf/proxy_bench.py" + (" --large" if results["lore_chunks"] > 1000 else "")
    parts.insert(0, f"{results['lore_chunks']} lore chunks")
    line = f"| {results['date'][:10]} | `{command}` | {'; '.join(parts)} |"
    add_table_row("| date | command | proxy adds (p50/p99 over direct) |", line)


if __name__ == "__main__":
    main()
