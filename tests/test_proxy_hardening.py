"""The proxy under abuse and faults: bounded bodies and lore searches, malformed input, clients that leave
early, engines that hang, stall, drop kept-alive connections or answer with errors, and browser pages."""

import asyncio
import json
import os
import select
import socket
import stat
import time

import httpx
import pytest

from scifi_llm.lore import LoreService
from scifi_llm.proxy import Timeouts
from scifi_llm.proxy.augment import MAX_QUERY_CHARS, lore_request
from servers import ELENA_QUESTION, FaultyEngine, RacyEngine, serve_in_thread

from conftest import free_port

USER = [{"role": "user", "content": "Hello"}]


def stats(url: str) -> dict:
    return httpx.get(url.removesuffix("/v1") + "/stats").json()


def dead_engine() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_all_read(proxy):
    with proxy(dead_engine(), max_body_bytes=100_000) as url:
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            piece, sent = b"x" * 65_536, 0
            while sent < 64 * 2**20 and not select.select([connection], [], [], 0.01)[0]:
                try:
                    connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(piece)
            answer = connection.recv(65_536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 2**20  # answered long before the 64 MB the client meant to send


@pytest.mark.parametrize(
    ("raw", "status", "param"),
    [
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', 400, None),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 1e999}', 400, None),
        (b'{"messages": [{"role": "user", "content": "x\\ud800"}]}', 400, "messages[0].content"),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": 123}]}]}',
            422,
            "messages[0].content[0].text",
        ),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": null}]}]}',
            422,
            "messages[0].content[0].text",
        ),
        (b'{"messages": [{"role": "user", "content": [{}]}]}', 422, "messages[0].content[0]"),
    ],
)
def test_malformed_values_are_client_errors_that_leak_nothing(proxy, raw, status, param):
    with proxy(dead_engine()) as url:
        answer = httpx.post(
            f"{url}/chat/completions", content=raw, headers={"content-type": "application/json"}
        )
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["code"] == status and error.get("param") == param
        assert stats(url)["upstreams"][0]["in_flight"] == 0


def test_a_header_in_another_encoding_is_a_401_or_ignored(proxy):
    latin = {"Authorization": b"Bearer \xe9t\xe9"}
    with proxy(dead_engine()) as url:
        assert httpx.get(url.removesuffix("/v1") + "/health", headers=latin).status_code == 200
    with proxy(dead_engine(), api_key="s3cret") as url:
        assert httpx.get(f"{url}/models", headers=latin).status_code == 401
        assert httpx.get(
            url.removesuffix("/v1") + "/stats", headers={"Authorization": "bearer s3cret"}
        ).is_success


