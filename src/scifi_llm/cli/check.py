"""`scifi-llm check`: where drafts contradict the lore."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, err_console, folding_table, print_json
from scifi_llm.errors import UserError

_LAYERS = "name, number, attribute, title, timeline, absent, judged, not in lore"


def check(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Draft files (Markdown or text) to check.")],
    json_output: Annotated[bool, typer.Option("--json", help="One JSON finding per line.")] = False,
    kinds: Annotated[
        str | None, typer.Option("--kinds", help=f"Only these kinds, comma-separated: {_LAYERS}.")
    ] = None,
    judge_url: Annotated[
        str | None,
        typer.Option(
            "--judge-url",
            help="An OpenAI-compatible endpoint (your model through `scifi-llm serve`, or a bigger one) to "
            "read each paragraph that names an entity beside its lore. A contradiction it reports is kept "
            "only when its quotes of the draft and the note are both found word for word.",
        ),
    ] = None,
) -> None:
    """Find where drafts contradict the lore, each finding with the note's own words:

    - names that are near misses of the lore's ("Elena Vos" for Elena Voss); names the lore does not
      know are listed apart, as new, not wrong;
    - numbers, colours, materials and ranks the lore gives otherwise (the same statement about the same
      entity, following "she" and "he" within a paragraph where only one person can be meant);
    - years and dates of the lore's events, ages against birth years and the chapter's `story_date`
      (front matter), and characters acting after the lore's record of their death or disappearance;
    - with --judge-url, contradictions a model finds, each quoting the draft and the note (verdicts are
      cached in the workspace: a re-run asks only about paragraphs that changed).

    Reads the fact table `scifi-llm lore ingest` builds. Exit code 0 when nothing contradicts the lore,
    1 when something does, 2 on an error."""
    from scifi_llm.check import KINDS, check_drafts, judge_files

    chosen = tuple(kind.strip() for kind in kinds.split(",")) if kinds else (*KINDS, "judged")
    unknown = [kind for kind in chosen if kind not in (*KINDS, "judged")]
    try:
        if unknown:
            raise UserError(f"--kinds: unknown kind {unknown[0]!r} (choose from {_LAYERS})")
        workspace = ctx.obj.open_workspace()
        findings = check_drafts(workspace, files, tuple(kind for kind in chosen if kind in KINDS))
        if judge_url and "judged" in chosen:
            report = judge_files(workspace, files, judge_url)
            findings = sorted(
                [*findings, *report.findings], key=lambda f: (_files_order(files, f.file), f.line)
            )
            err_console.print(_judged_line(report))
    except UserError as exc:
        err_console.print(f"error: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if json_output:
        for finding in findings:
            print_json(finding.to_dict())
    else:
        _print(findings)
    raise typer.Exit(1 if any(finding.kind != "not in lore" for finding in findings) else 0)


def _files_order(files: list[Path], file: str) -> int:
    """A finding's file's place on the command line."""
    return next((index for index, path in enumerate(files) if str(path) == file), len(files))


def _judged_line(report) -> str:
    line = (
        f"judged by {escape(report.model)}: {report.paragraphs} paragraphs ({report.cached} from the cache), "
        f"{len(report.findings)} contradictions with verified quotes"
    )
    if report.unverifiable:
        line += f", {report.unverifiable} dropped because their quotes were not found"
    if report.failed:
        line += f", {report.failed} paragraphs without a readable answer"
    return line


def _print(findings) -> None:
    wrong = [finding for finding in findings if finding.kind != "not in lore"]
    for file in dict.fromkeys(finding.file for finding in wrong):
        table = folding_table("line", "kind", "the draft says", "the lore says", "note", title=escape(file))
        for finding in (f for f in wrong if f.file == file):
            note = f"{finding.source}\n[dim]{escape(finding.quote)}[/]" if finding.quote else finding.source
            table.add_row(
                str(finding.line), finding.kind, escape(finding.text), escape(finding.expected),
                note if finding.quote else escape(note),
            )  # fmt: skip
        console.print(table)
    if not wrong:
        console.print("no contradictions found")
    unknown = sorted({finding.text for finding in findings if finding.kind == "not in lore"})
    if unknown:
        console.print(f"[dim]names the lore does not know: {escape(', '.join(unknown))}[/]")


def register(app: typer.Typer) -> None:
    """Add check to the root app."""
    app.command()(check)
