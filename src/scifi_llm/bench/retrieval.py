"""`bench retrieval`: the lore index's retrieval quality on a question file (what `lore eval` measures),
kept with the other benchmarks so runs can be compared over time."""

from pathlib import Path

from scifi_llm.config import Workspace
from scifi_llm.lore import evaluate_retrieval, load_questions, open_retriever


def retrieval_scores(
    workspace: Workspace, questions_file: Path, top_k: int | None = None, mode: str | None = None
) -> dict:
    """recall@1/3/k, MRR, mean top-hit distance and per-kind results, with unusable lines listed."""
    lore = workspace.settings.lore
    questions, errors = load_questions(questions_file)
    retriever = open_retriever(workspace)
    report = evaluate_retrieval(
        retriever, questions, top_k or lore.top_k, mode or lore.mode, lore.budget_tokens
    )
    report.skipped_lines = [{"line": error.line, "message": error.message} for error in errors]
    return report.to_dict() | {"questions_file": str(questions_file), "collection": lore.collection}
