"""The writing desk: drafts saved and versioned on disk, its routes behind the proxy's key, and the page
itself used as a writer would, in headless Chromium (Debian's package), against a real proxy in front of
the tiny model."""

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from scifi_llm.config import init_workspace
from scifi_llm.errors import UserError
from scifi_llm.proxy import ProxySettings, create_app
from scifi_llm.proxy.drafts import Drafts
from servers import FaultyEngine, ScriptedModel, serve_in_thread

from conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
ELENA_DRAFT = "Ledger flexed her forearm in the cold hold of the Lark and felt the hidden thing shift."


def test_each_save_keeps_the_text_it_replaces_and_any_version_can_come_back(tmp_path):
    drafts = Drafts(tmp_path / "writing", tmp_path / "versions")
    assert drafts.save("part-1/arrival.md", "First words.")
    assert not drafts.save("part-1/arrival.md", "First words.")  # unchanged: nothing written, no version
    drafts.save("part-1/arrival.md", "First words. Second words.")
    drafts.save("part-1/arrival.md", "Rewritten.")
    kept = drafts.versions("part-1/arrival.md")
    assert [version["words"] for version in kept] == [4, 2]  # newest first
    assert drafts.restore("part-1/arrival.md", kept[-1]["id"]) == "First words."
    assert drafts.read("part-1/arrival.md") == "First words."
    assert len(drafts.versions("part-1/arrival.md")) == 3  # the restore kept "Rewritten." too
    drafts.rename("part-1/arrival.md", "chapter-01.md")
    assert [draft.name for draft in drafts.all()] == ["chapter-01.md"]
    assert len(drafts.versions("chapter-01.md")) == 3


@pytest.mark.parametrize(
    "name", ["../escape.md", "/etc/passwd.md", "notes.exe", ".hidden.md", "a/../../b.md", ""]
)
def test_a_name_that_is_not_a_draft_in_the_folder_is_refused(tmp_path, name):
    drafts = Drafts(tmp_path / "writing", tmp_path / "versions")
    with pytest.raises(UserError):
        drafts.save(name, "text")
    assert not (tmp_path / "escape.md").exists()


def test_a_link_out_of_the_writing_folder_is_not_a_draft(tmp_path):
    (tmp_path / "writing").mkdir()
    secret = tmp_path / "secret.md"
    secret.write_text("private")
    (tmp_path / "writing" / "link.md").symlink_to(secret)
    drafts = Drafts(tmp_path / "writing", tmp_path / "versions")
    assert drafts.all() == []
    with pytest.raises(UserError, match="leads out"):
        drafts.read("link.md")


def test_the_page_opens_without_the_key_but_the_writers_text_needs_it(tmp_path):
    workspace = init_workspace(tmp_path / "novel", with_example=True)
    settings = ProxySettings(
        upstreams=("http://127.0.0.1:9/v1",),
        index_dir=tmp_path / "none",
        api_key="k3y",
        workspace_root=workspace.root,
    )
    with serve_in_thread(create_app(settings), free_port()) as url:
        assert httpx.get(f"{url}/desk").status_code == 200 and "Continue" in httpx.get(f"{url}/desk").text
        assert httpx.get(f"{url}/desk/static/desk.js").headers["content-type"].startswith("text/javascript")
        assert httpx.get(f"{url}/desk/api/drafts").status_code == 401
        drafts = httpx.get(f"{url}/desk/api/drafts", headers={"authorization": "Bearer k3y"}).json()["drafts"]
        form = httpx.put(
            f"{url}/desk/api/drafts/x.md", content=b"text=1", headers={"authorization": "Bearer k3y"}
        )
    assert {draft["name"] for draft in drafts} == {
        path.relative_to(workspace.writing_dir).as_posix() for path in workspace.writing_dir.rglob("*.md")
    }
    assert form.status_code == 415  # a page's form cannot write a draft


# --- the page in a real browser ---------------------------------------------------------------------


