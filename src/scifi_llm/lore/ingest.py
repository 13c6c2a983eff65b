"""`lore ingest`: lore files -> chunks -> embeddings -> a collection, doing only the work that changed.

A file whose content (and chunking settings) is unchanged is not read past its hash; changed files are
re-chunked and replace their old chunks; files gone from a scanned folder lose theirs. Work is committed
in batches, so an interrupted ingest keeps what it finished and the next run redoes only the rest.
"""

import fnmatch
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from scifi_llm.config import Workspace
from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_write_text, outside, outside_reason
from scifi_llm.lore.chunk import HEADING_SEPARATOR, Chunk, chunk_document
from scifi_llm.lore.embed import Embedder
from scifi_llm.lore.entities import NoteFacts, note_facts
from scifi_llm.lore.facts import note_statements
from scifi_llm.lore.links import LinkResolver
from scifi_llm.lore.markdown import Document, note_pieces, parse_document
from scifi_llm.lore.store import FORMAT, STAGING, ChunkRow, Collection, LoreIndex, compact_json
from scifi_llm.textio import NotText, looks_binary, read_text

LORE_EXTENSIONS = (".md", ".markdown", ".txt")
IGNORE_FILE = ".scifi-llm-ignore"
# Bump when chunking or fact extraction changes, so every file is re-chunked once.
PIPELINE_VERSION = "4"
PIECE_CHARS = 2**20  # a note longer than this is read, chunked and stored a piece at a time


@dataclass(frozen=True)
class IngestOptions:
    """How to chunk and where to store."""

    collection: str
    embedding_model: str | None  # as asked for; None keeps the collection's own model
    default_model: str  # for a collection that does not exist yet
    chunk_tokens: int
    chunk_overlap: int
    rebuild: bool = False
    batch_chunks: int = 64
    outside_folders: tuple[Path, ...] = ()  # where symlinks in the lore folder may lead

    @classmethod
    def from_workspace(cls, workspace: Workspace, **changes) -> "IngestOptions":
        """The options the workspace's `[lore]` settings give, with `changes` over them (None: no change)."""
        lore = workspace.settings.lore
        options = cls(
            collection=lore.collection,
            embedding_model=None,
            default_model=lore.embedding_model,
            chunk_tokens=lore.chunk_tokens,
            chunk_overlap=lore.chunk_overlap,
            outside_folders=workspace.outside_folders,
        )
        return replace(options, **{name: value for name, value in changes.items() if value is not None})


@dataclass
class IngestReport:
    """What an ingest did; `skipped` and `warnings` hold (file, reason) pairs."""

    collection: str
    embedding_model: str
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    unresolved_links: list[tuple[str, str]] = field(default_factory=list)
    changes: list[tuple[str, str]] = field(default_factory=list)  # (file, "new" | "changed" | "removed")

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        values = dict(self.__dict__)
        values["skipped"] = [{"file": name, "reason": reason} for name, reason in self.skipped]
        values["warnings"] = [{"file": name, "message": message} for name, message in self.warnings]
        values["unresolved_links"] = [{"file": name, "link": link} for name, link in self.unresolved_links]
        values["changes"] = [{"file": name, "change": change} for name, change in self.changes]
        return values


@dataclass(frozen=True)
class LoreFile:
    """A file found under a scanned root, with the name it is stored under."""

    path: Path
    source: str


@dataclass(frozen=True)
class PreparedFile:
    """A changed file, chunked (or, for a long note, counted and chunked again as it is stored)."""

    source: str
    file_hash: str
    n_chunks: int
    facts: NoteFacts
    chunks: Callable[[], Iterable[Chunk]]  # the chunks in order, each time it is called
    stored: frozenset[int] = frozenset()  # chunks an interrupted ingest already stored: not embedded again

    @property
    def to_embed(self) -> int:
        """How many chunks are still to embed and store."""
        return self.n_chunks - len(self.stored)


