"""The lore worlds the retrieval is tuned and judged on, each a lore folder with its question sets.

`examples/` is the demo's world; `perf/worlds/` holds worlds written by authors who never saw the code,
each in a different note style. Fusion weights and chunk sizes are tuned on the `tuning` worlds only;
the others are reported as held out. Worlds kept outside the repository (a folder with `lore/` and
`questions.jsonl`) can be added to any run with `--world DIR`.
"""

from dataclasses import dataclass
from pathlib import Path

from scifi_llm.config import LoreSettings
from scifi_llm.lore import Embedder, IngestOptions, LoreIndex, Retriever, ingest_lore

ROOT = Path(__file__).resolve().parents[1]
WORLDS_DIR = ROOT / "perf" / "worlds"


@dataclass(frozen=True)
class World:
    """A lore folder, its questions (and writer-style requests), and its role in tuning."""

    name: str
    lore: Path
    questions: Path
    requests: Path | None
    style: str
    tuning: bool

    @property
    def role(self) -> str:
        """`tuning` or `held out`."""
        return "tuning" if self.tuning else "held out"


def _world(name: str, style: str, tuning: bool) -> World:
    folder = WORLDS_DIR / name
    requests = folder / "requests.jsonl"
    return World(
        name,
        folder / "lore",
        folder / "questions.jsonl",
        requests if requests.exists() else None,
        style,
        tuning,
    )


WORLDS = [
    World(
        "example",
        ROOT / "examples" / "lore",
        ROOT / "examples" / "lore_questions.jsonl",
        None,
        "mixed notes: sheets, lists, prose",
        True,
    ),
    _world("wiki", "wiki sheets: front matter, many ~30-word sections", True),
    _world("statblocks", "stat blocks as bullets and tables, a one-line glossary", True),
    _world("heldout", "mixed notes and scratch files", False),
    _world("heldout2", "mixed notes", False),
    _world("essays", "long essays with few headings", False),
    _world("vault", "an Obsidian vault: [[links]], nested folders, callouts", False),
]


def outside_world(folder: Path) -> World:
    """A world kept outside the repository: `folder/lore/`, `folder/questions.jsonl` (and requests)."""
    requests = folder / "requests.jsonl"
    return World(
        f"outside:{folder.name}",
        folder / "lore",
        folder / "questions.jsonl",
        requests if requests.exists() else None,
        "kept outside the repository",
        False,
    )


def open_world(
    world: World,
    index_dir: Path,
    embedder: Embedder,
    chunk_tokens: int | None = None,
    overlap: int | None = None,
) -> Retriever:
    """Ingest a world into a fresh index (the model passed in, loaded once) and open a retriever on it;
    chunk size and overlap default to the shipped settings."""
    lore = LoreSettings()
    chunk_tokens, overlap = (
        chunk_tokens or lore.chunk_tokens,
        lore.chunk_overlap if overlap is None else overlap,
    )
    options = IngestOptions("world", embedder.name, embedder.name, chunk_tokens, overlap)
    ingest_lore([world.lore], world.lore, LoreIndex(index_dir), options, load_embedder=lambda _name: embedder)
    return Retriever(LoreIndex(index_dir).open("world"), embedder)