@pytest.fixture
def desk(tmp_path, example_workspace, engine):
    """A workspace with the example drafts, its desk served by a proxy in front of the tiny model."""
    workspace = init_workspace(tmp_path / "novel", with_example=True)
    settings = ProxySettings(
        upstreams=(engine,),
        index_dir=example_workspace.index_dir,
        history_path=tmp_path / "history.db",
        workspace_root=workspace.root,
    )

    @contextmanager
    def start(**changes):
        with serve_in_thread(create_app(replace(settings, **changes)), free_port()) as url:
            yield url, workspace

    return start


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*flags, "--no-first-run"])
        yield chromium
        chromium.close()


def _wait_status(page, start: str) -> None:
    """Wait until the desk's status line begins with `start`."""
    page.wait_for_function(
        "start => document.getElementById('status').textContent.startsWith(start)", arg=start
    )


def _continue_scene(page, url: str, max_tokens: int) -> None:
    """Open scene.md, and Continue from its end (Ctrl+Enter) until the answer is done."""
    _open_draft(page, url, "scene.md")
    page.locator("#max-tokens").fill(str(max_tokens))
    page.locator("#draft").press("Control+End")
    page.locator("#draft").press("Control+Enter")
    _wait_status(page, "done")


def _open_draft(page, url: str, name: str) -> None:
    page.goto(f"{url}/desk")
    page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_function(f"document.getElementById('draft-name').textContent === {name!r}")


@pytest.mark.slow
def test_typing_autosaves_and_survives_a_reload_and_a_version_comes_back(desk, browser, tmp_path):
    with desk() as (url, workspace):
        name = sorted(
            p.relative_to(workspace.writing_dir).as_posix() for p in workspace.writing_dir.rglob("*.md")
        )[0]
        before = (workspace.writing_dir / name).read_text()
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _open_draft(page, url, name)
        page.locator("#draft").press("End")
        page.locator("#draft").press("Control+End")
        page.locator("#draft").type(" The hull sang in the dark.")
        _wait_status(page, "saved")
        assert (workspace.writing_dir / name).read_text().endswith("The hull sang in the dark.")
        page.reload()
        _open_draft(page, url, name)
        assert page.locator("#draft").input_value().endswith("The hull sang in the dark.")
        page.screenshot(path=str(tmp_path / "desk-draft.png"))
        page.locator("#versions button").first.click()  # the text before the typing
        _wait_status(page, "restored")
        assert (workspace.writing_dir / name).read_text() == before
        assert page.locator("#draft").input_value() == before


@pytest.mark.slow
def test_continue_streams_through_the_proxy_shows_its_lore_and_pin_and_block_steer_the_next(
    desk, browser, tmp_path
):
    with desk() as (url, workspace):
        (workspace.writing_dir / "scene.md").write_text(ELENA_DRAFT)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _continue_scene(page, url, 12)
        written = page.locator("#generated").text_content()
        assert written
        lore = page.locator("#lore .source").all_text_contents()
        assert "characters/elena_voss.md" in lore
        page.screenshot(path=str(tmp_path / "desk-lore.png"))
        page.get_by_role("button", name="Accept").click()
        assert (
            page.locator("#draft").input_value().startswith(ELENA_DRAFT)
            and written in page.locator("#draft").input_value()
        )
        _wait_status(page, "saved")
        assert written in (workspace.writing_dir / "scene.md").read_text()

        elena = page.locator("#lore li", has_text="characters/elena_voss.md")
        elena.get_by_role("button", name="block").click()
        page.locator("#draft").press("Control+Enter")
        _wait_status(page, "done")
        assert "characters/elena_voss.md" not in page.locator("#lore .source").all_text_contents()
        assert "blocked: characters/elena_voss.md" in page.locator("#steering").text_content()
        page.locator("#lore-search").fill("skein drive")  # a note this scene never calls up: pin it
        found = page.locator("#lore-found li", has_text="technology/skein_drive.md")
        found.get_by_role("button", name="pin").click()
        page.locator("#draft").press("Control+Enter")
        _wait_status(page, "done")
        pinned = page.locator("#lore li", has_text="technology/skein_drive.md")
        assert "pinned" in pinned.locator(".why").text_content()
        assert "pinned: technology/skein_drive.md" in page.locator("#steering").text_content()


