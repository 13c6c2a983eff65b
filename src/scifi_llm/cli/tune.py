"""`scifi-llm tune ...`: training data from the writer's prose (train, merge and compare come next)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from scifi_llm.cli.output import console, print_json, warn
from scifi_llm.errors import UserError
from scifi_llm.tune.corpus import DEFAULT_NOTE_PATTERNS
from scifi_llm.tune.prepare import PrepareOptions, PrepareReport, prepare

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
    )
    report = prepare(options)
    if json_output:
        print_json(report.to_dict())
    else:
        _print(report, options.output_dir)


def _print(report: PrepareReport, output: Path) -> None:
    console.print(
        f"{report.files_read} files read, {report.train_examples} training and "
        f"{report.validation_examples} validation examples in {escape(str(output))}"
    )
    table = Table("prose tokens", "examples", title="passage sizes")
    for bucket, count in report.token_histogram.items():
        table.add_row(bucket, str(count))
    console.print(table)
    for entry in report.decoded_with_fallback:
        warn(f"{entry['file']}: not UTF-8, read as {entry['encoding']}")
    for entry in report.skipped:
        console.print(escape(f"  skipped {entry['file']}: {entry['reason']}"))
    for entry in report.duplicates:
        console.print(escape(f"  duplicate {entry['file']}: same as {entry['same_as']}, read once"))
    for entry in report.dropped:
        console.print(escape(f"  dropped from {entry['file']}: {entry['reason']}"))
    for message in report.warnings:
        warn(message)
    if report.note_lines_removed:
        console.print(f"  {report.note_lines_removed} note lines removed")
