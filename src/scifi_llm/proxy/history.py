"""Request history in SQLite (`.scifi-llm/history.db`), with append-only, numbered migrations.

The schema version is SQLite's `user_version`; migration N runs once, when the version is below N.
Never edit a shipped migration: add the next one.
"""

import json
import os
import sqlite3
import threading
import time
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
)


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
    ) -> None:
        """Record one request; every 1,000th write trims rows beyond the retention limit."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO requests (time, query, sources, retrieval_ms, ttft_ms, status, lore) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), query, json.dumps(sources), retrieval_ms, ttft_ms, status, lore),
            )
            if cursor.lastrowid % 1000 == 0:
                self._db.execute("DELETE FROM requests WHERE id <= ?", (cursor.lastrowid - self.limit,))

    def recent(self, count: int = 20, containing: str = "") -> list[dict]:
        """The newest requests, newest first; with `containing`, only those whose query or lore sources
        hold that text (any case)."""
        pattern = "%" + containing.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._lock:
            rows = self._db.execute(
                "SELECT time, query, sources, retrieval_ms, ttft_ms, status, lore FROM requests "
                "WHERE query LIKE ?1 ESCAPE '\\' OR sources LIKE ?1 ESCAPE '\\' ORDER BY id DESC LIMIT ?2",
                (pattern, count),
            ).fetchall()
        keys = ("time", "query", "sources", "retrieval_ms", "upstream_ttft_ms", "status", "lore")
        return [dict(zip(keys, row, strict=True)) | {"sources": json.loads(row[2])} for row in rows]

    def count(self) -> int:
        """Requests recorded (within the retention limit)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        self._db.close()


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