class IngestProgress:
    """Callbacks for a progress display; the default does nothing."""

    def planned(self, files_to_embed: int, chunks_to_embed: int) -> None:
        """Called once the work is known."""

    def embedded(self, chunks: int) -> None:
        """Called after each batch of chunks is embedded."""


def scan(
    roots: list[Path], lore_dir: Path, outside_folders: Sequence[Path] = ()
) -> tuple[list[LoreFile], list[tuple[str, str]], list[str]]:
    """Lore files under `roots`, the skipped ones with reasons, and the source prefixes that were scanned.

    Hidden files and folders (`.obsidian/`, `.trash/`) are passed over; files matching a pattern of the lore
    folder's `.scifi-llm-ignore`, and symlinks that lead out of the folder (except into `outside_folders`),
    are skipped and said so.
    """
    files, skipped, prefixes = [], [], []
    ignored = IgnoreFile(lore_dir / IGNORE_FILE)
    for root in roots:
        root = root.expanduser().resolve()
        if not root.exists():
            raise UserError(f"lore folder {root} does not exist: create it and put your notes in it")
        candidates = sorted(path for path in root.rglob("*") if path.is_file()) if root.is_dir() else [root]
        prefixes.append(_source_name(root, lore_dir) if root != lore_dir else "")
        for path in candidates:
            if any(
                part.startswith(".")
                for part in path.relative_to(root if root.is_dir() else root.parent).parts
            ):
                continue
            source = _source_name(path, lore_dir)
            target = outside(path, [root if root.is_dir() else root.parent, *outside_folders])
            if target is not None:
                skipped.append((source, outside_reason(target)))
            elif ignored.matches(source):
                skipped.append((source, f"matches {ignored.matches(source)!r} in {IGNORE_FILE}"))
            elif path.suffix.lower() not in LORE_EXTENSIONS:
                skipped.append((source, f"unsupported extension {path.suffix or '(none)'}; use .md or .txt"))
            else:
                files.append(LoreFile(path, source))
    return files, skipped, prefixes


class IgnoreFile:
    """`.scifi-llm-ignore`: one pattern a line, as in .gitignore: `todo.txt` or `*.draft.md` match a file
    name anywhere, `drafts/` a folder, `ideas/*.md` a path from the lore folder; `#` starts a comment."""

    def __init__(self, path: Path) -> None:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
        self.patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]

    def matches(self, source: str) -> str | None:
        """The first pattern that matches a source (relative to the lore folder), or None."""
        parts = source.split("/")
        for pattern in self.patterns:
            bare = pattern.strip("/")
            if pattern.endswith("/") and any(fnmatch.fnmatch(part, bare) for part in parts[:-1]):
                return pattern
            if "/" in bare and fnmatch.fnmatch(source, bare):
                return pattern
            if "/" not in bare and not pattern.endswith("/") and fnmatch.fnmatch(parts[-1], bare):
                return pattern
        return None


def _source_name(path: Path, lore_dir: Path) -> str:
    """Sources are named relative to the lore folder; files outside it keep their absolute path."""
    return path.relative_to(lore_dir).as_posix() if path.is_relative_to(lore_dir) else path.as_posix()


def file_hash(path: Path, options: IngestOptions) -> str:
    """The content hash, salted with everything that changes how a file is chunked (read in blocks)."""
    digest = hashlib.sha256(f"v{PIPELINE_VERSION}:{options.chunk_tokens}:{options.chunk_overlap}:".encode())
    with path.open("rb") as handle:
        while block := handle.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def prepare(
    lore_file: LoreFile, digest: str, options: IngestOptions, report: IngestReport
) -> PreparedFile | None:
    """Read, parse and chunk one file; None (with the reason recorded) when there is nothing to index."""
    if lore_file.path.stat().st_size > PIECE_CHARS:
        return _prepare_in_pieces(lore_file, digest, options, report)
    try:
        decoded = read_text(lore_file.path)
    except NotText as exc:
        report.skipped.append((lore_file.source, str(exc)))
        return None
    if decoded.used_fallback:
        report.warnings.append((lore_file.source, f"not valid UTF-8, decoded as {decoded.encoding}"))
    if not decoded.text.strip():
        report.skipped.append((lore_file.source, "empty file"))
        return None
    document = parse_document(decoded.text, lore_file.source)
    if document.front_matter_error:
        report.warnings.append((lore_file.source, f"{document.front_matter_error}; indexed as plain text"))
    chunks = chunk_document(document, options.chunk_tokens, options.chunk_overlap)
    if not chunks:
        report.skipped.append((lore_file.source, "no text to index (headings only)"))
        return None
    return PreparedFile(lore_file.source, digest, len(chunks), _note_facts(document), lambda: chunks)


