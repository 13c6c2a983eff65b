"""How commands talk: Rich for people (stdout), one JSON object per line for scripts, errors on stderr."""

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TextColumn
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def folding_table(*headers: str, **options) -> Table:
    """A Rich table whose cells wrap long words instead of cutting them: a model name or a command in the
    fix column must stay whole at 80 columns."""
    made = Table(*headers, **options)
    for column in made.columns:
        column.overflow = "fold"
    return made


def print_json(value: object) -> None:
    """One JSON object on one line of stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


@contextmanager
def progress_bar(description: str, disable: bool = False) -> Iterator[Callable[..., None]]:
    """A Rich progress bar that appears at its first update, so an error found before any work prints
    alone. Yields `update(completed, total, note="")`; the note shows after the bar."""
    bar = Progress(*Progress.get_default_columns(), TextColumn("{task.fields[note]}"), console=console)
    task = bar.add_task(description, total=None, note="")

    def update(completed: int, total: int | None, note: str = "") -> None:
        if not disable and not bar.live.is_started:
            bar.start()
        bar.update(task, completed=completed, total=total, note=note)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()
