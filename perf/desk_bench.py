"""What the writing desk adds, measured in headless Chromium against the proxy alone, in the same run.

A synthetic engine (its own process, 100 chunks 2 ms apart) sits behind the lore proxy (its own process,
lore on: minilm, the example world), which serves the desk. Three measures, each with its goal:
- Continue: from the click to the first generated text on screen, against the proxy's own time to first
  chunk for the same request sent by a plain client (median of 20 each; goal: at most +30 ms);
- page load: from navigation to the drafts listed (goal: 300 ms);
- typing in a 100,000-word draft: the browser's Event Timing for each key press (from the key to the
  next paint after the page has handled it); goal: p95 within 16 ms, so fewer than 5% of key presses
  may take longer.

    python perf/desk_bench.py          # about 2 minutes; needs Debian's chromium (apt-get install chromium)

Writes perf/results/desk_bench.json and a line in perf/RESULTS.md.
"""

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import sync_playwright

from proxy_bench import free_port, start_proxy, wait_healthy
from record import add_table_row
from scifi_llm.bench import Load, run_load
from scifi_llm.fsutil import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "perf" / "results" / "desk_bench.json"
CHROMIUM = "/usr/bin/chromium"
DRAFT = "Ledger flexed her forearm in the cold hold of the Lark and felt the hidden thing shift."
RUNS = 20
HEADER = (
    "| date | command | Continue: first text on screen vs the proxy's TTFT | page load "
    "| typing in 100,000 words |"
)
_FIRST_TEXT = """() => new Promise((resolve) => {
    const generated = document.getElementById("generated");
    const started = performance.now();
    new MutationObserver((_, observer) => {
        if (generated.textContent) { observer.disconnect(); resolve(performance.now() - started); }
    }).observe(generated, {childList: true, characterData: true, subtree: true});
    document.getElementById("continue").click();
})"""
_SLOW_KEYS = """() => {
    window.slowKeys = [];
    if (window.keyObserver) window.keyObserver.disconnect();
    window.keyObserver = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
            if (entry.name === "keydown") window.slowKeys.push(entry.duration);
        }
    });
    window.keyObserver.observe({type: "event", durationThreshold: 16, buffered: false});
}"""


def proxy_ttft_ms(base: str) -> float:
    """The proxy's median time to first chunk for the desk's request, sent by the one load generator."""
    body = {"messages": [{"role": "system", "content": "Continue."}, {"role": "user", "content": DRAFT}]}
    results, _ = asyncio.run(run_load(f"{base}/v1", [body], Load(requests=RUNS, concurrency=1, warmup=2)))
    return statistics.median(result.ttft_s * 1000 for result in results if result.ok)


def desk_figures(base: str, workspace: Path) -> dict:
    """Click-to-text, page load and typing, measured in the page."""
    (workspace / "writing" / "scene.md").write_text(DRAFT, encoding="utf-8")
    paragraph = "The corridor hummed, and the lamps guttered as the ship turned toward the gate. " * 10
    paragraphs = -(-100_000 // len(paragraph.split()))  # 100,000 words, rounded up to whole paragraphs
    (workspace / "writing" / "long.md").write_text("\n\n".join([paragraph] * paragraphs), encoding="utf-8")
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*flags, "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        loads = []
        for _ in range(5):
            page.goto(f"{base}/desk")
            page.wait_for_selector("#drafts li")
            loads.append(page.evaluate("performance.now()"))
        page.get_by_role("button", name="scene.md", exact=True).click()
        page.wait_for_function("document.getElementById('draft-name').textContent === 'scene.md'")
        page.locator("#max-tokens").fill("100")
        page.locator("#draft").press("Control+End")
        clicks = []
        for _ in range(RUNS + 2):
            clicks.append(page.evaluate(_FIRST_TEXT))
            page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
            page.get_by_role("button", name="Discard").click()
        typing = {name: _typing(page, name) for name in ("scene.md", "long.md")}
        browser.close()
    return {
        "click_to_text_ms": round(statistics.median(clicks[2:]), 1),
        "page_load_ms": round(statistics.median(loads), 1),
        "typing_long_draft": typing["long.md"],
        "typing_short_draft": typing["scene.md"],  # the baseline: the same typing in a one-line draft
    }


def _typing(page, name: str) -> dict:
    """Type into a draft; how many key presses took over 16 ms to the next paint, and the slowest."""
    page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_function(f"document.getElementById('draft-name').textContent === {name!r}")
    words = int(page.locator("#word-count").text_content().split()[0])
    page.locator("#draft").press("Control+End")
    page.evaluate(_SLOW_KEYS)
    typed = "the hull sang " * 15
    page.locator("#draft").press_sequentially(typed, delay=30)
    page.wait_for_timeout(500)
    slow = page.evaluate("window.slowKeys")
    return {
        "words": words,
        "key_presses": len(typed),
        "over_16ms": len(slow),
        "slowest_ms": max(slow, default=None),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch) / "novel"

        def run(*arguments: str) -> None:
            subprocess.run([sys.executable, "-m", "scifi_llm", *arguments], check=True, capture_output=True)

        run("init", str(workspace), "--example")
        run("--workspace", str(workspace), "lore", "ingest", "--embedding-model", "minilm")
        engine_port, proxy_port = free_port(), free_port()
        engine = subprocess.Popen(
            [sys.executable, str(ROOT / "perf" / "proxy_bench.py"), "--serve-engine", str(engine_port)]
        )
        proxy = start_proxy(workspace, f"http://127.0.0.1:{engine_port}/v1", proxy_port)
        base = f"http://127.0.0.1:{proxy_port}"
        try:
            wait_healthy(f"http://127.0.0.1:{engine_port}/v1/models")
            wait_healthy(f"{base}/health")
            results = {"proxy_ttft_ms": round(proxy_ttft_ms(base), 1), **desk_figures(base, workspace)}
        finally:
            for child in (proxy, engine):
                child.terminate()
                child.wait(timeout=30)
    results["click_added_ms"] = round(results["click_to_text_ms"] - results["proxy_ttft_ms"], 1)
    results["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(results, indent=1))
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_JSON, json.dumps(results, indent=1) + "\n")
    add_table_row(
        HEADER,
        f"| {results['date'][:10]} | `python perf/desk_bench.py` | {results['click_to_text_ms']} ms vs "
        f"{results['proxy_ttft_ms']} ms (+{results['click_added_ms']} ms; goal +30) | "
        f"{results['page_load_ms']} ms (goal 300) | {_typed(results['typing_long_draft'])}; in a one-line "
        f"draft {_typed(results['typing_short_draft'])} (goal: p95 within 16 ms) |",
    )


def _typed(figures: dict) -> str:
    return (
        f"{figures['over_16ms']} of {figures['key_presses']} key presses over 16 ms in {figures['words']:,} "
        f"words, slowest {figures['slowest_ms']} ms"
    )


if __name__ == "__main__":
    main()
