"""Folders that appear whole or not at all."""

import pytest

from scifi_llm.fsutil import atomic_dir


def test_a_folder_appears_only_when_built_whole(tmp_path):
    final = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), atomic_dir(final) as staging:
        (staging / "half.json").write_text("{")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging is left
    with atomic_dir(final) as staging:
        assert not final.exists()
        (staging / "whole.json").write_text("{}")
    assert [path.name for path in tmp_path.iterdir()] == ["run"]
    assert (final / "whole.json").read_text() == "{}"


def test_a_killed_runs_staging_is_cleared_and_replace_swaps_the_old_folder(tmp_path):
    final = tmp_path / "adapter"
    final.mkdir()
    (final / "old.bin").write_text("old")
    left = tmp_path / ".adapter.partial"
    left.mkdir()
    (left / "stale.bin").write_text("stale")
    with atomic_dir(final, replace=True) as staging:
        assert list(staging.iterdir()) == []
        (staging / "new.bin").write_text("new")
    assert [path.name for path in final.iterdir()] == ["new.bin"] and not left.exists()
