"""`lore ingest`: incremental, consistent after crashes, clear about everything it skips."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from scifi_llm.config import init_workspace
from scifi_llm.errors import UserError
from scifi_llm.lore import LoreIndex, Retriever, ingest_lore
from scifi_llm.lore.store import ChunkRow

from conftest import EXAMPLES, copy_lore, ingest_with, options, write

NOTES = ("characters/elena_voss.md", "ships/ashgrove_lark.md", "places/harrow_deep.md")


def stored(workspace, collection="scifi_world"):
    return LoreIndex(workspace.index_dir).open(collection)


def assert_consistent(collection):
    rows = collection.rows(["id", "source", "file_hash", "chunk_index", "n_chunks"])
    ids = Counter(row["id"] for row in rows)
    assert max(ids.values()) == 1, "duplicate chunks"
    for source, state in collection.file_states().items():
        assert len(state.hashes) == 1, f"{source} holds two versions"
        assert state.rows == state.expected_chunks == state.distinct_indices, f"{source} incomplete"


def test_reingest_of_unchanged_files_embeds_nothing(workspace, minilm):
    copy_lore(workspace, *NOTES)
    first = ingest_with(minilm, workspace)
    assert (first.files_indexed, first.files_unchanged) == (3, 0)
    assert first.chunks_embedded == first.chunks_total > 3
    again = ingest_with(minilm, workspace)
    assert (again.files_indexed, again.files_unchanged, again.chunks_embedded) == (0, 3, 0)
    assert again.chunks_total == first.chunks_total


def test_changed_files_are_replaced_and_deleted_files_removed(workspace, minilm):
    copy_lore(workspace, *NOTES)
    ingest_with(minilm, workspace)
    elena = workspace.lore_dir / NOTES[0]
    elena.write_text(elena.read_text() + "\n## Secrets\nElena keeps a spare key under the galley sink.\n")
    (workspace.lore_dir / NOTES[2]).unlink()
    report = ingest_with(minilm, workspace)
    assert (report.files_indexed, report.files_unchanged, report.files_removed) == (1, 1, 1)
    collection = stored(workspace)
    assert_consistent(collection)
    assert set(collection.file_states()) == {NOTES[0], NOTES[1]}
    texts = [row["text"] for row in collection.rows(["text"])]
    assert any("spare key under the galley sink" in text for text in texts)


def test_rebuild_embeds_everything_again(workspace, minilm):
    copy_lore(workspace, *NOTES[:2])
    first = ingest_with(minilm, workspace)
    rebuilt = ingest_with(minilm, workspace, rebuild=True)
    assert rebuilt.chunks_embedded == first.chunks_total == rebuilt.chunks_total


def test_changing_the_chunk_size_re_chunks_every_file(workspace, minilm):
    copy_lore(workspace, *NOTES[:2])
    first = ingest_with(minilm, workspace)
    smaller = ingest_with(minilm, workspace, chunk_tokens=60, chunk_overlap=0)
    assert smaller.files_indexed == 2
    assert smaller.chunks_total > first.chunks_total
    assert_consistent(stored(workspace))


def test_skipped_files_and_warnings_have_reasons(workspace, minilm):
    lore = workspace.lore_dir
    write(lore / "good.md", "# Kessler Station\nKessler Station orbits Calla.")
    write(lore / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00binary")
    write(lore / "map.pdf", b"%PDF-1.4")
    write(lore / "empty.md", "  \n\n")
    write(lore / "headings.md", "# Only\n## Headings\n")
    write(lore / "latin.txt", "Caf\u00e9 on Calla serves kaf.".encode("cp1252"))
    write(lore / "broken.md", "---\nname: [oops\n---\nThe Drift is cold.")
    write(lore / ".hidden.md", "# Hidden\nNot lore.")
    report = ingest_with(minilm, workspace)
    skipped = dict(report.skipped)
    assert skipped == {
        "image.txt": "binary file (not text)",
        "map.pdf": "unsupported extension .pdf; use .md or .txt",
        "empty.md": "empty file",
        "headings.md": "no text to index (headings only)",
    }
    warnings = dict(report.warnings)
    assert warnings["latin.txt"] == "not valid UTF-8, decoded as cp1252"
    assert "not valid YAML" in warnings["broken.md"] and "indexed as plain text" in warnings["broken.md"]
    assert set(stored(workspace).file_states()) == {"good.md", "latin.txt", "broken.md"}
    texts = " ".join(row["text"] for row in stored(workspace).rows(["text"]))
    assert "Café on Calla" in texts and "The Drift is cold." in texts


def test_a_file_that_becomes_unreadable_loses_its_old_chunks(workspace, minilm):
    note = write(workspace.lore_dir / "a.md", "# A\nSomething true.")
    write(workspace.lore_dir / "b.md", "# B\nSomething else.")
    ingest_with(minilm, workspace)
    note.write_text("")
    ingest_with(minilm, workspace)
    assert set(stored(workspace).file_states()) == {"b.md"}


def test_missing_and_empty_lore_folders_are_clear_errors(workspace, minilm):
    with pytest.raises(UserError, match="no lore files"):
        ingest_with(minilm, workspace)
    workspace.lore_dir.rmdir()
    with pytest.raises(UserError, match="does not exist"):
        ingest_with(minilm, workspace)


def test_a_collection_keeps_its_model(workspace, minilm):
    copy_lore(workspace, NOTES[0])
    ingest_with(minilm, workspace)
    assert stored(workspace).model_name == "minilm"
    with pytest.raises(UserError, match=r"built with minilm.*--rebuild"):
        ingest_with(minilm, workspace, embedding_model="BAAI/bge-large-en-v1.5")
    report = ingest_with(minilm, workspace, embedding_model=None, default_model="other-model")
    assert report.embedding_model == "minilm"


def test_a_crash_between_storing_and_deleting_is_repaired(workspace, minilm):
    """Simulates a kill between the two commits of a file update: both versions are stored."""
    copy_lore(workspace, *NOTES[:2])
    clean = ingest_with(minilm, workspace).chunks_total
    collection = stored(workspace)
    columns = [
        "source",
        "file_hash",
        "chunk_index",
        "n_chunks",
        "heading",
        "text",
        "tokens",
        "context_chars",
        "joiner",
        "sections",
        "links",
        "facts",
        "search_text",
        "run",
        "vector",
    ]
    rows = collection.rows(columns, where=f"source = '{NOTES[0]}'")
    leftover = [ChunkRow(**{**row, "run": "killed", "vector": np.asarray(row["vector"])}) for row in rows]
    collection.add(leftover[:2])
    assert not collection.file_states()[NOTES[0]].is_current(rows[0]["file_hash"])
    report = ingest_with(minilm, workspace)
    assert report.files_indexed == 1
    assert report.chunks_total == clean
    assert_consistent(stored(workspace))


def kill_after_commits(command: list[str], env: dict, workspace, commits: int = 3) -> None:
    """Run an ingest and SIGKILL it once its table has `commits` versions (it must still be running)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    table_dir = workspace.index_dir / "scifi_world.lance"
    deadline = time.monotonic() + 120
    while _versions(table_dir) < commits and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "ingest finished before it could be killed; it needs more chunks"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _versions(table_dir) -> int:
    versions = table_dir / "_versions"
    return len(list(versions.iterdir())) if versions.is_dir() else 0