@pytest.mark.slow
def test_a_page_from_another_origin_cannot_post_to_the_proxy(desk, browser):
    other = "<html><body>a page elsewhere</body></html>"
    with desk() as (url, workspace), serve_in_thread(_Page(other), free_port()) as elsewhere:
        page = browser.new_page()
        page.goto(elsewhere)
        status = page.evaluate(
            """async (url) => {
                try {
                    const r = await fetch(url + "/desk/api/drafts/stolen.md", {method: "PUT",
                        headers: {"content-type": "application/json"}, body: JSON.stringify({text: "x"})});
                    return r.status;
                } catch (error) { return "blocked"; }
            }""",
            url,
        )
        simple = page.evaluate(  # a form-like POST needs no preflight; the proxy still refuses it
            """async (url) => {
                await fetch(url + "/desk/api/rename", {method: "POST", mode: "no-cors",
                    headers: {"content-type": "text/plain"}, body: '{"name": "a.md", "new_name": "b.md"}'});
                return "sent";
            }""",
            url,
        )
    assert status == "blocked" and simple == "sent"  # the preflight was refused: the PUT never went
    assert not (workspace.writing_dir / "stolen.md").exists()


class _Page:
    """A one-page ASGI app: a web page on another origin."""

    def __init__(self, html: str) -> None:
        self.html = html.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": self.html})


@pytest.mark.slow
def test_the_desk_command_starts_the_proxy_once_and_reuses_it(cli, workspace):
    port = free_port()
    try:
        first = cli("desk", "--no-open", "--port", str(port), workspace=workspace)
        assert first.exit_code == 0, first.stderr
        assert f"the desk: http://127.0.0.1:{port}/desk" in first.stdout
        page = httpx.get(f"http://127.0.0.1:{port}/desk", timeout=30)
        again = cli("desk", "--no-open", workspace=workspace)  # the settings name another port: reused
        assert again.exit_code == 0 and f"http://127.0.0.1:{port}/desk" in again.stdout
    finally:
        stopped = cli("stop", "--proxy", workspace=workspace)
    assert page.status_code == 200 and "scifi-llm desk" in page.text
    assert stopped.exit_code == 0


@pytest.mark.slow
def test_stop_mid_stream_cancels_the_request_at_the_engine(tmp_path, example_workspace, browser):
    engine = FaultyEngine()  # "slow": 100 chunks 0.1 s apart, and it notes when its client goes away
    workspace = init_workspace(tmp_path / "novel", with_example=True)
    (workspace.writing_dir / "scene.md").write_text(ELENA_DRAFT)
    with serve_in_thread(engine.app, free_port()) as engine_url:
        settings = ProxySettings(
            upstreams=(f"{engine_url}/v1",),
            index_dir=example_workspace.index_dir,
            workspace_root=workspace.root,
        )
        with serve_in_thread(create_app(settings), free_port()) as url:
            page = browser.new_page()
            _open_draft(page, url, "scene.md")
            page.evaluate(
                "const s = document.getElementById('model'); s.add(new Option('slow')); s.value = 'slow'"
            )
            page.locator("#draft").press("Control+Enter")
            page.wait_for_function("document.getElementById('generated').textContent.length > 0")
            page.locator("#draft").press("Escape")
            _wait_status(page, "stopped")
            assert engine.cancelled.wait(10)
    assert (workspace.writing_dir / "scene.md").read_text() == ELENA_DRAFT  # nothing entered the draft


@pytest.mark.slow
def test_a_note_found_and_edited_in_the_desk_reaches_the_next_generation(desk, browser, tmp_path):
    with desk() as (url, workspace):
        (workspace.writing_dir / "scene.md").write_text(ELENA_DRAFT)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _open_draft(page, url, "scene.md")
        page.locator("#lore-search").fill("Ledger")
        page.get_by_role("button", name="characters/elena_voss.md", exact=False).first.click()
        page.wait_for_function(
            "document.getElementById('note-name').textContent === 'characters/elena_voss.md'"
        )
        assert "Ledger" in page.locator("#note-aliases").text_content()
        note = page.locator("#note-text")
        note.press("Control+End")
        note.type(
            "\n\n## The hidden thing\n\nThe hidden thing in Ledger's forearm is a tuning fork in B-flat.\n"
        )
        page.get_by_role("button", name="Save note").click()
        _wait_status(page, "note saved and indexed")
        assert "tuning fork in B-flat" in (workspace.lore_dir / "characters" / "elena_voss.md").read_text()
        page.screenshot(path=str(tmp_path / "desk-note.png"))
        page.locator("#max-tokens").fill("4")
        page.locator("#draft").press("Control+End")
        page.locator("#draft").press("Control+Enter")
        _wait_status(page, "done")
        given = (
            page.locator("#lore li", has_text="characters/elena_voss.md").locator("details").text_content()
        )
    assert "tuning fork in B-flat" in given


