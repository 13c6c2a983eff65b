"""`lore eval` and `lore query --from-file`: reading question files and scoring retrieval on them.

A question counts as found at rank r when every one of its `gold_phrases` occurs (case and whitespace
folded) in the text of the top r chunks. Recall@n is the share found at rank n or better; MRR averages
1/r (0 when not found in the top k).
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from scifi_llm.config import RetrievalMode
from scifi_llm.errors import UserError
from scifi_llm.lore.retrieve import Retrieval, Retriever, fold_text


@dataclass(frozen=True)
class Question:
    """One evaluation question: the text, its kind, and phrases the retrieved lore must contain."""

    id: str
    question: str
    gold_phrases: tuple[str, ...]
    kind: str = "unspecified"
    source: str | None = None  # the lore file that holds the answer, when the question file says


@dataclass
class LineError:
    """A line of an input file that could not be used, and why."""

    line: int
    message: str


@dataclass
class EvalReport:
    """Retrieval quality on a question file."""

    mode: str
    k: int
    questions: int
    recall: dict[str, float]
    mrr: float
    mean_top_distance: float | None
    mean_tokens: float
    mean_words: float
    max_words: int
    by_kind: dict[str, dict]
    misses: list[dict] = field(default_factory=list)
    skipped_lines: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return dict(self.__dict__)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


QUERY_FIELDS = ("query", "question", "prompt")


def read_queries(path: Path) -> tuple[list[tuple[int, str]], list[LineError]]:
    """Queries from a file, one per line: a JSON object with a `query`, `question` or `prompt` field (as
    `lore query --json` and `lore eval` files have), a JSON string, or plain text."""
    queries, errors = [], []
    for number, line in _lines(path):
        if not line.startswith(("{", '"')):
            queries.append((number, line))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(LineError(number, f"not valid JSON ({exc.msg})"))
            continue
        if isinstance(record, dict):
            record = next((record[key] for key in QUERY_FIELDS if isinstance(record.get(key), str)), None)
        if isinstance(record, str) and record.strip():
            queries.append((number, record.strip()))
        else:
            errors.append(LineError(number, "no `query`, `question` or `prompt` text"))
    return queries, errors


def load_questions(path: Path) -> tuple[list[Question], list[LineError]]:
    """Evaluation questions from JSONL; each needs `question` and a non-empty list `gold_phrases`."""
    questions, errors = [], []
    for number, line in _lines(path):
        try:
            record = json.loads(line)
            phrases = record["gold_phrases"]
            if (
                not isinstance(record["question"], str)
                or not phrases
                or not all(isinstance(p, str) for p in phrases)
            ):
                raise TypeError
        except json.JSONDecodeError as exc:
            errors.append(LineError(number, f"not valid JSON ({exc.msg})"))
            continue
        except (KeyError, TypeError):
            errors.append(LineError(number, "needs `question` (text) and `gold_phrases` (list of text)"))
            continue
        question_id = str(record.get("id", f"line{number}"))
        kind, source = str(record.get("kind", "unspecified")), record.get("source")
        questions.append(Question(question_id, record["question"], tuple(phrases), kind, source))
    if not questions:
        raise UserError(f"{path}: no usable questions ({len(errors)} bad lines)")
    return questions, errors


def found_rank(retrieval: Retrieval, gold_phrases: tuple[str, ...]) -> int | None:
    """The smallest r such that the top r results contain every gold phrase, or None."""
    wanted = [fold_text(phrase) for phrase in gold_phrases]
    seen = ""
    for rank, hit in enumerate(retrieval.results, start=1):
        seen += " " + fold_text(hit.text)
        if all(phrase in seen for phrase in wanted):
            return rank
    return None


def evaluate_retrieval(
    retriever: Retriever,
    questions: list[Question],
    k: int,
    mode: RetrievalMode,
    budget_tokens: int | None,
    on_question=None,
) -> EvalReport:
    """Run every question through the retriever and score the results."""
    ranks: list[int | None] = []
    distances, tokens, words, misses = [], [], [], []
    for question in questions:
        retrieval = retriever.search(question.question, k=k, mode=mode, budget_tokens=budget_tokens)
        rank = found_rank(retrieval, question.gold_phrases)
        ranks.append(rank)
        tokens.append(sum(hit.tokens for hit in retrieval.results))
        words.append(sum(len(hit.text.split()) for hit in retrieval.results))
        if retrieval.results and retrieval.results[0].distance is not None:
            distances.append(retrieval.results[0].distance)
        if rank is None:
            top = retrieval.results[0] if retrieval.results else None
            misses.append(
                {
                    "id": question.id,
                    "kind": question.kind,
                    "question": question.question,
                    "top_source": top.source if top else None,
                }
            )
        if on_question:
            on_question()
    cutoffs = sorted({n for n in (1, 3, 5, k) if n <= k})
    kinds = sorted({question.kind for question in questions})
    by_kind = {}
    for kind in kinds:
        kind_ranks = [rank for rank, question in zip(ranks, questions, strict=True) if question.kind == kind]
        by_kind[kind] = {
            "questions": len(kind_ranks),
            f"recall@{k}": _recall(kind_ranks, k),
            "mrr": _mrr(kind_ranks),
        }
    return EvalReport(
        mode=mode,
        k=k,
        questions=len(questions),
        recall={str(n): _recall(ranks, n) for n in cutoffs},
        mrr=_mrr(ranks),
        mean_top_distance=round(mean(distances), 4) if distances else None,
        mean_tokens=round(mean(tokens), 1) if tokens else 0.0,
        mean_words=round(mean(words), 1) if words else 0.0,
        max_words=max(words, default=0),
        by_kind=by_kind,
        misses=misses,
    )


def _recall(ranks: list[int | None], cutoff: int) -> float:
    return (
        round(sum(1 for rank in ranks if rank is not None and rank <= cutoff) / len(ranks), 4)
        if ranks
        else 0.0
    )


def _mrr(ranks: list[int | None]) -> float:
    return round(sum(1 / rank for rank in ranks if rank) / len(ranks), 4) if ranks else 0.0
