"""A tiny Llama built on the spot: the stand-in for Llama-3.1-8B in tests and the offline demo.

Two layers, hidden size 64, random weights, and a byte-level BPE tokenizer trained on the given text
with Llama-3's special tokens and chat template (with `{% generation %}` markers, so trainers can
mask everything but the assistant's words). It loads, generates, serves and fine-tunes like the real
thing, in seconds, with no download. It writes nonsense, which is all a plumbing test needs.
"""

from collections.abc import Iterable
from pathlib import Path

BOS, EOS, EOT = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
HEADER_START, HEADER_END = "<|start_header_id|>", "<|end_header_id|>"
SPECIAL_TOKENS = [BOS, EOS, EOT, HEADER_START, HEADER_END]

CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else %}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained on `texts`, with Llama-3's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOT, pad_token=EOS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_llama(output_dir: Path, texts: Iterable[str], seed: int = 0) -> Path:
    """Write a tiny random Llama and its tokenizer to `output_dir` (a Hugging Face model folder)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    tokenizer = build_tokenizer(texts)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=500000.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,  # tied, a random model only repeats its last token; untied, it babbles
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(EOS)],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=64,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def main(argv: list[str] | None = None) -> None:
    """`python -m scifi_llm.tiny_model OUTPUT_DIR`: build the tiny model into a folder and print its path."""
    import argparse

    from scifi_llm.config import example_dir

    parser = argparse.ArgumentParser(
        prog="python -m scifi_llm.tiny_model",
        description="Build a tiny random Llama (2 layers, a Llama-3 chat template, a tokenizer trained on "
        "the example world) in seconds: it serves, trains and merges like the real thing, offline, and "
        "writes nonsense. For trying the whole pipeline on a CPU.",
    )
    parser.add_argument(
        "output_dir", type=Path, help="the model folder to write (serve it with scifi-llm serve)"
    )
    args = parser.parse_args(argv)
    corpus = [path.read_text(encoding="utf-8") for path in sorted(example_dir().rglob("*.md"))]
    print(build_tiny_llama(args.output_dir, corpus))


if __name__ == "__main__":
    main()
