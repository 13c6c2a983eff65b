"""Lore search for a server: retrievers kept open per collection, concurrent queries batched.

The proxy (and the desk, through it) asks this service for each request's lore instead of opening a
retriever of its own: the embedding model is loaded once, queries that arrive together share one forward
pass, and a collection re-ingested on disk is reloaded without a restart.
"""

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from scifi_llm.config import RetrievalMode, Workspace
from scifi_llm.lore.embed import Embedder
from scifi_llm.lore.retrieve import Retrieval, Retriever, Steer
from scifi_llm.lore.store import LoreIndex

log = logging.getLogger("scifi_llm.lore")
LONG_QUERY_CHARS = 1000


def open_retriever(
    workspace: Workspace, collection: str | None = None, embedder: Embedder | None = None
) -> Retriever:
    """A retriever on one of the workspace's collections (its `[lore] collection` unless named), with the
    embedding model the collection was built with (loaded unless `embedder` is given)."""
    return Retriever(
        LoreIndex(workspace.index_dir).open(collection or workspace.settings.lore.collection), embedder
    )


@dataclass
class _Loaded:
    """A collection's retriever and the index version it was built from."""

    retriever: Retriever
    version: tuple[str, int]
    checked: float


@dataclass
class _Question:
    """One request's lore search, waiting for the batch it joins."""

    query: str
    recent: str
    steer: Steer
    collection: str
    k: int
    budget: int
    mode: RetrievalMode
    answer: asyncio.Future


class LoreService:
    """Retrievers per collection, opened on first use, searched in worker threads.

    Requests that arrive while a search runs wait and are then searched together, their query embeddings
    computed in one batch: under load, one forward pass of the embedding model serves many requests
    instead of each waiting for its own. Long queries (a pasted chapter's end) cost several short ones
    each: they take a lane of their own and are searched one at a time beside the short ones' batches, so
    a flood of them never holds up the others. Every few seconds a search also checks whether the
    collection changed on disk (`lore ingest` while the proxy runs) and, if so, reloads it, keeping the
    embedding model: new lore reaches requests without a restart.
    """

    RELOAD_CHECK_S = 2.0

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()
        self._waiting: dict[bool, list[_Question]] = {False: [], True: []}  # by lane: is the query long?
        self._workers: dict[bool, asyncio.Task] = {}

    async def search(
        self,
        query: str,
        collection: str,
        k: int,
        budget: int,
        mode: RetrievalMode,
        recent: str = "",
        steer: Steer | None = None,
    ) -> Retrieval:
        """The lore for a query (with `recent`, the turns before it, whose entities count too), pinned,
        blocked and held back as `steer` says."""
        loop = asyncio.get_running_loop()
        question = _Question(
            query, recent, steer or Steer(), collection, k, budget, mode, loop.create_future()
        )
        long = len(query) > LONG_QUERY_CHARS
        self._waiting[long].append(question)
        if long not in self._workers or self._workers[long].done():
            self._workers[long] = loop.create_task(self._answer_waiting(long))
        return await question.answer

    async def _answer_waiting(self, long: bool) -> None:
        """Search for the questions waiting in a lane: the short ones all together, the long ones one by
        one. A question whose request gave up waiting is dropped unsearched."""
        while waiting := [question for question in self._waiting[long] if not question.answer.done()]:
            batch = waiting[:1] if long else waiting
            self._waiting[long] = waiting[len(batch) :]
            outcomes = await asyncio.to_thread(self._search_batch, batch)
            for question, outcome in zip(batch, outcomes, strict=True):
                if question.answer.done():  # the request gave up waiting while its search ran
                    continue
                if isinstance(outcome, Exception):
                    question.answer.set_exception(outcome)
                else:
                    question.answer.set_result(outcome)
        self._waiting[long] = []

    def _search_batch(self, batch: list[_Question]) -> list[Retrieval | Exception]:
        """Each question's lore (or the error that stopped it), one embedding batch per kind of search."""
        outcomes: list[Retrieval | Exception] = [Retrieval("", []) for _ in batch]
        groups: dict[tuple, list[int]] = {}
        for index, question in enumerate(batch):
            groups.setdefault((question.collection, question.k, question.budget, question.mode), []).append(
                index
            )
        for (collection, k, budget, mode), indices in groups.items():
            questions = [batch[i] for i in indices]
            try:
                with self._lock:  # a retriever is opened or reloaded by one thread; searching it is safe
                    retriever = self._retriever(collection)
                found = retriever.search_many(
                    [question.query for question in questions],
                    k,
                    mode,
                    budget,
                    recent=[question.recent for question in questions],
                    steer=[question.steer for question in questions],
                )
            except Exception as exc:  # fail open, per request: the proxy answers without lore
                found = [exc] * len(indices)
            for index, retrieval in zip(indices, found, strict=True):
                outcomes[index] = retrieval
        return outcomes

    def preload(self, collection: str) -> None:
        """Open a collection and load its embedding model now, so the first request is not slow."""
        try:
            with self._lock:
                self._retriever(collection)
        except Exception as exc:  # the proxy still serves, without lore, until the index exists
            log.warning("lore collection %s not loaded (%s); requests go without lore", collection, exc)

    def _retriever(self, collection: str) -> Retriever:
        loaded, now = self._loaded.get(collection), time.monotonic()
        if loaded is not None and now - loaded.checked < self.RELOAD_CHECK_S:
            return loaded.retriever
        fresh = LoreIndex(self.index_dir).open(collection)
        if loaded is None or fresh.version != loaded.version:
            same_model = loaded is not None and loaded.retriever.collection.model_name == fresh.model_name
            if loaded is not None:
                log.info("lore collection %s changed on disk: reloading it", collection)
            retriever = Retriever(fresh, loaded.retriever.embedder if same_model else None)
            loaded = self._loaded[collection] = _Loaded(retriever, fresh.version, now)
        loaded.checked = now
        return loaded.retriever

    def retriever(self, collection: str) -> Retriever:
        """The collection's retriever (its entities, its embedding model), opened or reloaded if needed."""
        with self._lock:
            return self._retriever(collection)

    def changed(self, collection: str) -> None:
        """Say the collection changed on disk (the desk re-ingested a note): the next search reloads it."""
        with self._lock:
            if collection in self._loaded:
                self._loaded[collection].checked = -self.RELOAD_CHECK_S

    def embedder(self, model_name: str) -> Embedder:
        """An embedding model this service already holds, else a newly loaded one (for an ingest)."""
        with self._lock:
            for loaded in self._loaded.values():
                if loaded.retriever.collection.model_name == model_name:
                    return loaded.retriever.embedder
        return Embedder(model_name)

    def chunks(self, collection: str) -> int | None:
        """Chunks in a collection, or None when there is no such collection."""
        index = LoreIndex(self.index_dir)
        return index.open(collection).count() if collection in index.names() else None
