"""Benchmarks against any OpenAI-compatible endpoint: the load generator and the benchmarks on it."""

from scifi_llm.exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "loadgen": ["CountTokens", "Load", "RequestResult", "run_load", "summarize"],
        "throughput": ["endpoint_info", "prose_prompt", "throughput_sweep"],
        "context": ["context_sweep"],
        "creative": ["creative_scores"],
        "coherence": ["coherence_scores"],
        "retrieval": ["retrieval_scores"],
        "pipeline": ["pipeline_scores"],
        "system": ["system_scores"],
        "suite": ["QUICK", "SuiteOptions", "run_all"],
        "report": ["compare_runs", "headlines", "load_run", "save_result"],
    },
)
