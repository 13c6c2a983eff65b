"""Finding the lore a request needs: entity triggers + dense + keyword, fused, deduplicated, budgeted.

`hybrid` works like a lorebook plus a search engine. Any entity named in the query (by name, title or
nickname, whole word, any case) puts its chunks in the running, ranked among themselves by meaning; a
nickname also adds the entity's real name to the query, so "Ledger's arm" searches for Elena Voss's arm.
Dense and BM25 keyword searches add their own candidates. The three ranked lists are fused with
weighted reciprocal-rank fusion; the weights were tuned on examples/lore_questions.jsonl and checked on a
held-out lore folder (see perf/RESULTS.md).
"""

import json
import re
import time
from dataclasses import dataclass, field

import numpy as np

from scifi_llm.config import RetrievalMode
from scifi_llm.lore.embed import Embedder
from scifi_llm.lore.entities import EntityRegistry, Mention, NoteFacts
from scifi_llm.lore.store import Collection, sql_string
from scifi_llm.tokens import count_tokens


@dataclass(frozen=True)
class Fusion:
    """Weights of the ranked lists in reciprocal-rank fusion: score = sum(weight / (k + rank))."""

    dense: float = 1.0
    keyword: float = 1.0
    entity: float = 1.0
    k: int = 60
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


class Retriever:
    """Queries one collection with the embedding model it was built with (loaded once)."""

    def __init__(self, collection: Collection, embedder: Embedder | None = None, fusion: Fusion = Fusion()) -> None:
        self.collection = collection
        self.embedder = embedder or Embedder(collection.model_name)
        self.fusion = fusion
        rows = collection.rows(["id", "source", "heading", "facts"])
        notes = {row["source"]: NoteFacts.from_dict(json.loads(row["facts"])) for row in rows if row["facts"]}
        self.registry = EntityRegistry(notes)
        self._chunk_ids: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            self._chunk_ids.setdefault(row["source"], []).append((row["id"], row["heading"]))

    def search(self, query: str, k: int = 5, mode: RetrievalMode = "hybrid", budget_tokens: int | None = None) -> Retrieval:
        """The top `k` chunks for `query`, cut to `budget_tokens` of text in total."""
        started = time.perf_counter()
        mentions = self.registry.find(query) if mode == "hybrid" else []
        search_text = expand_query(query, mentions)
        vector = self.embedder.embed_query(search_text)
        ranked = self._ranked(search_text, vector, mentions, mode)
        results, dropped = select(ranked, k, budget_tokens)
        self._fill_distances(results, vector)
        names = [f"{mention.entity.name} ({mention.matched})" if mention.by_alias else mention.entity.name for mention in mentions]
        elapsed = (time.perf_counter() - started) * 1000
        return Retrieval(query, results, dropped, names, elapsed)

    def _ranked(self, text: str, vector: np.ndarray, mentions: list[Mention], mode: RetrievalMode) -> list[Hit]:
        pool = self.fusion.pool
        lists: list[tuple[float, str, list[dict]]] = []
        if mode in ("hybrid", "dense"):
            lists.append((self.fusion.dense, "dense", self.collection.dense_search(vector, pool)))
        if mode in ("hybrid", "keyword"):
            lists.append((self.fusion.keyword, "keyword", self.collection.keyword_search(text, pool)))
        for mention in mentions:
            reason = f"alias:{mention.matched}" if mention.by_alias else f"name:{mention.entity.name}"
            lists.append((self.fusion.entity, reason, self._entity_chunks(mention, vector)))
        if mode != "hybrid":
            return [_hit(row, _single_score(row), [lists[0][1]]) for row in lists[0][2]]
        return fuse(lists, self.fusion.k)

    def _entity_chunks(self, mention: Mention, vector: np.ndarray) -> list[dict]:
        """The chunks an entity's scope covers, nearest to the query first."""
        entity = mention.entity
        prefix = " > ".join(entity.scope)
        ids = [
            chunk_id
            for chunk_id, heading in self._chunk_ids.get(entity.source, [])
            if not prefix or heading == prefix or heading.startswith(prefix + " > ")
        ]
        if not ids:
            return []
        where = f"id IN ({', '.join(sql_string(chunk_id) for chunk_id in ids)})"
        return self.collection.dense_search(vector, len(ids), where=where)

    def _fill_distances(self, hits: list[Hit], vector: np.ndarray) -> None:
        """Cosine distance of each hit to the query, for those no dense list measured."""
        missing = [hit for hit in hits if hit.distance is None]
        if not missing:
            return
        where = f"id IN ({', '.join(sql_string(hit.chunk_id) for hit in missing)})"
        vectors = {row["id"]: np.asarray(row["vector"]) for row in self.collection.rows(["id", "vector"], where)}
        for hit in missing:
            if hit.chunk_id in vectors:
                hit.distance = float(1.0 - vectors[hit.chunk_id] @ vector)


def expand_query(query: str, mentions: list[Mention]) -> str:
    """The query plus the real names of entities it calls by a nickname or title."""
    names = [mention.entity.name for mention in mentions if mention.by_alias]
    extra = [name for name in dict.fromkeys(names) if name.lower() not in query.lower()]
    return f"{query} ({'; '.join(extra)})" if extra else query


def fuse(lists: list[tuple[float, str, list[dict]]], k: int) -> list[Hit]:
    """Weighted reciprocal-rank fusion of ranked row lists, best first; reasons name every list a hit was in."""
    hits: dict[str, Hit] = {}
    for weight, reason, rows in lists:
        for rank, row in enumerate(rows, start=1):
            hit = hits.get(row["id"]) or hits.setdefault(row["id"], _hit(row, 0.0, []))
            hit.score += weight / (k + rank)
            if reason not in hit.reasons:
                hit.reasons.append(reason)
            if hit.distance is None and "_distance" in row:
                hit.distance = float(row["_distance"])
    return sorted(hits.values(), key=lambda hit: (-hit.score, hit.chunk_id))


def select(ranked: list[Hit], k: int, budget_tokens: int | None) -> tuple[list[Hit], list[dict]]:
    """Take hits in rank order, skipping repeats of text already taken and hits over the token budget."""
    taken: list[Hit] = []
    dropped: list[dict] = []
    used = 0
    seen_texts: list[str] = []
    for hit in ranked:
        if len(taken) == k:
            break
        folded = fold_text(hit.text)
        if any(folded in seen for seen in seen_texts):
            dropped.append(_dropped(hit, "duplicate"))
            continue
        if budget_tokens is not None and used + hit.tokens > budget_tokens:
            dropped.append(_dropped(hit, "budget"))
            continue
        taken.append(hit)
        seen_texts.append(folded)
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
