"""`scifi-llm serve`, `stop` and `status`: the model server's lifecycle."""

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, err_console, print_json
from scifi_llm.errors import UserError
from scifi_llm.models import locate, require
from scifi_llm.serving import (
    Engine,
    EngineCommand,
    ServeOptions,
    build_command,
    detect_gpus,
    process,
    read_lora,
)

if TYPE_CHECKING:
    from scifi_llm.config import Workspace

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]


def _max_model_len(value: str | None, default: int | str) -> int | str | None:
    chosen = value if value is not None else default
    if chosen in (None, "auto"):
        return chosen
    try:
        tokens = int(chosen)
    except ValueError as exc:
        raise UserError(f"--max-model-len {chosen!r}: give a number of tokens or 'auto'") from exc
    if tokens < 1:
        raise UserError(f"--max-model-len {tokens}: must be positive")
    return tokens


def serve(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Argument(help="Model: hub name or local folder (default: settings).")
    ] = None,
    engine: Annotated[
        Engine | None, typer.Option(help="auto: vLLM with a CUDA GPU, else transformers.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings, 8000).")] = None,
    max_model_len: Annotated[
        str | None, typer.Option(help="Context in tokens, or 'auto' from free VRAM.")
    ] = None,
    max_num_seqs: Annotated[int | None, typer.Option(min=1, help="Most sequences vLLM runs at once.")] = None,
    gpu_memory_utilization: Annotated[
        float | None,
        typer.Option(min=0.05, max=1.0, help="Share of GPU memory vLLM may take (default: settings, 0.90)."),
    ] = None,
    kv_cache_dtype: Annotated[str, typer.Option(help="vLLM KV-cache dtype, e.g. fp8.")] = "auto",
    tensor_parallel_size: Annotated[int, typer.Option(min=1, help="Split one model over N GPUs (vLLM).")] = 1,
    lora: Annotated[
        list[str] | None,
        typer.Option(help="Serve an adapter as NAME=PATH or NAME=RUN:best (repeatable, vLLM)."),
    ] = None,
    foreground: Annotated[bool, typer.Option(help="Stay attached and show the engine's output.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the command and environment, start nothing.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Start the model server and wait until it answers: vLLM on a CUDA GPU, transformers serve elsewhere.

    Arguments after `--` go to the engine unchanged, e.g. `scifi-llm serve -- --enforce-eager`.
    """
    workspace = ctx.obj.open_workspace()
    settings = workspace.settings.serve
    extra_args = list(ctx.args)
    if model and model.startswith("-"):  # `serve -- --flag`: click hands the first extra to MODEL
        extra_args.insert(0, model)
        model = None
    options = ServeOptions(
        model=model or workspace.settings.model.name,
        engine=engine or settings.engine,
        host=settings.host,
        port=port or settings.port,
        max_model_len=_max_model_len(max_model_len, settings.max_model_len),
        auto_cap=settings.auto_max_model_len,
        max_num_seqs=max_num_seqs,
        gpu_memory_utilization=gpu_memory_utilization or settings.gpu_memory_utilization,
        kv_cache_dtype=kv_cache_dtype,
        tensor_parallel_size=tensor_parallel_size,
        loras=tuple(read_lora(_checkpoint(spec, workspace.root)) for spec in lora or []),
        extra_args=tuple(extra_args),
    )
    command = build_command(options, detect_gpus())
    if dry_run:
        _show_command(command, json_output)
        return
    record = start_engine(workspace, options, command, foreground)
    if json_output:
        print_json(process.status(workspace.state_dir).to_dict())
    else:
        console.print(
            f"{command.engine} serves {escape(options.model)} at [bold]{command.base_url}[/] "
            f"(pid {record.pid}, log {escape(record.log)})"
        )
    if foreground:
        _stay_attached(workspace.state_dir, record)


def _checkpoint(spec: str, root: Path) -> str:
    """NAME=RUN:best (or RUN:last) as NAME=the checkpoint folder it names."""
    from scifi_llm.tune import checkpoint_path

    name, sep, path = spec.partition("=")
    return f"{name}={checkpoint_path(path, root)}" if sep and path.endswith((":best", ":last")) else spec


def start_engine(
    workspace: "Workspace", options: ServeOptions, command: EngineCommand, to_terminal: bool = False
) -> process.ServerRecord:
    """Start the engine `command` runs for `options` and wait until it answers (a spinner meanwhile)."""
    if locate(options.model, workspace.root)[1] == "hub cache":  # here already: the engine need not ask
        command.env.setdefault("HF_HUB_OFFLINE", "1")
    require(options.model, "serve", workspace.root)
    record = process.start(command, options.model, options.port, workspace.state_dir, to_terminal=to_terminal)
    with err_console.status(f"starting {command.engine} with {escape(options.model)}...") as spinner:
        process.wait_until_healthy(
            record,
            workspace.settings.serve.startup_timeout,
            lambda waited: spinner.update(f"starting {command.engine}: {waited:.0f} s"),
        )
    return record


def _show_command(command: EngineCommand, json_output: bool) -> None:
    if json_output:
        print_json(
            {
                "engine": command.engine,
                "argv": command.argv,
                "env": command.env,
                "base_url": command.base_url,
                "notes": command.notes,
            }
        )
        return
    for note in command.notes:
        console.print(f"# {escape(note)}", soft_wrap=True)
    env = " ".join(f"{key}={shlex.quote(value)}" for key, value in command.env.items())
    console.print(escape(f"{env} {shlex.join(command.argv)}".strip()), soft_wrap=True)


def _stay_attached(state_dir: Path, record: process.ServerRecord) -> None:
    """Wait while the server runs; Ctrl-C stops it."""
    try:
        while process.is_ours(record):
            time.sleep(1)
    except KeyboardInterrupt:
        console.print(process.stop(state_dir))


def stop(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait after SIGTERM before SIGKILL.")] = 30.0,
    proxy: Annotated[
        bool, typer.Option("--proxy", help="Stop the lore proxy (`proxy --detach`) instead.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Stop the model server that `serve` started here, or with --proxy the lore proxy (and nothing else)."""
    kind = process.PROXY if proxy else process.ENGINE
    message = process.stop(ctx.obj.open_workspace().state_dir, timeout, kind)
    if json_output:
        print_json({"result": message})
    else:
        console.print(message)


def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """What runs: the engine (model, port, pid, uptime, health) and the lore proxy when it was detached."""
    state_dir = ctx.obj.open_workspace().state_dir
    engine, proxy = process.status(state_dir), process.status(state_dir, process.PROXY)
    if json_output:
        print_json(engine.to_dict() | {"proxy": proxy.to_dict()})
        return
    _print_status(engine, "model server", "scifi-llm serve", "scifi-llm stop")
    if proxy.record is not None:
        _print_status(proxy, "lore proxy", "scifi-llm proxy --detach", "scifi-llm stop --proxy")


def _print_status(current: process.ServerStatus, what: str, start: str, stop_command: str) -> None:
    if current.record is None:
        console.print(f"no {what} running (start one with [bold]{start}[/])")
        return
    record = current.record
    if current.state == "stale":
        console.print(
            f"{what} not running: the record names pid {record.pid}, which no longer runs it; "
            f"{stop_command} clears it"
        )
        return
    health = "[green]healthy[/]" if current.healthy else "[yellow]not answering[/]"
    console.print(
        f"{record.engine} · {escape(record.model)} · {record.base_url} · pid {record.pid} · "
        f"up {current.uptime_s:.0f} s · {health}"
    )


def register(app: typer.Typer) -> None:
    """Add serve, stop and status to the root app."""
    app.command(context_settings={"allow_extra_args": True})(serve)
    app.command()(stop)
    app.command()(status)
