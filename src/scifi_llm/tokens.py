"""Token counting: an estimate that needs no tokenizer, and exact counts from a model's own tokenizer.

The estimate of Llama-3 tokens that needs no tokenizer files: one token per word or
punctuation mark, plus one for every further 8 characters of a long word. On English prose this lands
within about 10% of the real tokenizer, which is all a chunk size or a lore budget needs.
"""

import bisect
import functools
import itertools
import re
from pathlib import Path

from scifi_llm.errors import UserError
from scifi_llm.models import require

_PIECES = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Estimated number of Llama-3 tokens in `text`."""
    return sum(1 + (len(piece) - 1) // 8 for piece in _PIECES.findall(text))


def load_tokenizer(name: str, used_for: str = "tokenizer", root: Path | None = None):
    """A model's tokenizer from a local folder or the local hub cache, with a pad token (its end-of-text
    token when it has none); a one-line error naming the model when it is missing or broken."""
    from transformers import AutoTokenizer

    folder = require(name, used_for, root)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{used_for}: the tokenizer of {name} could not be loaded from {folder} ({exc})"
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class TokenCounter:
    """Exact token counts from a Hugging Face tokenizer, a batch at a time."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self._backend = getattr(tokenizer, "backend_tokenizer", None)  # the Rust tokenizer of a fast one

    def count(self, texts: list[str]) -> list[int]:
        """Tokens in each text, without special tokens."""
        if not texts:
            return []
        if self._backend is not None:
            encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)  # no offsets
            return [len(encoding.ids) for encoding in encode(texts, add_special_tokens=False)]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def count_one(self, text: str) -> int:
        """Tokens in one text, without special tokens."""
        return self.count([text])[0]

    @functools.cached_property
    def break_tokens(self) -> int:
        """Tokens a blank line adds between two paragraphs (0 where it merges with the full stop)."""
        joined, first, second = self.count(["It ended.\n\nThen", "It ended.", "Then"])
        return max(joined - first - second, 0)

    def shares(self, sentences: list[str]) -> list[int]:
        """Each sentence's share of the tokens of the sentences joined by spaces (a token belongs to the
        sentence its first character is in)."""
        ends = list(itertools.accumulate(len(sentence) + 1 for sentence in sentences))
        text, starts = " ".join(sentences), [0, *ends[:-1]]
        if self._backend is None:
            return self.count([text[begin:end] for begin, end in itertools.pairwise([*starts, len(text)])])
        encoding = self._backend.encode(text, add_special_tokens=False)
        bounds = [0]
        for start in starts[1:]:
            token = encoding.char_to_token(start)
            if token is None:  # a character no token claims (trimmed whitespace): find the next one
                token = bisect.bisect_left([begin for begin, _ in encoding.offsets], start)
            bounds.append(token)
        bounds.append(len(encoding.ids))
        return [later - earlier for earlier, later in itertools.pairwise(bounds)]
