"""`tune prepare`: the writer's prose folder -> training.jsonl, validation.jsonl, style and report.

Each example is `{"messages": [system, user, assistant]}`: the system prompt describes the author's
style, the user turn is a writing request, and the assistant turn is a passage of their own prose.
The split is by scene group, in the order of a hash of each group's file and first words, until the
asked share of passages is reached: it is deterministic, one scene never lands on both sides, the share
is met within one scene group, and adding a file moves at most the groups at the edge of the share.
"""

import asyncio
import contextlib
import gc
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scifi_llm.author_profile import profile
from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_write_text
from scifi_llm.textio import DEFAULT_NOTE_PATTERNS
from scifi_llm.tokens import TokenCounter, load_tokenizer
from scifi_llm.tune.chunk import ChunkReport, Passage, pack_all
from scifi_llm.tune.corpus import ReadReport, read_writing
from scifi_llm.tune.near_duplicates import near_duplicates
from scifi_llm.tune.prompts import HeuristicPrompts, llm_requests, request_key

# Room kept for the system prompt, a writing request and the chat template around them.
_LONGEST_REQUEST_TOKENS = 64


@dataclass(frozen=True)
class PrepareOptions:
    """What `tune prepare` was asked for."""

    input_dir: Path
    output_dir: Path
    tokenizer: str
    min_tokens: int = 500
    max_tokens: int = 2000
    sequence_len: int = 2048
    val_fraction: float = 0.1
    keep_short: bool = False
    note_patterns: tuple[str, ...] = DEFAULT_NOTE_PATTERNS
    outside_folders: tuple[Path, ...] = ()  # where symlinks in the writing folder may lead
    prompts: str = "heuristic"  # or "llm": ask the model at base_url to write each request
    base_url: str | None = None


@dataclass
class PrepareReport:
    """Everything `prepare` did, for people and for prepare_report.json."""

    files_read: int = 0
    decoded_with_fallback: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    near_duplicates: list = field(default_factory=list)  # passages dropped as copies of a newer draft's
    note_lines_removed: int = 0
    dropped: list = field(default_factory=list)
    train_examples: int = 0
    validation_examples: int = 0
    token_histogram: dict[str, int] = field(default_factory=dict)
    max_tokens_used: int = 0
    prompts_from_llm: int = 0
    prompts_heuristic: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def prepare_data(options: PrepareOptions) -> PrepareReport:
    """Read, clean, chunk, prompt, split and write; re-running on the same input gives identical files."""
    with _collector_paused():
        return _prepare(options)


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector: a corpus makes hundreds of thousands of small long-lived
    objects (sentences, counts) that it would rescan again and again (a fifth of the run time), and
    nothing here makes reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _prepare(options: PrepareOptions) -> PrepareReport:
    if not options.input_dir.is_dir():
        raise UserError(f"writing folder {options.input_dir} does not exist")
    if options.min_tokens > options.max_tokens:
        raise UserError(f"--min-tokens {options.min_tokens} is over --max-tokens {options.max_tokens}")
    tokenizer = load_tokenizer(options.tokenizer, "tokenizer (--tokenizer or [model] name)")
    manuscripts, read_report = read_writing(options.input_dir, options.note_patterns, options.outside_folders)
    if not manuscripts:
        raise UserError(f"no usable prose in {options.input_dir} (see skipped files with --json)")
    report = _from_read(read_report)
    sentences = [sentence.text for manuscript in manuscripts for sentence in manuscript.sentences]
    style = profile(sentences)
    report.max_tokens_used = _fit_to_sequence(options, tokenizer, style.system_prompt(), report)
    placed = _place(manuscripts, TokenCounter(tokenizer), options, report)
    if not placed:
        raise UserError(
            f"no passage reached --min-tokens {options.min_tokens} ({len(report.dropped)} dropped); nothing "
            "written: lower --min-tokens, or pass --keep-short"
        )
    texts = [passage.text for _, passage in placed]
    heuristic = HeuristicPrompts(sentences)
    requests = _requests(texts, heuristic, options, report)
    examples = _fitted_examples(
        tokenizer, style.system_prompt(), texts, requests, placed, heuristic, options, report
    )
    train = [example for example, (side, _) in zip(examples, placed, strict=True) if side == "train"]
    validation = [
        example for example, (side, _) in zip(examples, placed, strict=True) if side == "validation"
    ]
    report.train_examples, report.validation_examples = len(train), len(validation)
    if len(train) + len(validation) < FEW_EXAMPLES:
        report.warnings.append(
            f"only {len(train) + len(validation)} examples: a voice needs at least {FEW_EXAMPLES}, and "
            f"{GOOD_EXAMPLES} are better; add prose, or lower --max-tokens for more, shorter examples"
        )
    _write(options.output_dir, train, validation, style.to_dict(), report)
    return report


FEW_EXAMPLES, GOOD_EXAMPLES = 100, "500-1,000"  # the old plan's rule for a style fine-tune