@pytest.mark.slow
def test_kill_9_in_the_middle_of_an_ingest_then_ingest_again(tmp_path):
    """A real `scifi-llm lore ingest` process is killed with SIGKILL after its first commits."""
    workspace = init_workspace(tmp_path / "novel", with_example=True)
    command = [
        sys.executable,
        "-m",
        "scifi_llm",
        "--workspace",
        str(workspace.root),
        "lore",
        "ingest",
        "--embedding-model",
        "minilm",
        "--json",
    ]
    small_chunks = {**os.environ, "SCIFI_LLM_LORE__CHUNK_TOKENS": "60"}  # several batches to kill between
    kill_after_commits(command, small_chunks, workspace)
    partial = stored(workspace).count()
    resumed = subprocess.run(command, capture_output=True, text=True, check=True, env=small_chunks)
    assert '"files_unchanged": 0' not in resumed.stdout, "nothing of the first run survived the kill"
    collection = stored(workspace)
    assert_consistent(collection)
    sources = {path.relative_to(EXAMPLES / "lore").as_posix() for path in (EXAMPLES / "lore").rglob("*.md")}
    assert set(collection.file_states()) == sources
    repaired = collection.count()
    clean = subprocess.run(
        [*command, "--rebuild"], capture_output=True, text=True, check=True, env=small_chunks
    )
    assert 0 < partial < repaired == json.loads(clean.stdout)["chunks_total"]


