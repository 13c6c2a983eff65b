"""The workspace and its settings: `scifi-llm.toml`, overridden by SCIFI_LLM_* environment variables.

A workspace is a folder holding `scifi-llm.toml`. Commands find it by walking up from the current
directory, like git, unless `--workspace DIR` or SCIFI_LLM_WORKSPACE names it. Runtime state (the lore
index, logs, pid files) lives in `<workspace>/.scifi-llm/`.
"""

import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_write_text

CONFIG_NAME = "scifi-llm.toml"
STATE_DIR = ".scifi-llm"
WORKSPACE_ENV = "SCIFI_LLM_WORKSPACE"
RetrievalMode = Literal["hybrid", "dense", "keyword"]
COLLECTION_NAME = r"^[A-Za-z0-9_-]+$"  # a collection is a folder in the index: no paths, no dots


def check_collection_name(name: str | None) -> str | None:
    """`name` when it can name a collection (letters, digits, _ and -), else a one-line UserError."""
    if name is not None and not re.fullmatch(COLLECTION_NAME, name):
        raise UserError(f"collection name {name!r} may hold only letters, digits, _ and -")
    return name


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Section):
    """The language model the writer serves."""

    name: str = "meta-llama/Llama-3.1-8B-Instruct"


class LoreSettings(_Section):
    """Where the lore lives and how it is chunked, embedded and retrieved."""

    folder: str = "lore"
    collection: str = Field("scifi_world", pattern=COLLECTION_NAME)
    embedding_model: str = "BAAI/bge-large-en-v1.5"
    chunk_tokens: int = Field(200, ge=50, le=4000)
    chunk_overlap: int = Field(30, ge=0, le=1000)
    top_k: int = Field(5, ge=1, le=100)
    budget_tokens: int = Field(1500, ge=100)
    mode: RetrievalMode = "hybrid"
    scan_depth: int = Field(4, ge=0, le=100)
    outside_folders: list[str] = []

    @model_validator(mode="after")
    def _overlap_fits(self) -> "LoreSettings":
        if self.chunk_overlap > self.chunk_tokens // 2:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be at most half of chunk_tokens "
                f"({self.chunk_tokens})"
            )
        return self


def server_url(host: str, port: int) -> str:
    """The root URL of a server listening on `host`:`port` (an IPv6 address goes in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ServeSettings(_Section):
    """How `scifi-llm serve` runs the model server."""

    engine: Literal["auto", "vllm", "transformers"] = "auto"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_model_len: int | Literal["auto"] = "auto"
    # `auto` fills free memory up to this: the old plan measured 32k fastest, 64k balanced, 100k slow
    auto_max_model_len: int = Field(65536, ge=1024)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    startup_timeout: int = Field(900, ge=1)

    @property
    def base_url(self) -> str:
        """The engine's OpenAI base URL, as these settings start it."""
        return f"{server_url(self.host, self.port)}/v1"


