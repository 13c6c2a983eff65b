"""Finding the lore a request needs: entity triggers + dense + keyword, fused, then grown into passages.

`hybrid` works like a lorebook plus a search engine. Any entity named in the query (by name, title or
nickname, whole word, any case) puts its chunks in the running, ranked among themselves by meaning; a
nickname also adds the entity's real name to the query, so "Ledger's arm" searches for Elena Voss's arm.
Dense and BM25 keyword searches add their own candidates, and each clause of a compound question ("who
built it, and when?") gets a dense search of its own. Entities named in the recent turns of a
conversation stay in the running, so "Continue." still finds the scene's people. The ranked lists are
fused with weighted reciprocal-rank fusion.

Then a second hop: the notes that the best chunks name (by the entity registry) or link to (by
`[[wikilinks]]`), and other notes that use a name they use, put their best-matching chunk in the running
right behind them, so "the engineer who survived the reactor fire" reaches the engineer's own sheet
through the note on the fire.

Last, small-to-big: the best chunks are grown into passages. Chunks are taken by priority (their fused
score), at most `k` notes, and each chunk taken makes its neighbours in the note candidates at a lower
priority, until `budget_tokens` is full. Neighbouring chunks are merged into one passage with nothing
repeated. The weights were tuned with perf/tune_fusion.py (see perf/RESULTS.md).
"""

import heapq
import itertools
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from scifi_llm.config import RetrievalMode
from scifi_llm.errors import UserError
from scifi_llm.lore.chunk import HEADING_SEPARATOR
from scifi_llm.lore.embed import Embedder
from scifi_llm.lore.entities import Entity, EntityRegistry, Mention, NoteFacts
from scifi_llm.lore.links import LinkResolver
from scifi_llm.lore.store import FORMAT, Collection
from scifi_llm.tokens import count_tokens

if TYPE_CHECKING:
    import torch

GAP = "\n\n[…]\n\n"  # between two parts of one note that are not neighbours
_GAP_TOKENS = count_tokens(GAP)


@dataclass(frozen=True)
class Fusion:
    """How the ranked lists are fused and the passages grown.

    Fusion: score = sum(weight / (rrf_k + rank)) over the lists a chunk is in; a small rrf_k trusts the
    top of each list. A chunk reached in the second hop from one of the `hop_from` best chunks gets that
    chunk's score times `hop` (a note it names or links to) or `name_hop` (another note using a name it
    uses). `recent` weighs the entities named in the conversation's recent turns (set by judgement: the
    question sets have no conversations). A neighbour of a chunk that was taken gets that chunk's
    priority times `neighbour`. Tuned with perf/tune_fusion.py on the tuning worlds (perf/RESULTS.md).
    """

    dense: float = 1.0
    keyword: float = 1.0
    entity: float = 0.25
    clause: float = 0.5
    recent: float = 1.0
    hop: float = 0.25
    name_hop: float = 0.1
    hop_from: int = 3
    neighbour: float = 0.3
    rrf_k: int = 5
    pool: int = 50


@dataclass(frozen=True)
class Steer:
    """What a request asks of the lore besides its query: notes always given (`pin`) and never given
    (`block`), by source path (`characters/elena_voss.md`), and the chunks the conversation already
    holds (`held`: counted against the budget, not given again)."""

    pin: frozenset[str] = frozenset()
    block: frozenset[str] = frozenset()
    held: frozenset[str] = frozenset()


@dataclass
class Hit:
    """One retrieved passage (one chunk, or neighbouring chunks of one note merged) and why it was chosen."""

    chunk_id: str
    text: str
    source: str
    heading: str
    tokens: int
    score: float = 0.0
    distance: float | None = None
    reasons: list[str] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)

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
            "chunks": len(self.chunk_ids) or 1,
        }


