"""What the installed vLLM's command line accepts: settings move between releases.

The attention backend is the case in point: older vLLM reads the environment variable
`VLLM_ATTENTION_BACKEND`; newer vLLM takes `--attention-backend` and, from 0.26 on, ignores the variable
without a word (vllm-project/vllm#50292). So the form is chosen from what `vllm serve --help=all` lists,
and the reason is shown by `serve --dry-run` and `doctor`.
"""

import functools
import importlib.metadata
import shutil
import subprocess
from dataclasses import dataclass

ATTENTION_FLAG = "--attention-backend"
ATTENTION_ENV = "VLLM_ATTENTION_BACKEND"
IGNORED_FROM = "0.26"  # the first vLLM that ignores VLLM_ATTENTION_BACKEND


@dataclass(frozen=True)
class VllmCli:
    """A vLLM's version and its `serve` help text (None where vLLM is not installed here)."""

    version: str | None
    help_text: str | None

    def accepts(self, flag: str) -> bool | None:
        """True or False when the help text says; None when there is none to read."""
        return None if self.help_text is None else flag in self.help_text.split()


@functools.cache
def installed_vllm() -> VllmCli:
    """The vLLM on this machine, asked once per process."""
    try:
        version = importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return VllmCli(None, None)
    executable = shutil.which("vllm")
    if executable is None:
        return VllmCli(version, None)
    try:
        done = subprocess.run(
            [executable, "serve", "--help=all"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return VllmCli(version, None)
    return VllmCli(version, done.stdout or None)


@dataclass(frozen=True)
class Form:
    """How to hand a setting to vLLM: extra arguments, extra environment, and why this way."""

    argv: tuple[str, ...]
    env: dict[str, str]
    reason: str


def attention_backend(backend: str, cli: VllmCli) -> Form:
    """The attention backend in the form `cli` accepts."""
    named = f"vLLM {cli.version}" if cli.version else "vLLM"
    accepted = cli.accepts(ATTENTION_FLAG)
    if accepted:
        return Form(
            (ATTENTION_FLAG, backend), {}, f"{ATTENTION_FLAG} {backend}: {named} lists {ATTENTION_FLAG}"
        )
    if accepted is False:
        reason = f"{ATTENTION_ENV}={backend}: {named} has no {ATTENTION_FLAG}, so it reads the variable"
        return Form((), {ATTENTION_ENV: backend}, reason)
    reason = (
        f"{ATTENTION_FLAG} {backend}: vLLM is not installed here, so the form current vLLM takes "
        f"(from {IGNORED_FROM} on, {ATTENTION_ENV} is ignored)"
    )
    return Form((ATTENTION_FLAG, backend), {}, reason)
