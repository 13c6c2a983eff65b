"""The proxy's settings: one frozen object, built from the workspace's `[proxy]` and `[lore]` sections."""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from scifi_llm.config import RetrievalMode, Workspace
from scifi_llm.openai_client import api_base
from scifi_llm.proxy.augment import Placement
from scifi_llm.proxy.upstreams import Timeouts


@dataclass(frozen=True)
class ProxySettings:
    """Everything the proxy needs to run."""

    upstreams: tuple[str, ...]
    index_dir: Path
    collection: str = "scifi_world"
    top_k: int = 5
    budget_tokens: int = 1500
    mode: RetrievalMode = "hybrid"
    scan_depth: int = 4
    placement: Placement = "conversation"
    carry_tokens: int = 6000
    api_key: str | None = None
    max_body_bytes: int = 4 * 2**20
    retrieval_timeout_s: float = 5.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    history_path: Path | None = None
    history_limit: int = 100_000
    host: str = "127.0.0.1"  # the bound address: requests must name it in their Host header
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()  # web pages that may call the proxy from a browser
    workspace_root: Path | None = None  # with a workspace, the proxy also serves the desk at /desk

    @classmethod
    def from_workspace(cls, workspace: Workspace, **changes) -> "ProxySettings":
        """The settings the workspace's `scifi-llm.toml` gives, with `changes` (from the command line) over
        them; a change of None is no change."""
        section, lore = workspace.settings.proxy, workspace.settings.lore
        settings = cls(
            upstreams=(api_base(section.upstream),),
            index_dir=workspace.index_dir,
            collection=lore.collection,
            top_k=lore.top_k,
            budget_tokens=lore.budget_tokens,
            mode=lore.mode,
            scan_depth=lore.scan_depth,
            placement=section.lore_placement,
            carry_tokens=section.lore_carry_tokens,
            api_key=section.api_key or None,
            max_body_bytes=int(section.max_body_mb * 2**20),
            retrieval_timeout_s=section.retrieval_timeout_s,
            timeouts=Timeouts(
                section.connect_timeout_s,
                section.first_byte_timeout_s,
                section.idle_timeout_s,
                section.answer_timeout_s,
            ),
            history_path=workspace.state_dir / "history.db" if section.history else None,
            history_limit=section.history_limit,
            host=section.host,
            allowed_hosts=tuple(section.allowed_hosts),
            allowed_origins=tuple(section.allowed_origins),
            workspace_root=workspace.root,
        )
        return dataclasses.replace(
            settings, **{name: value for name, value in changes.items() if value is not None}
        )