@dataclass
class Retrieval:
    """The answer to one query: the passages in rank order, and what the budget or `k` left out."""

    query: str
    results: list[Hit]
    dropped: list[dict] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    milliseconds: float = 0.0
    given_sources: list[str] = field(default_factory=list)  # chosen notes the conversation already holds

    @property
    def sources(self) -> list[str]:
        """Every note this lore draws on, in rank order: those given now and those already given."""
        return list(dict.fromkeys([*(hit.source for hit in self.results), *self.given_sources]))

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
    """The collection's chunks held in memory: what results show, one matrix of unit vectors, and each
    chunk's place in its note (`previous`/`following` hold the neighbours' positions, or -1)."""

    rows: list[dict]
    vectors: "torch.Tensor"
    position: dict[str, int]
    by_source: dict[str, list[int]]
    previous: list[int]
    following: list[int]

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of every chunk to each unit query vector: one row per query, one product.

        Computed by torch rather than numpy: numpy's BLAS threads would keep spinning after the product
        and slow the next query embedding down three-fold on a small CPU.
        """
        import torch

        return (torch.from_numpy(np.ascontiguousarray(vectors)) @ self.vectors.T).numpy()


_ROW_COLUMNS = [
    "id", "source", "file_hash", "chunk_index", "heading", "text", "tokens", "context_chars", "joiner",
    "sections", "links", "facts", "vector",
]  # fmt: skip


def _load_chunks(collection: Collection) -> tuple[_Chunks, dict[str, NoteFacts]]:
    import torch  # here, not at the top: commands that never search should not pay for importing torch

    if collection.format != FORMAT:
        raise UserError(
            f"lore collection {collection.name} was written by an older scifi-llm: "
            "run `scifi-llm lore ingest` to rebuild it"
        )
    rows = collection.rows(_ROW_COLUMNS)
    notes = {row["source"]: NoteFacts.from_dict(json.loads(row["facts"])) for row in rows if row["facts"]}
    dimension = collection.dimension
    matrix = np.asarray([row.pop("vector") for row in rows], dtype=np.float32).reshape(len(rows), dimension)
    for row in rows:
        del row["facts"]
        row["sections"], row["links"] = json.loads(row["sections"]), json.loads(row["links"])
        row["own_tokens"] = count_tokens(row["text"][row["context_chars"] :])
        row["folded"] = fold_text(row["text"])
        row["folded_own"] = fold_text(row["text"][row["context_chars"] :])
    by_source: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_source.setdefault(row["source"], []).append(index)
    previous, following = [-1] * len(rows), [-1] * len(rows)
    for indices in by_source.values():
        indices.sort(key=lambda i: (rows[i]["file_hash"], rows[i]["chunk_index"]))
        for first, second in itertools.pairwise(indices):
            if _adjacent(rows[first], rows[second]):
                following[first], previous[second] = second, first
    positions = {row["id"]: index for index, row in enumerate(rows)}
    chunks = _Chunks(
        rows,
        torch.from_numpy(matrix),
        positions,
        by_source,
        previous,
        following,
    )
    return chunks, notes


def _adjacent(first: dict, second: dict) -> bool:
    return first["file_hash"] == second["file_hash"] and second["chunk_index"] == first["chunk_index"] + 1


class Retriever:
    """Queries one collection with the embedding model it was built with (loaded once).

    Chunks and vectors are read once into memory: dense search is then one exact matrix product
    (under a millisecond at 10,000 chunks), while LanceDB keeps the data and answers BM25 queries.
    """

    def __init__(
        self, collection: Collection, embedder: Embedder | None = None, fusion: Fusion = Fusion()
    ) -> None:
        self.collection = collection
        self.fusion = fusion
        self._chunks, notes = _load_chunks(collection)
        self.embedder = embedder or Embedder(collection.model_name)
        self.registry = EntityRegistry(notes)
        self.links = LinkResolver(list(self._chunks.by_source))
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lore-keyword")
        self._named: dict[str, list[int]] = {}
        for position, row in enumerate(self._chunks.rows):
            for name in self.registry.names_in(row["text"]):
                self._named.setdefault(name, []).append(position)

    def search(
        self,
        query: str,
        k: int = 5,
        mode: RetrievalMode = "hybrid",
        budget_tokens: int | None = None,
        recent: str = "",
        steer: Steer = Steer(),
    ) -> Retrieval:
        """The best passages of at most `k` notes for `query`, filling `budget_tokens` of text (without a
        budget: the best chunk of each of `k` notes, nothing grown).

        `recent` is the text of the conversation's last turns: the entities it names stay in the running.
        `steer` pins and blocks notes, and names the chunks the conversation already holds.
        """
        return self.search_many([query], k, mode, budget_tokens, [recent], [steer])[0]

    def search_many(
        self,
        queries: list[str],
        k: int = 5,
        mode: RetrievalMode = "hybrid",
        budget_tokens: int | None = None,
        recent: list[str] | None = None,
        steer: list[Steer] | None = None,
    ) -> list[Retrieval]:
        """`search` for several queries at once: their embeddings are computed in one batch (one forward
        pass of the model), which is most of the cost of a search, while their keyword searches run in
        threads (LanceDB leaves the GIL). Each retrieval's time is its share of the shared work plus its own.
        """
        started = time.perf_counter()
        recent = recent or [""] * len(queries)
        steer = steer or [Steer()] * len(queries)
        texts = [self._query_texts(query, mode) for query in queries]
        keyword = [
            self._workers.submit(self._keyword, group[0], self.fusion.pool) if mode != "dense" else None
            for group in texts
        ]
        vectors = self.embedder.embed_queries([text for group in texts for text in group])
        matches = [future.result() if future else None for future in keyword]
        shared = (time.perf_counter() - started) * 1000 / len(queries)
        ends = list(itertools.accumulate(len(group) for group in texts))
        retrievals = []
        for index, (query, end, group) in enumerate(zip(queries, ends, texts, strict=True)):
            own = time.perf_counter()
            vectors_of_query = vectors[end - len(group) : end]
            candidates = self.candidates(query, mode, vectors_of_query, recent[index], matches[index])
            ranked = self.rank(candidates, mode)
            results, dropped, given = self.assemble(
                ranked, k, budget_tokens, candidates.similarity, steer[index]
            )
            elapsed = shared + (time.perf_counter() - own) * 1000
            mentions = candidates.entity_names()
            retrievals.append(Retrieval(query, results, dropped, mentions, elapsed, given))
        return retrievals

    def _query_texts(self, query: str, mode: RetrievalMode) -> list[str]:
        """What a query embeds: the query (aliases expanded), then each clause of a compound question."""
        search_text = expand_query(query, self.registry.find(query) if mode == "hybrid" else [])
        clauses = split_clauses(query) if mode == "hybrid" else []
        return [search_text, *(expand_query(clause, self.registry.find(clause)) for clause in clauses)]

    def candidates(
        self,
        query: str,
        mode: RetrievalMode,
        vectors: np.ndarray | None = None,
        recent: str = "",
        keyword: list[dict] | None = None,
    ) -> "Candidates":
        """The ranked lists a query draws from: dense, keyword, one per clause of a compound question,
        one per entity it names, and one per entity the recent turns name. `vectors` (the query's
        embeddings) and `keyword` (its keyword matches) are passed in when already computed."""
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
            matches = self._keyword(search_text, pool) if keyword is None else keyword
            lists.append(RankedList("keyword", "keyword", matches))
        for clause_similarity in clause_similarities:
            lists.append(RankedList("clause", "dense", self._nearest(clause_similarity, pool)))
        lists += self._entity_lists(
            mentions, self.registry.find(recent) if mode == "hybrid" else [], similarity
        )
        return Candidates(query, mentions, vectors[0], similarity, lists)

    def _entity_lists(
        self, mentions: list[Mention], recent: list[Mention], similarity: np.ndarray
    ) -> list["RankedList"]:
        """One list per entity the query names, then one per other entity the recent turns name: the
        entity's chunks, ranked by meaning."""
        lists, named = [], set()
        for kind, mention in [*(("entity", m) for m in mentions), *(("recent", m) for m in recent)]:
            if mention.entity in named:
                continue
            named.add(mention.entity)
            if kind == "recent":
                reason = f"recent:{mention.entity.name}"
            else:
                reason = f"alias:{mention.matched}" if mention.by_alias else f"name:{mention.entity.name}"
            lists.append(
                RankedList(kind, reason, self._nearest(similarity, None, self._scope(mention.entity)))
            )
        return lists

    def rank(
        self, candidates: "Candidates", mode: RetrievalMode, fusion: Fusion | None = None
    ) -> list["Hit"]:
        """The chunks in final order: the single list in dense or keyword mode; in hybrid mode the fused
        lists, fused again with the notes that the best of them name or link to (the second hop)."""
        fusion = fusion or self.fusion
        if mode != "hybrid":
            only = candidates.lists[0]
            return [_hit(row, _single_score(row), [only.reason]) for row in only.rows]
        ranked = fuse(candidates.lists, fusion)
        best = ranked[: fusion.hop_from]
        hops = [
            self._hops(best, candidates.similarity),
            self._name_hops(best, candidates.query, candidates.similarity),
        ]
        hops = [hop for hop in hops if hop.rows]
        return _behind(fuse([*candidates.lists, *hops], fusion), best) if hops else ranked

    def _name_hops(self, best: list["Hit"], query: str, similarity: np.ndarray) -> "RankedList":
        """For every name the `best` chunks use and the query does not, the best-matching chunk of another
        note that uses it too: how a person with no note of their own is followed."""
        own = {hit.source for hit in best}
        asked = set(self.registry.names_in(query))
        rows, seen = [], set()
        for hit in best:
            for name, written in self.registry.names_in(hit.text).items():
                if name in asked or name in seen:
                    continue
                seen.add(name)
                among = [i for i in self._named.get(name, []) if self._chunks.rows[i]["source"] not in own]
                rows.extend(
                    _reached(self._nearest(similarity, 1, among), f"hop:{written}", hit) if among else []
                )
        return RankedList("name_hop", "hop", _best_first(rows))

    def _hops(self, best: list["Hit"], similarity: np.ndarray) -> "RankedList":
        """The best-matching chunk of every note the `best` chunks link to or name, other than their own."""
        own = {hit.source for hit in best}
        targets: dict[tuple[str, tuple[str, ...]], tuple[str, Hit]] = {}
        for hit in best:
            row = self._chunks.rows[self._chunks.position[hit.chunk_id]]
            for link in row["links"]:
                source = self.links.resolve(link)
                if source is not None and source not in own:
                    targets.setdefault((source, ()), (f"link:{link}", hit))
            for mention in self.registry.find(hit.text):
                entity = mention.entity
                if entity.source not in own:
                    targets.setdefault((entity.source, entity.scope), (f"hop:{entity.name}", hit))
        rows = []
        for (source, scope), (reason, seed) in targets.items():
            rows += _reached(
                self._nearest(similarity, 1, self._scope(Entity(reason, source, scope))), reason, seed
            )
        return RankedList("hop", "hop", _best_first(rows))

    def assemble(
        self,
        ranked: list["Hit"],
        k: int,
        budget_tokens: int | None,
        similarity: np.ndarray,
        steer: Steer = Steer(),
        fusion: Fusion | None = None,
    ) -> tuple[list["Hit"], list[dict], list[str]]:
        """Grow the ranked chunks into passages of at most `k` notes within `budget_tokens`: the passages,
        what was left out and why, and the chosen notes the conversation already holds. Pinned notes come
        first (their chunk nearest the query); blocked notes are left out, and say so."""
        growth = _Growth(self._chunks, k, budget_tokens, (fusion or self.fusion).neighbour, steer)
        first = 2 * max((hit.score for hit in ranked), default=1.0)  # pins ahead of every ranked chunk
        for source in sorted(steer.pin - steer.block):
            if source not in self._chunks.by_source:
                growth.dropped.append({"source": source, "heading": "", "tokens": 0, "reason": "not found"})
                continue
            nearest = max(self._chunks.by_source[source], key=lambda position: similarity[position])
            growth.offer(nearest, first, 0, ("pinned",))
        for order, hit in enumerate(ranked):
            growth.offer(self._chunks.position[hit.chunk_id], hit.score, order, hit.reasons)
        growth.run()
        passages = growth.passages()
        for passage in passages:
            passage.distance = float(1.0 - similarity[self._chunks.position[passage.chunk_id]])
        return passages, growth.dropped, growth.given_sources()

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

    def _scope(self, entity: Entity) -> list[int]:
        """Positions of the chunks an entity's note or section covers."""
        prefix = HEADING_SEPARATOR.join(entity.scope)
        return [
            index
            for index in self._chunks.by_source.get(entity.source, [])
            if not prefix
            or any(
                section == prefix or section.startswith(prefix + HEADING_SEPARATOR)
                for section in self._chunks.rows[index]["sections"]
            )
        ]


