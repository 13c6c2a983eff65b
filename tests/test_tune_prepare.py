"""`tune prepare` end to end with the tiny Llama's tokenizer: nothing lost, bounds kept, stable output."""

import json
import shutil
from dataclasses import replace

import pytest
from transformers import AutoTokenizer

from scifi_llm.errors import UserError
from scifi_llm.text import split_sentences
from scifi_llm.tune import PrepareOptions, prepare_data, read_writing
from scifi_llm.tune.prepare import rendered_lengths

from conftest import EXAMPLES, free_port, write


def options(tmp_path, tiny_llama, **changes) -> PrepareOptions:
    values = dict(
        input_dir=tmp_path / "writing",
        output_dir=tmp_path / "out",
        tokenizer=str(tiny_llama),
        min_tokens=150,
        max_tokens=500,
        sequence_len=1024,
    )
    return PrepareOptions(**{**values, **changes})


def examples(folder):
    return [
        json.loads(line)
        for name in ("training.jsonl", "validation.jsonl")
        for line in (folder / name).read_text().splitlines()
    ]


@pytest.fixture
def writing(tmp_path):
    shutil.copytree(EXAMPLES / "writing", tmp_path / "writing")
    write(
        tmp_path / "writing" / "notes.md",
        "TODO: outline act two\n[[ask Sam]] Elena slept badly. <!-- x -->\n",
    )
    return tmp_path / "writing"


def test_every_sentence_lands_in_exactly_one_example_and_no_note_anywhere(tmp_path, tiny_llama, writing):
    report = prepare_data(options(tmp_path, tiny_llama, keep_short=True))
    assistant = [e["messages"][2]["content"] for e in examples(tmp_path / "out")]
    sentences = [s for text in assistant for piece in text.split("\n\n") for s in split_sentences(piece)]
    manuscripts, _ = read_writing(writing)
    expected = [s for m in manuscripts for scene in m.scenes for p in scene for s in split_sentences(p)]
    assert sorted(sentences) == sorted(expected)
    everything = (tmp_path / "out" / "training.jsonl").read_text() + (
        tmp_path / "out" / "validation.jsonl"
    ).read_text()
    for note in ("TODO", "ask Sam", "<!--", "* * *"):
        assert note not in everything
    assert report.note_lines_removed == 1 and report.train_examples + report.validation_examples == len(
        assistant
    )


def test_examples_are_chat_messages_within_bounds_and_the_sequence_length(tmp_path, tiny_llama, writing):
    prepare_data(options(tmp_path, tiny_llama))
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    for example in examples(tmp_path / "out"):
        assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
        prose = len(tokenizer(example["messages"][2]["content"], add_special_tokens=False)["input_ids"])
        assert 150 <= prose <= 500
        rendered = tokenizer.apply_chat_template(example["messages"], tokenize=True)
        assert len(rendered["input_ids"] if isinstance(rendered, dict) else rendered) <= 1024
    style = json.loads((tmp_path / "out" / "style_profile.json").read_text())
    assert style["point_of_view"] == "third-person" and style["tense"] == "past"
    assert examples(tmp_path / "out")[0]["messages"][0]["content"] == style["system_prompt"]


def test_a_tight_sequence_length_lowers_the_passage_bound(tmp_path, tiny_llama, writing):
    report = prepare_data(options(tmp_path, tiny_llama, max_tokens=2000, sequence_len=700))
    assert report.max_tokens_used < 700 and "lowered" in report.warnings[0]
    with pytest.raises(UserError, match="raise --sequence-len"):
        prepare_data(options(tmp_path, tiny_llama, sequence_len=200))


def test_two_runs_are_byte_identical_the_share_is_met_and_a_new_file_moves_little(
    tmp_path, tiny_llama, writing
):
    prepare_data(options(tmp_path, tiny_llama, val_fraction=0.3))
    first = {name: (tmp_path / "out" / name).read_bytes() for name in ("training.jsonl", "validation.jsonl")}
    prepare_data(options(tmp_path, tiny_llama, val_fraction=0.3))
    assert first == {name: (tmp_path / "out" / name).read_bytes() for name in first}
    before = {
        side: {json.loads(line)["messages"][2]["content"] for line in text.decode().splitlines()}
        for side, text in first.items()
    }
    write(
        writing / "zz_new.md",
        " ".join(f"Hollis counted crate {n} twice, as he always did." for n in range(80)),
    )
    prepare_data(options(tmp_path, tiny_llama, val_fraction=0.3))
    after = {
        side: {
            json.loads(line)["messages"][2]["content"]
            for line in (tmp_path / "out" / side).read_text().splitlines()
        }
        for side in first
    }
    moved = len(before["training.jsonl"] - after["training.jsonl"]) + len(
        before["validation.jsonl"] - after["validation.jsonl"]
    )
    assert moved <= 4  # one scene group at the edge of the share (4 passages here); a reshuffle moves ~6
    for sides in (before, after):  # the asked share, within one scene group (here up to 4 passages)
        total = len(sides["training.jsonl"]) + len(sides["validation.jsonl"])
        assert abs(len(sides["validation.jsonl"]) - 0.3 * total) <= 4


