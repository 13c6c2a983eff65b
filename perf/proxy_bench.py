"""What the lore proxy adds to a request, measured against calling the engine directly in the same run.

A synthetic engine (its own process) streams 100 chunks at a fixed pace, so any difference is the
proxy's own cost. Three paths: direct, proxy with lore off, proxy with lore on (minilm, the example
world). For each: time to first chunk and the gap between chunks, p50/p99, at concurrency 1 and 32.
Then a load run: 1,000 streamed requests at concurrency 32 through the proxy (lore on), counting errors,
truncated streams and history rows. Then an abuse run: 200 normal streamed requests at concurrency 8,
alone and again while 30 requests with a 3.9 MB message arrive at once, three rounds; every normal
request must get its lore, its TTFT p99 stay within 2x of the runs alone, and the proxy's memory grow by
at most 200 MB. As a control, each round also sends the same flood to the engine around the proxy: the
ratio the machine's load gives with no work for the proxy.

    python perf/proxy_bench.py                # about 3 minutes
    python perf/proxy_bench.py --large        # lore from a 10,000-chunk world (about 9 minutes)
    python perf/proxy_bench.py --overhead     # side by side with ../shared/bench/proxy_overhead.py:
                                              # its noise floor, our proxy (lore off, on), and LiteLLM
                                              # (--litellm: perf/.litellm, created when missing)
    python perf/proxy_bench.py --abuse-only   # only the abuse run, printed, not recorded
    python perf/proxy_bench.py --serve-engine PORT [--pace S]   # (internal) run the synthetic engine

Writes perf/results/proxy_bench.json (or proxy_overhead.json) and a line in perf/RESULTS.md.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE

import httpx

from record import add_table_row
from scifi_llm.bench import Load, RequestResult, run_load, summarize
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


async def streams(url: str, lore: bool | None, requests: int, concurrency: int) -> list[RequestResult]:
    """`requests` streamed requests by `concurrency` workers, through the one load generator."""
    body = {"model": "synthetic", "messages": [{"role": "user", "content": PROMPT}]}
    if lore is not None:
        body["lore"] = {"enabled": lore}
    load = Load(requests=requests, concurrency=concurrency, warmup=0)
    return (await run_load(url, [body], load, timeout=120))[0]


def figures(results: list[RequestResult]) -> dict:
    """Time to first chunk and the gaps between chunks (p50, p99), failures, and streams cut short."""
    done = [result for result in results if result.ok]
    summary = summarize(results, 1.0, Load(requests=len(results)))
    return {
        "requests": len(results),
        "ttft": {"p50_ms": summary["median_ttft_ms"], "p99_ms": summary["p99_ttft_ms"]},
        "chunk_gap": {"p50_ms": summary["median_itl_ms"], "p99_ms": summary["p99_itl_ms"]},
        "errors": summary["failed"],
        "truncated": sum(1 for result in done if result.truncated or result.output_tokens != CHUNKS),
    }


def rss_mb(pid: int) -> float:
    """A process's resident memory, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024


async def abuse_run(
    url: str, engine_url: str, pid: int, rounds: int = 3, huge_requests: int = 30, huge_mb: float = 3.9
) -> dict:
    """`rounds` times: 200 normal streamed requests at concurrency 8 alone, then again while
    `huge_requests` requests with a `huge_mb` message arrive at once (sent by a process of their own, so
    sending them does not stall this one's clock), then again with the same flood sent to the engine
    around the proxy: what the machine's load alone does to the normal requests. The goal: lore for every
    normal request, TTFT p99 within 2x of the runs alone, the proxy's memory up by at most 200 MB.
    The p99 is taken over all rounds together (one round's p99 is its second-slowest request)."""
    runs: dict[str, list[RequestResult]] = {"alone": [], "during_abuse": [], "flood_around_proxy": []}
    statuses, rss_before = [], rss_mb(pid)
    for _ in range(rounds):
        runs["alone"] += await streams(url, True, 200, 8)
        for name, target in (("during_abuse", url), ("flood_around_proxy", engine_url)):
            command = [sys.executable, __file__, "--flood", target, "--flood-requests", str(huge_requests)]
            flood = await asyncio.create_subprocess_exec(*command, "--flood-mb", str(huge_mb), stdout=PIPE)
            runs[name] += await streams(url, True, 200, 8)
            statuses += json.loads((await flood.communicate())[0]) if name == "during_abuse" else []
    summaries = {name: figures(results) for name, results in runs.items()}
    return {
        "rounds": rounds,
        **summaries,
        "normal_without_lore": sum(1 for result in runs["during_abuse"] if not result.lore_sources),
        "huge_requests": huge_requests * rounds,
        "huge_mb": huge_mb,
        "huge_answered": statuses.count(200),
        "ttft_p99_ratio": p99_ratio(summaries["during_abuse"], summaries["alone"]),
        "ttft_p99_ratio_flood_around_proxy": p99_ratio(summaries["flood_around_proxy"], summaries["alone"]),
        "proxy_rss_growth_mb": round(rss_mb(pid) - rss_before, 1),
    }


