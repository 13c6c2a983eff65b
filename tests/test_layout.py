"""The package's floors: the ground floor, then lore and serving, then proxy, tune and bench, then the CLI.

A module imports from its own part freely, from a lower floor through that part's public API
(`scifi_llm.lore`, not `scifi_llm.lore.store`), and never from its own floor or one above it.
"""

import ast
from pathlib import Path

import pytest

import scifi_llm

PACKAGE = Path(scifi_llm.__file__).parent
FLOORS = {"lore": 1, "serving": 1, "proxy": 2, "tune": 2, "bench": 2, "check": 2, "cli": 3}
_CLI_MODULES = {"doctor", "__main__"}  # the command line's own helpers, beside the cli package


def _part(dotted: str) -> str:
    part = dotted.split(".")[1] if dotted.startswith("scifi_llm.") else ""
    return "cli" if part in _CLI_MODULES else part


def _floor(part: str) -> int:
    return FLOORS.get(part, 0)  # the ground floor: text, tokens, models, judge, fsutil, config, ...


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name.startswith("scifi_llm.")]


def _violations(path: Path) -> list[str]:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    own = _part(".".join(relative.parts))
    problems = []
    for name in _imports(path):
        part = _part(name)
        if part == own or part == "exports":
            continue
        if _floor(part) > 0 and _floor(part) >= _floor(own):
            problems.append(f"{relative} imports {name}: a part may only use lower floors")
        elif _floor(part) > 0 and name != f"scifi_llm.{part}":
            problems.append(f"{relative} imports {name}: use the public API, scifi_llm.{part}")
    return problems


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE))
)
def test_each_module_keeps_to_the_floors(path):
    assert _violations(path) == []


def test_the_check_catches_a_reach_into_another_part(tmp_path, monkeypatch):
    monkeypatch.setattr("test_layout.PACKAGE", tmp_path / "scifi_llm")
    (tmp_path / "scifi_llm" / "proxy").mkdir(parents=True)
    sneaky = tmp_path / "scifi_llm" / "proxy" / "app.py"
    sneaky.write_text("from scifi_llm.lore.store import LoreIndex\nfrom scifi_llm.bench import run_load\n")
    assert len(_violations(sneaky)) == 2
