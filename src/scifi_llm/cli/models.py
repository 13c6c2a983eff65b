"""`scifi-llm models ...`: the models the workspace needs, which are here, and getting the rest."""

import contextlib
from typing import Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, folding_table, print_json
from scifi_llm.errors import UserError

app = typer.Typer(
    help="The models your settings need: what is here, and downloading the rest.", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]


@app.command("list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The models the workspace's settings and training configs name, and whether each is here."""
    from scifi_llm.models import Found, locate, needed

    workspace = ctx.obj.open_workspace()
    found = [Found(need, *locate(need.name, workspace.root)) for need in needed(workspace)]
    if json_output:
        print_json({"models": [item.to_dict() for item in found]})
        return
    table = folding_table("model", "used for", "here?")
    for item in found:
        row = item.to_dict()
        here = f"[green]{row['where']}[/] ({row['size_mb']:,.0f} MB)" if row["present"] else "[red]missing"
        table.add_row(escape(row["model"]), escape(row["used_for"]), here)
    console.print(table)
    missing = [item.need.name for item in found if item.path is None]
    for name in missing:
        console.print(f"get it: [bold]scifi-llm models pull {escape(name)}[/]", soft_wrap=True)


@app.command("pull")
def pull_command(
    name: Annotated[str, typer.Argument(help="A Hugging Face model name, e.g. BAAI/bge-large-en-v1.5.")],
    json_output: JsonOption = False,
) -> None:
    """Download a model into the local Hugging Face cache, with a progress bar; an interrupted pull resumes
    where it stopped. Gated models (Llama) need their licence accepted on the hub and `hf auth login`."""
    from scifi_llm.models import pull

    path = pull(name)
    if json_output:
        print_json({"model": name, "path": str(path)})
    else:
        console.print(f"{escape(name)} is here: {escape(str(path))}", soft_wrap=True)


@app.command("path")
def path_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="A model name or folder.")]
) -> None:
    """Print where a model is on this machine (for other tools), or fail saying how to get it."""
    from scifi_llm.models import require

    workspace_root = None
    with contextlib.suppress(UserError):  # outside a workspace, names are looked up as they are
        workspace_root = ctx.obj.open_workspace().root
    print(require(name, "models path", workspace_root))
