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
from scifi_llm.bench.report import environment, run_folder_name, save_run
from scifi_llm.config import Workspace
from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_dir
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
    """Run the suite; returns the run folder. It is built as a hidden `.partial` folder and renamed when
    complete, so an interrupted run never looks like a finished one."""
    final = run_folder_name(workspace.root / "results")
    with atomic_dir(final) as folder:
        _run_into(folder, workspace, options, count_tokens, say or (lambda _: None))
    return final


def _run_into(folder: Path, workspace: Workspace, options: SuiteOptions, count_tokens, say: Progress) -> None:
    """Each benchmark's result (or its failure) into `folder`, then the plots, environment and summary."""
    results: dict[str, dict] = {}
    for name, run in _benchmarks(workspace, options, count_tokens).items():
        say(name)
        try:
            results[name] = run()
        except UserError as exc:
            results[name] = {"error": str(exc)}
    endpoint = asyncio.run(throughput.endpoint_info(options.base_url))
    save_run(
        folder,
        results,
        environment(endpoint, asdict(options) | {"questions_file": str(options.questions_file)}),
    )


@dataclass(frozen=True)
class _Sizes:
    """How much each benchmark does: the real run, or seconds for a pipeline check."""

    input_tokens: int = 256
    output_tokens: int = 128
    levels: tuple[int, ...] = throughput.DEFAULT_LEVELS
    requests_per_level: int = 2
    context_lengths: tuple[int, ...] = context.DEFAULT_LENGTHS
    context_output: int = 64
    creative_prompts: int | None = None
    creative_tokens: int = 512
    judge_tokens: int = 400  # a rubric verdict
    story_tokens: int = 4096
    story_chunk: int = 512
    scan_tokens: int = 800  # the judge's list of contradictions
    pipeline_questions: int = 10


QUICK = _Sizes(
    input_tokens=32,
    output_tokens=16,
    levels=(1, 2),
    requests_per_level=1,
    context_lengths=(128, 256),
    context_output=8,
    creative_prompts=3,
    creative_tokens=32,
    judge_tokens=160,
    story_tokens=256,
    story_chunk=64,
    scan_tokens=128,
    pipeline_questions=2,
)


def _benchmarks(workspace: Workspace, options: SuiteOptions, count_tokens) -> dict[str, Callable[[], dict]]:
    url, judge = options.base_url, options.judge_url
    n = QUICK if options.quick else _Sizes()
    runs: dict[str, Callable[[], dict]] = {
        "throughput": lambda: throughput.throughput_sweep(
            url, n.input_tokens, n.output_tokens, n.levels, n.requests_per_level, count_tokens
        ),
        "context": lambda: context.context_sweep(
            url, n.context_lengths, options.max_model_len, n.context_output, count_tokens=count_tokens
        ),
        "creative": lambda: creative.creative_scores(
            url, judge, n.creative_prompts, n.creative_tokens, judge_tokens=n.judge_tokens
        ),
        "coherence": lambda: coherence.coherence_scores(
            url, judge, n.story_tokens, n.story_chunk, judge_tokens=n.scan_tokens
        ),
    }
    if options.questions_file is None:
        runs["retrieval"] = runs["pipeline"] = _skipped("no question file given (--questions)")
        return runs
    runs["retrieval"] = lambda: retrieval.retrieval_scores(workspace, options.questions_file)
    proxy = options.proxy_url
    if proxy is None or not _answers(proxy):
        runs["pipeline"] = _skipped(f"no lore proxy answering at {proxy} (start `scifi-llm proxy`)")
    else:
        runs["pipeline"] = lambda: pipeline.pipeline_scores(
            proxy, url, options.questions_file, n.pipeline_questions
        )
    return runs


def _skipped(reason: str) -> Callable[[], dict]:
    return lambda: {"skipped": reason}


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{api_base(url).removesuffix('/v1')}/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False