def _place(
    manuscripts: list, counter: TokenCounter, options: PrepareOptions, report: PrepareReport
) -> list[tuple[str, Passage]]:
    """Every passage with its side ("train" or "validation"), in output order; drops go in the report."""
    chunk_report = ChunkReport()
    minimum = options.min_tokens if not options.keep_short else 1
    packed = pack_all(manuscripts, counter, minimum, report.max_tokens_used, chunk_report)
    packed = _without_near_duplicates(manuscripts, packed, report)
    groups = [
        (manuscript.source, group)
        for manuscript, passages in zip(manuscripts, packed, strict=True)
        for group in _scene_groups(passages)
    ]
    held_out = _validation_groups(groups, options.val_fraction)
    placed = []
    for index, (_, group) in enumerate(groups):
        placed.extend(("validation" if index in held_out else "train", passage) for passage in group)
        report.token_histogram = _histogram(report.token_histogram, [p.tokens for p in group])
    report.dropped = [
        {"file": source, "reason": "sentence longer than --max-tokens", "text": text}
        for source, text in chunk_report.too_long_sentences
    ] + [
        {"file": source, "reason": f"passage of {tokens} tokens is under --min-tokens"}
        for source, tokens in chunk_report.short_passages
    ]
    return placed


def _without_near_duplicates(manuscripts: list, packed: list[list[Passage]], report: PrepareReport) -> list:
    """The passages, each near duplicate of another dropped (the newer file's copy stays) and reported."""
    owners = [(manuscript, passage) for manuscript, passages in zip(manuscripts, packed, strict=True)
              for passage in passages]  # fmt: skip
    ranks = [(manuscript.modified, manuscript.source) for manuscript, _ in owners]
    copies = near_duplicates([passage.text for _, passage in owners], ranks)
    for copy in copies:
        dropped, kept = owners[copy.dropped], owners[copy.kept]
        report.near_duplicates.append(
            {"file": dropped[0].source, "kept_from": kept[0].source, "similarity": copy.similarity,
             "begins": " ".join(dropped[1].text.split()[:12])}
        )  # fmt: skip
    gone = {id(owners[copy.dropped][1]) for copy in copies}
    return [[passage for passage in passages if id(passage) not in gone] for passages in packed]


def _requests(
    passages: list[str], heuristic: HeuristicPrompts, options: PrepareOptions, report: PrepareReport
) -> list[str]:
    """A writing request per passage: from the model at --base-url when asked (cached in the output
    folder, so re-runs ask nothing and give the same files), else or on failure the heuristic."""
    asked: dict[str, str] = {}
    if options.prompts == "llm":
        if not options.base_url:
            raise UserError(
                "--prompts llm needs --base-url, the OpenAI URL of a model server (scifi-llm serve)"
            )
        cache_path = options.output_dir / "prompt_cache.json"
        asked = _read_cache(cache_path, report)
        asked |= asyncio.run(llm_requests(passages, options.base_url, asked))
        atomic_write_text(cache_path, json.dumps(asked, indent=0, ensure_ascii=False, sort_keys=True) + "\n")
    keys = [request_key(text) for text in passages]
    requests = [
        asked[key] if key in asked else heuristic.request(text)
        for key, text in zip(keys, passages, strict=True)
    ]
    report.prompts_from_llm = sum(1 for key in keys if key in asked)
    report.prompts_heuristic = len(passages) - report.prompts_from_llm
    if options.prompts == "llm" and report.prompts_heuristic:
        report.warnings.append(f"{report.prompts_heuristic} requests fell back to the heuristic")
    return requests


def _read_cache(path: Path, report: PrepareReport) -> dict[str, str]:
    """The cached model-written requests; a damaged cache is set aside (and said), not fatal."""
    if not path.is_file():
        return {}
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        cached = None
    if isinstance(cached, dict) and all(isinstance(value, str) for value in cached.values()):
        return cached
    report.warnings.append(f"{path} was damaged: the model was asked again")
    return {}


def _fitted_examples(
    tokenizer,
    system: str,
    texts: list[str],
    requests: list[str],
    placed: list,
    heuristic: HeuristicPrompts,
    options: PrepareOptions,
    report: PrepareReport,
) -> list[dict]:
    """The examples; one whose model-written request makes it too long for --sequence-len gets the
    (shorter) heuristic request instead, said in the report. Nothing leaves here longer than the limit."""
    passage_tokens = [passage.tokens for _, passage in placed]
    examples = [_example(system, request, text) for text, request in zip(texts, requests, strict=True)]
    replaced = 0
    for index in overlong(tokenizer, examples, passage_tokens, options.sequence_len):
        fallback = heuristic.request(texts[index])
        if fallback != requests[index]:  # a model-written request: the heuristic one is short
            examples[index] = _example(system, fallback, texts[index])
            replaced += 1
    if replaced:
        report.prompts_from_llm -= replaced
        report.prompts_heuristic += replaced
        report.warnings.append(
            f"{replaced} model-written requests were too long for --sequence-len: replaced"
        )
    if overlong(tokenizer, examples, passage_tokens, options.sequence_len):
        raise UserError(
            f"an example renders to more than --sequence-len {options.sequence_len} tokens: the chat "
            "template adds more than expected; raise --sequence-len or lower --max-tokens"
        )
    return examples


