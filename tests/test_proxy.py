"""The lore proxy, end to end: the official openai SDK -> proxy -> a real `transformers serve`."""

import asyncio
import itertools
import json
import sqlite3
from dataclasses import replace

import httpx
import openai
import pytest

from scifi_llm.errors import UserError
from scifi_llm.lore import Hit, LoreService
from scifi_llm.proxy import LORE_HEADER, History, ProxySettings, Timeouts, create_app, lore_message
from scifi_llm.proxy.app import ProxyState
from scifi_llm.proxy.augment import Given, LoreMemory, lore_request, place
from scifi_llm.proxy.history import MIGRATIONS
from scifi_llm.proxy.metrics import RequestRecord
from servers import (
    ELENA_QUESTION,
    EngineTap,
    FaultyEngine,
    ScriptedModel,
    ask,
    running_proxy,
    sdk,
    serve_in_thread,
)

from conftest import copy_lore, free_port, ingest_with, write


def test_non_streaming_answer_with_lore_sources(proxy, engine, tiny_llama):
    with proxy(engine) as url:
        raw = sdk(url).chat.completions.with_raw_response.create(
            model=str(tiny_llama), max_tokens=8, messages=[{"role": "user", "content": ELENA_QUESTION}]
        )
        answer = raw.parse()
        assert answer.choices[0].message.role == "assistant"
        assert "characters/elena_voss.md" in raw.headers["x-lore-sources"].split(",")
        models = sdk(url).models.list()
        assert str(tiny_llama) in [model.id for model in models.data]


def test_lore_reaches_the_engine_and_can_be_switched_off(proxy, engine, tiny_llama):
    with proxy(engine) as url:
        client = sdk(url)
        with_lore = ask(client, ELENA_QUESTION, model=str(tiny_llama))
        without = ask(client, ELENA_QUESTION, model=str(tiny_llama), extra_body={"lore": {"enabled": False}})
        assert with_lore.usage.prompt_tokens > without.usage.prompt_tokens + 100
        stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
        assert [q["lore"] for q in stats["recent_queries"][:2]] == ["disabled", "used"]


def test_streaming_arrives_in_chunks_and_ends_with_done(proxy, engine, tiny_llama):
    with proxy(engine) as url:
        stream = ask(sdk(url), ELENA_QUESTION, model=str(tiny_llama), stream=True)
        chunks = [chunk for chunk in stream]
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3
        body = {
            "model": str(tiny_llama),
            "max_tokens": 4,
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
        }
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=60) as response:
            lines = [line for line in response.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"


def test_upstream_down_is_a_502_in_openai_shape(proxy):
    with proxy(f"http://127.0.0.1:{free_port()}/v1") as url:
        with pytest.raises(openai.APIStatusError) as caught:
            ask(sdk(url), "Hello")
        assert caught.value.status_code == 502
        assert caught.value.body["type"] == "upstream_error" and "unreachable" in caught.value.body["message"]


def test_a_stream_cut_by_the_engine_ends_with_an_error_event(proxy):
    faulty = FaultyEngine()
    with serve_in_thread(faulty.app, free_port()) as engine_url, proxy(f"{engine_url}/v1") as url:
        with pytest.raises(openai.APIError, match="broke off"):
            for _ in ask(sdk(url), "Hello", model="cut", stream=True):
                pass
        slow = ask(sdk(url), "Hello again", model="slow", stream=True)
        assert next(iter(slow)).choices[0].delta.content == "0 "
        slow.close()


def test_client_disconnect_cancels_the_upstream_request(proxy):
    faulty = FaultyEngine()
    with serve_in_thread(faulty.app, free_port()) as engine_url, proxy(f"{engine_url}/v1") as url:
        body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "Hello"}]}
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    break
        assert faulty.cancelled.wait(timeout=5), "the engine kept generating for a client that left"
        stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
        assert stats["upstreams"][0]["in_flight"] == 0


def test_a_hanging_engine_is_a_504(proxy):
    faulty = FaultyEngine()
    with (
        serve_in_thread(faulty.app, free_port()) as engine_url,
        proxy(f"{engine_url}/v1", timeouts=Timeouts(answer_s=1.0)) as url,
    ):
        with pytest.raises(openai.APIStatusError) as caught:
            ask(sdk(url), "Hello", model="hang")
        assert caught.value.status_code == 504