def test_cli_reports_as_json(cli, workspace, tiny_llama):
    shutil.copytree(EXAMPLES / "writing", workspace.writing_dir, dirs_exist_ok=True)
    result = cli(
        "tune",
        "prepare",
        "--tokenizer",
        str(tiny_llama),
        "--min-tokens",
        "150",
        "--max-tokens",
        "500",
        "--sequence-len",
        "1024",
        "--json",
        workspace=workspace,
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["files_read"] == 3 and report["train_examples"] > 0
    assert (workspace.root / "data" / "processed" / "prepare_report.json").is_file()
    missing = cli("tune", "prepare", "--tokenizer", str(workspace.root / "nope"), workspace=workspace)
    assert missing.exit_code == 1 and "tokenizer" in missing.stderr and "--tokenizer" in missing.stderr


def test_llm_prompts_are_cached_and_fall_back_to_the_heuristic(tmp_path, tiny_llama, writing, engine):
    asked = prepare_data(options(tmp_path, tiny_llama, prompts="llm", base_url=engine))
    total = asked.train_examples + asked.validation_examples
    assert asked.prompts_from_llm >= 1 and asked.prompts_from_llm + asked.prompts_heuristic == total
    assert (tmp_path / "out" / "prompt_cache.json").is_file()
    first = (tmp_path / "out" / "training.jsonl").read_bytes()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    again = prepare_data(options(tmp_path, tiny_llama, prompts="llm", base_url=dead))
    assert (tmp_path / "out" / "training.jsonl").read_bytes() == first  # all from the cache
    assert again.prompts_from_llm == asked.prompts_from_llm
    down = prepare_data(
        options(tmp_path, tiny_llama, prompts="llm", base_url=dead, output_dir=tmp_path / "other")
    )
    assert down.prompts_from_llm == 0 and down.prompts_heuristic == total
    assert any("fell back to the heuristic" in warning for warning in down.warnings)
    with pytest.raises(UserError, match="needs --base-url"):
        prepare_data(options(tmp_path, tiny_llama, prompts="llm"))
    tight_options = dict(min_tokens=100, sequence_len=512, output_dir=tmp_path / "tight")
    tight = prepare_data(options(tmp_path, tiny_llama, prompts="llm", base_url=engine, **tight_options))
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    written = [json.loads(line)["messages"] for line in (tmp_path / "tight" / "training.jsonl").open()]
    assert max(rendered_lengths(tokenizer, written)) <= 512  # long model requests never push past the limit
    assert (
        tight.prompts_from_llm + tight.prompts_heuristic == tight.train_examples + tight.validation_examples
    )


def test_impossible_bounds_are_refused_and_nothing_is_overwritten(tmp_path, tiny_llama, writing):
    prepare_data(options(tmp_path, tiny_llama))
    before = (tmp_path / "out" / "training.jsonl").read_bytes()
    with pytest.raises(UserError, match="--min-tokens 900 is over --max-tokens 300"):
        prepare_data(options(tmp_path, tiny_llama, min_tokens=900, max_tokens=300))
    with pytest.raises(UserError, match="no passage reached --min-tokens"):
        prepare_data(options(tmp_path, tiny_llama, min_tokens=5000, max_tokens=6000, sequence_len=8192))
    assert (tmp_path / "out" / "training.jsonl").read_bytes() == before


def test_a_near_duplicate_draft_is_trained_once_from_the_newer_file(tmp_path, tiny_llama, writing):
    import os

    from scifi_llm.tune.near_duplicates import near_duplicates

    original = (writing / "cold_hands.md").read_text()
    edited = original.replace("the", "that", 3).replace(".", "!", 2)  # a few words changed: a second draft
    write(writing / "cold_hands_v2.md", edited)
    os.utime(writing / "cold_hands.md", (1_000_000, 1_000_000))  # the first draft is the older file
    report = prepare_data(options(tmp_path, tiny_llama, keep_short=True))
    assert report.near_duplicates and {entry["file"] for entry in report.near_duplicates} == {"cold_hands.md"}
    assert {entry["kept_from"] for entry in report.near_duplicates} == {"cold_hands_v2.md"}
    assert all(entry["similarity"] >= 0.8 for entry in report.near_duplicates)
    texts = " ".join(e["messages"][2]["content"] for e in examples(tmp_path / "out"))
    first_words = " ".join(original.split("\n\n")[1].split()[:8])  # text only the older draft has...
    assert first_words not in texts or first_words in edited  # ...is gone, unless the new draft kept it
    shutil.copytree(writing, tmp_path / "newer-only")
    (tmp_path / "newer-only" / "cold_hands.md").unlink()
    newer = options(tmp_path, tiny_llama, keep_short=True, input_dir=tmp_path / "newer-only")
    alone = prepare_data(replace(newer, output_dir=tmp_path / "alone"))
    both = report.train_examples + report.validation_examples
    assert both == alone.train_examples + alone.validation_examples  # the older draft added nothing
    # passages that only share stock phrases are not copies; a passage cut shorter still is one
    assert (
        near_duplicates(["the sea was grey and cold and wide", "the ship was late again"], [(0,), (1,)]) == []
    )
    long = " ".join(f"word{i}" for i in range(200))
    (copy,) = near_duplicates([long, " ".join(long.split()[:150])], [(2, "b"), (1, "a")])
    assert (copy.dropped, copy.kept) == (1, 0)
