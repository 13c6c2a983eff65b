"""`scifi-llm history ...`: the requests the lore proxy has answered, from `.scifi-llm/history.db`."""

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, folding_table, print_json
from scifi_llm.errors import UserError

if TYPE_CHECKING:
    from scifi_llm.proxy import History, Query

app = typer.Typer(
    help="Look back at what you asked your model, and which lore it was given.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per request.")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")]
SinceOption = Annotated[
    str | None, typer.Option(help="From this date or time (2026-11-30, 2026-11-30T14:00).")
]
UntilOption = Annotated[str | None, typer.Option(help="Before this date or time.")]
ModelOption = Annotated[str | None, typer.Option(help="Only requests to this model (or adapter).")]
SourceOption = Annotated[str | None, typer.Option(help="Only requests given this note (part of its path).")]


@app.command("list")
def list_command(ctx: typer.Context, limit: LimitOption = 20, json_output: JsonOption = False) -> None:
    """The newest requests."""
    from scifi_llm.proxy import Query

    _show(_open(ctx).search(Query(limit=limit)), json_output)


@app.command("search")
def search_command(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Words of the request, or of a note's name (any case).")] = "",
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    source: SourceOption = None,
    limit: LimitOption = 50,
    json_output: JsonOption = False,
) -> None:
    """Requests by their words, their date, their model and the notes they were given."""
    _show(_open(ctx).search(_query(text, since, until, model, source, limit)), json_output)


@app.command("show")
def show_command(
    ctx: typer.Context,
    request: Annotated[int, typer.Argument(help="The request's number (from list or search).")],
    json_output: JsonOption = False,
) -> None:
    """One request in full: what was asked, the lore it was given, how fast it was answered."""
    row = _open(ctx).get(request)
    if row is None:
        raise UserError(f"no request {request} in the history (it keeps the newest 100,000)")
    if json_output:
        print_json(row)
        return
    console.print(f"[bold]#{row['id']}[/] {_when(row['time'])}  model {escape(row['model'] or '?')}  "
                  f"status {row['status']}  lore {row['lore']}")  # fmt: skip
    console.print(escape(row["query"]), soft_wrap=True)
    for source in row["sources"]:
        console.print(f"  [dim]given[/] {escape(source)}")
    timing = f"retrieval {row['retrieval_ms']} ms, engine's first token {row['upstream_ttft_ms']} ms"
    console.print(f"[dim]{timing}[/]")


@app.command("export")
def export_command(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Argument(help="The file to write: .json (one array) or .jsonl (one per line).")
    ],
    text: Annotated[str, typer.Option(help="Only requests with these words.")] = "",
    since: SinceOption = None,
    until: UntilOption = None,
    model: ModelOption = None,
    source: SourceOption = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100_000,
) -> None:
    """Write the requests (all, or those the filters select) to a JSON or JSONL file, oldest first."""
    from scifi_llm.fsutil import atomic_write_text

    if output.suffix not in (".json", ".jsonl"):
        raise UserError(f"{output}: name it .json or .jsonl")
    rows = list(reversed(_open(ctx).search(_query(text, since, until, model, source, limit))))
    if output.suffix == ".json":
        atomic_write_text(output, json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    else:
        atomic_write_text(output, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    console.print(f"{len(rows)} requests written to {escape(str(output))}")


def _open(ctx: typer.Context) -> "History":
    from scifi_llm.proxy import History

    path = ctx.obj.open_workspace().state_dir / "history.db"
    if not path.exists():
        raise UserError(f"no history yet ({path}): the lore proxy writes it as it answers requests")
    return History(path)


def _query(text: str, since: str | None, until: str | None, model: str | None, source: str | None,
           limit: int) -> "Query":  # fmt: skip
    from scifi_llm.proxy import Query

    return Query(text, _time(since, "--since"), _time(until, "--until"), model or "", source or "", limit)


def _time(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise UserError(f"{option} {value!r}: write a date like 2026-11-30 or 2026-11-30T14:00") from exc


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _show(rows: list[dict], json_output: bool) -> None:
    if json_output:
        for row in rows:
            print_json(row)
        return
    if not rows:
        console.print("no requests found")
        return
    table = folding_table("#", "when", "model", "request", "lore given", "status")
    for row in rows:
        table.add_row(
            str(row["id"]), _when(row["time"]), escape(row["model"] or "?"), escape(row["query"][:120]),
            escape(", ".join(row["sources"]) or row["lore"]), str(row["status"]),
        )  # fmt: skip
    console.print(table)