def test_failing_retrieval_answers_without_lore_and_is_counted(proxy, engine, tiny_llama):
    with proxy(engine) as url:
        answer = ask(
            sdk(url), ELENA_QUESTION, model=str(tiny_llama), extra_body={"lore": {"collection": "nope"}}
        )
        assert answer.choices
        stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
        assert stats["retrieval_failures"] == 1 and stats["recent_queries"][0]["lore"] == "failed"
        metrics = httpx.get(url.removesuffix("/v1") + "/metrics").text
        assert "scifi_proxy_retrieval_failures_total 1.0" in metrics


def test_bad_requests_get_openai_shaped_errors(proxy, engine):
    with proxy(engine, max_body_bytes=10_000) as url:
        post = lambda **kw: httpx.post(f"{url}/chat/completions", timeout=30, **kw)  # noqa: E731
        cases = [
            (post(content=b"{not json", headers={"content-type": "application/json"}), 400),
            (post(json={"messages": "hello"}), 422),
            (post(json={"messages": [{"content": "no role"}]}), 422),
            (post(json={"messages": [{"role": "user", "content": "x"}], "stream": "yes"}), 422),
            (post(json={"messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}), 422),
            (post(json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 2.5}), 422),
            (post(json={"messages": [{"role": "user", "content": "x"}], "temperature": -1}), 422),
            (post(json={"messages": [{"role": "user", "content": "x"}], "lore": {"top_k": "five"}}), 422),
            (post(json={"messages": [{"role": "user", "content": "x"}], "lore": {"pin": "elena.md"}}), 422),
            (post(json={"messages": [{"role": "user", "content": "x"}], "lore": {"block": [3]}}), 422),
            (post(json={"messages": [{"role": "user", "content": "x" * 20_000}]}), 413),
        ]
        for response, status in cases:
            assert response.status_code == status, response.text
            assert set(response.json()["error"]) >= {"message", "type", "code"}


def test_pin_and_block_in_the_request_change_the_lore_it_gets(proxy, engine, tiny_llama):
    with proxy(engine) as url:
        client = sdk(url)

        def sources(**lore):
            answer = client.chat.completions.with_raw_response.create(
                model=str(tiny_llama), max_tokens=4, messages=[{"role": "user", "content": ELENA_QUESTION}],
                extra_body={"lore": lore} if lore else None,
            )  # fmt: skip
            given = httpx.get(f"{url.removesuffix('/v1')}/lore/{answer.headers['x-lore-request-id']}").json()
            return answer.headers["x-lore-sources"].split(","), given["dropped"]

        plain, _ = sources()
        steered, dropped = sources(pin=["technology/skein_drive.md"], block=["characters/elena_voss.md"])
    assert plain[0] == "characters/elena_voss.md" and "technology/skein_drive.md" not in plain
    assert steered[0] == "technology/skein_drive.md" and "characters/elena_voss.md" not in steered
    reasons = {(entry["source"], entry["reason"]) for entry in dropped}
    assert ("characters/elena_voss.md", "blocked") in reasons


def test_api_key_is_required_everywhere_but_health(proxy, engine, tiny_llama):
    with proxy(engine, api_key="secret") as url:
        for key in ("wrong", None):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            response = httpx.get(f"{url}/models", headers=headers)
            assert response.status_code == 401 and response.json()["error"]["code"] == 401
        assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200
        assert ask(sdk(url, api_key="secret"), "Hello", model=str(tiny_llama)).choices


def test_requests_go_to_a_healthy_engine_when_another_is_down(proxy, engine, tiny_llama):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with proxy(dead, engine) as url:
        client = sdk(url)
        results = []
        for _ in range(3):
            try:
                results.append(ask(client, "Hello", model=str(tiny_llama)).choices[0].finish_reason)
            except openai.APIStatusError as error:
                results.append(error.status_code)
        assert results[1:] == ["length", "length"]
        pool = {u["url"]: u for u in httpx.get(url.removesuffix("/v1") + "/stats").json()["upstreams"]}
        assert pool[dead]["healthy"] is False and pool[engine]["healthy"] is True


def test_history_records_each_request_with_numbered_migrations(tmp_path, proxy, engine, tiny_llama):
    with proxy(engine) as url:
        for _ in range(2):
            ask(sdk(url), ELENA_QUESTION, model=str(tiny_llama))
    rows = History(tmp_path / "history.db").recent()
    assert len(rows) == 2 and rows[0]["sources"][0] == "characters/elena_voss.md" and rows[0]["status"] == 200
    version = sqlite3.connect(tmp_path / "history.db").execute("PRAGMA user_version").fetchone()[0]
    assert version == len(MIGRATIONS)


def test_history_can_be_switched_off(example_workspace, engine, tiny_llama, tmp_path):
    settings = ProxySettings(upstreams=(engine,), index_dir=example_workspace.index_dir)
    with serve_in_thread(create_app(replace(settings, history_path=None)), free_port()) as base:
        ask(sdk(f"{base}/v1"), "Hello", model=str(tiny_llama))
        assert httpx.get(f"{base}/stats").json()["history"] == {"enabled": False, "rows": 0}


def _hit(source: str, text: str, chunk: str) -> Hit:
    return Hit(f"{source}#{chunk}", text, source, source.removesuffix(".md").title(), 2, chunk_ids=[chunk])


def test_each_placement_puts_the_lore_where_it_says():
    hits = [_hit("b.md", "B text", "b1"), _hit("a.md", "A text", "a1")]
    lore = lore_message(hits)
    assert lore["content"].index("[a.md") < lore["content"].index("[b.md")  # fixed order, not by score
    assert lore_message(list(reversed(hits))) == lore
    messages = [
        {"role": "system", "content": "You write noir."},
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "Gone."},
        {"role": "user", "content": "Again"},
    ]
    assert place(messages, lore, "system") == [messages[0], lore, *messages[1:]]
    assert place(messages, lore, "last_user") == [*messages[:3], lore, messages[3]]
    earlier = Given({"role": "system", "content": "old lore"}, frozenset({"x"}), 10)
    carried = place(messages, lore, "conversation", {1: earlier})
    assert carried == [messages[0], earlier.message, messages[1], messages[2], lore, messages[3]]
    assert place(messages, None, "last_user") == messages


def test_the_lore_query_reads_recent_turns_never_the_system_prompt():
    turns = [
        {"role": "system", "content": "You are Hollis, a novelist's assistant."},
        {"role": "user", "content": "Describe the Ashgrove Lark's drive."},
        {"role": "assistant", "content": "It has one SK-4."},
        {"role": "user", "content": "And her sister's?"},
    ]
    request = lore_request(turns, scan_depth=4)
    assert request.query == "It has one SK-4.\nAnd her sister's?"
    assert request.recent == "Describe the Ashgrove Lark's drive.\nIt has one SK-4."
    assert lore_request(turns, scan_depth=1).recent == "It has one SK-4."
    long_turn = "Write the whole scene where Elena and Tomas argue in the galley about the key she carries"
    assert lore_request([*turns, {"role": "user", "content": long_turn}]).query == long_turn
    assert lore_request([turns[0], {"role": "user", "content": "Go on."}]).query == "Go on."
    assert lore_request([turns[0]]).query == ""


def test_lore_memory_carries_what_fits_and_only_for_the_same_conversation():
    memory = LoreMemory(carry_tokens=15)
    chat = [{"role": "user", "content": "one"}]
    assert memory.remember(chat, Given({"role": "system", "content": "L1"}, frozenset({"a"}), 10), 0)
    chat += [{"role": "assistant", "content": "reply"}, {"role": "user", "content": "two"}]
    carried = sum(given.tokens for given in memory.recall(chat).values())
    assert not memory.remember(
        chat, Given({"role": "system", "content": "L2"}, frozenset({"b"}), 10), carried
    )
    chat += [{"role": "assistant", "content": "reply"}, {"role": "user", "content": "three"}]
    for _ in range(2):  # the same conversation carries the same lore every time
        assert {index: given.message["content"] for index, given in memory.recall(chat).items()} == {0: "L1"}
    edited = [{"role": "user", "content": "ONE"}, *chat[1:]]
    assert memory.recall(edited) == {}  # an edited conversation carries nothing from before the edit


def test_past_the_carry_limit_the_kept_lore_never_changes(example_workspace):
    """Turn after turn through the proxy's own request path: once the limit is reached, what was kept
    stays exactly where it was, and a turn whose lore is not kept does not disturb it."""
    settings = ProxySettings(upstreams=("http://127.0.0.1:9/v1",), index_dir=example_workspace.index_dir,
                             carry_tokens=2500)  # fmt: skip
    state = ProxyState(settings)
    prompts = [
        "Write the opening scene: Ledger alone in the cold hold of the Lark.",
        "Now Hollis comes down with news from Harrow Station.",
        "The Magistrate's message arrives.",
        "Cut to Tomas on the Wren.",
        "Ilka Marsh calls about the arm.",
        "The Lark drops toward Harrow Deep.",
    ]
    messages, requests = [], []

    async def turn(prompt: str):
        messages.append({"role": "user", "content": prompt})
        record = RequestRecord()
        placed, _ = await state.with_lore(list(messages), state.lore_defaults, record)
        messages.append({"role": "assistant", "content": f"Scene {len(requests)}."})
        return placed, record

    for prompt in prompts:
        requests.append(asyncio.run(turn(prompt)))
    kept = [[m for m in placed[:-2] if m["content"].startswith(LORE_HEADER)] for placed, _ in requests]
    shown = sum(placed[-2]["content"].startswith(LORE_HEADER) for placed, _ in requests)
    assert max(record.carried_tokens for _, record in requests) <= 2500
    assert 1 <= len(kept[-1]) < shown - 1  # the limit was reached: some turns' lore was shown, not kept
    for earlier, later in itertools.pairwise(kept):
        assert later[: len(earlier)] == earlier  # kept lore is only ever added to, never moved or dropped
    messages.append({"role": "user", "content": "Now without lore, please."})
    no_lore = replace(state.lore_defaults, enabled=False)
    quiet, found = asyncio.run(state.with_lore(list(messages), no_lore, RequestRecord()))
    assert not found.results and [m for m in quiet if m["content"].startswith(LORE_HEADER)] == kept[-1]


def test_the_lore_a_request_was_given_is_kept_under_its_id_and_shown_by_ask(
    example_workspace, engine, tiny_llama, cli, workspace
):
    tap = EngineTap(engine)
    settings = ProxySettings(upstreams=(), index_dir=example_workspace.index_dir, collection="scifi_world")
    with serve_in_thread(tap.app, free_port()) as tap_url:
        settings = replace(settings, upstreams=(f"{tap_url}/v1",))
        with serve_in_thread(create_app(settings), free_port()) as proxy_url:
            body = {
                "model": str(tiny_llama),
                "max_tokens": 4,
                "messages": [{"role": "user", "content": ELENA_QUESTION}],
            }
            response = httpx.post(f"{proxy_url}/v1/chat/completions", json=body, timeout=60)
            given = httpx.get(f"{proxy_url}/lore/{response.headers['x-lore-request-id']}").json()
            missing = httpx.get(f"{proxy_url}/lore/0123456789abcdef")
            shown = cli("ask", ELENA_QUESTION, "--url", f"{proxy_url}/v1", "--max-tokens", "4", "--show-lore",
                        workspace=workspace)  # fmt: skip
    lore = next(m["content"] for m in tap.bodies[0]["messages"] if m["content"].startswith(LORE_HEADER))
    assert given["sources"] == response.headers["x-lore-sources"].split(",") and given["lore"] == "used"
    assert given["passages"] and all(passage["text"] in lore for passage in given["passages"])
    assert all(passage["reasons"] and passage["tokens"] > 0 for passage in given["passages"])
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert shown.exit_code == 0, shown.stderr
    assert f"{given['passages'][0]['source']} — {given['passages'][0]['heading']}" in shown.stdout


def test_the_engine_sees_each_request_as_an_exact_prefix_of_the_next(example_workspace, engine, tiny_llama):
    turns = [
        "Write the scene where Ledger's arm locks up in the cold hold of the Lark.",
        "Continue.",
        "Now Hollis comes down to the hold with the Magistrate's letter.",
        "Continue.",
    ]
    bodies = {}
    for placement in ("conversation", "last_user", "system"):
        tap = EngineTap(engine)
        settings = ProxySettings(upstreams=(), index_dir=example_workspace.index_dir, placement=placement)
        with serve_in_thread(tap.app, free_port()) as tap_url:
            settings = replace(settings, upstreams=(f"{tap_url}/v1",))
            with serve_in_thread(create_app(settings), free_port()) as proxy_url:
                client, messages = sdk(f"{proxy_url}/v1"), []
                for turn in turns:
                    messages.append({"role": "user", "content": turn})
                    answer = client.chat.completions.create(
                        model=str(tiny_llama), max_tokens=6, messages=messages
                    )
                    messages.append({"role": "assistant", "content": answer.choices[0].message.content})
        bodies[placement] = [body["messages"] for body in tap.bodies]
    kept = bodies["conversation"]
    assert all(later[: len(earlier)] == earlier for earlier, later in itertools.pairwise(kept))
    assert kept[0][-2]["content"].startswith(LORE_HEADER)  # the lore just before the last user message
    assert sum(message["content"].startswith(LORE_HEADER) for message in kept[-1]) >= 2  # earlier lore kept
    moved = bodies["last_user"]
    assert all(later[: len(earlier) - 2] == earlier[:-2] for earlier, later in itertools.pairwise(moved))
    old = bodies["system"]
    assert any(later[: len(earlier)] != earlier for earlier, later in itertools.pairwise(old))


def test_a_request_without_model_gets_the_engines_model(proxy, engine, tiny_llama):
    with proxy(engine) as url:
        body = {"max_tokens": 4, "messages": [{"role": "user", "content": "Hello"}]}
        response = httpx.post(f"{url}/chat/completions", json=body, timeout=60)
        assert response.status_code == 200 and response.json()["model"] == str(tiny_llama)


def test_engines_serving_different_models_are_listed_together_and_each_request_goes_to_its_model(proxy):
    base, tuned = (
        ScriptedModel(lambda _m: "from base", name="base"),
        ScriptedModel(lambda _m: "from tuned", name="tuned"),
    )
    with (
        serve_in_thread(base.app, free_port()) as base_url,
        serve_in_thread(tuned.app, free_port()) as tuned_url,
        proxy(f"{base_url}/v1", f"{tuned_url}/v1") as url,
    ):
        answers = [  # no model list asked for first: the proxy learns which engine serves which model
            ask(sdk(url), "Hello", model=name).choices[0].message.content for name in ["tuned", "base"] * 3
        ]
        listed = [model["id"] for model in httpx.get(f"{url}/models").json()["data"]]
    assert listed == ["base", "tuned"]
    assert answers == ["from tuned", "from base"] * 3
    assert len(base.asked) == len(tuned.asked) == 3


def test_history_is_searched_by_the_words_of_a_request_or_a_note_taken_literally(tmp_path):
    history = History(tmp_path / "history.db")
    history.add(
        "Write the bar scene where Ledger's arm locks", ["characters/elena_voss.md"], 30, 5, 200, "used"
    )
    history.add("Describe the Lark's hold", ["ships/ashgrove_lark.md"], 30, 5, 200, "used")
    history.add("A 100% honest_answer", [], None, 5, 200, "none found")
    assert [row["query"][:9] for row in history.recent(10, "ledger")] == ["Write the"]
    assert [row["sources"] for row in history.recent(10, "ashgrove")] == [["ships/ashgrove_lark.md"]]
    assert [row["query"] for row in history.recent(10, "100% honest_")] == ["A 100% honest_answer"]
    assert len(history.recent(10, "%")) == 1  # a character, not a wildcard
    assert len(history.recent(10)) == 3


def test_history_keeps_only_the_newest_rows(tmp_path):
    history = History(tmp_path / "history.db", limit=5)
    for number in range(1000):
        history.add(f"query {number}", [], None, None, 200, "disabled")
    assert history.count() == 5
    assert [row["query"] for row in history.recent(2)] == ["query 999", "query 998"]
    history.close()
    reopened = History(tmp_path / "history.db")
    assert reopened.count() == 5  # reopening runs no migration twice and keeps the rows


def test_lore_ingested_while_the_proxy_runs_reaches_the_next_requests(
    workspace, minilm, engine, tiny_llama, tmp_path, monkeypatch
):
    monkeypatch.setattr(LoreService, "RELOAD_CHECK_S", 0.0)
    copy_lore(workspace, "characters/elena_voss.md")
    ingest_with(minilm, workspace)
    body = {
        "model": str(tiny_llama),
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "Who is Zara?"}],
    }
    with running_proxy(workspace.index_dir, engine, tmp_path, free_port()) as url:
        before = httpx.post(f"{url}/chat/completions", json=body, timeout=60).headers["x-lore-sources"]
        note = "# Zara Quillfeather\n\nZara Quillfeather blows glass on Hesper.\n"
        write(workspace.lore_dir / "characters" / "zara.md", note)
        ingest_with(minilm, workspace)
        after = httpx.post(f"{url}/chat/completions", json=body, timeout=60).headers["x-lore-sources"]
    assert "characters/zara.md" not in before
    assert "characters/zara.md" in after