def _prepare_in_pieces(
    lore_file: LoreFile, digest: str, options: IngestOptions, report: IngestReport
) -> PreparedFile | None:
    """A long note, read and chunked a piece at a time (`note_pieces`), so memory holds one piece, not
    the note: a first pass counts the chunks and gathers the note's facts, and the chunks are made again
    as they are stored. Chunks never span two pieces (a piece ends before a heading)."""
    with lore_file.path.open("rb") as handle:
        if looks_binary(handle.read(8192)):
            report.skipped.append((lore_file.source, "binary file (not text)"))
            return None
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):  # as `read_text` chooses, found while counting
        try:
            title, facts, count, front_matter_error = _count_pieces(lore_file, encoding, options)
            break
        except UnicodeDecodeError:
            continue
    if encoding != "utf-8-sig":
        report.warnings.append((lore_file.source, f"not valid UTF-8, decoded as {encoding}"))
    if front_matter_error:
        report.warnings.append((lore_file.source, f"{front_matter_error}; indexed as plain text"))
    if not count:
        report.skipped.append((lore_file.source, "no text to index (headings only)"))
        return None

    def chunks() -> Iterator[Chunk]:
        for document in _piece_documents(lore_file, encoding, title):
            yield from chunk_document(document, options.chunk_tokens, options.chunk_overlap)

    return PreparedFile(lore_file.source, digest, count, facts, chunks)


def _note_facts(document: Document) -> NoteFacts:
    """A note's names (for the entity registry) and its checkable statements (for the fact table)."""
    facts = note_facts(document)
    facts.statements, facts.pronouns = note_statements(document)
    return facts


def _piece_documents(lore_file: LoreFile, encoding: str, title: str | None = None) -> Iterator[Document]:
    """The pieces of a long note, parsed; every piece after the first under the first one's title."""
    with lore_file.path.open(encoding=encoding) as lines:
        for text in note_pieces(lines, PIECE_CHARS):
            document = parse_document(text, lore_file.source, title)
            title = title or document.title
            yield document


def _count_pieces(
    lore_file: LoreFile, encoding: str, options: IngestOptions
) -> tuple[str, NoteFacts | None, int, str | None]:
    """A long note's title, facts gathered over all its pieces, chunk count, and front matter error."""
    title, facts, count, front_matter_error = None, None, 0, None
    for document in _piece_documents(lore_file, encoding):
        front_matter_error = front_matter_error if facts else document.front_matter_error
        title = title or document.title
        count += len(chunk_document(document, options.chunk_tokens, options.chunk_overlap))
        if facts is None:
            facts = _note_facts(document)
        else:
            facts.add(_note_facts(document))
    return title, facts, count, front_matter_error


def ingest_lore(
    roots: list[Path],
    lore_dir: Path,
    index: LoreIndex,
    options: IngestOptions,
    load_embedder: Callable[[str], Embedder] = Embedder,
    progress: IngestProgress | None = None,
) -> IngestReport:
    """Bring a collection up to date with the lore files under `roots`; one ingest at a time per index."""
    with index.writing():
        return _ingest(roots, lore_dir, index, options, load_embedder, progress)


