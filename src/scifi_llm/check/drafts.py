"""Checking draft files against a workspace's lore: the lore's names gathered once, each file checked."""

from pathlib import Path

from scifi_llm.check.names import Finding, KnownNames, name_findings
from scifi_llm.config import Workspace
from scifi_llm.errors import UserError
from scifi_llm.lore import open_retriever
from scifi_llm.textio import NotText, read_text


def lore_names(workspace: Workspace) -> tuple[KnownNames, dict]:
    """The names the lore uses (its entities, their aliases, and every proper name its notes write),
    and how the lore capitalises its words."""
    registry = open_retriever(workspace).registry
    names = {}
    for entity in registry.entities:
        for name in (entity.name, *entity.aliases):
            names.setdefault(name, entity.source)
    for path in sorted(workspace.lore_dir.rglob("*.md")):
        try:
            text = read_text(path).text
        except (NotText, OSError):
            continue
        source = path.relative_to(workspace.lore_dir).as_posix()
        for name in registry.names_in(text).values():
            names.setdefault(name, source)
    return KnownNames(names), registry.word_case


def check_drafts(workspace: Workspace, files: list[Path]) -> list[Finding]:
    """Every finding in `files`, file by file, line by line."""
    names, lore_case = lore_names(workspace)
    findings = []
    for path in files:
        try:
            text = read_text(path).text
        except (NotText, OSError) as exc:
            raise UserError(f"{path}: cannot be read as a draft ({exc})") from exc
        findings += name_findings(text, str(path), names, lore_case)
    return findings