def p99_ratio(during: dict, alone: dict) -> float:
    return round(during["ttft"]["p99_ms"] / alone["ttft"]["p99_ms"], 2)


async def send_flood(url: str, requests: int, megabytes: float) -> list[int]:
    """`requests` requests at once, each with a `megabytes` MB message; their statuses."""
    chapter = "The corridor hums and the lamps gutter. " * int(megabytes * 2**20 / 40)
    message = {"role": "user", "content": chapter}
    body = json.dumps({"model": "synthetic", "stream": True, "messages": [message]}).encode()
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=requests)) as client:
        return await asyncio.gather(*(flood(client, url, body) for _ in range(requests)))


TOOL = ROOT.parent / "shared" / "bench" / "proxy_overhead.py"
LITELLM = ROOT / "perf" / ".litellm"
OVERHEAD_JSON = ROOT / "perf" / "results" / "proxy_overhead.json"
OVERHEAD_HEADER = (
    "| date | side | c=1 first chunk | c=1 whole stream | c=32 first chunk | c=32 whole stream "
    "| proxy CPU per request, c=1 |"
)


def overhead(tool: Path, workspace: Path, with_litellm: bool) -> dict:
    """The shared tool's figures, one side after another in one sitting: its noise floor, our proxy with
    lore off and on, and LiteLLM when asked for."""
    upstream_port, proxy_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    sides = {"noise floor": measure(tool, upstream_port, upstream, None, None)}
    proxy = start_proxy(workspace, f"{upstream}/v1", proxy_port)
    try:
        wait_healthy(f"http://127.0.0.1:{proxy_port}/health")
        asyncio.run(streams(f"http://127.0.0.1:{proxy_port}/v1", True, 1, 1))  # waits for the embedder
        url = f"http://127.0.0.1:{proxy_port}"
        sides["scifi-llm, lore off"] = measure(
            tool, upstream_port, url, proxy.pid, {"lore": {"enabled": False}}
        )
        sides["scifi-llm, lore on"] = measure(tool, upstream_port, url, proxy.pid, {})
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
    if with_litellm:
        sides["LiteLLM"] = measure_litellm(tool, upstream_port)
    return sides


def measure(
    tool: Path, upstream_port: int, url: str, pid: int | None, extra: dict | None, key="sk-none"
) -> dict:
    """One run of the shared tool against `url`; the added p50s and the proxy's CPU per request."""
    command = [sys.executable, str(tool), "--upstream-port", str(upstream_port), "--proxy-url", url]
    command += ["--model", "fake-model", "--prompt", PROMPT, "--proxy-api-key", key, "--conc", "1,32"]
    command += ["--proxied-extra", json.dumps(extra)] if extra is not None else []
    command += ["--proxy-pid", str(pid)] if pid else []
    report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    figures = {}
    for concurrency, result in report["results"].items():
        added = result["added_ms"]
        figures[f"c{concurrency}_first_chunk_ms"] = added["ttft_ms"]["p50"]
        figures[f"c{concurrency}_whole_stream_ms"] = added["total_ms"]["p50"]
        figures[f"c{concurrency}_errors"] = result["proxied"]["errors"]
        cpu = result["proxied"]["cpu_s"].get("proxy")
        figures[f"c{concurrency}_proxy_cpu_ms"] = (
            round(cpu / result["proxied"]["n"] * 1000, 1) if cpu else None
        )
    return figures


