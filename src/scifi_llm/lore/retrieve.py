"""Finding the lore a request needs: entity triggers + dense + keyword, fused, deduplicated, budgeted.

`hybrid` works like a lorebook plus a search engine. Any entity named in the query (by name, title or
nickname, whole word, any case) puts its chunks in the running, ranked among themselves by meaning; a
nickname also adds the entity's real name to the query, so "Ledger's arm" searches for Elena Voss's arm.
Dense and BM25 keyword searches add their own candidates, and each clause of a compound question ("who
built it, and when?") gets a dense search of its own. The ranked lists are fused with weighted
reciprocal-rank fusion; the weights were tuned on examples/lore_questions.jsonl and checked on a
held-out lore folder (see perf/RESULTS.md).
"""

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from scifi_llm.config import RetrievalMode
from scifi_llm.lore.embed import Embedder
from scifi_llm.lore.entities import EntityRegistry, Mention, NoteFacts
from scifi_llm.lore.store import Collection
from scifi_llm.tokens import count_tokens

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Fusion:
    """Weights of the ranked lists in reciprocal-rank fusion: score = sum(weight / (rrf_k + rank)).

    Tuned with perf/tune_fusion.py (see perf/RESULTS.md): a small rrf_k trusts the top of each list.
    """

    dense: float = 1.0
    keyword: float = 0.5
    entity: float = 0.25
    clause: float = 1.0
    rrf_k: int = 5
    pool: int = 50