class _Growth:
    """Small-to-big: chunks taken by priority into passages, neighbours offered as chunks are taken."""

    def __init__(self, chunks: _Chunks, k: int, budget: int | None, neighbour: float, steer: Steer) -> None:
        self.chunks, self.k, self.budget, self.neighbour = chunks, k, budget, neighbour
        self.exclude, self.block = steer.held, steer.block
        self.heap: list[tuple[float, int, int, int, tuple[str, ...]]] = []
        self.taken: dict[str, set[int]] = {}
        self.taken_all: set[int] = set()
        self.reasons: dict[str, list[str]] = {}
        self.seed: dict[str, tuple[int, float]] = {}
        self.used = 0
        self.dropped: list[dict] = []
        self._counter = itertools.count()

    def offer(self, position: int, priority: float, order: int, reasons: list[str] | tuple = ()) -> None:
        """Make a chunk a candidate; `order` is its place in the ranking (-1 for a neighbour)."""
        heapq.heappush(self.heap, (-priority, next(self._counter), position, order, tuple(reasons)))

    def run(self) -> None:
        """Take candidates by priority until none is left or the budget is full.

        Chunks the conversation already holds (`exclude`) are taken like any other, so they count
        against `k` and the budget and grow their neighbours, but `passages` leaves them out.
        """
        while self.heap and (self.budget is None or self.used < self.budget):
            negative, _, position, order, reasons = heapq.heappop(self.heap)
            refusal = self._refusal(position)
            if refusal is None:
                self._take(position, -negative, reasons or ("neighbour",))
            elif order >= 0 and refusal != "taken" and order < 2 * self.k:
                self.dropped.append(self._dropped(position, refusal))

    def _refusal(self, position: int) -> str | None:
        row = self.chunks.rows[position]
        source = row["source"]
        if position in self.taken_all:
            return "taken"
        if source in self.block:
            return "blocked"
        if source not in self.taken and len(self.taken) >= self.k:
            return "top_k"
        if self.budget is None and source in self.taken:  # no budget: one chunk per note, no growth
            return "taken"
        if any(  # the same text in another note (a copy); a neighbour's overlap merges exactly instead
            row["folded_own"] in self.chunks.rows[i]["folded"]
            for i in self.taken_all
            if self.chunks.rows[i]["source"] != source
        ):
            return "duplicate"
        if self.budget is not None and self.used + self._cost(source, position) > self.budget:
            return "budget"
        return None

    def _take(self, position: int, priority: float, reasons: tuple[str, ...]) -> None:
        source = self.chunks.rows[position]["source"]
        self.used += self._cost(source, position)
        self.taken.setdefault(source, set()).add(position)
        self.taken_all.add(position)
        self.seed.setdefault(source, (position, priority))
        known = self.reasons.setdefault(source, [])
        known.extend(reason for reason in reasons if reason not in known)
        for near in (self.chunks.previous[position], self.chunks.following[position]):
            if near >= 0 and self.budget is not None:
                self.offer(near, priority * self.neighbour, -1)

    def _cost(self, source: str, position: int) -> int:
        taken = self.taken.get(source, set())
        return self._spent(taken | {position}) - self._spent(taken)

    def _spent(self, positions: set[int]) -> int:
        """What a note's chunks cost: the passage made of the new ones, plus the ones the conversation
        holds, counted whole (they are not handed over again, but the lore they give still counts)."""
        held = {i for i in positions if self.chunks.rows[i]["id"] in self.exclude}
        return _tokens(self.chunks, positions - held) + sum(self.chunks.rows[i]["tokens"] for i in held)

    def passages(self) -> list[Hit]:
        """A passage per chosen note, in the order the notes were chosen, without the chunks the
        conversation already holds (`exclude`); a note made only of such chunks gives none."""
        found = []
        for source, positions in self.taken.items():
            visible = {i for i in positions if self.chunks.rows[i]["id"] not in self.exclude}
            if visible:
                found.append(self._passage(source, visible))
        return found

    def given_sources(self) -> list[str]:
        """The chosen notes whose chunks (some or all) the conversation already holds."""
        return [
            source
            for source, positions in self.taken.items()
            if any(self.chunks.rows[i]["id"] in self.exclude for i in positions)
        ]

    def _passage(self, source: str, positions: set[int]) -> Hit:
        seed, priority = self.seed[source]
        if seed not in positions:
            seed = min(positions, key=lambda i: self.chunks.rows[i]["chunk_index"])
        rows = [
            self.chunks.rows[i] for i in sorted(positions, key=lambda i: self.chunks.rows[i]["chunk_index"])
        ]
        text = _passage_text(self.chunks, positions)
        heading = _common_heading([row["heading"] for row in rows])
        ids = [row["id"] for row in rows]
        row = self.chunks.rows[seed]
        return Hit(
            row["id"], text, source, heading, count_tokens(text), priority, None, self.reasons[source], ids
        )

    def _dropped(self, position: int, reason: str) -> dict:
        row = self.chunks.rows[position]
        return {"source": row["source"], "heading": row["heading"], "tokens": row["tokens"], "reason": reason}