def test_concurrent_requests_share_one_embedding_batch(example_workspace, monkeypatch):
    from scifi_llm.lore import Embedder

    batches = []
    original = Embedder.embed_queries
    monkeypatch.setattr(
        Embedder, "embed_queries", lambda self, texts: batches.append(len(texts)) or original(self, texts)
    )
    service = LoreService(example_workspace.index_dir)
    service.preload("scifi_world")

    async def ask_all():
        questions = [f"What does Elena Voss carry on day {n}?" for n in range(8)]
        searches = (service.search(q, "scifi_world", 3, 1500, "hybrid") for q in questions)
        return await asyncio.gather(*searches)

    answers = asyncio.run(ask_all())
    assert len(answers) == 8 and all(answer.results for answer in answers)
    assert len(batches) < 8 and sum(batches) >= 8  # fewer forward passes than requests
    with pytest.raises(UserError):
        asyncio.run(service.search("anything", "no_such_collection", 3, 1500, "hybrid"))


def test_a_long_query_never_holds_up_the_short_ones(example_workspace, monkeypatch):
    import threading

    from scifi_llm.lore import Embedder

    long_started, short_started, held_up = threading.Event(), threading.Event(), []
    original = Embedder.embed_queries

    def embed(self, texts):
        if all(len(text) < 1000 for text in texts):
            short_started.set()
            return original(self, texts)
        long_started.set()
        vectors = original(self, texts)
        held_up.append(not short_started.wait(10))  # the long search goes on only once a short one began
        return vectors

    monkeypatch.setattr(Embedder, "embed_queries", embed)
    service = LoreService(example_workspace.index_dir)
    service.preload("scifi_world")

    async def long_then_short():
        pasted = "The corridor hums and the lamps gutter. " * 50
        long = asyncio.ensure_future(service.search(pasted, "scifi_world", 3, 1500, "hybrid"))
        await asyncio.to_thread(long_started.wait, 10)
        short = await service.search("Who is Elena Voss?", "scifi_world", 3, 1500, "hybrid")
        return short, await long

    short, long = asyncio.run(long_then_short())
    assert held_up == [False] and short.results and long.query