@pytest.mark.slow
def test_history_is_searchable_and_reports_open_in_the_page(desk, browser, tmp_path):
    from scifi_llm.bench import save_result

    with desk() as (url, workspace):
        (workspace.writing_dir / "scene.md").write_text(ELENA_DRAFT)
        folder = save_result(
            workspace.root / "results", "retrieval", {"recall_at_1": 0.5}, {"questions": "q"}
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _continue_scene(page, url, 4)
        page.get_by_role("button", name="History").click()
        page.wait_for_selector("#viewer-list li")
        first = page.locator("#viewer-list li").first.text_content()
        page.locator("#history-search").fill("no request ever said this")
        page.wait_for_function("document.querySelectorAll('#viewer-list li').length === 0")
        page.get_by_role("button", name="Reports").click()
        page.locator("#viewer-list li", has_text=folder.name).get_by_role("button", name="summary.md").click()
        _wait_status(page, "showing")
        shown = page.locator("#viewer-body pre").text_content()
        page.screenshot(path=str(tmp_path / "desk-reports.png"))
        page.get_by_role("button", name="Back to the draft").click()
        assert page.locator("#draft").is_visible()
    assert "Ledger flexed her forearm" in first and "characters/elena_voss.md" in first
    assert shown.startswith("# Benchmark run")


def _scripted_writer(messages):
    """A model whose answer says which task it was given, and with what."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "sensory pass" in system:
        return "Cold bit her fingers; the hold smelled of oil."
    if system.startswith("You are the writer's editor"):
        instruction = user.split("\n")[0].removeprefix("Instruction: ")
        return f"Rewritten as asked ({instruction})."
    if "question about their world" in system:
        return "The notes say the Lark was built at Harrow Station."
    return "And then the lights went out."


@pytest.mark.slow
def test_rewrite_and_describe_replace_only_the_selection_and_ask_the_world_answers_aside(desk, browser):
    model = ScriptedModel(_scripted_writer)
    with (
        serve_in_thread(model.app, free_port()) as model_url,
        desk(upstreams=(f"{model_url}/v1",)) as (
            url,
            workspace,
        ),
    ):
        (workspace.writing_dir / "scene.md").write_text(ELENA_DRAFT + " She said nothing.")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _open_draft(page, url, "scene.md")
        start = len(ELENA_DRAFT) + 1
        page.evaluate(f"document.getElementById('draft').setSelectionRange({start}, {start + 17})")
        page.locator("#instruction").fill("colder")
        page.get_by_role("button", name="Rewrite").click()
        _wait_status(page, "done")
        page.get_by_role("button", name="Accept").click()
        assert page.locator("#draft").input_value() == ELENA_DRAFT + " Rewritten as asked (colder)."
        page.evaluate("document.getElementById('draft').setSelectionRange(0, 6)")  # "Ledger"
        page.get_by_role("button", name="Describe").click()
        _wait_status(page, "done")
        page.get_by_role("button", name="Discard").click()  # nothing enters the draft without Accept
        page.locator("#question").fill("Who built the Lark?")
        page.get_by_role("button", name="Ask", exact=True).click()
        _wait_status(page, "answered")
        answer = page.locator("#answer").text_content()
        lore = page.locator("#lore .source").all_text_contents()
        draft = page.locator("#draft").input_value()
    assert draft == ELENA_DRAFT + " Rewritten as asked (colder)."
    assert (
        answer == "The notes say the Lark was built at Harrow Station." and "ships/ashgrove_lark.md" in lore
    )
    asked = [messages[-1]["content"] for messages in model.asked]
    assert asked[0] == "Instruction: colder\n\nPassage:\nShe said nothing." and asked[1] == "Ledger"
    assert asked[2] == "Who built the Lark?"


@pytest.mark.slow
def test_a_long_draft_is_edited_a_part_at_a_time_and_saved_whole(desk, browser):
    paragraph = "The corridor hummed, and the lamps guttered as the ship turned toward the gate. " * 10
    chapters = [f"# Chapter {n}\n\n" + "\n\n".join([paragraph] * 30) + "\n\n" for n in range(1, 5)]
    whole = "".join(chapters)  # 4 chapters of 4,200 words: each starts a part of its own
    with desk() as (url, workspace):
        (workspace.writing_dir / "novel.md").write_text(whole)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _open_draft(page, url, "novel.md")
        assert page.locator("#part option").count() == 4
        assert page.locator("#draft").input_value() == chapters[0].rstrip("\n")
        page.locator("#part").select_option("1")
        assert page.locator("#draft").input_value() == "\n\n" + chapters[1].rstrip("\n")
        page.locator("#draft").press("Control+End")
        page.locator("#draft").type(" Then silence.")
        _wait_status(page, "saved")
        words = page.locator("#word-count").text_content()
    assert (workspace.writing_dir / "novel.md").read_text() == whole.replace(
        chapters[1], chapters[1].rstrip("\n") + " Then silence.\n\n", 1
    )  # the part's last paragraph goes on; the next chapter still starts after a blank line
    assert words == f"{len(whole.split()) + 2} words"  # the whole draft's words, not the part's


@pytest.mark.slow
def test_with_a_key_the_page_works_from_the_address_desk_opens_and_not_without_it(desk, browser):
    with desk(api_key="s3cret") as (url, workspace):
        page = browser.new_page()
        page.goto(f"{url}/desk")  # no key: the page loads, the writer's files do not
        _wait_status(page, "this desk needs the proxy's key")
        assert page.locator("#drafts li").count() == 0
        page.goto(f"{url}/desk#key=s3cret")  # as `scifi-llm desk` opens it
        page.wait_for_selector("#drafts li")
        listed = page.locator("#drafts li").all_text_contents()
        shown = page.url
    assert set(listed) == {path.name for path in workspace.writing_dir.glob("*.md")}
    assert "s3cret" not in shown  # the key leaves the address bar once read


@pytest.mark.slow
def test_check_marks_the_margin_beside_the_line_with_the_note_a_click_away(
    tmp_path, example_workspace, browser
):
    from scifi_llm.check import DraftChecker

    workspace = init_workspace(tmp_path / "novel", with_example=True)
    lines = ["# Hesper", "", "Elena Voss went down the Stairwell.", "", "The lift cages rattled.", "",
             "Ninety thousand people lived in the caverns under the ice of Hesper.", ""]  # fmt: skip
    (workspace.writing_dir / "hesper.md").write_text("\n".join(lines))
    settings = ProxySettings(
        upstreams=("http://127.0.0.1:9/v1",),
        index_dir=example_workspace.index_dir,
        history_path=None,
        workspace_root=workspace.root,
    )
    with serve_in_thread(create_app(settings, DraftChecker(example_workspace)), free_port()) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _open_draft(page, url, "hesper.md")
        page.get_by_role("button", name="Check").click()
        mark = page.locator("#marks .mark")
        mark.wait_for()
        assert mark.count() == 1 and "61,000" in mark.inner_text() and "number" in mark.inner_text()
        area = page.locator("#draft").bounding_box()
        assert mark.bounding_box()["y"] - area["y"] > 4 * 17  # beside line 7, not at the top
        page.screenshot(path=str(tmp_path / "desk-check.png"))
        mark.get_by_role("button", name="note").click()
        page.wait_for_function("document.getElementById('note-name').textContent === 'places/hesper.md'")
        mark.locator("span").click()  # the mark selects its line
        selected = page.evaluate("(() => { const a = document.getElementById('draft'); "
                                 "return a.value.slice(a.selectionStart, a.selectionEnd); })()")  # fmt: skip
        assert selected == lines[6]
