"""The request history for the writer: list, search, show and export, and totals that survive restarts."""

import json
import time

import httpx

from scifi_llm.proxy import History, ProxySettings, Query, create_app
from servers import serve_in_thread

from conftest import free_port


def _filled(path) -> History:
    history = History(path)
    history.add(
        "Write the bar scene where Ledger's arm locks",
        ["characters/elena_voss.md"],
        30,
        5,
        200,
        "used",
        "tuned",
    )
    history.add("Describe the Lark's hold", ["ships/ashgrove_lark.md"], 30, 5, 200, "used", "base")
    history.add("Who built the Gate?", [], None, 5, 502, "none found", "tuned")
    return history


def test_requests_are_found_by_words_model_note_and_time(tmp_path):
    history = _filled(tmp_path / "history.db")
    assert [row["query"][:9] for row in history.search(Query(text="LEDGER"))] == ["Write the"]
    assert [row["model"] for row in history.search(Query(model="tuned"))] == ["tuned", "tuned"]
    assert [row["sources"] for row in history.search(Query(source="ashgrove"))] == [
        ["ships/ashgrove_lark.md"]
    ]
    assert len(history.search(Query(since=time.time() - 60))) == 3 and not history.search(Query(until=0))
    first = history.search(Query(limit=1))[0]
    assert first["query"] == "Who built the Gate?" and history.get(first["id"]) == first
    assert history.get(999) is None
    assert history.totals() | {"first": None, "last": None} == {
        "requests": 3, "failed": 1, "with_lore": 2, "first": None, "last": None,
        "by_model": {"tuned": 2, "base": 1},
    }  # fmt: skip


def test_history_commands_list_search_show_and_export(cli, workspace, tmp_path):
    _filled(workspace.state_dir / "history.db").close()
    listed = cli("history", "list", "--json", workspace=workspace)
    assert listed.exit_code == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["model"] for row in rows] == ["tuned", "base", "tuned"]
    found = cli("history", "search", "lark", "--model", "base", "--json", workspace=workspace)
    assert [json.loads(line)["query"] for line in found.stdout.splitlines()] == ["Describe the Lark's hold"]
    shown = cli("history", "show", str(rows[-1]["id"]), workspace=workspace)
    assert "Ledger's arm" in shown.stdout and "characters/elena_voss.md" in shown.stdout
    exported = tmp_path / "asked.jsonl"
    assert cli("history", "export", str(exported), "--source", "elena", workspace=workspace).exit_code == 0
    assert [json.loads(line)["model"] for line in exported.read_text().splitlines()] == ["tuned"]
    everything = tmp_path / "all.json"
    assert cli("history", "export", str(everything), workspace=workspace).exit_code == 0
    assert [row["query"][:5] for row in json.loads(everything.read_text())] == ["Write", "Descr", "Who b"]
    wrong = cli("history", "search", "--since", "yesterday", workspace=workspace)
    assert wrong.exit_code == 1 and "--since 'yesterday'" in wrong.stderr
    assert cli("history", "show", "999", workspace=workspace).exit_code == 1


def test_stats_count_the_history_so_a_restart_loses_nothing(example_workspace, tmp_path):
    _filled(tmp_path / "history.db").close()  # written by an earlier run of the proxy
    settings = ProxySettings(
        upstreams=("http://127.0.0.1:9/v1",), index_dir=example_workspace.index_dir,
        history_path=tmp_path / "history.db",
    )  # fmt: skip
    with serve_in_thread(create_app(settings), free_port()) as url:
        stats = httpx.get(f"{url}/stats").json()
    assert stats["total_queries"] == 3 and stats["since_start"] == 0
    assert stats["totals"]["by_model"] == {"tuned": 2, "base": 1} and stats["totals"]["failed"] == 1