def _reached(rows: list[dict], reason: str, seed: Hit) -> list[dict]:
    """Rows reached in a hop from `seed`: they carry the reason and the seed's score."""
    return [{**row, "_reason": reason, "_from": seed.score} for row in rows]


def _best_first(rows: list[dict]) -> list[dict]:
    """Rows reached by hops, each once (from its best seed), the best seed's first."""
    unique: dict[str, dict] = {}
    for row in rows:
        if row["id"] not in unique or row["_from"] > unique[row["id"]]["_from"]:
            unique[row["id"]] = row
    return sorted(unique.values(), key=lambda row: (-row["_from"], row["_distance"]))


def _behind(ranked: list[Hit], best: list[Hit]) -> list[Hit]:
    """The ranking with the hops applied, but the `best` chunks the hops were taken from kept first, in
    their order: a note reached through a chunk follows it, it does not overtake it."""
    first = {hit.chunk_id: hit for hit in best}
    ceiling = best[-1].score
    for hit in ranked:
        if hit.chunk_id in first:
            hit.score = first[hit.chunk_id].score
        else:
            hit.score = min(hit.score, ceiling * 0.999)
    return sorted(ranked, key=lambda hit: (-hit.score, hit.chunk_id))


def _runs(chunks: _Chunks, positions: set[int]) -> list[list[int]]:
    """Positions grouped into runs of neighbours, in note order."""
    runs: list[list[int]] = []
    for position in sorted(
        positions, key=lambda i: (chunks.rows[i]["file_hash"], chunks.rows[i]["chunk_index"])
    ):
        if runs and chunks.previous[position] == runs[-1][-1]:
            runs[-1].append(position)
        else:
            runs.append([position])
    return runs