def measure_litellm(tool: Path, upstream_port: int) -> dict:
    """LiteLLM (one worker) in front of the same fake upstream, from its own virtualenv."""
    if not (LITELLM / "bin" / "litellm").exists():
        print("creating perf/.litellm with litellm[proxy] (a few minutes)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM)], check=True)
        subprocess.run([LITELLM / "bin" / "pip", "install", "-q", "litellm[proxy]"], check=True)
    config = (
        (tool.parent / "litellm.yaml").read_text().replace("127.0.0.1:18201", f"127.0.0.1:{upstream_port}")
    )
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(config)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    command = [
        LITELLM / "bin" / "litellm",
        "--config",
        handle.name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    litellm = subprocess.Popen(
        [*command, "--num_workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health/liveliness", timeout=300)
        return measure(
            tool, upstream_port, f"http://127.0.0.1:{port}", litellm.pid, None, "sk-anchor-local-only"
        )
    finally:
        litellm.terminate()
        litellm.wait(timeout=30)
        Path(handle.name).unlink()


def record_overhead(sides: dict) -> None:
    """The side-by-side figures: proxy_overhead.json and rows of perf/RESULTS.md."""
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    atomic_write_text(OVERHEAD_JSON, json.dumps({"date": date, "sides": sides}, indent=1) + "\n")
    for side, figures in sides.items():
        keys = ("c1_first_chunk_ms", "c1_whole_stream_ms", "c32_first_chunk_ms", "c32_whole_stream_ms")
        cells = [f"{figures[key]:+.1f} ms" for key in keys]
        cpu = figures["c1_proxy_cpu_ms"]
        add_table_row(OVERHEAD_HEADER, f"| {date} | {side} | {' | '.join(cells)} | {cpu or '–'} ms |")


async def flood(client: httpx.AsyncClient, url: str, body: bytes) -> int:
    """One request with an already encoded (huge) body, read to the end; its status."""
    headers = {"content-type": "application/json"}
    async with client.stream("POST", f"{url}/chat/completions", content=body, headers=headers) as response:
        async for _ in response.aiter_bytes():
            pass
        return response.status_code


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
    parser.add_argument("--flood", help=argparse.SUPPRESS)
    parser.add_argument("--flood-requests", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--flood-mb", type=float, default=3.9, help=argparse.SUPPRESS)
    parser.add_argument("--load-requests", type=int, default=1000)
    parser.add_argument("--large", action="store_true", help="lore from a 10,000-chunk world (+6 minutes)")
    parser.add_argument("--overhead", action="store_true", help="side by side with the shared tool")
    parser.add_argument("--litellm", action="store_true", help="with --overhead: LiteLLM's row too")
    parser.add_argument("--tool", type=Path, default=TOOL, help="the shared proxy_overhead.py")
    parser.add_argument("--abuse-only", action="store_true", help="only the abuse run, printed, not recorded")
    args = parser.parse_args()
    if args.serve_engine:
        return serve_engine(args.serve_engine, args.pace)
    if args.flood:
        return print(json.dumps(asyncio.run(send_flood(args.flood, args.flood_requests, args.flood_mb))))
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
        if args.overhead:
            if not args.tool.exists():
                raise SystemExit(f"{args.tool} not found: give the shared proxy_overhead.py with --tool")
            return record_overhead(overhead(args.tool, workspace, args.litellm))
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
            asyncio.run(streams(proxy_url, True, 5, 1))  # warm up
            if args.abuse_only:
                return print(json.dumps(asyncio.run(abuse_run(proxy_url, engine_url, proxy.pid)), indent=1))
            for concurrency, requests in ((1, 50), (32, 320)):
                for name, url, lore in (
                    ("direct", engine_url, None),
                    ("proxy_lore_off", proxy_url, False),
                    ("proxy_lore_on", proxy_url, True),
                ):
                    key = f"c{concurrency}_{name}"
                    results[key] = figures(asyncio.run(streams(url, lore, requests, concurrency)))
                    print(key, json.dumps(results[key]), flush=True)
            stats_before = httpx.get(f"http://127.0.0.1:{proxy_port}/stats").json()["history"]["rows"]
            load = figures(asyncio.run(streams(proxy_url, True, args.load_requests, 32)))
            time.sleep(0.5)
            rows = (
                sqlite3.connect(workspace / ".scifi-llm" / "history.db")
                .execute("SELECT COUNT(*) FROM requests")
                .fetchone()[0]
            )
            load["history_rows_added"] = rows - stats_before
            results["load"] = load
            print("load", json.dumps(load), flush=True)
            results["abuse"] = asyncio.run(abuse_run(proxy_url, engine_url, proxy.pid))
            print("abuse", json.dumps(results["abuse"]), flush=True)
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
    abuse = results["abuse"]
    parts.append(
        f"abuse ({abuse['rounds']} rounds of 30 x {abuse['huge_mb']} MB during 200 normal @8): "
        f"{abuse['normal_without_lore']} normal without lore, TTFT p99 x{abuse['ttft_p99_ratio']} of alone "
        f"(x{abuse['ttft_p99_ratio_flood_around_proxy']} with the flood sent around the proxy), "
        f"proxy RSS +{abuse['proxy_rss_growth_mb']:.0f} MB"
    )
    command = "python perf/proxy_bench.py" + (" --large" if results["lore_chunks"] > 1000 else "")
    parts.insert(0, f"{results['lore_chunks']} lore chunks")
    line = f"| {results['date'][:10]} | `{command}` | {'; '.join(parts)} |"
    add_table_row("| date | command | proxy adds (p50/p99 over direct) |", line)


if __name__ == "__main__":
    main()
