"""The `scifi-llm` command: thin wiring from typed functions to the library; docstrings are the --help."""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from scifi_llm import __version__
from scifi_llm.cli.output import err_console
from scifi_llm.config import WORKSPACE_ENV, Workspace, find_workspace
from scifi_llm.errors import UserError


class _ReportingGroup(TyperGroup):
    """Turns a UserError anywhere below into one line on stderr and exit code 1 (never a traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from exc
        except KeyboardInterrupt as exc:
            err_console.print(
                "[yellow]interrupted[/]: nothing half-written was kept; run the command again",
                soft_wrap=True,
            )
            raise typer.Exit(130) from exc


app = typer.Typer(
    cls=_ReportingGroup,
    help="scifi-llm: your own model that never forgets your world and writes in your voice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@dataclass
class CliState:
    """Options given before the command name."""

    workspace: Path | None = None

    def open_workspace(self) -> Workspace:
        """The workspace named by --workspace or SCIFI_LLM_WORKSPACE, else the nearest one above."""
        return find_workspace(self.workspace)


def _version(value: bool) -> None:
    if value:
        print(f"scifi-llm {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar=WORKSPACE_ENV,
            help="Workspace folder (default: found upwards from here).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """scifi-llm: lore retrieval, voice fine-tuning and benchmarks for a local model."""
    ctx.obj = CliState(workspace)


from scifi_llm.cli import bench, check, history, lore, models, monitor, proxy, serve, tune, workspace  # noqa: E402

workspace.register(app)
serve.register(app)
proxy.register(app)
monitor.register(app)
check.register(app)
app.add_typer(models.app, name="models")
app.add_typer(lore.app, name="lore")
app.add_typer(tune.app, name="tune")
app.add_typer(bench.app, name="bench")
app.add_typer(history.app, name="history")


def main() -> None:
    """Entry point of the `scifi-llm` command."""
    app()
