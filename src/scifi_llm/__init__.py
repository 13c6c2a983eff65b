"""scifi-llm: a local LLM stack for science-fiction writers."""

__version__ = "0.1.0"
