"""`scifi-llm bench ...`: measure the model server (or the proxy) with numbers you can compare."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, folding_table, print_json
from scifi_llm.errors import UserError

app = typer.Typer(help="Benchmarks against any OpenAI-compatible endpoint.", no_args_is_help=True)
JudgeOption = Annotated[
    str | None, typer.Option(help="OpenAI endpoint of the judge (default: the same server).")
]
NoJudgeOption = Annotated[bool, typer.Option(help="No judge: the judge-free measures only.")]
BaseUrlOption = Annotated[str | None, typer.Option(help="Endpoint (default: the workspace's engine).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _judge(judge_url: str | None, no_judge: bool, url: str) -> str | None:
    """The judge's endpoint: the one named, else the server under test, or none at all."""
    if no_judge and judge_url:
        raise UserError("--judge-url and --no-judge contradict each other: give one")
    return None if no_judge else judge_url or url


def _levels(text: str, option: str = "--levels") -> tuple[int, ...]:
    """Comma-separated positive integers."""
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise UserError(f"{option} {text!r}: write whole numbers separated by commas, e.g. 1,4,9,16") from exc
    if not levels or min(levels) < 1:
        raise UserError(f"{option} {text!r}: every value must be at least 1")
    return levels


def _token_counter(workspace, tokenizer: str | None):
    """Counts tokens with --tokenizer, else with the workspace model's tokenizer when it is on this machine,
    else None (prompt lengths are then approximate; answers are counted by the server's usage anyway)."""
    from scifi_llm.tokens import TokenCounter, load_tokenizer

    try:
        return TokenCounter(load_tokenizer(tokenizer or workspace.settings.model.name)).count_one
    except UserError:
        if tokenizer:
            raise
        return None


