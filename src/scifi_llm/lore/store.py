"""Lore collections in the workspace's embedded LanceDB: one table per collection, one row per chunk.

The table is its own manifest. Every row carries its file's content hash and chunk count, so the state
of each file can be checked from the rows alone: a file is current when all its rows share the current
hash, their number is the chunk count, and no index repeats. An ingest killed at any point (even
`kill -9`) leaves rows that fail this check, and the next ingest redoes exactly those files.
"""

import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scifi_llm.config import check_collection_name
from scifi_llm.errors import UserError
from scifi_llm.fsutil import exclusive_lock

if TYPE_CHECKING:
    import pyarrow as pa


META_MODEL = b"embedding_model"
META_CREATED = b"created_at"
META_FORMAT = b"format"
STAGING = "__rebuild"  # a collection being rebuilt beside the one in use
# The row layout; a collection written in an older one is rebuilt by the next ingest.
FORMAT = 3
_COLUMNS = ["id", "source", "file_hash", "chunk_index", "n_chunks", "heading", "text", "tokens", "facts"]
_OLD_VERSIONS_KEPT = timedelta(hours=1)


@dataclass(frozen=True)
class ChunkRow:
    """One chunk ready to store: its text, where it comes from, and its vector."""

    source: str
    file_hash: str
    chunk_index: int
    n_chunks: int
    heading: str
    text: str
    search_text: str
    tokens: int
    context_chars: int
    joiner: str
    sections: str
    links: str
    facts: str
    run: str
    vector: np.ndarray

    @property
    def id(self) -> str:
        """Stable id: the same file content always gives the same ids."""
        return f"{self.source}#{self.file_hash[:12]}#{self.chunk_index}"


@dataclass(frozen=True)
class FileState:
    """What the table holds for one source file."""

    hashes: frozenset[str]
    rows: int
    distinct_indices: int
    expected_chunks: int
    indices: tuple[tuple[str, int], ...] = ()  # (file hash, chunk index) of every row

    def stored(self, file_hash: str) -> frozenset[int]:
        """The chunk indices already stored for this version of the file (what an interrupted ingest got
        done); none when any is stored twice, as then the rows cannot be told apart."""
        found = [index for digest, index in self.indices if digest == file_hash]
        return frozenset(found) if len(found) == len(set(found)) else frozenset()

    def is_current(self, file_hash: str) -> bool:
        """True when the rows are exactly one complete copy of the file with this hash."""
        return (
            self.hashes == {file_hash}
            and self.rows == self.expected_chunks
            and self.distinct_indices == self.expected_chunks
        )


def _lancedb():
    """LanceDB, imported on first use: it takes over a second to load, and most commands never need it."""
    os.environ.setdefault("LANCEDB_LOG", "error")
    import lancedb

    return lancedb


