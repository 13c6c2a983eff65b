"""`scifi-llm proxy` (the lore proxy) and `scifi-llm ask` (one request through it)."""

import asyncio
import logging
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from scifi_llm.cli.output import console, err_console, print_json
from scifi_llm.config import check_collection_name, server_url
from scifi_llm.errors import UserError

if TYPE_CHECKING:
    from scifi_llm.config import Workspace

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]
_TIMEOUT_FLAGS = {"connect_timeout": "--connect-timeout", "first_byte_timeout": "--first-byte-timeout"}
_TIMEOUT_FLAGS |= {"idle_timeout": "--idle-timeout"}


def proxy(
    ctx: typer.Context,
    upstream: Annotated[
        list[str] | None,
        typer.Option(help="Engine base URL, with or without /v1 (repeat for several engines)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings, 8001).")] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default 127.0.0.1: this machine only).")
    ] = None,
    collection: Annotated[
        str | None, typer.Option(callback=check_collection_name, help="Lore collection (default: settings).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="SCIFI_LLM_PROXY_API_KEY", help="Require this key.")
    ] = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="Do not record requests.")] = False,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; `scifi-llm stop --proxy` stops it.")
    ] = False,
    connect_timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds to connect to the engine (default: settings, 5).")
    ] = None,
    first_byte_timeout: Annotated[
        float | None,
        typer.Option(min=0.1, help="Seconds to a stream's first chunk: the prompt's prefill (default 120)."),
    ] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds the engine may pause inside a stream (default 60).")
    ] = None,
) -> None:
    """Run the OpenAI-compatible lore proxy: every chat request gets the lore it needs, then goes on to the
    engine. Point any OpenAI client at http://127.0.0.1:8001/v1. Runs until Ctrl-C, or in the background
    with --detach (then `scifi-llm status` shows it and `scifi-llm stop --proxy` stops it).
    """
    from scifi_llm.openai_client import api_base
    from scifi_llm.serving import process

    workspace = ctx.obj.open_workspace()
    section = workspace.settings.proxy
    bind_host, bind_port = host or section.host, port or section.port
    process.refuse_if_running(workspace.state_dir, process.PROXY)
    process.check_port_free(bind_port, bind_host)
    upstreams = tuple(api_base(url) for url in (upstream or [section.upstream]))
    options = {"host": bind_host, "port": bind_port, "collection": collection, "no_history": no_history}
    options |= {"connect_timeout": connect_timeout, "first_byte_timeout": first_byte_timeout}
    options |= {"idle_timeout": idle_timeout}
    if detach:
        _start_detached(workspace, upstreams, options, api_key)
        return
    _run(workspace, upstreams, options, api_key)


