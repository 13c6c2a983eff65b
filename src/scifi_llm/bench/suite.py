"""`bench all`: every benchmark in one run folder, `results/<time>/`, with summary.md and the plots.

A benchmark that fails is recorded with its reason and the run goes on; retrieval and pipeline need a
question file with gold facts, and pipeline a running proxy, so without them they are listed as skipped.
`quick` shrinks every benchmark to seconds (the demo's pipeline check on a tiny model).
"""

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from scifi_llm.bench import coherence, context, creative, pipeline, retrieval, throughput
from scifi_llm.bench.report import environment, new_run_folder, summary_markdown, write_result
from scifi_llm.config import Workspace
from scifi_llm.errors import UserError
from scifi_llm.openai_client import api_base

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SuiteOptions:
    """What `bench all` was asked for."""

    base_url: str
    judge_url: str | None = None
    questions_file: Path | None = None
    proxy_url: str | None = None
    max_model_len: int | None = None
    quick: bool = False


def run_all(
    workspace: Workspace, options: SuiteOptions, count_tokens=None, say: Progress | None = None
) -> Path:
    """Run the suite; returns the run folder."""
    say = say or (lambda _: None)
    folder = new_run_folder(workspace.root / "results")
    results: dict[str, dict] = {}
    for name, run in _benchmarks(workspace, options, count_tokens).items():
        say(name)
        try:
            results[name] = run()
        except UserError as exc:
            results[name] = {"error": str(exc)}
        write_result(folder, name, results[name])
    _plots(results, folder)
    endpoint = asyncio.run(throughput.endpoint_info(options.base_url))
    record = environment(endpoint, asdict(options) | {"questions_file": str(options.questions_file)})
    write_result(folder, "environment", record)
    (folder / "summary.md").write_text(summary_markdown(results, record), encoding="utf-8")
    return folder


def _benchmarks(workspace: Workspace, options: SuiteOptions, count_tokens) -> dict[str, Callable[[], dict]]:
    url, judge, quick = options.base_url, options.judge_url, options.quick
    runs: dict[str, Callable[[], dict]] = {
        "throughput": lambda: throughput.throughput(
            url, *((32, 16, (1, 2), 1) if quick else (256, 128, throughput.DEFAULT_LEVELS, 2)), count_tokens
        ),
        "context": lambda: context.context_sweep(
            url,
            (128, 256) if quick else context.DEFAULT_LENGTHS,
            options.max_model_len,
            8 if quick else 64,
            count_tokens=count_tokens,
        ),
        "creative": lambda: creative.creative(url, judge, 3 if quick else None, 32 if quick else 512),
        "coherence": lambda: coherence.coherence(url, judge, 256 if quick else 4096, 64 if quick else 512),
    }
    if options.questions_file is None:
        runs["retrieval"] = runs["pipeline"] = _skipped("no question file given (--questions)")
        return runs
    runs["retrieval"] = lambda: retrieval.retrieval(workspace, options.questions_file)
    proxy = options.proxy_url
    if proxy is None or not _answers(proxy):
        runs["pipeline"] = _skipped(f"no lore proxy answering at {proxy} (start `scifi-llm proxy`)")
    else:
        runs["pipeline"] = lambda: pipeline.pipeline(proxy, url, options.questions_file, 2 if quick else 10)
    return runs


def _skipped(reason: str) -> Callable[[], dict]:
    return lambda: {"skipped": reason}


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{api_base(url).removesuffix('/v1')}/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _plots(results: dict[str, dict], folder: Path) -> None:
    if "sweep" in results.get("throughput", {}):
        throughput.plot(results["throughput"], folder / "throughput.png")
    if results.get("context", {}).get("rows"):
        context.plot(results["context"], folder / "context.png")
