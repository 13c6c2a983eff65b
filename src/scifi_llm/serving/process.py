"""Starting, watching and stopping the model server and the lore proxy: a detached process, a pid record
and a log file each.

`serve` writes `.scifi-llm/server.json` (pid, command, port, log), `proxy --detach` writes
`.scifi-llm/proxy.json`, and their output goes to `.scifi-llm/logs/`. `stop` only ever signals the process
a record names, and only while that process still runs the recorded command: a pid the system has since
given to another program is left alone.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.serving.engines import EngineCommand

ENGINE, PROXY = "server", "proxy"  # the two records a workspace may hold


@dataclass(frozen=True)
class ServerRecord:
    """What `serve` started."""

    pid: int
    engine: str
    model: str
    port: int
    base_url: str
    health_url: str
    argv: list[str]
    log: str
    started_at: float

    def save(self, state_dir: Path, kind: str = ENGINE) -> None:
        """Write the record atomically."""
        atomic_write_text(state_dir / f"{kind}.json", json.dumps(asdict(self), indent=1) + "\n")


@dataclass(frozen=True)
class ServerStatus:
    """What runs now, as far as the record and the process table tell."""

    state: str  # "running", "not running", "stale" (record of a dead or foreign process)
    record: ServerRecord | None = None
    healthy: bool = False
    uptime_s: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        info = {"state": self.state, "healthy": self.healthy, "uptime_s": self.uptime_s}
        if self.record:
            info |= {
                key: getattr(self.record, key)
                for key in ("engine", "model", "port", "pid", "base_url", "log")
            }
        return info


def read_record(state_dir: Path, kind: str = ENGINE) -> ServerRecord | None:
    """The saved record of the engine (or the proxy), or None (a corrupt record counts as none)."""
    path = state_dir / f"{kind}.json"
    try:
        return ServerRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def is_ours(record: ServerRecord) -> bool:
    """True when the recorded pid is alive and still runs the recorded command."""
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{record.pid}/cmdline")
    if not cmdline.exists():  # no /proc (macOS): a live pid is the best evidence there is
        return True
    running = cmdline.read_bytes().split(b"\0")
    return all(part.encode() in running for part in record.argv[1:])


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the health endpoint answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def status(state_dir: Path, kind: str = ENGINE) -> ServerStatus:
    """What the record says runs, checked against the process table and the health endpoint."""
    record = read_record(state_dir, kind)
    if record is None:
        return ServerStatus("not running")
    if not is_ours(record):
        return ServerStatus("stale", record)
    return ServerStatus(
        "running", record, is_healthy(record.health_url), round(time.time() - record.started_at, 1)
    )


def start(
    command: EngineCommand,
    model: str,
    port: int,
    state_dir: Path,
    to_terminal: bool = False,
    kind: str = ENGINE,
) -> ServerRecord:
    """Start the engine (or the proxy) in its own session, record it, and send its output to a log file
    (or the terminal). Refuses when one started here still runs, or when the port is taken."""
    refuse_if_running(state_dir, kind)
    check_port_free(port)
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{command.engine}-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command.argv,
            env={**os.environ, **command.env},
            stdin=subprocess.DEVNULL,
            stdout=None if to_terminal else log,
            stderr=None if to_terminal else subprocess.STDOUT,
            start_new_session=True,
        )
    record = ServerRecord(
        process.pid,
        command.engine,
        model,
        port,
        command.base_url,
        command.health_url,
        command.argv,
        str(log_path),
        time.time(),
    )
    record.save(state_dir, kind)
    return record


def refuse_if_running(state_dir: Path, kind: str = ENGINE) -> None:
    """A one-line error when the engine (or proxy) started here still runs."""
    current = status(state_dir, kind)
    if current.state == "running" and current.record.pid != os.getpid():  # a detached proxy sees its own
        running, what = current.record, "a server" if kind == ENGINE else "a lore proxy"
        flag = "" if kind == ENGINE else " --proxy"
        raise UserError(
            f"{what} is already running (pid {running.pid}, port {running.port}): scifi-llm stop{flag}"
        )


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """A one-line error when something already listens on the port."""
    if port_in_use(port, host):
        raise UserError(f"port {port} is already in use: stop what listens there or pick another with --port")


def wait_until_healthy(
    record: ServerRecord, timeout: float, tick: Callable[[float], None] | None = None
) -> None:
    """Poll the health endpoint until it answers; fail at once if the engine dies, or at the timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if is_healthy(record.health_url, timeout=1.0):
            return
        if not is_ours(record):
            reason = death_reason(Path(record.log))
            cause = f": {reason}" if reason else ""
            raise UserError(
                f"the {record.engine} server exited while starting{cause} (its log: {record.log})"
            )
        if tick:
            tick(time.monotonic() - started)
        time.sleep(0.5)
    raise UserError(
        f"the {record.engine} server did not answer {record.health_url} within {timeout:.0f} s; "
        f"it is still starting or stuck: see {record.log}, or scifi-llm stop"
    )


_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Exit)\b:?.*$")


def death_reason(log: Path, lines: int = 400) -> str | None:
    """The last exception line an engine wrote before it died (what a 150-line traceback ends with)."""
    try:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return None
    found = [line.strip() for line in tail if _EXCEPTION_LINE.match(line.strip())]
    return found[-1][:300] if found else None


def stop(state_dir: Path, timeout: float = 30.0, kind: str = ENGINE) -> str:
    """Stop the recorded server (or proxy): SIGTERM to its process group, SIGKILL after `timeout`. Says
    what it did."""
    record = read_record(state_dir, kind)
    what = "server" if kind == ENGINE else "lore proxy"
    if record is None:
        return f"no {what} was started by scifi-llm here"
    if not is_ours(record):
        (state_dir / f"{kind}.json").unlink(missing_ok=True)
        return f"removed a stale record (pid {record.pid} no longer runs the {what})"
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_ours(record):
        time.sleep(0.2)
    forced = is_ours(record)
    if forced:
        _signal_group(record.pid, signal.SIGKILL)
    _reap(record.pid)
    (state_dir / f"{kind}.json").unlink(missing_ok=True)
    return f"stopped {record.engine} (pid {record.pid}){' with SIGKILL' if forced else ''}"


def _signal_group(pid: int, signum: int) -> None:
    """Signal the server and the workers it spawned (they share its session and process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signum)


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child, so it leaves no zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
