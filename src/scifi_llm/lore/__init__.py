"""The lore index: chunk notes, embed them, store them in LanceDB, and retrieve what a request needs."""

from scifi_llm.exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "ingest": ["LORE_EXTENSIONS", "IngestOptions", "IngestReport", "ingest_lore"],
        "store": ["LoreIndex"],
        "retrieve": ["Fusion", "Hit", "Retrieval", "RetrievalMode", "Retriever", "Steer"],
        "service": ["LoreService", "open_retriever"],
        "embed": ["DEFAULT_MODEL", "MINILM", "Embedder"],
        "facts": ["FactTable", "LifeEvent", "Statement", "lore_version", "open_facts"],
        "evaluate": ["EvalReport", "Question", "evaluate_retrieval", "load_questions", "read_queries"],
    },
)