def _ingest(
    roots: list[Path],
    lore_dir: Path,
    index: LoreIndex,
    options: IngestOptions,
    load_embedder: Callable[[str], Embedder],
    progress: IngestProgress | None,
) -> IngestReport:
    started = time.perf_counter()
    files, skipped, prefixes = scan(roots, lore_dir, options.outside_folders)
    hashes = {lore_file.source: file_hash(lore_file.path, options) for lore_file in files}
    stamp = IngestStamp(index, options.collection)
    unchanged = None if options.rebuild else stamp.unchanged(options, hashes, prefixes, skipped)
    if unchanged is not None:
        unchanged.seconds = round(time.perf_counter() - started, 3)
        return unchanged
    existing = index.open(options.collection) if options.collection in index.names() else None
    outdated = existing is not None and existing.format != FORMAT
    states = existing.file_states() if existing and not options.rebuild and not outdated else {}
    if not files and not skipped and not any(_under(source, prefixes) for source in states):
        raise UserError(f"no lore files in {', '.join(str(root) for root in roots)}: add .md or .txt notes")
    collection, embedder = _open_collection(index, existing, options, load_embedder)
    rebuilding = collection.name != options.collection  # built beside the one in use, swapped in at the end
    report = IngestReport(options.collection, collection.model_name, len(files), skipped=list(skipped))
    if outdated and not options.rebuild:
        report.warnings.append((options.collection, "written by an older scifi-llm: rebuilt from scratch"))
    changed = _changed_files(files, hashes, states, collection, options, report)
    present = {lore_file.source for lore_file in files}
    gone = [source for source in states if source not in present and _under(source, prefixes)]
    collection.delete_sources(gone)
    report.files_removed = len(gone)
    report.changes += [(source, "removed") for source in gone]
    if changed:
        embedder = embedder or load_embedder(collection.model_name)
        _embed_and_store(collection, embedder, changed, options, progress or IngestProgress(), report)
    if changed or gone or rebuilding:
        collection.finish()
    if rebuilding:
        index.replace(options.collection, collection.name)
        collection = index.open(options.collection)
    report.chunks_total = collection.count()
    report.unresolved_links = unresolved_links(
        collection, [name for name, _ in report.skipped if name in hashes]
    )
    stamp.write(options, hashes, prefixes, report)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class IngestStamp:
    """What the last complete ingest of a collection saw, kept beside the index: the files' hashes, the
    folders scanned, and the collection's committed versions.

    When nothing differs, an ingest is answered from the stamp without opening LanceDB (which alone takes
    over a second to load). The collection stays the truth: any change to it (another ingest, a crash
    half-way, `lore remove`) changes its versions, and then the ingest does the full check.
    """

    def __init__(self, index: LoreIndex, collection: str) -> None:
        self.index, self.collection = index, collection
        self.path = index.index_dir / f"{collection}.ingest.json"

    def unchanged(
        self, options: IngestOptions, hashes: dict[str, str], prefixes: list[str], skipped: list
    ) -> IngestReport | None:
        """The report of an ingest with nothing to do, or None when anything may have changed."""
        try:
            stamp = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        same = (
            stamp.get("format") == FORMAT
            and stamp.get("files") == hashes
            and stamp.get("prefixes") == prefixes
            and options.embedding_model in (None, stamp.get("model"))
            and stamp.get("versions") == self.index.fingerprint(self.collection)
        )
        if not same:
            return None
        held_back = [tuple(pair) for pair in stamp["held_back"]]
        return IngestReport(
            self.collection,
            stamp["model"],
            files_seen=len(hashes),
            files_unchanged=len(hashes) - len(held_back),
            chunks_total=stamp["chunks_total"],
            skipped=[*skipped, *held_back],
            unresolved_links=[tuple(pair) for pair in stamp["unresolved_links"]],
        )

    def write(self, options: IngestOptions, hashes: dict, prefixes: list[str], report: IngestReport) -> None:
        """Record a complete ingest (atomically)."""
        stamp = {
            "format": FORMAT,
            "model": report.embedding_model,
            "files": hashes,
            "prefixes": prefixes,
            "held_back": [pair for pair in report.skipped if pair[0] in hashes],  # read, but nothing to index
            "chunks_total": report.chunks_total,
            "unresolved_links": report.unresolved_links,
            "versions": self.index.fingerprint(self.collection),
        }
        atomic_write_text(self.path, json.dumps(stamp, ensure_ascii=False))