def _schema(dimension: int, model_name: str) -> "pa.Schema":
    import pyarrow as pa

    fields = [
        pa.field("id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("file_hash", pa.string()),
        pa.field("chunk_index", pa.int32()),
        pa.field("n_chunks", pa.int32()),
        pa.field("heading", pa.string()),
        pa.field("text", pa.string()),
        pa.field("search_text", pa.string()),
        pa.field("tokens", pa.int32()),
        pa.field("context_chars", pa.int32()),
        pa.field("joiner", pa.string()),
        pa.field("sections", pa.string()),
        pa.field("links", pa.string()),
        pa.field("facts", pa.string()),
        pa.field("run", pa.string()),
        pa.field("ingested_at", pa.timestamp("s", tz="UTC")),
        pa.field("vector", pa.list_(pa.float32(), dimension)),
    ]
    created = datetime.now(UTC).isoformat(timespec="microseconds").encode()
    metadata = {META_MODEL: model_name.encode(), META_CREATED: created, META_FORMAT: str(FORMAT).encode()}
    return pa.schema(fields, metadata=metadata)


def sql_string(value: str) -> str:
    """A SQL string literal for LanceDB filters."""
    return "'" + value.replace("'", "''") + "'"


class LoreIndex:
    """The folder of lore collections of one workspace."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._connection = None

    @property
    def _db(self):
        """The LanceDB connection, opened on first use; None while there is no index folder."""
        if self._connection is None and self.index_dir.is_dir():
            self._connection = _lancedb().connect(str(self.index_dir))
        return self._connection

    def names(self) -> list[str]:
        """Collection names, sorted (not counting one being rebuilt)."""
        if self._db is None:
            return []
        return sorted(name for name in self._db.list_tables().tables if not name.endswith(STAGING))

    def describe(self, default: str, files: bool = False) -> list[dict]:
        """A row per collection (`lore status`): its files, chunks, embedding model, last ingest and
        whether it is `default`; with `files`, each file and its chunks too."""
        rows = []
        for name in self.names():
            collection = self.open(name)
            states = collection.file_states()
            row = {
                "collection": name,
                "files": len(states),
                "chunks": collection.count(),
                "embedding_model": collection.model_name,
                "last_ingest": collection.last_ingest(),
                "default": name == default,
            }
            if files:
                row["file_list"] = [
                    {"file": source, "chunks": states[source].rows} for source in sorted(states)
                ]
            rows.append(row)
        return rows

    def replace(self, name: str, staging: str) -> None:
        """Put the collection `staging` in the place of `name`: two folder renames, so the old collection
        serves until the new one is complete (LanceDB keeps a table in the folder `<name>.lance`)."""
        current, ready = self.index_dir / f"{name}.lance", self.index_dir / f"{staging}.lance"
        retired = self.index_dir / f".{name}.lance.retired"
        shutil.rmtree(retired, ignore_errors=True)
        if current.exists():
            current.rename(retired)
        ready.rename(current)
        shutil.rmtree(retired, ignore_errors=True)
        self._connection = None  # the table list changed under the connection

    def writing(self):
        """An exclusive hold on the index for writing: a second writer fails at once, naming the first."""
        return exclusive_lock(self.index_dir / ".write.lock", "lore ingest")

    def fingerprint(self, name: str) -> list[str]:
        """What identifies the stored state of a collection without opening it: its committed versions."""
        versions = self.index_dir / f"{name}.lance" / "_versions"
        return sorted(path.name for path in versions.iterdir()) if versions.is_dir() else []

    def open(self, name: str) -> "Collection":
        """An existing collection, or a one-line error saying how to build it."""
        if name not in self.names():
            if not self.names():
                raise UserError(f"no lore index yet: run `scifi-llm lore ingest` (collection {name})")
            raise UserError(f"unknown collection {name!r}; existing: {', '.join(self.names())}")
        return Collection(self._db.open_table(name))

    def create(self, name: str, dimension: int, model_name: str) -> "Collection":
        """A new, empty collection recording its embedding model (replaces one of the same name)."""
        check_collection_name(name.removesuffix(STAGING))
        self.index_dir.mkdir(parents=True, exist_ok=True)
        table = self._db.create_table(name, schema=_schema(dimension, model_name), mode="overwrite")
        return Collection(table)

    def drop(self, name: str) -> None:
        """Delete a collection and its files."""
        self.open(name)
        self._db.drop_table(name)


class Collection:
    """One lore collection: its chunks, vectors and full-text index."""

    def __init__(self, table) -> None:
        self.table = table

    @property
    def name(self) -> str:
        """The collection's name."""
        return self.table.name

    @property
    def model_name(self) -> str:
        """The embedding model the collection was built with."""
        return (self.table.schema.metadata or {}).get(META_MODEL, b"").decode()

    @property
    def format(self) -> int:
        """The row layout the collection was written in (1 for collections older than the field)."""
        return int((self.table.schema.metadata or {}).get(META_FORMAT, b"1"))

    @property
    def dimension(self) -> int:
        """Length of the stored vectors."""
        return self.table.schema.field("vector").type.list_size

    @property
    def version(self) -> tuple[str, int]:
        """What changes whenever the collection does: when it was created (a rebuild makes a new one) and
        the table version it is at (every ingest that changes it makes a new one)."""
        created = (self.table.schema.metadata or {}).get(META_CREATED, b"").decode()
        return created, self.table.version

    def count(self) -> int:
        """Number of chunks."""
        return self.table.count_rows()

    def rows(self, columns: Sequence[str] = tuple(_COLUMNS), where: str | None = None) -> list[dict]:
        """All rows (optionally filtered), without vectors unless asked."""
        total = self.count()
        if total == 0:
            return []
        query = self.table.search().select(list(columns)).limit(total)
        if where:
            query = query.where(where)
        return query.to_arrow().to_pylist()

    def file_states(self) -> dict[str, FileState]:
        """The stored state of every source file, read from the rows themselves."""
        grouped: dict[str, list[dict]] = {}
        for row in self.rows(["source", "file_hash", "chunk_index", "n_chunks"]):
            grouped.setdefault(row["source"], []).append(row)
        return {
            source: FileState(
                hashes=frozenset(row["file_hash"] for row in rows),
                rows=len(rows),
                distinct_indices=len({(row["file_hash"], row["chunk_index"]) for row in rows}),
                expected_chunks=max(row["n_chunks"] for row in rows),
                indices=tuple((row["file_hash"], row["chunk_index"]) for row in rows),
            )
            for source, rows in grouped.items()
        }

    def add(self, chunks: Sequence[ChunkRow]) -> None:
        """Store chunks (one atomic commit)."""
        if chunks:
            now = datetime.now(UTC).replace(microsecond=0)
            self.table.add([_as_record(chunk, now) for chunk in chunks])

    def drop_stale(self, files: Sequence[tuple[str, str, bool]], run: str) -> None:
        """Once files' new rows are all stored, delete their other rows (one commit). For each (source,
        file hash, kept_earlier): the rows of other versions, and, unless rows of this version stored by
        an earlier, interrupted ingest were kept, the rows of other runs. Until then a file holds old and
        new rows; `FileState` rejects that, so a crash is repaired by the next ingest, which keeps what
        was stored of the same version."""
        stale = " OR ".join(
            f"(source = {sql_string(source)} AND "
            + (f"file_hash != {sql_string(digest)})" if kept_earlier else f"run != {sql_string(run)})")
            for source, digest, kept_earlier in files
        )
        if stale:
            self.table.delete(stale)

    def delete_sources(self, sources: Iterable[str]) -> None:
        """Remove every chunk of these files."""
        sources = list(sources)
        if sources:
            self.table.delete(f"source IN ({', '.join(sql_string(source) for source in sources)})")

    def finish(self) -> None:
        """Bring the full-text index up to date and compact the table after changes."""
        if self.count() == 0:
            return
        if not any(index.index_type == "FTS" for index in self.table.list_indices()):
            from lancedb.index import FTS

            self.table.create_index("search_text", config=FTS(), replace=True)
        self.table.optimize(cleanup_older_than=_OLD_VERSIONS_KEPT)

    def keyword_search(self, text: str, limit: int) -> list[dict]:
        """Ids of the best chunks by BM25 over heading, aliases, tags and text, each with `_score`."""
        words = " ".join(re.findall(r"\w+", text))
        if not words:
            return []
        query = self.table.search(words, query_type="fts", fts_columns="search_text").limit(limit)
        return query.select(["id", "_score"]).to_arrow().to_pylist()

    def last_ingest(self) -> str | None:
        """When chunks were last written, ISO 8601, or None when empty."""
        stamps = [row["ingested_at"] for row in self.rows(["ingested_at"])]
        return max(stamps).isoformat() if stamps else None


def _as_record(chunk: ChunkRow, now: datetime) -> dict:
    record = {name: getattr(chunk, name) for name in ChunkRow.__dataclass_fields__ if name != "vector"}
    record.update(id=chunk.id, ingested_at=now, vector=chunk.vector.astype(np.float32).tolist())
    return record


def compact_json(value: object) -> str:
    """Compact, stable JSON for the columns that hold structure (facts, sections, links)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
