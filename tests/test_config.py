"""Workspace and settings: init, discovery, validation, environment overrides."""

import tomllib

import pytest

from scifi_llm.config import (
    CONFIG_NAME,
    CONFIG_TEMPLATE,
    Settings,
    find_workspace,
    init_workspace,
    load_settings,
    server_url,
)
from scifi_llm.errors import UserError


def test_template_sets_every_setting_to_its_default_with_a_comment():
    """Like litgpt's config check: the shipped template and the code that reads it agree."""
    values = tomllib.loads(CONFIG_TEMPLATE)
    defaults = Settings().model_dump()
    assert values == defaults
    lines = CONFIG_TEMPLATE.splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[number - 1].startswith("#"), f"setting without a comment: {line}"


def test_init_creates_the_layout_and_refuses_to_overwrite(tmp_path):
    workspace = init_workspace(tmp_path / "novel")
    for name in (CONFIG_NAME, "lore", "writing", "configs"):
        assert (workspace.root / name).exists()
    with pytest.raises(UserError, match="already a workspace"):
        init_workspace(tmp_path / "novel")


def test_init_with_example_copies_the_example_world(tmp_path):
    workspace = init_workspace(tmp_path / "novel", with_example=True)
    assert (workspace.lore_dir / "characters" / "elena_voss.md").is_file()
    assert any(workspace.writing_dir.iterdir())
    assert (workspace.root / "lore_questions.jsonl").is_file() and (
        workspace.root / "ask_with_openai.py"
    ).is_file()


def test_workspace_is_found_from_a_subfolder_or_named_explicitly(tmp_path, monkeypatch):
    workspace = init_workspace(tmp_path / "novel")
    assert find_workspace(start=workspace.lore_dir).root == workspace.root
    assert find_workspace(explicit=workspace.root).root == workspace.root
    monkeypatch.setenv("SCIFI_LLM_WORKSPACE", str(workspace.root))
    assert find_workspace(start=tmp_path).root == workspace.root


def test_no_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="scifi-llm init"):
        find_workspace(start=tmp_path)
    with pytest.raises(UserError, match="not a scifi-llm workspace"):
        find_workspace(explicit=tmp_path)


def test_bad_values_name_the_field(tmp_path):
    path = tmp_path / CONFIG_NAME
    path.write_text("[lore]\nchunk_tokens = 10\n")
    with pytest.raises(UserError, match=r"lore\.chunk_tokens"):
        load_settings(path)
    path.write_text("[lore]\nunknown = 1\n")
    with pytest.raises(UserError, match=r"lore\.unknown"):
        load_settings(path)
    path.write_text("[lore]\nchunk_tokens = 100\nchunk_overlap = 60\n")
    with pytest.raises(UserError, match=r"lore: .*chunk_overlap \(60\) must be at most half"):
        load_settings(path)
    path.write_text("[lore\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_settings(path)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / CONFIG_NAME
    path.write_text('[lore]\ntop_k = 3\nembedding_model = "minilm"\n')
    monkeypatch.setenv("SCIFI_LLM_LORE__TOP_K", "8")
    settings = load_settings(path)
    assert settings.lore.top_k == 8
    assert settings.lore.embedding_model == "minilm"


def test_server_urls_are_built_in_one_place_with_ipv6_in_brackets():
    assert server_url("127.0.0.1", 8001) == "http://127.0.0.1:8001"
    assert server_url("::1", 8001) == "http://[::1]:8001"
    settings = Settings()
    assert settings.proxy.base_url == "http://127.0.0.1:8001/v1"
    assert settings.serve.base_url == "http://127.0.0.1:8000/v1"
