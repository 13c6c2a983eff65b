"""The `scifi-llm` command as people and scripts use it: exit codes, one-line errors, JSON shapes."""

import json
import subprocess
import sys

import huggingface_hub.constants
import pytest

from conftest import EXAMPLES, copy_lore, write


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def _command_paths(group, path=()):
    """Every command of the app, as the words that name it (groups included)."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from _command_paths(command, (*path, name))


def test_help_explains_every_command_and_option(cli):
    import typer.main

    from scifi_llm.cli import app

    commands = list(_command_paths(typer.main.get_command(app)))
    assert len(commands) > 30
    for path, command in commands:
        result = cli(*path, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout, path
        assert (command.help or "").strip(), f"`{' '.join(path)}` has no help text"
        for parameter in command.params:
            if parameter.param_type_name == "option" and not parameter.hidden:
                assert (parameter.help or "").strip(), f"`{' '.join(path)}` {parameter.opts[0]} has no help"


def test_init_then_refuse_to_overwrite(cli, tmp_path):
    result = cli("init", str(tmp_path / "novel"), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["workspace"] == str(tmp_path / "novel")
    again = cli("init", str(tmp_path / "novel"))
    assert again.exit_code == 1
    assert again.stderr.count("\n") == 1 and "already a workspace" in again.stderr


def test_doctor_reports_each_part_with_fixes(cli, tmp_path):
    result = cli("--workspace", str(tmp_path), "doctor", "--json")
    assert result.exit_code == 0
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert {
        "python",
        "torch",
        "vllm",
        "transformers serve",
        "trl + peft",
        "bitsandbytes (QLoRA)",
        "embedding model minilm",
        "disk",
        "port 8000",
    } <= set(checks)
    assert checks["embedding model minilm"]["ok"] is True and checks["trl + peft"]["ok"] is True
    assert checks["sample packing"]["detail"].startswith("off: batches are padded")  # no CUDA GPU here
    assert checks["Liger kernels"]["detail"] == "off (needs a CUDA GPU)"
    result = cli("--workspace", str(tmp_path), "doctor")  # the table shows fixes with brackets intact
    assert "scifi-llm[gpu]" in result.stdout or checks["vllm"]["ok"]
    assert "…" not in result.stdout  # at 80 columns long names wrap, never cut
    for check in checks.values():
        assert check["ok"] is not False or check["fix"], f"{check['name']} is missing but names no fix"


def test_ingest_status_query_remove(cli, workspace):
    copy_lore(workspace, "characters/elena_voss.md", "ships/ashgrove_lark.md")
    ingested = cli("lore", "ingest", "--embedding-model", "minilm", "--json", workspace=workspace)
    assert ingested.exit_code == 0, ingested.stderr
    report = json.loads(ingested.stdout)
    assert (
        report["files_indexed"] == 2 and report["chunks_total"] > 0 and report["embedding_model"] == "minilm"
    )
    assert {change["file"]: change["change"] for change in report["changes"]} == {
        "characters/elena_voss.md": "new",
        "ships/ashgrove_lark.md": "new",
    }

    listed = json.loads(cli("lore", "status", "--files", "--json", workspace=workspace).stdout)
    assert [entry["file"] for entry in listed["collections"][0]["file_list"]] == [
        "characters/elena_voss.md",
        "ships/ashgrove_lark.md",
    ]
    assert "characters/elena_voss.md" in cli("lore", "status", "--files", workspace=workspace).stdout
    status = json.loads(cli("lore", "status", "--json", workspace=workspace).stdout)
    assert status["collections"][0] | {"last_ingest": None} == {
        "collection": "scifi_world",
        "files": 2,
        "chunks": report["chunks_total"],
        "embedding_model": "minilm",
        "last_ingest": None,
        "default": True,
    }

    query = cli(
        "lore", "query", "What colour is Ledger's arm plating?", "-k", "2", "--json", workspace=workspace
    )
    assert query.exit_code == 0, query.stderr
    [answer] = json_lines(query.stdout)
    assert answer["query"] == "What colour is Ledger's arm plating?"
    assert len(answer["results"]) == 2
    assert set(answer["results"][0]) >= {"text", "source", "heading", "score", "reasons"}
    assert answer["results"][0]["source"] == "characters/elena_voss.md"
    assert "alias:Ledger" in answer["results"][0]["reasons"]

    (workspace.lore_dir / "ships" / "ashgrove_lark.md").write_text("# Lark\nA small ship.\n")
    again = cli("lore", "ingest", workspace=workspace)
    assert "  changed ships/ashgrove_lark.md" in again.stdout and "elena" not in again.stdout
    assert cli("lore", "remove", "scifi_world", "--yes", workspace=workspace).exit_code == 0
    assert json.loads(cli("lore", "status", "--json", workspace=workspace).stdout)["collections"] == []


def test_query_from_file_reports_bad_lines_and_answers_the_rest(cli, example_workspace, tmp_path):
    queries = write(
        tmp_path / "q.jsonl",
        '{"question": "Who built Elena\'s arm?"}\nnot json at all? fine, plain\n'
        '{"prompt": "Describe the Wheel"}\n{"question": 3}\n{broken\n'
        '{"query": "Who is Ledger?"}\n"The Magistrate\'s coat"\n',
    )
    result = cli("lore", "query", "--from-file", str(queries), "--json", workspace=example_workspace)
    answers = json_lines(result.stdout)
    assert [answer["query"] for answer in answers] == [
        "Who built Elena's arm?",
        "not json at all? fine, plain",
        "Describe the Wheel",
        "Who is Ledger?",
        "The Magistrate's coat",
    ]
    assert "q.jsonl:4: no `query`, `question` or `prompt` text" in result.stderr
    assert "q.jsonl:5: not valid JSON" in result.stderr
    assert result.exit_code == 1


def test_query_errors_are_one_clear_line(cli, workspace, example_workspace):
    no_index = cli("lore", "query", "Elena", workspace=workspace)
    assert no_index.exit_code == 1 and "run `scifi-llm lore ingest`" in no_index.stderr
    unknown = cli("lore", "query", "Elena", "--collection", "nope", workspace=example_workspace)
    assert unknown.exit_code == 1 and "unknown collection 'nope'" in unknown.stderr
    both = cli("lore", "query", "Elena", "--from-file", "x", workspace=example_workspace)
    assert both.exit_code == 1 and "one of the two" in both.stderr
    empty = cli("lore", "query", " ", workspace=example_workspace)
    assert empty.exit_code == 1 and "the query is empty" in empty.stderr
    outside = cli("--workspace", str(workspace.root / "lore"), "lore", "status")
    assert outside.exit_code == 1 and "not a scifi-llm workspace" in outside.stderr
    for result in (no_index, unknown, both, empty, outside):
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_default_embedding_model_offline_fails_naming_minilm(cli, workspace, monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    copy_lore(workspace, "characters/elena_voss.md")
    result = cli("lore", "ingest", workspace=workspace)
    assert result.exit_code == 1
    assert "BAAI/bge-large-en-v1.5 is not downloaded" in result.stderr
    assert "`scifi-llm models pull BAAI/bge-large-en-v1.5`" in result.stderr
    assert "--embedding-model minilm" in result.stderr and result.stderr.count("\n") == 1


def test_eval_prints_recall_table_and_json(cli, example_workspace, tmp_path):
    table = cli("lore", "eval", str(EXAMPLES / "lore_questions.jsonl"), workspace=example_workspace)
    assert table.exit_code == 0
    assert "recall@1" in table.stdout and "recall@5" in table.stdout and "MRR" in table.stdout
    questions = write(
        tmp_path / "q.jsonl",
        '{"question": "What colour is the arm?", "gold_phrases": ["Slate-blue"],'
        ' "kind": "direct"}\n{"question": "no gold"}\n',
    )
    result = cli("lore", "eval", str(questions), "--json", "--mode", "dense", workspace=example_workspace)
    report = json.loads(result.stdout)
    assert report["questions"] == 1 and report["mode"] == "dense"
    assert set(report["recall"]) == {"1", "3", "5"} and report["by_kind"]["direct"]["questions"] == 1
    assert report["skipped_lines"] == [
        {"line": 2, "message": "needs `question` (text) and `gold_phrases` (list of text)"}
    ]
    assert "q.jsonl:2" in result.stderr
    assert result.exit_code == 1  # as lore query --from-file: a skipped line is a failure


@pytest.mark.slow
def test_everyday_commands_load_no_heavy_library():
    """`stop --help` and the training modules must not import LanceDB, torch or transformers."""
    probe = (
        "import sys\n"
        "from scifi_llm.cli import app\n"
        "try:\n    app(['stop', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [name for name in ('lancedb', 'torch', 'transformers', 'numpy') if name in sys.modules]\n"
        "import scifi_llm.tune.train, scifi_llm.tune.prepare\n"
        "heavy += ['lancedb (tune)'] if 'lancedb' in sys.modules else []\n"
        "print(heavy)\n"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout.strip().splitlines()[-1] == "[]"
