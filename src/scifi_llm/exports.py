"""Public names of a package that load their module on first use.

Each part (lore, proxy, tune, bench, serving) lists its public API in its `__init__.py`; other parts, the
CLI, perf scripts and tests import from there. Loading on first use keeps `import scifi_llm.lore` cheap
for the everyday commands that need one small piece of it.
"""

import importlib
from collections.abc import Callable


def lazy_exports(package: str, modules: dict[str, list[str]]) -> tuple[list[str], Callable[[str], object]]:
    """`__all__` and a module `__getattr__` for `package`, from its modules and the names each exports."""
    home = {name: module for module, names in modules.items() for name in names}

    def load(name: str) -> object:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    return sorted(home), load
