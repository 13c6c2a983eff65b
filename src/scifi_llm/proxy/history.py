"""Request history in SQLite (`.scifi-llm/history.db`), with append-only, numbered migrations.

The schema version is SQLite's `user_version`; migration N runs once, when the version is below N.
Never edit a shipped migration: add the next one.
"""

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS = (
    """CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        query TEXT NOT NULL,
        sources TEXT NOT NULL,
        retrieval_ms REAL,
        ttft_ms REAL,
        status INTEGER NOT NULL,
        lore TEXT NOT NULL
    )""",
    "CREATE INDEX requests_time ON requests(time)",
    "ALTER TABLE requests ADD COLUMN model TEXT NOT NULL DEFAULT ''",
)
_COLUMNS = "id, time, query, sources, retrieval_ms, ttft_ms, status, lore, model"
_KEYS = ("id", "time", "query", "sources", "retrieval_ms", "upstream_ttft_ms", "status", "lore", "model")


class History:
    """Append-only log of proxied requests, trimmed to the newest `limit` rows."""

    def __init__(self, path: Path, limit: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _private(path)
        self.limit = limit
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)

    def add(
        self,
        query: str,
        sources: list[str],
        retrieval_ms: float | None,
        ttft_ms: float | None,
        status: int,
        lore: str,
        model: str = "",
    ) -> None:
        """Record one request; every 1,000th write trims rows beyond the retention limit."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO requests (time, query, sources, retrieval_ms, ttft_ms, status, lore, model) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), query, json.dumps(sources), retrieval_ms, ttft_ms, status, lore, model),
            )
            if cursor.lastrowid % 1000 == 0:
                self._db.execute("DELETE FROM requests WHERE id <= ?", (cursor.lastrowid - self.limit,))

    def recent(self, count: int = 20, containing: str = "") -> list[dict]:
        """The newest requests, newest first; with `containing`, only those whose query or lore sources
        hold that text (any case)."""
        return self.search(Query(text=containing, limit=count))

    def search(self, query: "Query") -> list[dict]:
        """The requests `query` selects, newest first."""
        where, values = query.where()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE {where} ORDER BY id DESC LIMIT ?",
                (*values, query.limit),
            ).fetchall()
        return [_row(row) for row in rows]

    def get(self, request_id: int) -> dict | None:
        """One request by its number, or None."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
        return _row(row) if row else None

    def totals(self) -> dict:
        """Counts over the whole history, which survives restarts: requests, failures, lore use, the
        first and last time, and requests per model."""
        with self._lock:
            count, failed, with_lore, first, last = self._db.execute(
                "SELECT COUNT(*), SUM(status >= 400), SUM(lore = 'used'), MIN(time), MAX(time) FROM requests"
            ).fetchone()
            models = self._db.execute(
                "SELECT model, COUNT(*) FROM requests GROUP BY model ORDER BY COUNT(*) DESC"
            ).fetchall()
        return {
            "requests": count,
            "failed": failed or 0,
            "with_lore": with_lore or 0,
            "first": first,
            "last": last,
            "by_model": {model or "(not recorded)": number for model, number in models},
        }

    def count(self) -> int:
        """Requests recorded (within the retention limit)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        self._db.close()


@dataclass(frozen=True)
class Query:
    """Which requests to list: words of the request or of a note's name (`text`, any case, taken
    literally), a time range (Unix seconds), the model, and how many at most."""

    text: str = ""
    since: float | None = None
    until: float | None = None
    model: str = ""
    source: str = ""
    limit: int = 20

    def where(self) -> tuple[str, list]:
        """The SQL condition and its values."""
        clauses, values = [], []
        if self.text:
            clauses.append("(query LIKE ? ESCAPE '\\' OR sources LIKE ? ESCAPE '\\')")
            values += [_like(self.text)] * 2
        if self.source:
            clauses.append("sources LIKE ? ESCAPE '\\'")
            values.append(_like(self.source))
        if self.model:
            clauses.append("model = ?")
            values.append(self.model)
        if self.since is not None:
            clauses.append("time >= ?")
            values.append(self.since)
        if self.until is not None:
            clauses.append("time < ?")
            values.append(self.until)
        return " AND ".join(clauses) or "1", values


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, its % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _row(row: tuple) -> dict:
    values = dict(zip(_KEYS, row, strict=True))
    return values | {"sources": json.loads(values["sources"])}


def _private(path: Path) -> None:
    """Make the database and its journal files readable by the user alone: they hold the prompts.

    SQLite gives the -wal and -shm files it creates the database file's mode, so creating that one 0600
    is enough; files from an older run are tightened.
    """
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists():
            part.chmod(0o600)


def migrate(db: sqlite3.Connection) -> int:
    """Apply the migrations not yet applied, each in its own transaction; returns the schema version."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, statement in enumerate(MIGRATIONS, start=1):
        if number > version:
            db.execute("BEGIN")
            db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
    return max(version, len(MIGRATIONS))