def _tokens(chunks: _Chunks, positions: set[int]) -> int:
    """Tokens of the passage these chunks make: each run's first chunk whole, the rest without context."""
    runs = _runs(chunks, positions)
    total = sum(
        chunks.rows[run[0]]["tokens"] + sum(chunks.rows[i]["own_tokens"] for i in run[1:]) for run in runs
    )
    return total + _GAP_TOKENS * max(0, len(runs) - 1)


def _passage_text(chunks: _Chunks, positions: set[int]) -> str:
    """The passage's text: each run of neighbours put back together exactly, runs apart by a gap mark."""
    parts = []
    for run in _runs(chunks, positions):
        first = chunks.rows[run[0]]
        parts.append(
            first["text"]
            + "".join(
                chunks.rows[i]["joiner"] + chunks.rows[i]["text"][chunks.rows[i]["context_chars"] :]
                for i in run[1:]
            )
        )
    return GAP.join(parts)


def _common_heading(headings: list[str]) -> str:
    paths = [heading.split(HEADING_SEPARATOR) for heading in headings]
    common = paths[0]
    for path in paths[1:]:
        while common and path[: len(common)] != common:
            common = common[:-1]
    return HEADING_SEPARATOR.join(common) or headings[0]


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

    query: str
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


def fuse(lists: list[RankedList], fusion: Fusion) -> list[Hit]:
    """Weighted reciprocal-rank fusion, best first; reasons name every list a hit was in."""
    hits: dict[str, Hit] = {}
    for ranked in lists:
        weight = getattr(fusion, ranked.kind)
        for position, row in enumerate(ranked.rows, start=1):
            hit = hits.get(row["id"]) or hits.setdefault(row["id"], _hit(row, 0.0, []))
            # a chunk reached in a hop scores by the chunk it was reached from, not by its place in a list
            hit.score += weight * row["_from"] if "_from" in row else weight / (fusion.rrf_k + position)
            reason = row.get("_reason", ranked.reason)
            if reason not in hit.reasons:
                hit.reasons.append(reason)
            if hit.distance is None and "_distance" in row:
                hit.distance = float(row["_distance"])
    return sorted(hits.values(), key=lambda hit: (-hit.score, hit.chunk_id))


def _hit(row: dict, score: float, reasons: list[str]) -> Hit:
    distance = float(row["_distance"]) if "_distance" in row else None
    tokens = row.get("tokens") or count_tokens(row["text"])
    return Hit(row["id"], row["text"], row["source"], row["heading"], tokens, score, distance, reasons)


def _single_score(row: dict) -> float:
    return 1.0 - float(row["_distance"]) if "_distance" in row else float(row.get("_score", 0.0))


def fold_text(text: str) -> str:
    """Text folded for comparison: lower case, whitespace collapsed."""
    return re.sub(r"\s+", " ", text).strip().lower()
