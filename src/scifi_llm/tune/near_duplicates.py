"""Near-duplicate passages: the same scene kept twice (`chapter3.md` and `chapter3_v2.md`).

Training on both teaches the model that scene twice, and one copy may land in validation, which then
measures memory, not voice. Passages are compared by a sample of their word 5-gram shingles: two are near
duplicates when most of the shorter one's shingles are also in the other (containment, so a passage
that grew or was cut at another paragraph still matches). Candidates are found through an index of
shingles, so the work grows with the passages' length, not with the square of their number.

Which copy stays: the one from the file changed last (its modification time), since a writer's newer
draft is the one they stand by; on equal times, the file later in name order (`chapter3_v2.md` after
`chapter3.md`).
"""

import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

SHINGLE_WORDS = 5
SIMILAR = 0.8  # the share of the shorter passage's shingles found in the other
_COMMON = 50  # a shingle in more passages than this is a stock phrase, not evidence of a copy
_SAMPLE = 8
_BASE = np.int64(1_000_003)
_ENOUGH = 4


@dataclass(frozen=True)
class Copy:
    """A passage dropped as a near duplicate of a kept one."""

    dropped: int
    kept: int
    similarity: float


def shingles(text: str) -> set[int]:
    """A fixed sample (one in `_SAMPLE`, chosen by hash value) of the passage's 5-grams of words (as
    spaces separate them, lower case), hashed: the same 5-gram is sampled in every passage, so shares of
    shared shingles keep their meaning at a fraction of the work. Each 5-gram's hash is a polynomial of
    its words' CRC-32s, computed for all positions at once; CRC-32, not Python's salted `hash`, so the
    same files give the same training data on every run."""
    words = np.array([zlib.crc32(word.encode()) for word in text.lower().split()], dtype=np.int64)
    if len(words) < SHINGLE_WORDS:
        return set()
    with np.errstate(over="ignore"):  # the products wrap around: a hash needs no more
        grams = sum(words[k : len(words) - SHINGLE_WORDS + 1 + k] * _BASE**k for k in range(SHINGLE_WORDS))
    return {value for value in set(grams.tolist()) if value % _SAMPLE == 0}


def near_duplicates(texts: list[str], ranks: list[tuple]) -> list[Copy]:
    """Which passages to drop: each near duplicate of another, the lower `ranks` entry giving way (a
    rank is (modification time, file name); the higher one is kept)."""
    sets = [found if len(found) >= _ENOUGH else set() for found in map(shingles, texts)]  # too short to judge
    index: dict[int, list[int]] = {}
    for number, found in enumerate(sets):
        for shingle in found:
            index.setdefault(shingle, []).append(number)
    dropped: dict[int, Copy] = {}
    for number, found in enumerate(sets):
        shared = Counter(
            other
            for shingle in found
            if len(index[shingle]) <= _COMMON
            for other in index[shingle]
            if other < number
        )
        for other, count in shared.items():
            similarity = count / max(min(len(found), len(sets[other])), 1)
            if similarity >= SIMILAR and number not in dropped and other not in dropped:
                lower, higher = sorted((number, other), key=lambda n: ranks[n])
                dropped[lower] = Copy(lower, higher, round(similarity, 3))
    return sorted(dropped.values(), key=lambda copy: copy.dropped)
