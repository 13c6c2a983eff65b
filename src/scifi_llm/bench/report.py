"""Where benchmark results go: `results/<time>/`, one JSON per benchmark plus plots, with the run's
environment (model, engine, GPU, package versions) recorded so runs can be compared over time."""

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_dir, atomic_write_text

PACKAGES = ("scifi-llm", "torch", "transformers", "vllm", "lancedb", "sentence-transformers")


def run_folder_name(results_dir: Path) -> Path:
    """A `results/<time>/` path nothing uses yet (a suffix keeps two runs in the same second apart)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder, suffix = results_dir / stamp, 1
    while folder.exists():
        suffix += 1
        folder = results_dir / f"{stamp}-{suffix}"
    return folder


def environment(endpoint: dict, settings: dict) -> dict:
    """What the numbers depend on: the endpoint's model and engine, the settings, the GPU, versions."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "endpoint": endpoint,
        "settings": settings,
        "gpu": _gpu(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def save_result(results_dir: Path, name: str, result: dict, settings: dict) -> Path:
    """One benchmark's run, in a new `results/<time>/` folder of the one layout (`save_run`)."""
    final = run_folder_name(results_dir)
    with atomic_dir(final) as folder:
        save_run(folder, {name: result}, environment(result.get("endpoint", {}), settings))
    return final


def save_run(folder: Path, results: dict[str, dict], environment_record: dict) -> None:
    """The one layout of a benchmark run, of one benchmark or of `bench all`: `<name>.json` for each,
    `environment.json`, the plots, and `summary.md`."""
    from scifi_llm.bench import context, throughput

    for name, result in results.items():
        write_result(folder, name, result)
    write_result(folder, "environment", environment_record)
    if "sweep" in results.get("throughput", {}):
        throughput.plot(results["throughput"], folder / "throughput.png")
    if results.get("context", {}).get("rows"):
        context.plot(results["context"], folder / "context.png")
    atomic_write_text(folder / "summary.md", summary_markdown(results, environment_record))


def write_result(folder: Path, name: str, result: dict) -> Path:
    """`<folder>/<name>.json`, written atomically."""
    path = folder / f"{name}.json"
    atomic_write_text(
        path, json.dumps(result, indent=1, ensure_ascii=False, default=str, allow_nan=False) + "\n"
    )
    return path


def _gpu() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# (label, benchmark, how to read the number from its result, which direction is better)
HEADLINES = (
    ("single-stream decode tok/s", "throughput", lambda r: r["single_stream_decode_tok_s"], "higher"),
    (
        "peak output tok/s (sweep)",
        "throughput",
        lambda r: max(row["output_throughput"] for row in r["sweep"]),
        "higher",
    ),
    ("TTFT at 1 stream, ms", "throughput", lambda r: r["sweep"][0]["median_ttft_ms"], "lower"),
    ("TTFT at the longest context, ms", "context", lambda r: r["rows"][-1]["median_ttft_ms"], "lower"),
    ("decode tok/s at the longest context", "context", lambda r: r["rows"][-1]["decode_tok_s"], "higher"),
    ("creative score /100 (judge)", "creative", lambda r: r["judge"]["score"], "higher"),
    ("completion rate", "creative", lambda r: r["judge_free"]["completion_rate"], "higher"),
    ("distinct-2", "creative", lambda r: r["judge_free"]["distinct_2"], "higher"),
    ("4-gram repetition", "creative", lambda r: r["judge_free"]["repetition_4gram"], "lower"),
    ("facts kept over a long story", "coherence", lambda r: r["facts_kept_share"], "higher"),
    ("contradictions of the sheet", "coherence", lambda r: r["contradictions"]["count"], "lower"),
    ("retrieval recall@5", "retrieval", lambda r: r["recall"]["5"], "higher"),
    ("retrieval MRR", "retrieval", lambda r: r["mrr"], "higher"),
    ("retrieval ms in the proxy", "pipeline", lambda r: r["median_retrieval_ms"], "lower"),
    ("TTFT through the proxy, ms", "pipeline", lambda r: r["median_ttft_proxy_ms"], "lower"),
    ("gold source injected", "pipeline", lambda r: r["gold_source_injected"], "higher"),
    (
        "prompt tokens per request, lore included",
        "pipeline",
        lambda r: r.get("median_prompt_tokens"),
        "lower",
    ),
    (
        "tuned: Burrows' Delta to you",
        "system",
        lambda r: r["models"]["tuned"]["voice"]["burrows_delta"],
        "lower",
    ),
    ("tuned: lore facts right", "system", lambda r: r["models"]["tuned"]["lore_facts_right"], "higher"),
)


def load_run(folder: Path) -> dict[str, dict]:
    """Every benchmark result in a run folder, by benchmark name."""
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not paths:
        raise UserError(f"{folder} is not a benchmark run folder (results/<time>/ with JSON results)")
    results = {}
    for path in paths:
        try:
            results[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not a readable result ({exc})") from exc
    return results


def headlines(results: dict[str, dict]) -> list[tuple[str, float | None, str]]:
    """(label, value, better direction) for every headline number the run has."""
    rows = []
    for label, bench, read, better in HEADLINES:
        if bench not in results or {"error", "skipped"} & set(results[bench]):
            continue
        try:
            value = read(results[bench])
        except (KeyError, IndexError, TypeError, ValueError):
            value = None
        rows.append((label, value, better))
    return rows


def summary_markdown(results: dict[str, dict], environment_record: dict) -> str:
    """summary.md: the headline numbers, what failed, and what the run ran on."""
    endpoint = environment_record["endpoint"]
    lines = [
        "# Benchmark run",
        "",
        f"Endpoint {endpoint.get('model')} ({endpoint.get('owned_by')}), "
        f"GPU {environment_record['gpu'] or 'none'}, created {environment_record['created']}.",
        "",
        "| measure | value | better |",
        "|---|---|---|",
        *(f"| {label} | {_shown(value)} | {better} |" for label, value, better in headlines(results)),
    ]
    failed = {name: result["error"] for name, result in results.items() if "error" in result}
    lines += ["", *(f"- {name} failed: {error}" for name, error in failed.items())] if failed else []
    return "\n".join(lines) + "\n"


def compare_runs(first: dict[str, dict], second: dict[str, dict]) -> list[dict]:
    """Each headline number in both runs, the change, and whether the second run is better."""
    before = {label: value for label, value, _ in headlines(first)}
    later = {label: value for label, value, _ in headlines(second)}
    rows = []
    for label, _bench, _read, better in HEADLINES:
        if label not in before and label not in later:
            continue
        previous, after = before.get(label), later.get(label)
        if previous is None or after is None:
            verdict = "n/a"
        elif after == previous:
            verdict = "same"
        else:
            verdict = "better" if (after > previous) == (better == "higher") else "worse"
        rows.append({"measure": label, "a": previous, "b": after, "better_is": better, "verdict": verdict})
    return rows


def _shown(value) -> str:
    return "n/a" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
