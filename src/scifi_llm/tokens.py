"""Token counting shared by chunking, retrieval budgets and reports.

The counts are an estimate of Llama-3 tokens that needs no tokenizer files: one token per word or
punctuation mark, plus one for every further 8 characters of a long word. On English prose this lands
within about 10% of the real tokenizer, which is all a chunk size or a lore budget needs.
"""

import re

_PIECES = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Estimated number of Llama-3 tokens in `text`."""
    return sum(1 + (len(piece) - 1) // 8 for piece in _PIECES.findall(text))
