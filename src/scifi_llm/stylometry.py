"""How far a set of texts is from the author's own prose, in numbers that do not need a judge.

- Burrows' Delta over the most frequent words: every text is a document; each word's relative frequency
  is turned into a z-score across all documents; a group's distance to the author is the mean absolute
  difference between the two groups' average z-scores (lower is closer).
- Sentence-length distance: the 1-Wasserstein distance between the two distributions of words per
  sentence (in words; lower is closer).
- Type-token ratio as a moving average over 50-word windows (MATTR), so it does not fall with length.
- Dialogue share: the part of the text inside quotation marks.
"""

import statistics
from collections import Counter

from scifi_llm.author_profile import profile
from scifi_llm.text import split_sentences, words_in

MATTR_WINDOW = 50


def words(text: str) -> list[str]:
    """Lower-cased words."""
    return words_in(text.lower())


def sentences(text: str) -> list[str]:
    """The sentences of a text, paragraph by paragraph."""
    return [sentence for paragraph in text.split("\n\n") for sentence in split_sentences(paragraph.strip())]


def sentence_lengths(texts: list[str]) -> list[int]:
    """Words per sentence, over all the texts."""
    return [len(words(sentence)) for text in texts for sentence in sentences(text) if words(sentence)]


def mattr(texts: list[str], window: int = MATTR_WINDOW) -> float:
    """Moving-average type-token ratio of each text, averaged over the texts that have any words."""
    ratios = []
    for text in texts:
        tokens = words(text)
        if not tokens:
            continue
        if len(tokens) <= window:
            ratios.append(len(set(tokens)) / len(tokens))
            continue
        counts = Counter(tokens[:window])
        total = len(counts)
        for start in range(1, len(tokens) - window + 1):
            leaving, entering = tokens[start - 1], tokens[start + window - 1]
            counts[leaving] -= 1
            if counts[leaving] == 0:
                del counts[leaving]
            counts[entering] += 1
            total += len(counts)
        ratios.append(total / (len(tokens) - window + 1) / window)
    return statistics.fmean(ratios) if ratios else 0.0


def dialogue_share(texts: list[str]) -> float:
    """The share of the characters that are inside quotation marks."""
    return profile([sentence for text in texts for sentence in sentences(text)]).dialogue_share


def wasserstein(first: list[int], second: list[int], points: int = 200) -> float | None:
    """The 1-Wasserstein distance between two samples (the mean gap between their quantiles); None when
    either is empty."""
    if not first or not second:
        return None
    low, high = sorted(first), sorted(second)
    gaps = [abs(_quantile(low, q) - _quantile(high, q)) for q in ((i + 0.5) / points for i in range(points))]
    return statistics.fmean(gaps)


def _quantile(ordered: list[int], q: float) -> float:
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def burrows_delta(author: list[str], groups: dict[str, list[str]], top: int = 150) -> dict[str, float | None]:
    """Each group's Delta to the author: z-scores over all documents of the `top` most frequent words
    (None where there is too little text to compare)."""
    documents = [*author, *(text for texts in groups.values() for text in texts)]
    frequencies = [_relative(text) for text in documents]
    totals = Counter()
    for text in documents:
        totals.update(words(text))
    vocabulary = [word for word, _ in totals.most_common(top)]
    if len(documents) < 3 or not vocabulary:
        return dict.fromkeys(groups)
    z_scores = {word: _z([frequency.get(word, 0.0) for frequency in frequencies]) for word in vocabulary}
    spans, start = {}, len(author)
    for name, texts in groups.items():
        spans[name] = range(start, start + len(texts))
        start += len(texts)
    author_centroid = {word: statistics.fmean(z_scores[word][: len(author)]) for word in vocabulary}
    return {
        name: statistics.fmean(
            abs(statistics.fmean(z_scores[word][i] for i in span) - author_centroid[word])
            for word in vocabulary
        )
        if span
        else None
        for name, span in spans.items()
    }


def _relative(text: str) -> dict[str, float]:
    tokens = words(text)
    return {word: count / len(tokens) for word, count in Counter(tokens).items()} if tokens else {}


def _z(values: list[float]) -> list[float]:
    mean, spread = statistics.fmean(values), statistics.pstdev(values)
    return [(value - mean) / spread if spread else 0.0 for value in values]


def style_numbers(texts: list[str]) -> dict[str, float]:
    """Mean words per sentence, type-token ratio and dialogue share of some texts."""
    lengths = sentence_lengths(texts)
    return {
        "mean_sentence_words": round(statistics.fmean(lengths), 2) if lengths else None,
        "mattr": round(mattr(texts), 4),
        "dialogue_share": round(dialogue_share(texts), 4),
    }


def style_distance(author: list[str], texts: list[str]) -> dict[str, float]:
    """One model's texts next to the author's: their own numbers and the gaps (Delta needs the other
    groups, so it is separate)."""
    own, theirs = style_numbers(texts), style_numbers(author)
    distance = wasserstein(sentence_lengths(author), sentence_lengths(texts))
    return own | {
        "sentence_length_distance": round(distance, 3) if distance is not None else None,
        "mattr_gap": round(abs(own["mattr"] - theirs["mattr"]), 4),
        "dialogue_gap": round(abs(own["dialogue_share"] - theirs["dialogue_share"]), 4),
    }
