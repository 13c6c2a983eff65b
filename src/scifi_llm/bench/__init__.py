"""Benchmarks against any OpenAI-compatible endpoint: the load generator and the benchmarks on it."""
