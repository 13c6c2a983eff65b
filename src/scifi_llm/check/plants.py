"""Scoring the checker on a planted set: chapters with contradictions put in on purpose, and controls.

A set is a folder with `chapters/*.md` and `plants.jsonl`, one line per planted contradiction or
consistent control, with its file (relative to the set), line and kind. A finding of a kind on a line
planted with that kind is a hit; any other finding of that kind is a false alarm.
"""

import json
from pathlib import Path

from scifi_llm.check.names import Finding
from scifi_llm.errors import UserError


def load_plants(plant_set: Path) -> list[dict]:
    """The set's plants and controls."""
    path = plant_set / "plants.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot be read as plants ({exc})") from exc


def score(findings: list[Finding], plants: list[dict], plant_set: Path, kinds: tuple[str, ...]) -> dict:
    """Recall and precision per kind, and precision over all of them."""
    on_line = {(plant["file"], plant["line"]): plant["kind"] for plant in plants}

    def planted_kind(finding: Finding) -> str | None:
        return on_line.get(
            (Path(finding.file).resolve().relative_to(plant_set.resolve()).as_posix(), finding.line)
        )

    per_kind = {}
    for kind in kinds:
        flagged = [finding for finding in findings if finding.kind == kind]
        right = [finding for finding in flagged if planted_kind(finding) == kind]
        planted = sum(1 for plant in plants if plant["kind"] == kind)
        found = len({(finding.file, finding.line) for finding in right})
        per_kind[kind] = {
            "plants": planted,
            "found": found,
            "recall": round(found / planted, 3) if planted else None,
            "findings": len(flagged),
            "precision": round(len(right) / len(flagged), 3) if flagged else None,
        }
    flagged = [finding for finding in findings if finding.kind in kinds]
    right = [finding for finding in flagged if planted_kind(finding) in kinds]
    overall = round(len(right) / len(flagged), 3) if flagged else None
    return {"kinds": per_kind, "precision": overall}