def unresolved_links(collection: Collection, other_notes: list[str] = ()) -> list[tuple[str, str]]:
    """(file, link) for every `[[wikilink]]` that names no note, as Obsidian would: neither a note of the
    collection nor one of `other_notes` (notes read but with nothing to index, such as a title alone)."""
    rows = collection.rows(["source", "links"])
    resolver = LinkResolver([*(row["source"] for row in rows), *other_notes])
    broken = {
        (row["source"], target)
        for row in rows
        for target in json.loads(row["links"] or "[]")
        if resolver.resolve(target) is None
    }
    return sorted(broken)


def _changed_files(
    files: list[LoreFile],
    hashes: dict[str, str],
    states: dict,
    collection: Collection,
    options: IngestOptions,
    report: IngestReport,
) -> list[PreparedFile]:
    """The files to (re-)embed, chunked; unchanged ones are counted, unreadable ones lose old chunks, and
    notes far larger than the others are named."""
    changed, large = [], _large_note_bytes(files)
    for lore_file in files:
        digest = hashes[lore_file.source]
        state = states.get(lore_file.source)
        if state is not None and state.is_current(digest):
            report.files_unchanged += 1
            continue
        size = lore_file.path.stat().st_size
        if size > large:
            report.warnings.append((lore_file.source, _LARGE_NOTE.format(size / 2**20)))
        prepared = prepare(lore_file, digest, options, report)
        if prepared is not None:
            stored = state.stored(digest) if state is not None else frozenset()
            changed.append(replace(prepared, stored=stored))
            report.changes.append((lore_file.source, "new" if state is None else "changed"))
        elif state is not None:
            collection.delete_sources([lore_file.source])
    return changed


_LARGE_NOTE = (
    "{:.1f} MB, far larger than a note usually is: it is indexed in batches, but split into notes it "
    "would be retrieved better"
)


