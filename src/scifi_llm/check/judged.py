"""The judged layer of `scifi-llm check`: a model reads each paragraph beside its lore, and must quote.

Each paragraph that names an entity gets its lore retrieved (as the proxy would) and goes to the judge,
which answers in JSON with the contradictions it sees, each quoting the draft and the note. A finding is
kept only when both quotes are found, word for word (whitespace and case aside), in the paragraph and in
one of the passages it was shown; an answer that quotes what is not there is counted as unverifiable and
dropped, never shown. Verdicts are cached by paragraph, lore version and judge model, so a re-run asks
only about the paragraphs that changed.
"""

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from scifi_llm.check.names import Finding
from scifi_llm.check.reading import Draft
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.judge import ask_all, json_object, judge_model
from scifi_llm.lore import Hit, Retriever

PROMPT_VERSION = 1
_MIN_QUOTE = 8  # characters: shorter quotes ("she", "the") would verify anything
PROMPT = """You are a continuity editor for a novel. Compare the DRAFT paragraph with the NOTES, the
author's canon. Report only direct contradictions: the draft states something the notes rule out (a
different number, colour, name, rank, date, or a character present who is dead or gone). New details
the notes do not mention are NOT contradictions.

Answer with JSON only, in this form:
{{"contradictions": [{{"draft_quote": "...", "note_quote": "...", "why": "..."}}]}}
draft_quote and note_quote must be copied word for word from the DRAFT and from the NOTES. If nothing
contradicts the notes, answer {{"contradictions": []}}.

NOTES:
{notes}

DRAFT:
{paragraph}"""


@dataclass
class JudgeReport:
    """What the judged layer did: paragraphs judged, answered from the cache, and answers dropped."""

    model: str = ""
    paragraphs: int = 0
    cached: int = 0
    unverifiable: int = 0  # contradictions whose quotes were not found where they claim to be
    unreadable: int = 0  # answers that were not the JSON asked for (asked again)
    failed: int = 0  # paragraphs with no readable answer after the retry
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON shape of the report (without the findings)."""
        return {key: value for key, value in self.__dict__.items() if key != "findings"}


@dataclass(frozen=True)
class _Paragraph:
    line: int
    text: str
    passages: tuple[Hit, ...]
    key: str


def judge_drafts(drafts: list[Draft], retriever: Retriever, url: str, cache_path: Path) -> JudgeReport:
    """Judge every paragraph of `drafts` that names an entity, against the lore `retriever` finds for it."""
    report = JudgeReport(model=asyncio.run(judge_model(url)))
    cache = _read_cache(cache_path)
    version = ":".join(str(part) for part in retriever.collection.version)
    todo: list[tuple[Draft, _Paragraph]] = []
    for draft in drafts:
        for paragraph in _paragraphs(draft, retriever, f"{PROMPT_VERSION}|{report.model}|{version}"):
            report.paragraphs += 1
            if paragraph.key in cache:
                report.cached += 1
                report.findings += _findings(draft, paragraph, cache[paragraph.key]["found"])
                report.unverifiable += cache[paragraph.key]["unverifiable"]
            else:
                todo.append((draft, paragraph))
    prompts = [PROMPT.format(notes=_notes_text(p.passages), paragraph=p.text) for _, p in todo]
    verdicts, report.unreadable = asyncio.run(
        ask_all(url, prompts, _parse, max_tokens=600, model=report.model)
    )
    for (draft, paragraph), verdict in zip(todo, verdicts, strict=True):
        if verdict is None:
            report.failed += 1
            continue
        found, unverifiable = verify(verdict, paragraph.text, paragraph.passages)
        cache[paragraph.key] = {"found": found, "unverifiable": unverifiable}
        report.findings += _findings(draft, paragraph, found)
        report.unverifiable += unverifiable
    if todo:
        atomic_write_text(cache_path, json.dumps(cache) + "\n")
    return report


def verify(verdict: list[dict], paragraph: str, passages: tuple[Hit, ...]) -> tuple[list[dict], int]:
    """The contradictions whose quotes are where they claim to be (each with the passage it quotes), and
    how many were not."""
    found, unverifiable = [], 0
    for item in verdict:
        draft_quote, note_quote = str(item.get("draft_quote", "")), str(item.get("note_quote", ""))
        passage = next((hit for hit in passages if _contains(hit.text, note_quote)), None)
        if passage is None or not _contains(paragraph, draft_quote):
            unverifiable += 1
            continue
        found.append(
            {"draft_quote": draft_quote, "note_quote": note_quote, "why": str(item.get("why", "")),
             "source": passage.source, "heading": passage.heading}
        )  # fmt: skip
    return found, unverifiable


def _contains(text: str, quote: str) -> bool:
    quote = _normal(quote)
    return len(quote) >= _MIN_QUOTE and quote in _normal(text)


def _normal(text: str) -> str:
    text = text.replace("*", "").replace("“", '"').replace("”", '"').replace("’", "'").replace("‘", "'")
    return " ".join(text.split()).lower().strip(" \"'.,;:")


def _parse(answer: str) -> list[dict] | None:
    parsed = json_object(answer)
    items = parsed.get("contradictions") if parsed else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return None
    return items


def _paragraphs(draft: Draft, retriever: Retriever, salt: str):
    """The draft's paragraphs that name an entity, each with its lore and its cache key."""
    lines: dict[int, list] = {}
    for sentence in draft.sentences:
        lines.setdefault(sentence.line, []).append(sentence)
    for line, sentences in lines.items():
        if not any(sentence.named for sentence in sentences):
            continue
        text = sentences[0].paragraph_text
        passages = tuple(retriever.search(text, k=4, budget_tokens=700).results)
        notes = _notes_text(passages)
        key = hashlib.sha256(f"{salt}|{text}|{notes}".encode()).hexdigest()
        yield _Paragraph(line, text, passages, key)


def _notes_text(passages: tuple[Hit, ...]) -> str:
    return "\n\n".join(f"[{hit.source} > {hit.heading}]\n{hit.text}" for hit in passages)


def _findings(draft: Draft, paragraph: _Paragraph, found: list[dict]) -> list[Finding]:
    findings = []
    for item in found:
        sentence = next(
            (
                s.text
                for s in draft.sentences
                if s.line == paragraph.line and _contains(s.text, item["draft_quote"])
            ),
            paragraph.text,
        )
        findings.append(
            Finding(draft.file, paragraph.line, "judged", item["draft_quote"], sentence, item["why"],
                    item["source"], 0.6, item["note_quote"], item["heading"])
        )  # fmt: skip
    return findings


def _read_cache(path: Path) -> dict:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: judge again
    return cache if isinstance(cache, dict) else {}