def _from_read(read: ReadReport) -> PrepareReport:
    return PrepareReport(
        files_read=read.files_read,
        decoded_with_fallback=[{"file": f, "encoding": e} for f, e in read.decoded_with_fallback],
        skipped=[{"file": f, "reason": r} for f, r in read.skipped],
        duplicates=[{"file": f, "same_as": s} for f, s in read.duplicates],
        note_lines_removed=read.note_lines_removed,
    )


def _fit_to_sequence(options: PrepareOptions, tokenizer, system_prompt: str, report: PrepareReport) -> int:
    """The assistant bound that keeps every rendered example within --sequence-len."""
    frame = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
    ]
    frame_tokens = rendered_lengths(tokenizer, [frame])[0]
    room = options.sequence_len - frame_tokens - _LONGEST_REQUEST_TOKENS
    if room < options.min_tokens:
        raise UserError(
            f"--sequence-len {options.sequence_len} leaves {room} tokens for prose, under "
            f"--min-tokens {options.min_tokens}: raise --sequence-len or lower --min-tokens"
        )
    if options.max_tokens > room:
        report.warnings.append(
            f"--max-tokens {options.max_tokens} lowered to {room} so examples fit "
            f"--sequence-len {options.sequence_len}"
        )
        return room
    return options.max_tokens


def rendered_lengths(tokenizer, conversations: list[list[dict]]) -> list[int]:
    """Tokens of each conversation rendered through the chat template, counted in one batch."""
    texts = [tokenizer.apply_chat_template(messages, tokenize=False) for messages in conversations]
    return TokenCounter(tokenizer).count(texts)


def _scene_groups(passages: list[Passage]) -> list[list[Passage]]:
    """Consecutive passages that share a scene, so a scene never straddles the split."""
    groups: list[list[Passage]] = []
    for passage in passages:
        if groups and set(passage.scenes) & set(groups[-1][-1].scenes):
            groups[-1].append(passage)
        else:
            groups.append([passage])
    return groups


def _validation_groups(groups: list[tuple[str, list[Passage]]], fraction: float) -> set[int]:
    """The scene groups held out for validation: taken in the order of a stable hash (of the file name
    and the group's first words) until `fraction` of all passages is reached."""
    target = round(fraction * sum(len(group) for _, group in groups))
    chosen, count = set(), 0
    for index in sorted(range(len(groups)), key=lambda i: _group_hash(*groups[i])):
        if count >= target:
            break
        chosen.add(index)
        count += len(groups[index][1])
    return chosen


def _group_hash(source: str, group: list[Passage]) -> str:
    return hashlib.sha256(f"{source}\0{group[0].sentences[0].text[:200]}".encode()).hexdigest()


def _example(system: str, request: str, passage: str) -> dict:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": request},
            {"role": "assistant", "content": passage},
        ]
    }


def _histogram(histogram: dict[str, int], counts: list[int]) -> dict[str, int]:
    for tokens in counts:
        low = tokens // 250 * 250
        key = f"{low}-{low + 249}"
        histogram[key] = histogram.get(key, 0) + 1
    return dict(sorted(histogram.items(), key=lambda item: int(item[0].split("-")[0])))


def overlong(tokenizer, examples: list[dict], passage_tokens: list[int], sequence_len: int) -> list[int]:
    """Which examples render through the chat template to more than the sequence length (a trainer would
    cut them). The sum of the parts (template, system, request, passage) is within a few tokens of the
    rendered length, so only examples whose sum comes near the limit are rendered and counted exactly."""
    if not examples:
        return []
    counter = TokenCounter(tokenizer)
    empty = [{"role": role, "content": ""} for role in ("system", "user", "assistant")]
    fixed = (
        rendered_lengths(tokenizer, [empty])[0] + counter.count([examples[0]["messages"][0]["content"]])[0]
    )
    requests = counter.count([example["messages"][1]["content"] for example in examples])
    sums = [fixed + request + passage for request, passage in zip(requests, passage_tokens, strict=True)]
    near = [index for index, total in enumerate(sums) if total > sequence_len - 32]
    lengths = rendered_lengths(tokenizer, [examples[index]["messages"] for index in near])
    return [index for index, length in zip(near, lengths, strict=True) if length > sequence_len]


def _write(
    output: Path, train: list[dict], validation: list[dict], style: dict, report: PrepareReport
) -> None:
    lines = lambda examples: "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)  # noqa: E731
    atomic_write_text(output / "training.jsonl", lines(train))
    atomic_write_text(output / "validation.jsonl", lines(validation))
    atomic_write_text(output / "style_profile.json", json.dumps(style, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(
        output / "prepare_report.json", json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n"
    )
