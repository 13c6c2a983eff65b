"""Checking draft files against a workspace's lore: the lore's names and facts gathered once, each file
checked by every layer."""

from pathlib import Path

from scifi_llm.check.facts import fact_findings
from scifi_llm.check.judged import JudgeReport, judge_drafts
from scifi_llm.check.names import Finding, KnownNames, name_findings
from scifi_llm.check.reading import read_draft
from scifi_llm.check.timeline import Ages, timeline_findings
from scifi_llm.claims import without_title
from scifi_llm.config import Workspace
from scifi_llm.errors import UserError
from scifi_llm.lore import LORE_EXTENSIONS, FactTable, lore_version, open_facts
from scifi_llm.textio import NotText, read_text

KINDS = ("name", "number", "attribute", "title", "timeline", "absent", "not in lore")


class Lore:
    """What the checker knows of a workspace's lore: its fact table, its names, and its characters' ages."""

    def __init__(self, workspace: Workspace, collection: str | None = None) -> None:
        self.table = open_facts(workspace, collection)
        self.names = lore_names(workspace, self.table)
        self.ages = Ages.from_table(self.table)


def lore_names(workspace: Workspace, table: FactTable) -> KnownNames:
    """The names the lore uses: its entities, their aliases, and every proper name its notes write."""
    registry = table.registry
    names = {}
    for entity in registry.entities:
        for name in (entity.name, *entity.aliases):
            names.setdefault(name, entity.source)
    notes = (path for path in workspace.lore_dir.rglob("*") if path.suffix.lower() in LORE_EXTENSIONS)
    for path in sorted(notes):
        try:
            text = read_text(path).text
        except (NotText, OSError):
            continue
        source = path.relative_to(workspace.lore_dir).as_posix()
        for name in registry.names_in(text).values():
            names.setdefault(name, source)
            names.setdefault(without_title(name), source)  # "Keeper Josiah Pell" names Josiah Pell
    return KnownNames(names)


def check_text(text: str, file: str, lore: Lore, kinds: tuple[str, ...] = KINDS) -> list[Finding]:
    """Every finding of the chosen kinds in one draft's text, in line order."""
    findings = []
    if {"name", "not in lore"} & set(kinds):
        findings += name_findings(text, file, lore.names, lore.table.registry.word_case)
    if {"number", "attribute", "title", "timeline", "absent"} & set(kinds):
        draft = read_draft(text, file, lore.table)
        findings += fact_findings(draft, lore.table) + timeline_findings(draft, lore.table, lore.ages)
    return sorted((f for f in findings if f.kind in kinds), key=lambda f: f.line)


def check_drafts(workspace: Workspace, files: list[Path], kinds: tuple[str, ...] = KINDS) -> list[Finding]:
    """Every finding of the deterministic layers in `files`, file by file, line by line."""
    lore = Lore(workspace)
    findings = []
    for path in files:
        findings += check_text(_draft_text(path), str(path), lore, kinds)
    return findings


class DraftChecker:
    """Checks one draft text at a time against a workspace's lore, as the desk asks: the lore is read once
    and read again when its index changes (a note edited and re-ingested)."""

    def __init__(self, workspace: Workspace, collection: str | None = None) -> None:
        self.workspace, self.collection = workspace, collection
        self._lore: Lore | None = None
        self._version: tuple | None = None

    def __call__(self, text: str, file: str) -> list[dict]:
        """The findings in `text`, as JSON-ready dicts."""
        version = lore_version(self.workspace, self.collection)
        if self._lore is None or version != self._version:
            self._lore, self._version = Lore(self.workspace, self.collection), version
        return [finding.to_dict() for finding in check_text(text, file, self._lore)]


def judge_files(workspace: Workspace, files: list[Path], url: str, cache: Path | None = None) -> JudgeReport:
    """The judged layer on `files`: each paragraph that names an entity, beside its lore, asked of the
    model at `url`. Verdicts are cached (in the workspace unless `cache` names a file), so a re-run asks
    only about the paragraphs that changed."""
    from scifi_llm.lore import open_retriever  # loads the embedding model: only when a judge is asked

    table = open_facts(workspace)
    drafts = [read_draft(_draft_text(path), str(path), table) for path in files]
    return judge_drafts(drafts, open_retriever(workspace), url, cache or workspace.state_dir / JUDGE_CACHE)


JUDGE_CACHE = "check-judged.json"


def _draft_text(path: Path) -> str:
    try:
        return read_text(path).text
    except (NotText, OSError) as exc:
        raise UserError(f"{path}: cannot be read as a draft ({exc})") from exc
