"""`scifi-llm models`: what the workspace needs, what is here, and one clear line for what is not."""

import json

import huggingface_hub.constants
import pytest

from scifi_llm.errors import UserError
from scifi_llm.models import locate, require
from scifi_llm.serving import death_reason

from conftest import copy_lore, write

MISSING = "nobody-here/no-such-model"


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """A Hugging Face cache with nothing in it, and no network to fall back on."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_list_shows_each_needed_model_and_how_to_get_the_missing(cli, workspace, tiny_llama, empty_cache):
    settings = workspace.root / "scifi-llm.toml"
    text = settings.read_text().replace('"meta-llama/Llama-3.1-8B-Instruct"', f'"{tiny_llama}"')
    settings.write_text(text.replace('"BAAI/bge-large-en-v1.5"', '"minilm"'))
    for config in (workspace.root / "configs").glob("*.yaml"):
        config.write_text(config.read_text().replace("meta-llama/Llama-3.1-8B-Instruct", MISSING))
    shown = cli("models", "list", "--json", workspace=workspace)
    models = {row["model"]: row for row in json.loads(shown.stdout)["models"]}
    assert models[str(tiny_llama)]["present"] and models[str(tiny_llama)]["where"] == "folder"
    assert models["minilm"]["where"] == "bundled" and models["minilm"]["size_mb"] > 10
    assert not models[MISSING]["present"] and models[MISSING]["used_for"] == "tune train"
    table = cli("models", "list", workspace=workspace)
    assert f"scifi-llm models pull {MISSING}" in table.stdout


def test_every_command_that_needs_a_missing_model_says_so_at_once(cli, workspace, empty_cache):
    copy_lore(workspace, "characters/elena_voss.md")
    write(workspace.root / "writing" / "one.md", "She ran. " * 400)
    runs = {
        "lore ingest": cli("lore", "ingest", "--embedding-model", MISSING, workspace=workspace),
        "serve": cli("serve", MISSING, "--engine", "transformers", workspace=workspace),
        "tune prepare": cli("tune", "prepare", "--tokenizer", MISSING, workspace=workspace),
        "models path": cli("models", "path", MISSING, workspace=workspace),
    }
    for command, result in runs.items():
        assert result.exit_code == 1, command
        assert f"`scifi-llm models pull {MISSING}`" in result.stderr, command
        assert result.stderr.count("\n") == 1, command
    pulled = cli("models", "pull", MISSING, workspace=workspace)
    assert pulled.exit_code == 1 and "HF_HUB_OFFLINE is set" in pulled.stderr
    assert cli("models", "pull", "./a-folder", workspace=workspace).exit_code == 1


def test_a_local_folder_or_the_bundled_model_needs_no_download(tiny_llama, tmp_path):
    assert locate(str(tiny_llama)) == (tiny_llama.resolve(), "folder")
    assert require("minilm", "lore").is_dir()
    with pytest.raises(UserError, match="neither a model folder nor a Hugging Face model name"):
        require(str(tmp_path / "gone"), "serve")


def test_the_reason_an_engine_died_is_read_from_its_log(tmp_path):
    log = write(
        tmp_path / "engine.log",
        'INFO loading\nTraceback (most recent call last):\n  File "x.py", line 1\n'
        "    raise OSError(...)\nOSError: meta-llama/Llama-3.1-8B-Instruct is not a local folder\n",
    )
    assert death_reason(log) == "OSError: meta-llama/Llama-3.1-8B-Instruct is not a local folder"
    assert death_reason(write(tmp_path / "quiet.log", "INFO all good\n")) is None