def _run(workspace: "Workspace", upstreams: tuple[str, ...], options: dict, api_key: str | None) -> None:
    """Serve the proxy in this process until Ctrl-C."""
    import uvicorn

    from scifi_llm.check import DraftChecker
    from scifi_llm.proxy import ProxySettings, create_app, is_exposed

    host, port = options["host"], options["port"]
    settings = ProxySettings.from_workspace(
        workspace, upstreams=upstreams, host=host, collection=options["collection"], api_key=api_key or None
    )
    given = {"connect_s": options["connect_timeout"], "first_byte_s": options["first_byte_timeout"]}
    given |= {"idle_s": options["idle_timeout"]}
    settings = replace(
        settings,
        timeouts=replace(settings.timeouts, **{name: value for name, value in given.items() if value}),
        history_path=None if options["no_history"] else settings.history_path,
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if is_exposed(host) and not settings.api_key:
        err_console.print(
            f"[bold red]WARNING:[/] the proxy listens on {escape(host)} with no API key: anyone who can "
            "reach this machine can use your model and read your recent prompts. Set proxy.api_key in "
            "scifi-llm.toml (or --api-key), or bind 127.0.0.1."
        )
    err_console.print(f"lore proxy on {server_url(host, port)}/v1 -> {', '.join(settings.upstreams)}")
    checker = DraftChecker(workspace, options["collection"])  # the desk's continuity marks
    uvicorn.run(create_app(settings, checker), host=host, port=port, log_level="warning")


def _start_detached(
    workspace: "Workspace", upstreams: tuple[str, ...], options: dict, api_key: str | None
) -> None:
    """Start this same command in the background, recorded like the engine, and wait until it answers."""
    from scifi_llm.serving import EngineCommand, process

    argv = [sys.executable, "-m", "scifi_llm", "--workspace", str(workspace.root), "proxy"]
    argv += [arg for url in upstreams for arg in ("--upstream", url)]
    argv += ["--host", options["host"], "--port", str(options["port"])]
    argv += ["--collection", options["collection"]] if options["collection"] else []
    argv += ["--no-history"] if options["no_history"] else []
    for name, flag in _TIMEOUT_FLAGS.items():
        argv += [flag, str(options[name])] if options[name] else []
    base = server_url(options["host"], options["port"])
    env = {"SCIFI_LLM_PROXY_API_KEY": api_key} if api_key else {}  # never on the command line (ps shows it)
    command = EngineCommand("proxy", argv, env, f"{base}/v1", f"{base}/health")
    record = process.start(
        command, ", ".join(upstreams), options["port"], workspace.state_dir, kind=process.PROXY
    )
    with err_console.status("starting the lore proxy..."):
        process.wait_until_healthy(record, 120)
    console.print(f"lore proxy at [bold]{base}/v1[/] (pid {record.pid}, log {escape(record.log)})")


def ask(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="What to ask or have written.")],
    url: Annotated[str | None, typer.Option(help="Proxy URL (default: the workspace's proxy).")] = None,
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")] = 512,
    no_lore: Annotated[bool, typer.Option("--no-lore", help="Ask without lore.")] = False,
    show_lore: Annotated[
        bool, typer.Option("--show-lore", help="Print the lore chunks the proxy added.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Send one chat request through the lore proxy, stream the answer, then list the lore sources used."""
    workspace = ctx.obj.open_workspace()
    section = workspace.settings.proxy
    base = url or section.base_url
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    body = {"messages": messages, "max_tokens": max_tokens, "lore": {"enabled": not no_lore}}
    reply = asyncio.run(_stream(base, body, section.api_key or None, echo=not json_output))
    lore_sources = reply.lore_sources
    if json_output:
        print_json(
            {
                "prompt": prompt,
                "answer": reply.text,
                "sources": lore_sources,
                "ttft_s": reply.ttft_s,
                "total_s": reply.total_s,
                "chunks": reply.chunks,
            }
        )
        return
    console.print()
    console.print(f"[dim]lore sources: {escape(', '.join(lore_sources) or 'none')}[/]")
    if show_lore:
        _print_lore(base, (reply.headers or {}).get("x-lore-request-id"), section.api_key or None)


async def _stream(base: str, body: dict, api_key: str | None, echo: bool):
    """Print the answer as it streams in; return the finished reply."""
    finished = None
    from scifi_llm.openai_client import stream_chat

    async for text, reply in stream_chat(base, body, api_key):
        if echo and text:
            console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        finished = reply
    return finished


def _print_lore(base: str, request_id: str | None, api_key: str | None) -> None:
    """The passages the proxy put in front of the model for this request, as the proxy kept them."""
    import httpx

    if request_id is None:
        raise UserError(f"{base} did not name its request (no x-lore-request-id): is it the lore proxy?")
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(f"{base.removesuffix('/v1')}/lore/{request_id}", headers=headers, timeout=30)
    if response.status_code != 200:
        raise UserError(f"the proxy kept no lore for this request (HTTP {response.status_code})")
    for passage in response.json()["passages"]:
        why = ", ".join(passage["reasons"])
        console.print(
            f"[bold]{escape(passage['source'])} — {escape(passage['heading'])}[/] "
            f"[dim]({passage['tokens']} tokens; {escape(why)})[/]"
        )
        console.print(escape(passage["text"]), soft_wrap=True)


def desk(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option(help="Port of the proxy to start (default: settings, 8001).")
    ] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="Print the address; open no browser.")] = False,
) -> None:
    """Open the writing desk in your browser: your drafts, the model and the lore side by side.

    The desk is served by the lore proxy at /desk: a running one is reused, else one is started in the
    background (`scifi-llm stop --proxy` stops it). The engine (`scifi-llm serve`) writes the text.
    """
    import webbrowser

    from scifi_llm.openai_client import api_base
    from scifi_llm.serving import process

    workspace = ctx.obj.open_workspace()
    section = workspace.settings.proxy
    running = process.status(workspace.state_dir, process.PROXY)
    if running.state == "running" and running.healthy:
        base = running.record.base_url.removesuffix("/v1")
    else:
        options = {
            "host": section.host,
            "port": port or section.port,
            "collection": None,
            "no_history": False,
        }
        options |= dict.fromkeys(_TIMEOUT_FLAGS)
        process.check_port_free(options["port"], section.host)
        _start_detached(workspace, (api_base(section.upstream),), options, section.api_key or None)
        base = server_url(section.host, options["port"])
    address = f"{base}/desk" + (f"#key={section.api_key}" if section.api_key else "")
    console.print(f"the desk: [bold]{escape(f'{base}/desk')}[/]")
    if not no_open and not webbrowser.open(address):
        err_console.print("no browser could be opened here: open the address above in yours")


def register(app: typer.Typer) -> None:
    """Add proxy, ask and desk to the root app."""
    app.command()(proxy)
    app.command()(ask)
    app.command()(desk)