def _large_note_bytes(files: list[LoreFile]) -> float:
    """The size above which a note is far larger than usual: 50 times the median note, and at least 1 MB."""
    sizes = sorted(lore_file.path.stat().st_size for lore_file in files)
    return max(2**20, 50 * sizes[(len(sizes) - 1) // 2]) if sizes else float("inf")


def _embed_and_store(
    collection: Collection,
    embedder: Embedder,
    changed: list[PreparedFile],
    options: IngestOptions,
    progress: IngestProgress,
    report: IngestReport,
) -> None:
    """Embed and store the changed files' chunks in batches of about `batch_chunks`, each committed before
    the next starts; a large file spans many batches, so a kill loses one batch, not the file."""
    progress.planned(len(changed), sum(prepared.to_embed for prepared in changed))
    run = uuid.uuid4().hex
    for batch in _batches(changed, options.batch_chunks):
        report.chunks_embedded += _store_batch(collection, embedder, batch, run, progress)
        report.files_indexed += sum(1 for *_, last in batch if last)


def _open_collection(
    index: LoreIndex,
    existing: Collection | None,
    options: IngestOptions,
    load_embedder: Callable[[str], Embedder],
) -> tuple[Collection, Embedder | None]:
    """The collection to write, created (with the embedder it needs) when new or rebuilding.

    A collection that exists and must be built again is built beside it, under a staging name, so the
    one in use keeps serving (the proxy, queries) until the new one is complete; an interrupted rebuild
    leaves the old collection as it was. The model is the one asked for, else the one the collection
    was built with, else the default.
    """
    if existing is not None and not options.rebuild:
        if options.embedding_model and options.embedding_model != existing.model_name:
            raise UserError(
                f"collection {options.collection} was built with {existing.model_name}, not "
                f"{options.embedding_model}: add --rebuild to re-embed it all with the new model"
            )
        if existing.format == FORMAT:
            return existing, None
    model_name = options.embedding_model or (existing.model_name if existing else options.default_model)
    embedder = load_embedder(model_name)
    name = options.collection + STAGING if existing is not None else options.collection
    return index.create(name, embedder.dimension, model_name), embedder


def _under(source: str, prefixes: list[str]) -> bool:
    return any(
        prefix == "" or source == prefix or source.startswith(prefix.rstrip("/") + "/") for prefix in prefixes
    )


_Item = tuple[PreparedFile, int | None, Chunk | None, bool]  # (file, index, chunk, the file's last item)


def _batches(files: list[PreparedFile], batch_chunks: int) -> Iterator[list[_Item]]:
    """The chunks still to embed, in batches of `batch_chunks`, made as they are needed; a file with none
    left still gets an item, so its stale rows are dropped."""
    batch: list[_Item] = []
    for prepared in files:
        if not prepared.to_embed:
            batch.append((prepared, None, None, True))
        else:
            for index, chunk in enumerate(prepared.chunks()):
                if index not in prepared.stored:
                    batch.append((prepared, index, chunk, index == prepared.n_chunks - 1))
                if len(batch) >= batch_chunks:
                    yield batch
                    batch = []
    if batch:
        yield batch


def _store_batch(
    collection: Collection, embedder: Embedder, batch: list[_Item], run: str, progress: IngestProgress
) -> int:
    """Embed and add a batch of chunks, then drop the old rows of the files it completes; returns the
    number of chunks embedded."""
    items = [(prepared, index, chunk) for prepared, index, chunk, _ in batch if chunk is not None]
    texts = [embedding_text(chunk) for _, _, chunk in items]
    vectors = embedder.embed_documents(texts, on_batch=progress.embedded) if texts else []
    collection.add([_row(*item, run, vector) for item, vector in zip(items, vectors, strict=True)])
    finished = [prepared for prepared, _, _, last in batch if last]
    collection.drop_stale([(done.source, done.file_hash, bool(done.stored)) for done in finished], run)
    return len(items)


def _row(prepared: PreparedFile, index: int, chunk: Chunk, run: str, vector) -> ChunkRow:
    return ChunkRow(
        source=prepared.source,
        file_hash=prepared.file_hash,
        chunk_index=index,
        n_chunks=prepared.n_chunks,
        heading=chunk.heading,
        text=chunk.text,
        search_text=keyword_text(prepared.facts, chunk),
        tokens=chunk.tokens,
        context_chars=chunk.context_chars,
        joiner=chunk.joiner,
        sections=compact_json([HEADING_SEPARATOR.join(path) for path in chunk.sections]),
        links=compact_json(list(chunk.links)),
        facts=compact_json(prepared.facts.to_dict()) if index == 0 else "",
        run=run,
        vector=vector,
    )


def embedding_text(chunk: Chunk) -> str:
    """What gets embedded: the heading path, then the chunk text."""
    return f"{chunk.heading}\n{chunk.text}"


def keyword_text(facts: NoteFacts, chunk: Chunk) -> str:
    """What the full-text index sees: the embedded text plus the note's aliases and tags.

    Aliases go to the keyword index only: a vector of a chunk stays about what the chunk says, while a
    nickname in a query still finds the note by keyword (and through the entity registry).
    """
    names = dict.fromkeys([*facts.aliases, *(alias for alias, _ in facts.prose_aliases)])
    aliases = f" (also: {', '.join(names)})" if names else ""
    tags = f" [{', '.join(facts.tags)}]" if facts.tags else ""
    return f"{chunk.heading}{aliases}{tags}\n{chunk.text}"
