"""The OpenAI-compatible lore proxy: augment, history, metrics, upstream pool, the app."""
