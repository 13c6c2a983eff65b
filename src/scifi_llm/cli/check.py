"""`scifi-llm check`: where drafts contradict the lore."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, err_console, folding_table, print_json
from scifi_llm.errors import UserError


def check(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Draft files (Markdown or text) to check.")],
    json_output: Annotated[bool, typer.Option("--json", help="One JSON finding per line.")] = False,
) -> None:
    """Find where drafts contradict the lore: names that are near misses of the lore's names ("Elena Vos"
    for Elena Voss), and, apart, names the lore does not know. Exit code 0 when nothing contradicts the
    lore, 1 when something does, 2 on an error."""
    from scifi_llm.check import check_drafts

    try:
        findings = check_drafts(ctx.obj.open_workspace(), files)
    except UserError as exc:
        err_console.print(f"error: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if json_output:
        for finding in findings:
            print_json(finding.to_dict())
    else:
        _print(findings)
    raise typer.Exit(1 if any(finding.kind != "not in lore" for finding in findings) else 0)


def _print(findings) -> None:
    wrong = [finding for finding in findings if finding.kind != "not in lore"]
    table = folding_table("where", "the draft says", "the lore says", "note", title="contradictions")
    for finding in wrong:
        table.add_row(
            escape(f"{finding.file}:{finding.line}"), escape(finding.text), escape(finding.expected),
            escape(finding.source),
        )  # fmt: skip
    console.print(table if wrong else "no contradictions found")
    unknown = sorted({finding.text for finding in findings if finding.kind == "not in lore"})
    if unknown:
        console.print(f"[dim]names the lore does not know: {escape(', '.join(unknown))}[/]")


def register(app: typer.Typer) -> None:
    """Add check to the root app."""
    app.command()(check)
