"""Recording benchmark results: a line appended to a table of perf/RESULTS.md, written atomically."""

from pathlib import Path

from scifi_llm.fsutil import atomic_write_text

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"


def add_table_row(header: str, row: str, path: Path = RESULTS_MD) -> None:
    """Insert `row` after the last row of the Markdown table whose header line is `header`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    end = lines.index(header) + 2
    while end < len(lines) and lines[end].startswith("| "):
        end += 1
    atomic_write_text(path, "\n".join([*lines[:end], row, *lines[end:]]) + "\n")