@pytest.mark.slow
def test_a_detached_proxy_is_shown_by_status_and_stopped_by_stop_proxy(cli, workspace):
    port = free_port()
    upstream = f"http://127.0.0.1:{free_port()}/v1"
    started = cli("proxy", "--detach", "--port", str(port), "--upstream", upstream, workspace=workspace)
    try:
        assert started.exit_code == 0, started.stderr
        assert f"lore proxy at http://127.0.0.1:{port}/v1" in started.stdout
        shown = json.loads(cli("status", "--json", workspace=workspace).stdout)
        assert shown["state"] == "not running"  # no engine...
        assert shown["proxy"]["state"] == "running" and shown["proxy"]["healthy"]  # ...but the proxy
        again = cli("proxy", "--detach", "--port", str(free_port()), workspace=workspace)
        assert again.exit_code == 1 and "a lore proxy is already running" in again.stderr
    finally:
        stopped = cli("stop", "--proxy", workspace=workspace)
    assert stopped.exit_code == 0 and "stopped proxy" in stopped.stdout
    assert json.loads(cli("status", "--json", workspace=workspace).stdout)["proxy"]["state"] == "not running"


def test_a_busy_port_is_one_line_before_anything_starts(cli, workspace):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("proxy", "--port", str(port), workspace=workspace)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: port {port} is already in use: stop what listens there or pick another with --port\n"
    )