def test_an_unexpected_failure_is_an_openai_shaped_500_with_a_history_row(proxy, monkeypatch, tmp_path):
    from scifi_llm.proxy.augment import LoreMemory

    def broken(self, messages):  # fault injection: a bug in our own request path
        raise RuntimeError("a bug")

    monkeypatch.setattr(LoreMemory, "recall", broken)
    with proxy(dead_engine()) as url:
        answer = httpx.post(f"{url}/chat/completions", json={"messages": USER})
        assert answer.status_code == 500 and answer.json()["error"]["type"] == "internal_error"
        shown = stats(url)
        assert shown["recent_queries"][0]["status"] == 500 and shown["history"]["rows"] == 1
        assert shown["upstreams"][0]["in_flight"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_before_the_first_byte_cancels_the_engine(proxy, stream):
    faulty = FaultyEngine()
    with serve_in_thread(faulty.app, free_port()) as engine_url, proxy(f"{engine_url}/v1") as url:
        body = {"model": "hang", "stream": stream, "messages": USER}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/chat/completions", json=body, timeout=1.0)
        assert faulty.cancelled.wait(timeout=5), "the engine kept working for a client that left"
        deadline = time.monotonic() + 5
        while stats(url)["upstreams"][0]["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stats(url)["upstreams"][0]["in_flight"] == 0
        assert stats(url)["recent_queries"][0]["status"] == 499


def test_a_silent_engine_is_a_504_at_the_first_byte_and_an_error_event_when_it_stalls(proxy):
    faulty = FaultyEngine()
    timeouts = Timeouts(first_byte_s=1.0, idle_s=1.0)
    with (
        serve_in_thread(faulty.app, free_port()) as engine_url,
        proxy(f"{engine_url}/v1", timeouts=timeouts) as url,
    ):
        started = time.monotonic()
        hung = httpx.post(f"{url}/chat/completions", json={"model": "hang", "stream": True, "messages": USER})
        assert hung.status_code == 504 and time.monotonic() - started < 10
        assert "127.0.0.1" not in hung.json()["error"]["message"]
        body = {"model": "stall", "stream": True, "messages": USER}
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=30) as response:
            events = [line for line in response.iter_lines() if line.startswith("data:")]
        assert len(events) == 3 and "went silent" in events[-1]
        assert stats(url)["recent_queries"][0]["status"] == 504


def test_a_kept_alive_connection_the_engine_drops_is_retried_once_without_marking_it_down(proxy):
    racy = RacyEngine()
    with racy.running() as engine_url, proxy(engine_url) as url:
        body = {"model": "tiny", "messages": USER, "lore": {"enabled": False}}
        answers = [httpx.post(f"{url}/chat/completions", json=body) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200] * 4
        assert racy.dropped >= 1  # the race did happen...
        assert stats(url)["upstreams"][0]["failures"] == 0  # ...and cost nothing


@pytest.mark.parametrize(("behaviour", "status"), [("busy", 429), ("refuse", 400), ("crash", 500)])
def test_engine_errors_come_back_unchanged(proxy, behaviour, status):
    faulty = FaultyEngine()
    with serve_in_thread(faulty.app, free_port()) as engine_url, proxy(f"{engine_url}/v1") as url:
        answer = httpx.post(f"{url}/chat/completions", json={"model": behaviour, "messages": USER})
        assert answer.status_code == status
        assert answer.json() == {
            "error": {"message": f"{behaviour}!", "type": "engine_error", "param": "model", "code": status}
        }
        assert answer.headers.get("retry-after") == ("7" if behaviour == "busy" else None)
        assert stats(url)["upstreams"][0]["healthy"]  # an engine that answers is not down


def test_a_last_event_left_open_by_the_engine_is_closed_before_done(proxy):
    faulty = FaultyEngine()
    with serve_in_thread(faulty.app, free_port()) as engine_url, proxy(f"{engine_url}/v1") as url:
        body = {"model": "open", "stream": True, "messages": USER}
        raw = httpx.post(f"{url}/chat/completions", json=body).content
    events = [event for event in raw.split(b"\n\n") if event]
    assert events[-1] == b"data: [DONE]"
    assert json.loads(events[-2].removeprefix(b"data: "))["choices"][0]["delta"]["content"] == "two"


def test_browser_pages_and_rebound_hosts_are_refused_unless_allowed(proxy):
    page = "http://127.0.0.1:5173"
    with proxy(dead_engine(), allowed_origins=(page,)) as url:
        chat = f"{url}/chat/completions"
        body = json.dumps({"messages": USER, "lore": {"enabled": False}})
        plain = httpx.post(chat, content=body, headers={"content-type": "text/plain"})
        foreign = httpx.post(chat, json={"messages": USER}, headers={"origin": "http://evil.example"})
        rebound = httpx.get(url.removesuffix("/v1") + "/stats", headers={"host": "evil.example:8001"})
        assert (plain.status_code, foreign.status_code, rebound.status_code) == (415, 403, 403)
        assert stats(url)["total_queries"] == 0  # none of them reached the request path
        preflight = httpx.options(chat, headers={"origin": page, "access-control-request-method": "POST"})
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == page
        allowed = httpx.post(chat, json={"messages": USER}, headers={"origin": page})
        assert allowed.status_code == 502 and allowed.headers["access-control-allow-origin"] == page


def test_history_files_are_private(proxy, tmp_path):
    with proxy(dead_engine(), history_path=tmp_path / "private.db") as url:
        httpx.post(f"{url}/chat/completions", json={"messages": USER})
    files = sorted(tmp_path.glob("private.db*"))
    assert files and {stat.S_IMODE(os.stat(path).st_mode) for path in files} == {0o600}


def test_huge_messages_search_a_bounded_query_and_leave_lore_for_everyone(proxy):
    chapter = "The corridor hums. " * 210_000  # 3.9 MB
    assert len(lore_request([{"role": "user", "content": chapter + ELENA_QUESTION}]).query) <= MAX_QUERY_CHARS
    with proxy(dead_engine(), retrieval_timeout_s=30) as url:

        async def flood():
            async with httpx.AsyncClient(timeout=120) as client:
                huge = {"messages": [{"role": "user", "content": chapter}]}
                floods = [client.post(f"{url}/chat/completions", json=huge) for _ in range(4)]
                normal = client.post(f"{url}/chat/completions", json={"messages": [
                    {"role": "user", "content": ELENA_QUESTION}]})  # fmt: skip
                return await asyncio.gather(*floods, normal)

        *_, normal = asyncio.run(flood())
        assert normal.status_code == 502  # the engine is down, but the lore was found first
        shown = httpx.get(url.removesuffix("/v1") + "/stats")
        assert len(shown.content) < 100_000
        assert all(record["lore"] == "used" for record in shown.json()["recent_queries"])


def test_a_search_whose_request_gave_up_is_never_run(example_workspace, monkeypatch):
    from scifi_llm.lore import Retriever

    searched = []
    original = Retriever.search_many
    monkeypatch.setattr(  # a spy: records each batch's queries, then searches for real
        Retriever,
        "search_many",
        lambda self, queries, *a, **kw: searched.append(queries) or original(self, queries, *a, **kw),
    )
    service = LoreService(example_workspace.index_dir)
    service.preload("scifi_world")

    async def one_gives_up():
        search = lambda q: service.search(q, "scifi_world", 3, 1500, "hybrid")  # noqa: E731
        first = asyncio.ensure_future(search("Who is Elena Voss?"))
        await asyncio.sleep(0)  # the first search is under way; the next two wait for it
        kept, abandoned = asyncio.ensure_future(search("the Lark")), asyncio.ensure_future(search("Harrow"))
        await asyncio.sleep(0)
        abandoned.cancel()
        return await asyncio.gather(first, kept)

    answers = asyncio.run(one_gives_up())
    assert all(answer.results for answer in answers)
    assert [query for batch in searched for query in batch] == ["Who is Elena Voss?", "the Lark"]


def test_a_slow_reader_gets_a_fast_engines_whole_stream_in_order(proxy):
    """The proxy stops reading from the engine while a slow client lags megabytes behind, then goes on."""
    faulty = FaultyEngine()
    with serve_in_thread(faulty.app, free_port()) as engine_url, proxy(f"{engine_url}/v1") as url:
        body = {"model": "flood", "stream": True, "messages": USER, "lore": {"enabled": False}}
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=60) as response:
            time.sleep(1.0)  # the engine has sent everything; the proxy holds what the client has not read
            events = [line for line in response.iter_lines() if line.startswith("data:")]
    contents = [json.loads(event[6:])["choices"][0]["delta"]["content"][:4] for event in events[:-1]]
    assert contents == [f"{index:04d}" for index in range(400)] and events[-1] == "data: [DONE]"


def test_which_addresses_are_exposed_and_which_host_names_a_bound_proxy_accepts():
    from scifi_llm.proxy import is_exposed
    from scifi_llm.proxy.guard import host_names

    assert not any(is_exposed(host) for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert all(is_exposed(host) for host in ("0.0.0.0", "192.168.1.20", "gpu-box.local"))
    assert host_names("127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert host_names("192.168.1.20", ["novel-box"]) == {"192.168.1.20", "novel-box"}
    assert host_names("0.0.0.0") is None  # every address: the key is the guard, and `proxy` warns without one