def test_ingesting_one_folder_leaves_the_others_alone(workspace, minilm):
    copy_lore(workspace, *NOTES)
    ingest_with(minilm, workspace)
    (workspace.lore_dir / NOTES[1]).unlink()
    ships = workspace.lore_dir / "ships"
    report = ingest_lore(
        [ships],
        workspace.lore_dir,
        LoreIndex(workspace.index_dir),
        options(),
        load_embedder=lambda _name: minilm,
    )
    assert report.files_removed == 1
    assert set(stored(workspace).file_states()) == {NOTES[0], NOTES[2]}


def test_wikilinks_that_name_no_note_are_reported(workspace, minilm, cli):
    write(workspace.lore_dir / "Characters" / "Vesna Orlov.md", "# Vesna Orlov\nShe cracks safes.")
    write(workspace.lore_dir / "Characters" / "Ox.md", "---\naliases: [Big Ox]\n---\n# Ox\n")  # a stub
    write(
        workspace.lore_dir / "Sessions" / "Job 01.md",
        "# Job 01\n[[vesna orlov|The Jackal]] met [[Dana Wu]] at [[Characters/Vesna Orlov#Past|home]]. "
        "[[Vesna Orlov.md]] and [[Ox]] left.",
    )
    report = ingest_with(minilm, workspace)
    assert report.unresolved_links == [("Sessions/Job 01.md", "Dana Wu")]
    shown = cli("lore", "ingest", workspace=workspace)
    assert "1 wikilinks name no note: [[Dana Wu]] in Sessions/Job 01.md" in shown.stdout


def test_a_collection_written_by_an_older_version_is_rebuilt(workspace, minilm):
    copy_lore(workspace, *NOTES[:2])
    old_schema = pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("source", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), 384)),
        ],
        metadata={b"embedding_model": b"minilm"},
    )
    old = lancedb.connect(str(workspace.index_dir)).create_table("scifi_world", schema=old_schema)
    old.add([{"id": "a#1#0", "source": NOTES[0], "vector": [0.0] * 384}])
    with pytest.raises(UserError, match="older scifi-llm: run `scifi-llm lore ingest`"):
        Retriever(stored(workspace), minilm)
    report = ingest_with(minilm, workspace)
    assert report.files_indexed == 2 and "rebuilt" in report.warnings[0][1]
    assert Retriever(stored(workspace), minilm).search("Elena", k=1).results


def test_short_notes_are_never_packed_together(workspace, minilm):
    for name in ("Kip", "Lark", "Moth"):
        write(
            workspace.lore_dir / f"{name.lower()}.md",
            f"# {name}\n## Role\n{name} flies.\n## Ship\n{name} owns one.",
        )
    ingest_with(minilm, workspace)
    rows = stored(workspace).rows(["source", "text"])
    assert len(rows) == 3
    for row in rows:
        name = row["source"].removesuffix(".md").title()
        assert row["text"] == f"# {name}\n## Role\n{name} flies.\n\n## Ship\n{name} owns one."