@app.command("throughput")
def throughput_command(
    ctx: typer.Context,
    base_url: BaseUrlOption = None,
    input_tokens: Annotated[int, typer.Option(min=1, help="Prompt length of every request.")] = 256,
    output_tokens: Annotated[int, typer.Option(min=2, help="Tokens asked of every request.")] = 128,
    levels: Annotated[str, typer.Option(help="Concurrency levels of the sweep.")] = "1,4,9,16",
    requests_per_level: Annotated[int, typer.Option(min=1, help="Requests per level, per slot.")] = 2,
    rate: Annotated[
        float | None, typer.Option(min=0.01, help="Also an open-loop run: Poisson arrivals, requests/s.")
    ] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Local tokenizer for exact prompt lengths (default: the model).")
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="Seconds, not minutes (tiny prompts, levels 1 and 2): a check on a CPU.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Single-stream decode speed (tokens/s) and a concurrency sweep: throughput against latency.

    Writes results/<time>/throughput.json (vLLM's field names: mean_ttft_ms, median_tpot_ms, p99_itl_ms,
    output_throughput, ...) and throughput.png.
    """
    from scifi_llm.bench import QUICK, save_result, throughput_sweep

    sweep_levels = _levels(levels)
    if quick:
        input_tokens, output_tokens, sweep_levels = (
            QUICK.input_tokens,
            QUICK.output_tokens,
            list(QUICK.levels),
        )
        requests_per_level = QUICK.requests_per_level
    workspace = ctx.obj.open_workspace()
    url = base_url or workspace.settings.proxy.upstream
    counter = _token_counter(workspace, tokenizer)
    with console.status("measuring", spinner="dots"):
        result = throughput_sweep(
            url, input_tokens, output_tokens, sweep_levels, requests_per_level, counter, rate
        )
    levels = ",".join(map(str, sweep_levels))
    settings = {"input_tokens": input_tokens, "output_tokens": output_tokens, "levels": levels, "url": url}
    folder = save_result(workspace.root / "results", "throughput", result, settings)
    result["folder"] = str(folder)
    if json_output:
        print_json(result)
        return
    console.print(f"single stream: {result['single_stream_decode_tok_s']} tokens/s decode")
    columns = {
        "in flight": "max_concurrency",
        "out tok/s": "output_throughput",
        "req/s": "request_throughput",
        "TTFT": "median_ttft_ms",
        "TPOT": "median_tpot_ms",
        "E2E": "median_e2el_ms",
        "failed": "failed",
    }
    table = folding_table(*columns, title="concurrency sweep (latencies: medians in ms)")
    for row in result["sweep"]:
        table.add_row(*(str(row[key]) for key in columns.values()))
    console.print(table)
    if result["open_loop"]:
        loop = result["open_loop"]
        console.print(
            f"open loop at {rate} requests/s: {loop['request_throughput']} served/s, "
            f"TTFT p50 {loop['median_ttft_ms']} ms, E2E p99 {loop['p99_e2el_ms']} ms, {loop['failed']} failed"
        )
    console.print(f"results: {escape(str(folder))}")


def _server_settings_sweep(
    workspace, settings: tuple[int, ...], targets, output_tokens: int, counter, json_output: bool
) -> None:
    """The context sweep once per server --max-model-len, the server started and stopped for each."""
    from scifi_llm.bench import context_sweep, save_result
    from scifi_llm.cli.serve import start_engine
    from scifi_llm.serving import ServeOptions, build_command, detect_gpus, process

    serve = workspace.settings.serve
    process.refuse_if_running(workspace.state_dir)
    runs = []
    for max_len in settings:
        options = ServeOptions(
            model=workspace.settings.model.name, engine=serve.engine, host=serve.host, port=serve.port,
            max_model_len=max_len, gpu_memory_utilization=serve.gpu_memory_utilization,
        )  # fmt: skip
        command = build_command(options, detect_gpus())
        start_engine(workspace, options, command)
        try:
            with console.status(f"measuring at --max-model-len {max_len}", spinner="dots"):
                runs.append(
                    {
                        "server_max_model_len": max_len,
                        **context_sweep(
                            command.base_url, targets, max_len, output_tokens, count_tokens=counter
                        ),
                    }
                )
        finally:
            process.stop(workspace.state_dir)
    result = {"server_settings": runs}
    folder = save_result(workspace.root / "results", "context", result, {"server_settings": list(settings)})
    if json_output:
        print_json(result | {"folder": str(folder)})
        return
    table = folding_table(
        "server max-model-len",
        "prompt tokens",
        "TTFT ms",
        "decode tok/s",
        "failed",
        title="context scaling by server setting (medians)",
    )
    for run in runs:
        for row in run["rows"]:
            table.add_row(
                str(run["server_max_model_len"]),
                *(str(row[key]) for key in ("prompt_tokens", "median_ttft_ms", "decode_tok_s", "failed")),
            )
    console.print(table)
    console.print(f"results: {escape(str(folder))}")


@app.command("context")
def context_command(
    ctx: typer.Context,
    base_url: BaseUrlOption = None,
    lengths: Annotated[
        str, typer.Option(help="Prompt lengths in tokens.")
    ] = "1024,2048,4096,8192,16384,32768,61440",
    max_model_len: Annotated[
        int | None, typer.Option(help="The model's maximum, when the server does not report it.")
    ] = None,
    output_tokens: Annotated[int, typer.Option(min=2, help="Tokens asked at each length.")] = 64,
    tokenizer: Annotated[str | None, typer.Option(help="Local tokenizer for exact prompt lengths.")] = None,
    server_settings: Annotated[
        str | None,
        typer.Option(
            "--server-settings",
            help="Start the model server (`[model]` of scifi-llm.toml, `[serve]` settings) at each of these "
            "--max-model-len values in turn, e.g. 32768,65536,100000, and sweep each: what a longer "
            "context costs on your card. Stops the server after each.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Time to first token and decode speed from short prompts up to the model's maximum context.

    Writes results/<time>/context.json and context.png. Lengths that do not fit are skipped and listed.
    """
    from scifi_llm.bench import context_sweep, save_result

    targets = _levels(lengths, "--lengths")
    workspace = ctx.obj.open_workspace()
    url = base_url or workspace.settings.proxy.upstream
    counter = _token_counter(workspace, tokenizer)
    if server_settings:
        _server_settings_sweep(
            workspace,
            _levels(server_settings, "--server-settings"),
            targets,
            output_tokens,
            counter,
            json_output,
        )
        return
    with console.status("measuring", spinner="dots"):
        result = context_sweep(url, targets, max_model_len, output_tokens, count_tokens=counter)
    settings = {"lengths": lengths, "output_tokens": output_tokens, "url": url}
    folder = save_result(workspace.root / "results", "context", result, settings)
    if json_output:
        print_json(result | {"folder": str(folder)})
        return
    table = folding_table(
        "prompt tokens", "TTFT ms", "decode tok/s", "failed", title="context scaling (medians)"
    )
    for row in result["rows"]:
        table.add_row(
            *(str(row[key]) for key in ("prompt_tokens", "median_ttft_ms", "decode_tok_s", "failed"))
        )
    console.print(table)
    if result["skipped_over_max"]:
        console.print(
            f"skipped (over the model's {result['max_model_len']} tokens): {result['skipped_over_max']}"
        )
    console.print(f"results: {escape(str(folder))}")


@app.command("creative")
def creative_command(
    ctx: typer.Context,
    base_url: BaseUrlOption = None,
    judge_url: JudgeOption = None,
    no_judge: NoJudgeOption = False,
    prompts: Annotated[int | None, typer.Option(min=1, help="Use only the first N prompts.")] = None,
    max_tokens: Annotated[int, typer.Option(min=16, help="Longest answer.")] = 512,
    json_output: JsonOption = False,
) -> None:
    """Writing quality on our science-fiction prompts: judge-free measures (completion rate, distinct-2,
    repetition, length) and a judge's 12-criterion rubric scored 0-100 with a 95% interval (the judge is
    the server itself unless --judge-url names another; --no-judge skips it).

    Writes results/<time>/creative.json.
    """
    from scifi_llm.bench import creative_scores, save_result

    workspace = ctx.obj.open_workspace()
    url = base_url or workspace.settings.proxy.upstream
    with console.status("writing and scoring", spinner="dots"):
        result = creative_scores(url, _judge(judge_url, no_judge, url), prompts, max_tokens)
    folder = save_result(
        workspace.root / "results",
        "creative",
        result,
        {"prompts": prompts, "max_tokens": max_tokens, "url": url},
    )
    if json_output:
        print_json(result | {"folder": str(folder)})
        return
    free = result["judge_free"]
    console.print(
        f"{free['answers']} answers: completion {free['completion_rate']}, distinct-2 {free['distinct_2']}, "
        f"4-gram repetition {free['repetition_4gram']}, {free['mean_words']} words on average"
    )
    judge = result["judge"]
    if judge is None:
        console.print(result["note"])
    else:
        console.print(
            f"judge: {judge['score']}/100 (95% interval {judge['ci95']}) over {judge['scored']} answers; "
            f"{judge['failures']} could not be scored"
        )
    console.print(f"results: {escape(str(folder))}")


@app.command("coherence")
def coherence_command(
    ctx: typer.Context,
    base_url: BaseUrlOption = None,
    judge_url: JudgeOption = None,
    no_judge: NoJudgeOption = False,
    target_tokens: Annotated[int, typer.Option(min=64, help="Length of the story to write.")] = 4096,
    chunk_tokens: Annotated[int, typer.Option(min=16, help="Tokens per continuation.")] = 512,
    json_output: JsonOption = False,
) -> None:
    """Character consistency over a long story: facts kept (probe questions answered from the whole
    story) and a judge's list of statements that contradict the character sheet (--no-judge skips it).

    Writes results/<time>/coherence.json.
    """
    from scifi_llm.bench import coherence_scores, save_result

    workspace = ctx.obj.open_workspace()
    url = base_url or workspace.settings.proxy.upstream
    with console.status("writing a long story", spinner="dots"):
        result = coherence_scores(url, _judge(judge_url, no_judge, url), target_tokens, chunk_tokens)
    folder = save_result(
        workspace.root / "results", "coherence", result, {"target_tokens": target_tokens, "url": url}
    )
    if json_output:
        print_json(result | {"folder": str(folder)})
        return
    r = result
    console.print(
        f"{r['story_tokens']} tokens in {r['continuations']} continuations ({r['stopped_because']}); "
        f"facts kept: {r['facts_kept']} of {r['facts']}"
    )
    contradictions = result["contradictions"]
    if contradictions is None:
        console.print(result["note"])
    elif not contradictions["scanned"]:
        console.print("the judge's answers could not be read: no contradiction count (a failure, not a zero)")
    else:
        console.print(f"contradictions of the sheet: {contradictions['count']}")
    console.print(f"results: {escape(str(folder))}")


@app.command("retrieval")
def retrieval_command(
    ctx: typer.Context,
    questions_file: Annotated[Path, typer.Argument(help="JSONL with `question`, `gold_phrases`, `kind`.")],
    top_k: Annotated[int | None, typer.Option("-k", "--top-k", min=1, help="Default: the setting.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Retrieval quality of the lore index (as `lore eval`): recall@k, MRR, mean distance, per kind.

    Writes results/<time>/retrieval.json.
    """
    from scifi_llm.bench import retrieval_scores, save_result

    workspace = ctx.obj.open_workspace()
    with console.status("evaluating", spinner="dots"):
        result = retrieval_scores(workspace, questions_file, top_k)
    folder = save_result(
        workspace.root / "results", "retrieval", result, {"questions": str(questions_file), "top_k": top_k}
    )
    if json_output:
        print_json(result | {"folder": str(folder)})
        return
    recall = ", ".join(f"recall@{k} {value:.3f}" for k, value in result["recall"].items())
    console.print(f"{result['questions']} questions: {recall}; MRR {result['mrr']:.3f}")
    console.print(f"results: {escape(str(folder))}")


@app.command("system")
def system_command(
    ctx: typer.Context,
    questions_file: Annotated[
        Path, typer.Argument(help="Lore questions with gold facts (lore eval's format).")
    ],
    tuned_model: Annotated[
        str, typer.Option(help="The tuned model's name (a merged model or a LoRA adapter).")
    ],
    base_model: Annotated[
        str | None, typer.Option(help="The base model's name (default: [model] name).")
    ] = None,
    proxy_url: Annotated[str | None, typer.Option(help="The lore proxy (default: the workspace's).")] = None,
    tuned_url: Annotated[str | None, typer.Option(help="Another proxy for the tuned model.")] = None,
    validation: Annotated[Path | None, typer.Option(help="Default: data/processed/validation.jsonl.")] = None,
    prompts: Annotated[int, typer.Option(min=1, help="Validation requests both models write to.")] = 5,
    questions: Annotated[int, typer.Option("-n", min=1, help="Lore questions both models answer.")] = 5,
    json_output: JsonOption = False,
) -> None:
    """Both at once, as the old plan wanted: the tuned and the base model, each behind the lore proxy, on the
    same prompts. How close each writes to your held-out prose (style distances, as tune compare) and how
    often each states the lore's facts (as bench pipeline). Writes results/<time>/system.json."""
    from scifi_llm.bench import save_result, system_scores

    workspace = ctx.obj.open_workspace()
    proxy = proxy_url or workspace.settings.proxy.base_url
    endpoints = {
        "base": (proxy, base_model or workspace.settings.model.name),
        "tuned": (tuned_url or proxy, tuned_model),
    }
    validation_file = validation or workspace.root / "data" / "processed" / "validation.jsonl"
    with console.status("both models writing and answering", spinner="dots"):
        result = system_scores(endpoints, validation_file, questions_file, prompts, questions)
    folder = save_result(workspace.root / "results", "system", result, {"endpoints": endpoints})
    if json_output:
        print_json(result | {"folder": str(folder)})
        return
    table = folding_table(
        "", "Burrows' Delta to you", "sentence lengths", "lore facts right", title="base vs tuned"
    )
    for name, row in result["models"].items():
        voice = row["voice"]
        table.add_row(f"{name} ({escape(row['model'])})", str(voice["burrows_delta"]),
                      str(voice["sentence_length_distance"]), str(row["lore_facts_right"]))  # fmt: skip
    console.print(table)
    console.print(f"results: {escape(str(folder))} (lower distances are closer to your prose)")


@app.command("pipeline")
def pipeline_command(
    ctx: typer.Context,
    questions_file: Annotated[Path, typer.Argument(help="Questions with gold facts (lore eval's format).")],
    proxy_url: Annotated[str | None, typer.Option(help="The lore proxy (default: the workspace's).")] = None,
    base_url: Annotated[str | None, typer.Option(help="The engine (default: the proxy's upstream).")] = None,
    questions: Annotated[int, typer.Option("-n", min=1, help="How many questions to send.")] = 5,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest answer.")] = 64,
    json_output: JsonOption = False,
) -> None:
    """End to end through the lore proxy: retrieval time, TTFT through the proxy and direct, the sources
    injected, and whether the answers state the gold facts. Writes results/<time>/pipeline.json."""
    from scifi_llm.bench import pipeline_scores, save_result

    workspace = ctx.obj.open_workspace()
    section = workspace.settings.proxy
    proxy = proxy_url or section.base_url
    engine = base_url or section.upstream
    with console.status("asking through the proxy", spinner="dots"):
        result = pipeline_scores(proxy, engine, questions_file, questions, max_tokens)
    folder = save_result(
        workspace.root / "results",
        "pipeline",
        result,
        {"proxy": proxy, "engine": engine, "questions": questions},
    )
    if json_output:
        print_json(result | {"folder": str(folder)})
        return
    r = result
    console.print(
        f"{r['questions']} questions ({r['failed']} failed): retrieval {r['median_retrieval_ms']} ms, "
        f"TTFT {r['median_ttft_proxy_ms']} ms through the proxy vs {r['median_ttft_direct_ms']} ms direct; "
        f"gold source injected {r['gold_source_injected']}, "
        f"answers with a gold fact {r['answers_using_gold_facts']}; tokens per request (median): "
        f"{r['median_prompt_tokens']} prompt (lore included; {r['median_prompt_tokens_direct']} without) + "
        f"{r['median_completion_tokens']} completion"
    )
    console.print(f"results: {escape(str(folder))}")


@app.command("all")
def all_command(
    ctx: typer.Context,
    base_url: BaseUrlOption = None,
    judge_url: JudgeOption = None,
    no_judge: NoJudgeOption = False,
    questions_file: Annotated[
        Path | None, typer.Option("--questions", help="Questions with gold facts (retrieval, pipeline).")
    ] = None,
    proxy_url: Annotated[str | None, typer.Option(help="The lore proxy (default: the workspace's).")] = None,
    max_model_len: Annotated[int | None, typer.Option(help="For servers that do not report it.")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Local tokenizer for exact prompt lengths.")] = None,
    quick: Annotated[
        bool, typer.Option(help="Seconds per benchmark: a pipeline check, not numbers.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the run folder and summary as JSON.")
    ] = False,
) -> None:
    """Every benchmark into one results/<time>/ folder: one JSON each, summary.md, plots, and the
    environment (model, engine, GPU, versions). Compare two runs with `bench compare A B`."""
    from scifi_llm.bench import SuiteOptions, headlines, load_run, run_all

    workspace = ctx.obj.open_workspace()
    section = workspace.settings.proxy
    url = base_url or section.upstream
    options = SuiteOptions(
        base_url=url,
        judge_url=_judge(judge_url, no_judge, url),
        questions_file=questions_file.resolve() if questions_file else None,
        proxy_url=proxy_url or section.base_url,
        max_model_len=max_model_len,
        quick=quick,
    )
    counter = _token_counter(workspace, tokenizer)
    with console.status("benchmarking", spinner="dots") as status:
        folder = run_all(workspace, options, counter, lambda name: status.update(f"bench {name}"))
    results = load_run(folder)
    rows = headlines(results)
    if json_output:
        print_json(
            {
                "folder": str(folder),
                "headlines": [{"measure": m, "value": v, "better": b} for m, v, b in rows],
            }
        )
        return
    table = folding_table("measure", "value", "better", title=f"bench all · {folder.name}")
    for label, value, better in rows:
        table.add_row(label, "n/a" if value is None else str(value), better)
    console.print(table)
    for name, result in results.items():
        for key in ("error", "skipped"):
            if key in result:
                console.print(f"{name} {'failed' if key == 'error' else 'skipped'}: {escape(result[key])}")
    console.print(f"results: {escape(str(folder))} (summary.md)")


@app.command("compare")
def compare_command(
    run_a: Annotated[Path, typer.Argument(help="The earlier run folder, results/<time>/.")],
    run_b: Annotated[Path, typer.Argument(help="The later run folder.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """What changed between two benchmark runs, each number marked better or worse."""
    from scifi_llm.bench import compare_runs, load_run

    rows = compare_runs(load_run(run_a), load_run(run_b))
    if json_output:
        print_json({"a": str(run_a), "b": str(run_b), "rows": rows})
        return
    marks = {"better": "[green]better[/]", "worse": "[red]worse[/]", "same": "same", "n/a": "n/a"}
    table = folding_table("measure", run_a.name, run_b.name, "better is", "", title="bench compare")
    for row in rows:
        shown = ["n/a" if row[key] is None else str(row[key]) for key in ("a", "b")]
        table.add_row(row["measure"], *shown, row["better_is"], marks[row["verdict"]])
    console.print(table)
