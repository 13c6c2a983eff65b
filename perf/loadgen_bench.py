"""Is the load generator the bottleneck? What it adds to measured inter-token latency at 32 streams.

The upstream is the synthetic engine of proxy_bench.py (its own process) streaming 100 chunks, once as
fast as it can (chunks then arrive in bursts: this shows whether the client keeps up) and once at a 2 ms
pace (each chunk on its own: this shows the latency the client adds). The baseline in the same run is
the smallest client that can time chunks: raw httpx, a substring test per line, no JSON parsing. Both
run at concurrency 1 and 32; the difference between their median inter-chunk gaps is what our load
generator (stream_chat, one JSON parse per event, the bookkeeping) adds. Goal: under 1 ms at p50 with
32 concurrent streams.

    python perf/loadgen_bench.py            # about a minute

Writes perf/results/loadgen_bench.json and a line in perf/RESULTS.md.
"""

import asyncio
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from proxy_bench import free_port, wait_healthy
from proxy_bench import run_load as raw_load
from record import add_table_row
from scifi_llm.bench import Load, run_load, summarize
from scifi_llm.fsutil import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "loadgen_bench.json"
REQUESTS = 320


def measure(url: str, concurrency: int, pace_ms: float) -> dict:
    """Median and p99 inter-chunk gap (ms) and chunks/s, for the baseline client and for ours."""
    raw = asyncio.run(raw_load(url, None, REQUESTS, concurrency))
    raw_gaps = [gap * 1000 for result in raw for gap in result["gaps"]]
    load = Load(requests=REQUESTS, concurrency=concurrency, warmup=2)
    body = {"model": "synthetic", "messages": [{"role": "user", "content": "Go."}]}
    results, duration = asyncio.run(run_load(url, [body], load))
    ours = summarize(results, duration, load)
    return {
        "pace_ms": pace_ms,
        "concurrency": concurrency,
        "baseline_p50_itl_ms": round(statistics.median(raw_gaps), 4),
        "ours_p50_itl_ms": ours["median_itl_ms"],
        "added_p50_itl_ms": round(ours["median_itl_ms"] - statistics.median(raw_gaps), 4),
        "ours_p99_itl_ms": ours["p99_itl_ms"],
        "ours_failed": ours["failed"],
        "ours_output_throughput": ours["output_throughput"],
        "baseline_incomplete": sum(not result["complete"] for result in raw),
    }


def main() -> None:
    rows = []
    for pace_ms in (0.0, 2.0):
        port = free_port()
        command = [sys.executable, str(ROOT / "perf" / "proxy_bench.py"), "--serve-engine", str(port)]
        engine = subprocess.Popen([*command, "--pace", str(pace_ms / 1000)])
        try:
            url = f"http://127.0.0.1:{port}/v1"
            wait_healthy(f"{url}/models")
            rows += [measure(url, concurrency, pace_ms) for concurrency in (1, 32)]
        finally:
            engine.terminate()
            engine.wait(timeout=30)
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "requests": REQUESTS, "rows": rows}
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    summary = "; ".join(
        f"pace {row['pace_ms']} ms c{row['concurrency']}: p50 ITL {row['ours_p50_itl_ms']} ms vs baseline "
        f"{row['baseline_p50_itl_ms']} ms (+{row['added_p50_itl_ms']} ms), {row['ours_failed']} failed"
        for row in rows
    )
    add_table_row(
        "| date | command | load generator |",
        f"| {results['date'][:10]} | `python perf/loadgen_bench.py` | {summary} |",
    )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
