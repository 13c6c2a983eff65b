"""`scifi-llm tune ...`: training data from the writer's prose, and the adapter trained on it."""

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, err_console, folding_table, print_json, progress_bar, warn
from scifi_llm.errors import UserError
from scifi_llm.tune import accelerate_command, axolotl_command, load_train_config, shell_line

if TYPE_CHECKING:
    from scifi_llm.tune import PrepareReport

app = typer.Typer(help="Teach the model your voice: training data from your own prose.", no_args_is_help=True)


@app.command("prepare")
def prepare_command(
    ctx: typer.Context,
    input_dir: Annotated[
        Path | None, typer.Option("--input", help="Prose folder (default: writing/).")
    ] = None,
    output_dir: Annotated[Path | None, typer.Option("--output", help="Default: data/processed/.")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer (default: the model in settings).")] = None,
    min_tokens: Annotated[int | None, typer.Option(min=1, help="Fewest prose tokens per example.")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="Most prose tokens per example.")] = None,
    sequence_len: Annotated[int | None, typer.Option(min=64, help="Longest rendered example.")] = None,
    val_fraction: Annotated[
        float | None, typer.Option(min=0.0, max=0.9, help="Share for validation.")
    ] = None,
    keep_short: Annotated[bool, typer.Option(help="Keep passages under --min-tokens (a tiny file).")] = False,
    prompts: Annotated[
        str, typer.Option(help="heuristic (offline), or llm: a model at --base-url writes each request.")
    ] = "heuristic",
    base_url: Annotated[str | None, typer.Option(help="OpenAI URL of the model for --prompts llm.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Turn the writing folder into training.jsonl and validation.jsonl (system, user, assistant).

    Reads .txt, .md and .docx; removes front matter, comments, [[notes]] and TODO/FIXME lines; cuts
    the prose into passages within the token bounds of the model's tokenizer; describes your style in
    the system prompt; writes a request for each passage; splits 90/10 by scene, the same way every run.
    """
    from scifi_llm.textio import DEFAULT_NOTE_PATTERNS
    from scifi_llm.tune import PrepareOptions, prepare_data

    if prompts not in ("heuristic", "llm"):
        raise UserError(f"--prompts {prompts!r}: choose heuristic or llm")
    workspace = ctx.obj.open_workspace()
    tune = workspace.settings.tune
    options = PrepareOptions(
        input_dir=(input_dir or workspace.writing_dir).resolve(),
        output_dir=(output_dir or workspace.root / "data" / "processed").resolve(),
        tokenizer=tokenizer or workspace.settings.model.name,
        min_tokens=min_tokens or tune.min_tokens,
        max_tokens=max_tokens or tune.max_tokens,
        sequence_len=sequence_len or tune.sequence_len,
        val_fraction=tune.val_fraction if val_fraction is None else val_fraction,
        keep_short=keep_short,
        prompts=prompts,
        base_url=base_url,
        note_patterns=(*DEFAULT_NOTE_PATTERNS, *tune.note_patterns),
        outside_folders=workspace.outside_folders,
    )
    report = prepare_data(options)
    if json_output:
        print_json(report.to_dict())
    else:
        _print(report, options.output_dir)


def _print(report: "PrepareReport", output: Path) -> None:
    console.print(
        f"{report.files_read} files read, {report.train_examples} training and "
        f"{report.validation_examples} validation examples in {escape(str(output))}"
    )
    table = folding_table("prose tokens", "examples", title="passage sizes")
    for bucket, count in report.token_histogram.items():
        table.add_row(bucket, str(count))
    console.print(table)
    for entry in report.decoded_with_fallback:
        warn(f"{entry['file']}: not UTF-8, read as {entry['encoding']}")
    for entry in report.skipped:
        console.print(escape(f"  skipped {entry['file']}: {entry['reason']}"))
    for entry in report.duplicates:
        console.print(escape(f"  duplicate {entry['file']}: same as {entry['same_as']}, read once"))
    for entry in report.near_duplicates:
        same = f"{entry['similarity']:.0%} the same as {entry['kept_from']}, the newer draft, kept"
        console.print(escape(f'  near duplicate in {entry["file"]} ({same}): "{entry["begins"]}..."'))
    for entry in report.dropped:
        console.print(escape(f"  dropped from {entry['file']}: {entry['reason']}"))
    for message in report.warnings:
        warn(message)
    if report.note_lines_removed:
        console.print(f"  {report.note_lines_removed} note lines removed")


@app.command("train")
def train_command(
    ctx: typer.Context,
    config_path: Annotated[
        Path, typer.Argument(metavar="CONFIG", help="e.g. configs/lora_style_transfer.yaml")
    ],
    engine: Annotated[str, typer.Option(help="trl (TRL + PEFT, built in) or axolotl.")] = "trl",
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: --set learning_rate=1e-4.")
    ] = None,
    gpus: Annotated[int, typer.Option(min=1, help="GPUs: more than 1 launches through accelerate.")] = 1,
    dry_run: Annotated[
        bool, typer.Option(help="Print the launch command instead (axolotl, --gpus).")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """Train a LoRA/QLoRA adapter on data/processed/ with the config's settings (Axolotl's YAML keys).

    Loss falls on your prose only (the assistant turns). Checkpoints, log.jsonl and the final adapter go
    to the config's output_dir; after an interruption, --resume continues from the last checkpoint with
    the same data order. QLoRA needs a CUDA GPU; the LoRA config also runs on a CPU (slowly).
    """
    if engine not in ("trl", "axolotl"):
        raise UserError(f"--engine {engine!r}: choose trl or axolotl")
    workspace = ctx.obj.open_workspace()
    config_path = config_path if config_path.is_absolute() else Path.cwd() / config_path
    command = _launch_command(engine, gpus, resume, config_path, overrides or [])
    if command is None and dry_run:
        raise UserError("--dry-run prints the launch line of --engine axolotl or --gpus N; this run has none")
    if command is None:
        try:
            run = _train(load_train_config(config_path, overrides or []), workspace.root, resume, json_output)
        except KeyboardInterrupt:
            err_console.print(
                "[yellow]interrupted[/]: the checkpoints saved so far are kept; continue with "
                f"[bold]scifi-llm tune train {escape(str(config_path))} --resume[/]",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None
        _print_run(run, json_output)
    elif dry_run and json_output:
        print_json({"command": command})
    elif dry_run:
        console.print(escape(shell_line(command)), soft_wrap=True)
    else:
        raise typer.Exit(subprocess.run(command, cwd=workspace.root).returncode)


def _launch_command(
    engine: str, gpus: int, resume: bool, config_path: Path, overrides: list[str]
) -> list[str] | None:
    """The command that runs the training elsewhere (Axolotl, or accelerate on several GPUs), or None for
    the built-in trainer in this process."""
    if engine == "axolotl":  # Axolotl validates its own config: ours does not read it strictly
        if not config_path.is_file():
            raise UserError(f"training config {config_path} does not exist")
        return axolotl_command(
            config_path, [*overrides, *(["auto_resume_from_checkpoints=True"] if resume else [])]
        )
    if gpus > 1:
        config = load_train_config(config_path, overrides)
        return accelerate_command(config, config_path, gpus, resume, overrides)
    return None


def _print_run(run, json_output: bool) -> None:
    if json_output:
        print_json(run.to_dict())
        return
    losses = f"; loss {run.first_loss:.3f} -> {run.last_loss:.3f}" if run.first_loss is not None else ""
    validation = f", validation loss {run.eval_loss:.3f}" if run.eval_loss is not None else ""
    console.print(f"{run.steps} steps on {run.device}{losses}{validation}")
    console.print(f"adapter: {escape(run.adapter_dir)}")
    if run.best_checkpoint:
        console.print(
            f"best by validation loss: {escape(run.best_checkpoint)} ({run.best_eval_loss:.3f}); "
            f"merge or serve it as {escape(Path(run.run_dir).name)}:best"
        )
    for note in run.notes:
        warn(note)


def _train(config, root: Path, resume: bool, quiet: bool):
    try:
        from scifi_llm.tune import train_adapter
    except ImportError as exc:
        raise UserError(
            f"training needs the train extra ({exc.name} is missing): pip install 'scifi-llm[train]'"
        ) from exc
    if quiet:
        return train_adapter(config, root, resume)
    with progress_bar("training") as update:

        def report(step: int, total: int, latest: dict) -> None:
            numbers = [f"loss {latest['loss']:.3f}"] if "loss" in latest else []
            numbers += [f"{latest['tokens_per_second']:.0f} tok/s"] if "tokens_per_second" in latest else []
            numbers += [f"{_peak_vram_gb():.1f} GB VRAM"] if _peak_vram_gb() else []
            update(step, total, " · ".join(numbers))

        return train_adapter(config, root, resume, report)


def _peak_vram_gb() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


@app.command("merge")
def merge_command(
    ctx: typer.Context,
    adapter: Annotated[
        str, typer.Argument(help="checkpoints/<run>/adapter, .../checkpoint-N, or RUN:best (RUN:last)")
    ],
    output: Annotated[Path, typer.Option(help="The merged model folder, e.g. merged_models/my-style.")],
    base: Annotated[str | None, typer.Option(help="Base model (default: the adapter's own).")] = None,
    dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32.")] = "bf16",
    verify: Annotated[
        bool, typer.Option(help="Compare a sample with PEFT's merge (loads the whole base).")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Fold the adapter into the base model, shard by shard, into a folder vLLM and transformers serve.

    Holds about one shard in memory, never the whole model. The output appears only when complete.
    Serve it with `scifi-llm serve DIR`, or skip merging: `scifi-llm serve BASE --lora name=ADAPTER`.
    """
    from scifi_llm.tune import checkpoint_path, merge_adapter, verify_merge

    workspace = ctx.obj.open_workspace()
    adapter = checkpoint_path(adapter, workspace.root)
    with progress_bar("merging shards", disable=json_output) as update:
        report = merge_adapter(adapter, output, base, dtype, update)
    if verify:
        report.verify_max_abs_diff, report.verified_tensors = verify_merge(adapter, output, base)
    if json_output:
        print_json(report.to_dict())
        return
    console.print(
        f"merged {report.merged_weights} weights (scale {report.scale:g}) over {report.shards} shards "
        f"into {escape(report.output)} ({report.dtype}, {report.seconds} s)"
    )
    for note in report.notes:
        console.print(f"[dim]{escape(note)}[/]")
    if report.verify_max_abs_diff is not None:
        console.print(
            f"checked {report.verified_tensors} weights against PEFT's merge: largest difference "
            f"{report.verify_max_abs_diff:.2e}"
        )


@app.command("compare")
def compare_command(
    ctx: typer.Context,
    tuned: Annotated[
        str, typer.Option(help="The tuned model: merged_models/my-style, an adapter, or RUN:best.")
    ],
    base: Annotated[
        str | None,
        typer.Option(help="The base model (default: the model in settings), or a checkpoint: RUN:last."),
    ] = None,
    validation: Annotated[Path | None, typer.Option(help="Default: data/processed/validation.jsonl.")] = None,
    prompts: Annotated[int, typer.Option(min=1, help="Validation requests both models answer.")] = 5,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest generation.")] = 200,
    base_url: Annotated[
        str | None, typer.Option(help="Generate the base's passages at this endpoint.")
    ] = None,
    tuned_url: Annotated[
        str | None, typer.Option(help="Generate the tuned passages at this endpoint.")
    ] = None,
    judge_url: Annotated[str | None, typer.Option(help="OpenAI endpoint of a blind pairwise judge.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare the base and the tuned model on your held-out prose: perplexity, style distances
    (Burrows' Delta, sentence lengths, type-token ratio, dialogue), side-by-side passages, and an
    optional blind judge. Writes results/compare-<time>/ (report.md, report.html, report.json, metrics.png).
    """
    from scifi_llm.tune import CompareOptions, checkpoint_path, compare_models, metric_rows

    workspace = ctx.obj.open_workspace()
    options = CompareOptions(
        base=str(checkpoint_path(base, workspace.root)) if base else workspace.settings.model.name,
        tuned=str(checkpoint_path(tuned, workspace.root)),
        validation=(validation or workspace.root / "data" / "processed" / "validation.jsonl").resolve(),
        results_dir=workspace.root / "results",
        prompts=prompts,
        max_tokens=max_tokens,
        base_url=base_url,
        tuned_url=tuned_url,
        judge_url=judge_url,
    )
    with console.status("comparing", spinner="dots") as status:
        report = compare_models(options, None if json_output else lambda step: status.update(escape(step)))
    if json_output:
        print_json(report)
        return
    table = folding_table(
        "metric", "author", "base", "tuned", "better", title="base vs tuned on your held-out prose"
    )
    for row in metric_rows(report):
        table.add_row(*row)
    console.print(table)
    if report["judge"]:
        judge = report["judge"]
        readable = judge["questions"] - judge["failures"]
        console.print(
            f"blind judge: tuned won {judge['tuned_wins']} of {readable} readable verdicts; "
            f"{judge['failures']} unreadable"
        )
    for note in report["notes"]:
        warn(note)
    console.print(f"report: {escape(report['folder'])}/report.html")
