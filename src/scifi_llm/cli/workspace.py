"""`scifi-llm init` and `scifi-llm doctor`."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, folding_table, print_json
from scifi_llm.config import CONFIG_NAME, init_workspace

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")] = Path("."),
    example: Annotated[
        bool, typer.Option("--example", help="Fill lore/ and writing/ with the example world.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a workspace: scifi-llm.toml (every setting explained), lore/, writing/ and configs/.

    Refuses to touch a folder that already holds a workspace.
    """
    workspace = init_workspace(directory, with_example=example)
    if json_output:
        print_json({"workspace": str(workspace.root), "config": str(workspace.root / CONFIG_NAME)})
        return
    console.print(f"Created workspace [bold]{escape(str(workspace.root))}[/]")
    console.print(f"  settings: {CONFIG_NAME}   lore: lore/   writing: writing/   configs: configs/")
    console.print("Next: put your notes in lore/, then:")
    console.print(f"  [bold]cd {escape(str(directory))} && scifi-llm lore ingest[/]", soft_wrap=True)


def doctor(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Check what this machine has and lacks for each part, and how to fix what is missing."""
    folder = ctx.obj.workspace or Path.cwd()
    from scifi_llm.doctor import run_checks

    checks = run_checks(folder)
    if json_output:
        print_json(
            {"ok": all(check.ok is not False for check in checks), "checks": [c.to_dict() for c in checks]}
        )
        return
    table = folding_table("part", "check", "", "detail", "fix")
    for check in checks:
        mark = {True: "[green]ok[/]", False: "[red]missing[/]", None: "-"}[check.ok]
        table.add_row(check.part, check.name, mark, escape(check.detail), escape(check.fix))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the workspace commands to the root app."""
    app.command()(init)
    app.command()(doctor)