@dataclass
class Hit:
    """One retrieved chunk and why it was chosen."""

    chunk_id: str
    text: str
    source: str
    heading: str
    tokens: int
    score: float = 0.0
    distance: float | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON shape of a result."""
        return {
            "text": self.text,
            "source": self.source,
            "heading": self.heading,
            "score": round(self.score, 6),
            "distance": None if self.distance is None else round(self.distance, 6),
            "tokens": self.tokens,
            "reasons": self.reasons,
        }


@dataclass
class Retrieval:
    """The answer to one query: the chunks in rank order, and what the budget or dedup dropped."""

    query: str
    results: list[Hit]
    dropped: list[dict] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    milliseconds: float = 0.0

    def to_dict(self) -> dict:
        """The JSON shape of `lore query --json`."""
        return {
            "query": self.query,
            "results": [hit.to_dict() for hit in self.results],
            "dropped": self.dropped,
            "entities": self.mentions,
            "ms": round(self.milliseconds, 2),
        }


@dataclass(frozen=True)
class _Chunks:
    """The collection's chunks held in memory: what results show, and one matrix of unit vectors."""

    rows: list[dict]
    vectors: "torch.Tensor"
    position: dict[str, int]
    by_source: dict[str, list[int]]

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of every chunk to each unit query vector: one row per query, one product.

        Computed by torch rather than numpy: numpy's BLAS threads would keep spinning after the product
        and slow the next query embedding down three-fold on a small CPU.
        """
        import torch

        return (torch.from_numpy(np.ascontiguousarray(vectors)) @ self.vectors.T).numpy()


def _load_chunks(collection: Collection) -> tuple[_Chunks, dict[str, NoteFacts]]:
    import torch  # here, not at the top: commands that never search should not pay for importing torch

    rows = collection.rows(["id", "source", "heading", "text", "tokens", "facts", "vector"])
    notes = {row["source"]: NoteFacts.from_dict(json.loads(row["facts"])) for row in rows if row["facts"]}
    dimension = collection.dimension
    matrix = np.asarray([row.pop("vector") for row in rows], dtype=np.float32).reshape(len(rows), dimension)
    by_source: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        del row["facts"]
        by_source.setdefault(row["source"], []).append(index)
    positions = {row["id"]: index for index, row in enumerate(rows)}
    return _Chunks(rows, torch.from_numpy(matrix), positions, by_source), notes


class Retriever:
    """Queries one collection with the embedding model it was built with (loaded once).

    Chunks and vectors are read once into memory: dense search is then one exact matrix product
    (under a millisecond at 10,000 chunks), while LanceDB keeps the data and answers BM25 queries.
    """

    def __init__(
        self, collection: Collection, embedder: Embedder | None = None, fusion: Fusion = Fusion()
    ) -> None:
        self.collection = collection
        self.embedder = embedder or Embedder(collection.model_name)
        self.fusion = fusion
        self._chunks, notes = _load_chunks(collection)
        self.registry = EntityRegistry(notes)

    def search(
        self, query: str, k: int = 5, mode: RetrievalMode = "hybrid", budget_tokens: int | None = None
    ) -> Retrieval:
        """The top `k` chunks for `query`, cut to `budget_tokens` of text in total."""
        return self.search_many([query], k, mode, budget_tokens)[0]

    def search_many(
        self, queries: list[str], k: int = 5, mode: RetrievalMode = "hybrid", budget_tokens: int | None = None
    ) -> list[Retrieval]:
        """`search` for several queries at once: their embeddings are computed in one batch (one forward
        pass of the model), which is most of the cost of a search."""
        started = time.perf_counter()
        texts = [self._query_texts(query, mode) for query in queries]
        vectors = self.embedder.embed_queries([text for group in texts for text in group])
        ends = list(itertools.accumulate(len(group) for group in texts))
        retrievals = []
        for query, end, group in zip(queries, ends, texts, strict=True):
            candidates = self.candidates(query, mode, vectors[end - len(group) : end])
            ranked = rank(candidates, mode, self.fusion)
            results, dropped = select(ranked, k, budget_tokens)
            for hit in results:
                hit.distance = float(1.0 - candidates.similarity[self._chunks.position[hit.chunk_id]])
            elapsed = (time.perf_counter() - started) * 1000
            retrievals.append(Retrieval(query, results, dropped, candidates.entity_names(), elapsed))
        return retrievals

    def _query_texts(self, query: str, mode: RetrievalMode) -> list[str]:
        """What a query embeds: the query (aliases expanded), then each clause of a compound question."""
        search_text = expand_query(query, self.registry.find(query) if mode == "hybrid" else [])
        clauses = split_clauses(query) if mode == "hybrid" else []
        return [search_text, *(expand_query(clause, self.registry.find(clause)) for clause in clauses)]

    def candidates(self, query: str, mode: RetrievalMode, vectors: np.ndarray | None = None) -> "Candidates":
        """The ranked lists a query draws from: dense, keyword, one per clause of a compound question,
        and one per entity it names. `vectors` are the query's embeddings when already computed."""
        mentions = self.registry.find(query) if mode == "hybrid" else []
        search_text = expand_query(query, mentions)
        if vectors is None:
            vectors = self.embedder.embed_queries(self._query_texts(query, mode))
        similarity, *clause_similarities = self._chunks.similarity(vectors)
        pool = self.fusion.pool
        lists: list[RankedList] = []
        if mode in ("hybrid", "dense"):
            lists.append(RankedList("dense", "dense", self._nearest(similarity, pool)))
        if mode in ("hybrid", "keyword"):
            lists.append(RankedList("keyword", "keyword", self._keyword(search_text, pool)))
        for clause_similarity in clause_similarities:
            lists.append(RankedList("clause", "dense", self._nearest(clause_similarity, pool)))
        for mention in mentions:
            reason = f"alias:{mention.matched}" if mention.by_alias else f"name:{mention.entity.name}"
            lists.append(RankedList("entity", reason, self._nearest(similarity, None, self._scope(mention))))
        return Candidates(mentions, vectors[0], similarity, lists)

    def _nearest(
        self, similarity: np.ndarray, limit: int | None, among: list[int] | None = None
    ) -> list[dict]:
        """Rows by cosine similarity, best first, each with its `_distance`: all, or only `among`."""
        indices = np.arange(len(similarity)) if among is None else np.asarray(among, dtype=np.int64)
        if limit is not None and len(indices) > limit:
            indices = indices[np.argpartition(-similarity[indices], limit)[:limit]]
        ordered = indices[np.argsort(-similarity[indices], kind="stable")]
        return [{**self._chunks.rows[i], "_distance": float(1.0 - similarity[i])} for i in ordered]

    def _keyword(self, text: str, limit: int) -> list[dict]:
        """BM25 matches from LanceDB's full-text index, as in-memory rows with their `_score`."""
        matches = self.collection.keyword_search(text, limit)
        position = self._chunks.position
        return [
            {**self._chunks.rows[position[m["id"]]], "_score": m["_score"]}
            for m in matches
            if m["id"] in position
        ]

    def _scope(self, mention: Mention) -> list[int]:
        """Positions of the chunks an entity's note or section covers."""
        prefix = " > ".join(mention.entity.scope)
        return [
            index
            for index in self._chunks.by_source.get(mention.entity.source, [])
            if not prefix
            or self._chunks.rows[index]["heading"] == prefix
            or self._chunks.rows[index]["heading"].startswith(prefix + " > ")
        ]


_QUESTION_WORD = (
    r"(?:(?:at|in|on|for|from|to|with|by)\s+)?"
    r"(?:wh(?:at|o|om|ose|ere|en|y|ich)|how|is|are|was|were|did|does|do)\b"
)
_CLAUSE_BREAK = re.compile(rf"\?\s+|;\s+|,?\s+and\s+(?={_QUESTION_WORD})", re.IGNORECASE)


