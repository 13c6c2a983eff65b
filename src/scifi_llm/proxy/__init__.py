"""The OpenAI-compatible lore proxy: augment, history, metrics, upstream pool, the app."""

from scifi_llm.exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "app": ["create_app"],
        "settings": ["ProxySettings"],
        "upstreams": ["Timeouts"],
        "guard": ["is_exposed"],
        "augment": ["LORE_HEADER", "lore_message"],
        "history": ["History", "Query"],
    },
)