def test_an_unchanged_ingest_is_answered_without_opening_the_index(workspace, minilm):
    copy_lore(workspace, NOTES[0])
    first = ingest_with(minilm, workspace)
    probe = (
        "import sys\n"
        "from scifi_llm.cli import app\n"
        f"try:\n    app(['--workspace', {str(workspace.root)!r}, 'lore', 'ingest', '--json'])\n"
        "except SystemExit:\n    pass\n"
        "print('lancedb' in sys.modules)\n"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    report, loaded = shown.stdout.strip().rsplit("\n", 1)
    assert loaded == "False"
    assert json.loads(report)["chunks_total"] == first.chunks_total
    assert json.loads(report)["files_unchanged"] == 1
    stored(workspace).delete_sources([NOTES[0]])  # the index changed behind the stamp's back
    repaired = ingest_with(minilm, workspace)
    assert repaired.files_indexed == 1 and repaired.chunks_total == first.chunks_total


@pytest.mark.slow
def test_an_interrupted_rebuild_leaves_the_collection_in_use_untouched(tmp_path):
    """A real `lore ingest --rebuild` is interrupted (Ctrl-C) half-way: the old collection still answers."""
    workspace = init_workspace(tmp_path / "novel", with_example=True)
    small_chunks = {**os.environ, "SCIFI_LLM_LORE__CHUNK_TOKENS": "60", "SCIFI_LLM_LORE__CHUNK_OVERLAP": "10"}
    command = [sys.executable, "-m", "scifi_llm", "--workspace", str(workspace.root), "lore", "ingest"]
    subprocess.run(
        [*command, "--embedding-model", "minilm"], check=True, capture_output=True, env=small_chunks
    )
    before = stored(workspace).rows(["id"])
    rebuild = subprocess.Popen(
        [*command, "--rebuild"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=small_chunks
    )
    staging = workspace.index_dir / "scifi_world__rebuild.lance"
    deadline = time.monotonic() + 120
    while _versions(staging) < 3 and rebuild.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rebuild.poll() is None, "the rebuild finished before it could be interrupted"
    rebuild.send_signal(signal.SIGINT)
    _, stderr = rebuild.communicate(timeout=60)
    assert rebuild.returncode == 130
    assert "interrupted: nothing half-written was kept; run the command again" in stderr
    assert "tune train" not in stderr
    assert stored(workspace).rows(["id"]) == before  # the collection in use was never touched
    assert LoreIndex(workspace.index_dir).names() == ["scifi_world"]
    again = subprocess.run(
        [*command, "--rebuild", "--json"], check=True, capture_output=True, env=small_chunks
    )
    assert json.loads(again.stdout)["chunks_total"] == len(before)
    assert not staging.exists()


def test_notes_to_self_and_ignored_files_never_reach_the_index(workspace, minilm, cli):
    moth = "# Moth\nTODO: check her age\nShe is forty.[[FIXME: or fifty?]]\n<!-- old -->\n"
    write(workspace.lore_dir / "moth.md", moth)
    write(workspace.lore_dir / "todo.txt", "Rename the moon. Kill Hollis in book 3.")
    write(workspace.lore_dir / "drafts" / "idea.md", "# Idea\nA second moon.")
    write(workspace.lore_dir / ".scifi-llm-ignore", "# my scratch\ntodo.txt\ndrafts/\n")
    report = ingest_with(minilm, workspace)
    assert [row["text"] for row in stored(workspace).rows(["text"])] == ["# Moth\nShe is forty."]
    assert sorted(report.skipped) == [
        ("drafts/idea.md", "matches 'drafts/' in .scifi-llm-ignore"),
        ("todo.txt", "matches 'todo.txt' in .scifi-llm-ignore"),
    ]


def test_symlinks_out_of_the_lore_folder_are_skipped_unless_allowed(workspace, minilm, tmp_path):
    secrets, shared = tmp_path / "secrets", tmp_path / "shared-notes"
    write(secrets / "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----")
    write(shared / "moon.md", "# The Moon\nThe moon is called Vell.")
    write(workspace.lore_dir / "moth.md", "# Moth\nShe is forty.")
    (workspace.lore_dir / "key.md").symlink_to(secrets / "id_ed25519")
    (workspace.lore_dir / "moon.md").symlink_to(shared / "moon.md")
    report = ingest_with(minilm, workspace)
    assert {row["source"] for row in stored(workspace).rows(["source"])} == {"moth.md"}
    reasons = dict(report.skipped)
    assert reasons["key.md"].startswith(f"links to {secrets.resolve() / 'id_ed25519'}, outside the folder")
    allowed = ingest_with(minilm, workspace, outside_folders=(shared,))
    assert {row["source"] for row in stored(workspace).rows(["source"])} == {"moth.md", "moon.md"}
    assert [name for name, _ in allowed.skipped] == ["key.md"]


def test_a_second_ingest_at_once_is_one_line_naming_the_first(workspace, tmp_path):
    write(workspace.lore_dir / "moth.md", "# Moth\nShe is forty.")
    command = [sys.executable, "-m", "scifi_llm", "--workspace", str(workspace.root), "lore", "ingest"]
    with LoreIndex(workspace.index_dir).writing():  # this test process is the first ingest
        second = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"COLUMNS": "200"})
    assert second.returncode == 1
    assert (
        second.stderr == f"error: another lore ingest is running (pid {os.getpid()}); wait for it to finish\n"
    )


