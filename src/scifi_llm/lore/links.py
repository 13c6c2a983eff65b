"""Resolving `[[wikilinks]]` to lore files, as Obsidian does.

A link names a note by its file name, with or without the extension (`[[Vesna Orlov]]`), in any case,
or by a path when two notes share a name (`[[Crew/Vesna Orlov]]`). When several files match, the one with the
shortest path wins, as in Obsidian.
"""

from pathlib import PurePosixPath


class LinkResolver:
    """Maps link targets to the sources (paths relative to the lore folder) of one collection."""

    def __init__(self, sources: list[str]) -> None:
        self._by_key: dict[str, str] = {}
        for source in sorted(sources, key=lambda name: (name.count("/"), len(name), name)):
            path = PurePosixPath(source.lower())
            stem = path.with_suffix("").as_posix()
            for key in (path.stem, path.name, stem, path.as_posix()):
                self._by_key.setdefault(key, source)
        self._suffixes = {key: source for key, source in self._by_key.items() if "/" in key}

    def resolve(self, target: str) -> str | None:
        """The source a link target points to, or None when no note has that name."""
        key = target.strip().strip("/").lower()
        if key in self._by_key:
            return self._by_key[key]
        if "/" in key:  # a partial path, `Crew/Vesna Orlov` for `Characters/Crew/Vesna Orlov.md`
            matches = [source for name, source in self._suffixes.items() if name.endswith("/" + key)]
            return min(matches, key=len) if matches else None
        return None
