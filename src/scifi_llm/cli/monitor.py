"""`scifi-llm monitor`: a live view of the engine and the lore proxy."""

import time
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from scifi_llm.cli.output import console, print_json
from scifi_llm.serving import process


def monitor(
    ctx: typer.Context,
    engine_url: Annotated[
        str | None, typer.Option(help="Engine /v1 URL (default: what serve started).")
    ] = None,
    proxy_url: Annotated[str | None, typer.Option(help="Proxy /v1 URL (default: from settings).")] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Take one snapshot and exit.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="With --once: print it as JSON.")] = False,
) -> None:
    """Watch the engine (requests running and waiting, KV cache, tokens/s, TTFT) and the proxy (recent
    queries and their lore sources, totals, latencies). A source that is down shows as down.
    """
    from scifi_llm.serving import engine_snapshot, engine_view, proxy_snapshot

    workspace = ctx.obj.open_workspace()
    record = process.read_record(workspace.state_dir)
    serve, proxy = workspace.settings.serve, workspace.settings.proxy
    engine = engine_url or (record.base_url if record else serve.base_url)
    proxy_base = proxy_url or proxy.base_url
    key = proxy.api_key or None
    if once:
        first = engine_snapshot(engine)
        time.sleep(min(interval, 1.0))
        snapshot = {
            "engine": engine_view(engine_snapshot(engine), first),
            "proxy": proxy_snapshot(proxy_base, key),
        }
        if json_output:
            print_json(snapshot)
        else:
            console.print(_render(snapshot))
        return
    before = None  # the previous engine snapshot, for rates
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                now = engine_snapshot(engine)
                live.update(
                    _render({"engine": engine_view(now, before), "proxy": proxy_snapshot(proxy_base, key)})
                )
                before = now
                time.sleep(interval)
    except KeyboardInterrupt:
        pass


def _render(snapshot: dict) -> Group:
    engine, proxy = snapshot["engine"], snapshot["proxy"]
    engine_table = Table(title=f"engine {escape(engine['url'])}", show_header=False)
    if not engine["up"]:
        engine_table.add_row("state", "[red]down[/]")
    elif not engine["metrics"]:
        engine_table.add_row("state", "[green]up[/] (this engine exports no metrics)")
    else:
        for key, value in engine.items():
            if key not in ("url", "up", "metrics"):
                engine_table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    proxy_table = Table(title="lore proxy")
    if proxy is None:
        proxy_table.add_column("state")
        proxy_table.add_row("[red]down[/]")
        return Group(engine_table, proxy_table)
    for column in ("time", "query", "sources", "retrieval ms", "ttft ms", "status"):
        proxy_table.add_column(column)
    for query in proxy["recent_queries"][:10]:
        proxy_table.add_row(
            time.strftime("%H:%M:%S", time.localtime(query["time"])),
            escape(query["query"][:60]),
            escape(", ".join(query["sources"])),
            str(query["retrieval_ms"]),
            str(query["upstream_ttft_ms"]),
            str(query["status"]),
        )
    latency = proxy["latency_ms"]
    summary = (
        f"{proxy['total_queries']} queries · {proxy['chunks_available']} chunks in {proxy['collection']} · "
        f"retrieval p50/p95 {latency['retrieval']['p50']}/{latency['retrieval']['p95']} ms · "
        f"added p50/p95 {latency['added']['p50']}/{latency['added']['p95']} ms · "
        f"{proxy['retrieval_failures']} retrieval failures"
    )
    return Group(engine_table, proxy_table, escape(summary))


def register(app: typer.Typer) -> None:
    """Add monitor to the root app."""
    app.command()(monitor)