def test_a_collection_name_that_is_a_path_is_refused_before_any_work(cli, workspace):
    for command in (("lore", "ingest"), ("lore", "query", "moth"), ("proxy",)):
        result = cli(*command, "--collection", "../../x", workspace=workspace)
        assert result.exit_code == 1
        assert result.stderr == "error: collection name '../../x' may hold only letters, digits, _ and -\n"


@pytest.mark.slow
def test_a_large_note_is_stored_in_batches_and_a_killed_ingest_resumes_where_it_stopped(tmp_path):
    """A note of hundreds of chunks spans many committed batches: after SIGKILL, the next ingest keeps
    the chunks already stored and embeds only the rest."""
    workspace = init_workspace(tmp_path / "novel")
    paragraphs = [
        f"## Deck {n}\nDeck {n} of the Lark holds crates of {n * 7} seed-vaults." for n in range(400)
    ]
    write(workspace.lore_dir / "manifest.md", "# The Lark's manifest\n" + "\n\n".join(paragraphs))
    command = [sys.executable, "-m", "scifi_llm", "--workspace", str(workspace.root), "lore", "ingest"]
    command += ["--embedding-model", "minilm", "--json"]
    small = {**os.environ, "SCIFI_LLM_LORE__CHUNK_TOKENS": "60"}
    kill_after_commits(command, small, workspace)
    kept = stored(workspace).count()
    resumed = json.loads(subprocess.run(command, capture_output=True, check=True, env=small).stdout)
    collection = stored(workspace)
    assert_consistent(collection)
    assert 0 < kept < resumed["chunks_total"]  # the kill came in the middle of the one note...
    assert resumed["chunks_embedded"] == resumed["chunks_total"] - kept  # ...and nothing was embedded twice
    assert resumed["changes"] == [{"file": "manifest.md", "change": "changed"}]


def test_a_note_far_larger_than_the_others_is_named(workspace, minilm):
    write(workspace.lore_dir / "moth.md", "# Moth\nShe is forty.")
    write(workspace.lore_dir / "dump.md", "# Dump\nThe moon is Vell.\n<!-- " + "x" * 1_200_000 + " -->\n")
    report = ingest_with(minilm, workspace)
    assert [name for name, _ in report.warnings] == ["dump.md"]
    assert dict(report.warnings)["dump.md"].startswith("1.1 MB, far larger than a note usually is")


def test_a_note_longer_than_a_piece_is_read_and_stored_piece_by_piece(workspace, minilm, monkeypatch):
    import scifi_llm.lore.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "PIECE_CHARS", 600)  # a real long note takes a megabyte
    decks = [f"## Deck {n}\nDeck {n} holds {n * 7} seed-vaults, known as the Hoard {n}." for n in range(40)]
    write(workspace.lore_dir / "manifest.md", "---\nname: The Lark\n---\n" + "\n\n".join(decks) + "\n")
    report = ingest_with(minilm, workspace)
    collection = stored(workspace)
    assert_consistent(collection)
    rows = collection.rows(["text", "sections", "facts", "chunk_index"])
    texts = "\n".join(row["text"] for row in rows)
    assert all(f"Deck {n} holds {n * 7} seed-vaults" in texts for n in range(40))
    sections = {section for row in rows for section in json.loads(row["sections"])}
    assert sections == {f"The Lark > Deck {n}" for n in range(40)}  # every piece under the note's title
    facts = json.loads(next(row["facts"] for row in rows if row["chunk_index"] == 0))
    assert len(facts["headings"]) == 40 and len(facts["prose_aliases"]) == 40  # gathered from every piece
    assert report.chunks_embedded == report.chunks_total == len(rows)