class ProxySection(_Section):
    """How `scifi-llm proxy` runs the lore proxy."""

    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    upstream: str = "http://127.0.0.1:8000/v1"
    api_key: str = ""
    max_body_mb: float = Field(4.0, gt=0)
    retrieval_timeout_s: float = Field(5.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    first_byte_timeout_s: float = Field(120.0, gt=0)
    idle_timeout_s: float = Field(60.0, gt=0)
    answer_timeout_s: float = Field(600.0, gt=0)
    allowed_origins: list[str] = []
    allowed_hosts: list[str] = []
    lore_placement: Literal["conversation", "last_user", "system"] = "conversation"
    lore_carry_tokens: int = Field(6000, ge=0)
    history: bool = True
    history_limit: int = Field(100_000, ge=1)

    @property
    def base_url(self) -> str:
        """The proxy's OpenAI base URL, as these settings start it."""
        return f"{server_url(self.host, self.port)}/v1"


class WritingSettings(_Section):
    """Where the writer's own prose lives."""

    folder: str = "writing"


class TuneSettings(_Section):
    """How `tune prepare` turns the writing into training examples."""

    min_tokens: int = Field(500, ge=1)
    max_tokens: int = Field(2000, ge=1)
    sequence_len: int = Field(2048, ge=64)
    val_fraction: float = Field(0.1, ge=0, lt=1)
    note_patterns: list[str] = []


class Settings(BaseSettings):
    """All settings of a workspace; environment variables win over the file."""

    model_config = SettingsConfigDict(env_prefix="SCIFI_LLM_", env_nested_delimiter="__", extra="forbid")

    model: ModelSettings = ModelSettings()
    serve: ServeSettings = ServeSettings()
    proxy: ProxySection = ProxySection()
    lore: LoreSettings = LoreSettings()
    writing: WritingSettings = WritingSettings()
    tune: TuneSettings = TuneSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the values read from scifi-llm.toml (passed as init arguments)."""
        return env_settings, init_settings


@dataclass(frozen=True)
class Workspace:
    """A writer's project folder and its validated settings."""

    root: Path
    settings: Settings

    @property
    def state_dir(self) -> Path:
        """Runtime state: index, history, pid files, logs."""
        return self.root / STATE_DIR

    @property
    def index_dir(self) -> Path:
        """The embedded LanceDB database holding the lore collections."""
        return self.state_dir / "index"

    @property
    def lore_dir(self) -> Path:
        """The lore folder named in the settings."""
        return (self.root / self.settings.lore.folder).resolve()

    @property
    def writing_dir(self) -> Path:
        """The writing folder named in the settings."""
        return (self.root / self.settings.writing.folder).resolve()

    @property
    def outside_folders(self) -> tuple[Path, ...]:
        """Folders outside lore/ and writing/ that symlinks there may lead into (`lore.outside_folders`)."""
        folders = self.settings.lore.outside_folders
        return tuple((self.root / Path(folder).expanduser()).resolve() for folder in folders)


def load_settings(config_path: Path) -> Settings:
    """Read and validate `config_path`; any mistake becomes one UserError line naming the field."""
    try:
        values = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{config_path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{config_path}: not valid TOML: {exc}") from exc
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise UserError(f"{config_path}: {field}: {first['msg']}") from exc


def find_workspace(explicit: Path | None = None, start: Path | None = None) -> Workspace:
    """The workspace named by `explicit` or SCIFI_LLM_WORKSPACE, else the nearest one above `start`."""
    named = explicit or (Path(os.environ[WORKSPACE_ENV]) if os.environ.get(WORKSPACE_ENV) else None)
    if named is not None:
        root = named.expanduser().resolve()
        if not (root / CONFIG_NAME).is_file():
            raise UserError(
                f"{root} is not a scifi-llm workspace (no {CONFIG_NAME}): run `scifi-llm init {root}`"
            )
        return Workspace(root, load_settings(root / CONFIG_NAME))
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Workspace(folder, load_settings(folder / CONFIG_NAME))
    raise UserError(
        f"no scifi-llm workspace in {here} or above: run `scifi-llm init DIR` or pass --workspace DIR"
    )


CONFIG_TEMPLATE = """\
# scifi-llm workspace settings. Every value here is the default; change what you need.
# Any setting can also be overridden from the environment, e.g. SCIFI_LLM_LORE__TOP_K=8.

[model]
# The model you serve: a Hugging Face name or a local folder.
name = "meta-llama/Llama-3.1-8B-Instruct"

[serve]
# "vllm" (CUDA GPU), "transformers" (transformers serve, anywhere) or "auto" (vLLM when it can run).
engine = "auto"
# Where the model server listens; keep 127.0.0.1 unless other machines must reach it.
host = "127.0.0.1"
# The engine's port; its OpenAI API is then http://HOST:PORT/v1.
port = 8000
# vLLM context length in tokens, or "auto" to size it from free GPU memory (KV-cache arithmetic).
max_model_len = "auto"
# The most "auto" chooses: the old plan found 32k fastest, 64k balanced, 100k slow (measure yours with
# `scifi-llm bench context --server-settings 32768,65536,100000`).
auto_max_model_len = 65536
# Share of GPU memory vLLM may take for weights and KV cache.
gpu_memory_utilization = 0.9
# Seconds `serve` waits for the server to answer before giving up (large models load slowly).
startup_timeout = 900

[proxy]
# Where the lore proxy listens; point your writing app at http://HOST:PORT/v1.
host = "127.0.0.1"
# The proxy's port.
port = 8001
# The engine's OpenAI base URL (with or without /v1); `scifi-llm proxy --upstream` may name several.
upstream = "http://127.0.0.1:8000/v1"
# When set, clients must send "Authorization: Bearer <api_key>" (all endpoints but /health).
api_key = ""
# Largest request body accepted, in MB.
max_body_mb = 4.0
# Seconds lore retrieval may take before a request goes on without lore.
retrieval_timeout_s = 5.0
# Seconds the proxy waits for the engine to accept a connection.
connect_timeout_s = 5.0
# Seconds to a stream's first chunk (the prompt's prefill: tens of seconds for a very long prompt).
first_byte_timeout_s = 120.0
# Seconds the engine may fall silent between two chunks of a stream.
idle_timeout_s = 60.0
# Seconds for a whole non-streamed answer (it comes in one piece, at the end).
answer_timeout_s = 600.0
# Web pages that may call the proxy from a browser (SillyTavern, a web UI), e.g. ["http://127.0.0.1:8000"].
# Any other page's request is refused, so a web site you visit cannot use your model or read your prompts.
allowed_origins = []
# Names besides the bound address that requests may use to reach the proxy (e.g. a LAN host name).
allowed_hosts = []
# Where the lore goes in each request: "conversation" (just before the last user message, and the lore
# of earlier turns kept where it was given, so every request is an exact prefix of the next and the
# engine's prefix cache is reused), "last_user" (just before the last user message, nothing kept), or
# "system" (right after the system prompt: the whole conversation is prefilled again when lore changes).
lore_placement = "conversation"
# Most tokens of earlier turns' lore that "conversation" keeps in a request.
lore_carry_tokens = 6000
# Keep a history of requests in .scifi-llm/history.db.
history = true
# Most requests the history keeps (oldest are deleted first).
history_limit = 100000

[lore]
# Folder of worldbuilding notes (.md, .txt), relative to this file.
folder = "lore"
# The index collection that `lore ingest` writes and the proxy reads.
collection = "scifi_world"
# Embedding model: a Hugging Face name, a local folder, or "minilm" (bundled, works offline).
# A collection remembers the model it was built with; queries use that one.
embedding_model = "BAAI/bge-large-en-v1.5"
# Largest chunk in tokens: a note's short sections are packed together up to this size, long ones cut
# between sentences. Chunks are what the search ranks; what the model gets grows from them.
chunk_tokens = 200
# Tokens of context repeated from the end of one chunk at the start of the next, within a paragraph.
chunk_overlap = 30
# How many notes a query draws on at most.
top_k = 5
# Tokens of lore a query hands over: the best chunks, grown with their neighbours until this is full.
budget_tokens = 1500
# Retrieval mode: "hybrid" (names and aliases + meaning + keywords), "dense" or "keyword".
mode = "hybrid"
# How many recent turns of a conversation the proxy scans for names: the people and places named there
# stay in the running, so "Continue." still gets the lore of the scene.
scan_depth = 4
# Folders outside lore/ (and writing/) that a symlink there may lead into, e.g. ["~/shared-notes"].
# Any other link out of the folder is skipped, and said so: nothing elsewhere on the disk reaches prompts.
outside_folders = []

[writing]
# Folder of your own finished prose, used for fine-tuning.
folder = "writing"

[tune]
# Each training example holds this many tokens of your prose, at least...
min_tokens = 500
# ...and at most (lowered automatically when the sequence length needs it).
max_tokens = 2000
# Longest training sequence: system + request + passage through the chat template.
sequence_len = 2048
# Share of scenes kept aside for validation.
val_fraction = 0.1
# Extra regular expressions for lines that are your notes, not prose (TODO, FIXME, NOTE TO SELF always are).
note_patterns = []
"""

WORKSPACE_FOLDERS = ("lore", "writing", "configs")
# With --example: the questions `lore eval` and `bench` score the example world with, and a script that
# asks through the proxy with the official openai SDK.
EXAMPLE_FILES = ("lore_questions.jsonl", "ask_with_openai.py")


def example_dir() -> Path:
    """The bundled example world: inside the installed package, or `examples/` of a source checkout."""
    return _bundled("examples", "the example world")


def configs_dir() -> Path:
    """The shipped training configs: inside the installed package, or `configs/` of a source checkout."""
    return _bundled("configs", "the training configs")


def _bundled(name: str, what: str) -> Path:
    for candidate in (Path(__file__).parent / name, Path(__file__).parents[2] / name):
        if candidate.is_dir():
            return candidate
    raise UserError(f"this copy of scifi-llm is missing {what} (reinstall it)")


def init_workspace(root: Path, with_example: bool = False) -> Workspace:
    """Create a workspace in `root` (scifi-llm.toml, lore/, writing/, configs/ with the training configs);
    never overwrite one."""
    root = root.expanduser().resolve()
    if (root / CONFIG_NAME).exists():
        raise UserError(f"{root / CONFIG_NAME} already exists: this folder is already a workspace")
    if with_example:
        busy = [
            name for name in ("lore", "writing") if (root / name).exists() and any((root / name).iterdir())
        ]
        if busy:
            raise UserError(f"{root / busy[0]} is not empty: --example only fills empty folders")
    for name in WORKSPACE_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    if with_example:
        source = example_dir()
        for name in ("lore", "writing"):
            shutil.copytree(source / name, root / name, dirs_exist_ok=True)
        for name in EXAMPLE_FILES:
            if not (root / name).exists():
                shutil.copy2(source / name, root / name)
    for config in sorted(configs_dir().glob("*.yaml")):
        if not (root / "configs" / config.name).exists():
            shutil.copy2(config, root / "configs" / config.name)
    atomic_write_text(root / CONFIG_NAME, CONFIG_TEMPLATE)
    return Workspace(root, load_settings(root / CONFIG_NAME))
