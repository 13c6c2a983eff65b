"""The tiny Llama fixture that stands in for Llama-3.1-8B in the tests of serving and training."""

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

MESSAGES = [
    {"role": "system", "content": "You are a science fiction author."},
    {"role": "user", "content": "Write the bar scene."},
    {"role": "assistant", "content": "Elena flexed the arm."},
]


def test_tiny_llama_is_a_small_llama_folder(tiny_llama):
    config = json.loads((tiny_llama / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_key_value_heads"]) == (2, 64, 2)
    assert (tiny_llama / "model.safetensors").stat().st_size < 2_000_000


def test_chat_template_is_llama3_style_with_generation_markers(tiny_llama):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    text = tokenizer.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "You are a science fiction author.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWrite the bar scene.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    rendered = tokenizer.apply_chat_template(MESSAGES, return_assistant_tokens_mask=True, return_dict=True)
    assistant_ids = [t for t, m in zip(rendered["input_ids"], rendered["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(assistant_ids) == "Elena flexed the arm.<|eot_id|>"


def test_tiny_llama_generates(tiny_llama):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    inputs = tokenizer.apply_chat_template(
        MESSAGES[:2], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 5


def test_the_tiny_model_command_explains_itself_and_takes_no_flag_for_a_folder(tmp_path, capsys):
    from scifi_llm.tiny_model import main

    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0 and "tiny random Llama" in capsys.readouterr().out
    assert not (Path.cwd() / "--help").exists()