def split_clauses(query: str) -> list[str]:
    """The separate questions in a compound query ("Who built it, and when?"); [] for a simple one."""
    clauses = [clause.strip(" ,?") for clause in _CLAUSE_BREAK.split(query)]
    clauses = [clause for clause in clauses if len(clause.split()) >= 3]
    return clauses if len(clauses) > 1 else []


def expand_query(query: str, mentions: list[Mention]) -> str:
    """The query plus the real names of entities it calls by a nickname or title.

    A part of the name ("Elena" for Elena Voss, "Concord" for the Meridian Concord) adds nothing: the
    query already holds the telling word, and repeating the full name would outweigh the rest of it.
    """
    names = [mention.entity.name for mention in mentions if mention.by_alias and not _shares_word(mention)]
    extra = [name for name in dict.fromkeys(names) if name.lower() not in query.lower()]
    return f"{query} ({'; '.join(extra)})" if extra else query


def _shares_word(mention: Mention) -> bool:
    words = lambda text: set(re.findall(r"\w+", text.lower()))  # noqa: E731
    return bool(words(mention.matched) & words(mention.entity.name))


@dataclass(frozen=True)
class RankedList:
    """Rows from one retriever, best first. `kind` picks the fusion weight; `reason` is shown to people."""

    kind: str
    reason: str
    rows: list[dict]


@dataclass(frozen=True)
class Candidates:
    """Everything retrieved for one query before fusion."""

    mentions: list[Mention]
    vector: np.ndarray
    similarity: np.ndarray
    lists: list[RankedList]

    def entity_names(self) -> list[str]:
        """The entities the query named, with the alias used when it was not the real name."""
        return [
            f"{mention.entity.name} ({mention.matched})" if mention.by_alias else mention.entity.name
            for mention in self.mentions
        ]


def rank(candidates: Candidates, mode: RetrievalMode, fusion: Fusion) -> list[Hit]:
    """The final ranking: the single list in dense or keyword mode, the fused lists in hybrid mode."""
    if mode != "hybrid":
        only = candidates.lists[0]
        return [_hit(row, _single_score(row), [only.reason]) for row in only.rows]
    return fuse(candidates.lists, fusion)


def fuse(lists: list[RankedList], fusion: Fusion) -> list[Hit]:
    """Weighted reciprocal-rank fusion, best first; reasons name every list a hit was in."""
    hits: dict[str, Hit] = {}
    for ranked in lists:
        weight = getattr(fusion, ranked.kind)
        for position, row in enumerate(ranked.rows, start=1):
            hit = hits.get(row["id"]) or hits.setdefault(row["id"], _hit(row, 0.0, []))
            hit.score += weight / (fusion.rrf_k + position)
            if ranked.reason not in hit.reasons:
                hit.reasons.append(ranked.reason)
            if hit.distance is None and "_distance" in row:
                hit.distance = float(row["_distance"])
    return sorted(hits.values(), key=lambda hit: (-hit.score, hit.chunk_id))


def select(ranked: list[Hit], k: int, budget_tokens: int | None) -> tuple[list[Hit], list[dict]]:
    """Take up to `k` hits in rank order, skipping repeated text and hits over the token budget."""
    taken: list[Hit] = []
    dropped: list[dict] = []
    used = 0
    for hit in ranked:
        if len(taken) == k:
            break
        folded = fold_text(hit.text)
        if any(folded in fold_text(other.text) for other in taken):
            dropped.append(_dropped(hit, "duplicate"))
        elif budget_tokens is not None and used + hit.tokens > budget_tokens:
            dropped.append(_dropped(hit, "budget"))
        else:
            taken.append(hit)
            used += hit.tokens
    return taken, dropped


def _hit(row: dict, score: float, reasons: list[str]) -> Hit:
    distance = float(row["_distance"]) if "_distance" in row else None
    tokens = row.get("tokens") or count_tokens(row["text"])
    return Hit(row["id"], row["text"], row["source"], row["heading"], tokens, score, distance, reasons)


def _single_score(row: dict) -> float:
    return 1.0 - float(row["_distance"]) if "_distance" in row else float(row.get("_score", 0.0))


def _dropped(hit: Hit, reason: str) -> dict:
    return {"source": hit.source, "heading": hit.heading, "tokens": hit.tokens, "reason": reason}


def fold_text(text: str) -> str:
    """Text folded for comparison: lower case, whitespace collapsed."""
    return re.sub(r"\s+", " ", text).strip().lower()
