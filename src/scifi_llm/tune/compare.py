"""`tune compare`: does the tuned model write more like the author than the base does?

Four kinds of evidence, on the held-out validation set (prose the adapter never trained on):
- perplexity of each model on the author's passages (local models; lower means the prose is less
  surprising to it);
- generations for the first N validation requests by both models, locally or through OpenAI-compatible
  endpoints, side by side with the author's own passage;
- judge-free style distances of each model's generations to the author's held-out prose (Burrows'
  Delta, sentence-length distance, type-token ratio, dialogue share: `stylometry`);
- optionally, a blind pairwise judge through an OpenAI-compatible endpoint, asked in both orders.

Everything lands in `results/compare-<time>/`: report.json, report.md, report.html and metrics.png,
written into a hidden folder first and renamed when complete.
"""

import asyncio
import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_dir
from scifi_llm.models import require
from scifi_llm.stylometry import burrows_delta, style_distance, style_numbers
from scifi_llm.tokens import load_tokenizer
from scifi_llm.tune.dataset import load_examples

Progress = Callable[[str], None]
JUDGE_PROMPT = """A writer's own passage, then two passages written to the same request.

The writer's passage:
{reference}

Passage A:
{first}

Passage B:
{second}

Which of A and B reads more like the writer's own prose: voice, rhythm, sentence length, word choice (not
the plot)? Answer with the single letter A or B."""
_VERDICT = re.compile(r"\b([AB])\b")


@dataclass(frozen=True)
class CompareOptions:
    """What `tune compare` was asked for."""

    base: str
    tuned: str
    validation: Path
    results_dir: Path
    prompts: int = 5
    max_tokens: int = 200
    temperature: float = 0.8
    seed: int = 0
    base_url: str | None = None
    tuned_url: str | None = None
    judge_url: str | None = None
    judge_tries: int = 2


def compare_models(options: CompareOptions, progress: Progress | None = None) -> dict:
    """Run the comparison and write the report folder; returns the report."""
    say = progress or (lambda _: None)
    examples = load_examples(options.validation)
    author = [example["completion"][0]["content"] for example in examples]
    chosen = examples[: options.prompts]
    models = {"base": (options.base, options.base_url), "tuned": (options.tuned, options.tuned_url)}
    runs = {
        name: _run_model(name, model, url, examples, chosen, options, say)
        for name, (model, url) in models.items()
    }
    deltas = burrows_delta(author, {name: run["generations"] for name, run in runs.items()})
    metrics = {
        name: {"perplexity": run["perplexity"], "burrows_delta": _rounded(deltas[name], 4)}
        | style_distance(author, run["generations"])
        for name, run in runs.items()
    }
    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {key: str(value) for key, value in asdict(options).items()},
        "validation_examples": len(examples),
        "metrics": metrics,
        "author": style_numbers(author),
        "samples": [
            {
                "request": example["prompt"][-1]["content"],
                "author": example["completion"][0]["content"],
                "base": runs["base"]["generations"][index],
                "tuned": runs["tuned"]["generations"][index],
            }
            for index, example in enumerate(chosen)
        ],
        "judge": _judge(chosen, runs, options, say) if options.judge_url else None,
        "notes": [note for run in runs.values() for note in run["notes"]],
    }
    report["folder"] = str(_write_report(report, options.results_dir))
    return report


def _run_model(
    name: str,
    model: str,
    url: str | None,
    examples: list[dict],
    chosen: list[dict],
    options: CompareOptions,
    say: Progress,
) -> dict:
    """Perplexity (when the weights are here) and generations (here, or from the model's endpoint)."""
    notes = []
    weights = None
    try:
        weights = require(model, "base model")
    except UserError:
        if url is None:
            raise
        notes.append(f"{name}: {model} is not available locally, so no perplexity (generations from {url})")
    loaded = _load(weights) if weights is not None else None
    perplexity = None
    if loaded is not None:
        say(f"{name}: perplexity on {len(examples)} validation passages")
        perplexity = round(_perplexity(*loaded, examples), 3)
    say(f"{name}: writing {len(chosen)} passages")
    prompts = [example["prompt"] for example in chosen]
    if url is not None:
        generations = asyncio.run(_generate_remote(url, prompts, options))
    else:
        generations = _generate_local(*loaded, prompts, options)
    return {"perplexity": perplexity, "generations": generations, "notes": notes}


def _load(folder: Path):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    return model, load_tokenizer(str(folder))


def _perplexity(model, tokenizer, examples: list[dict]) -> float:
    """exp of the mean negative log-likelihood per token of the author's passages, given their prompts."""
    import torch

    total_loss, total_tokens = 0.0, 0
    for example in examples:
        prompt = tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, tokenize=True)
        full = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True)
        prompt, full = _ids(prompt), _ids(full)
        labels = [-100] * len(prompt) + full[len(prompt) :]
        ids = torch.tensor([full], device=model.device)
        with torch.no_grad():
            loss = model(ids, labels=torch.tensor([labels], device=model.device)).loss.item()
        counted = sum(1 for label in labels[1:] if label != -100)
        total_loss, total_tokens = total_loss + loss * counted, total_tokens + counted
    return math.exp(total_loss / max(total_tokens, 1))


def _ids(encoded) -> list[int]:
    """Token ids from apply_chat_template, whichever shape this transformers version returns."""
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def _generate_local(model, tokenizer, prompts: list[list[dict]], options: CompareOptions) -> list[str]:
    import torch

    texts = []
    for index, prompt in enumerate(prompts):
        ids = _ids(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))
        torch.manual_seed(options.seed + index)
        with torch.no_grad():
            output = model.generate(
                torch.tensor([ids], device=model.device),
                max_new_tokens=options.max_tokens,
                do_sample=True,
                temperature=options.temperature,
                top_p=0.95,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        texts.append(tokenizer.decode(output[0][len(ids) :], skip_special_tokens=True).strip())
    return texts


async def _generate_remote(url: str, prompts: list[list[dict]], options: CompareOptions) -> list[str]:
    import httpx

    from scifi_llm.openai_client import chat_text, first_model

    async with httpx.AsyncClient(timeout=600) as client:
        model = await first_model(client, url)
        bodies = [
            {
                "model": model,
                "messages": prompt,
                "max_tokens": options.max_tokens,
                "temperature": options.temperature,
            }
            for prompt in prompts
        ]
        return [
            text.strip() for text in await asyncio.gather(*(chat_text(client, url, body) for body in bodies))
        ]


def _judge(chosen: list[dict], runs: dict, options: CompareOptions, say: Progress) -> dict:
    """Blind pairwise verdicts, each pair asked in both orders; unreadable answers are retried, then
    counted as failures (never as a vote)."""
    from scifi_llm.judge import ask_all

    say(f"judge: {2 * len(chosen)} blind comparisons")
    prompts, orders = [], []
    for index, example in enumerate(chosen):
        base, tuned = runs["base"]["generations"][index], runs["tuned"]["generations"][index]
        reference = example["completion"][0]["content"]
        prompts.append(JUDGE_PROMPT.format(reference=reference, first=base, second=tuned))
        orders.append({"A": "base", "B": "tuned"})
        prompts.append(JUDGE_PROMPT.format(reference=reference, first=tuned, second=base))
        orders.append({"A": "tuned", "B": "base"})
    letters, _ = asyncio.run(
        ask_all(options.judge_url, prompts, parse_verdict, options.judge_tries, max_tokens=5)
    )
    return summarise_verdicts(
        [order[letter] if letter else None for letter, order in zip(letters, orders, strict=True)]
    )


def parse_verdict(answer: str) -> str | None:
    """The letter a judge chose, or None when the answer names neither or both."""
    letters = set(_VERDICT.findall(answer.strip()))
    return letters.pop() if len(letters) == 1 else None


def summarise_verdicts(verdicts: list[str | None]) -> dict:
    """Win rate of the tuned model over readable verdicts, and how often both orders agreed.

    `verdicts` holds the winner ("base"/"tuned") or None per question, in pairs (both orders of one
    prompt).
    """
    readable = [verdict for verdict in verdicts if verdict is not None]
    pairs = [(verdicts[i], verdicts[i + 1]) for i in range(0, len(verdicts) - 1, 2)]
    complete = [pair for pair in pairs if None not in pair]
    return {
        "questions": len(verdicts),
        "failures": len(verdicts) - len(readable),
        "tuned_wins": sum(1 for verdict in readable if verdict == "tuned"),
        "tuned_win_rate": round(sum(v == "tuned" for v in readable) / len(readable), 3) if readable else None,
        "order_agreement": round(sum(a == b for a, b in complete) / len(complete), 3) if complete else None,
        "verdicts": verdicts,
    }


def _write_report(report: dict, results_dir: Path) -> Path:
    """report.json, report.md, report.html and metrics.png in results/compare-<time>/, all or nothing."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = results_dir / f"compare-{stamp}"
    with atomic_dir(folder) as staging:
        report_with_folder = report | {"folder": str(folder)}
        report_json = json.dumps(report_with_folder, indent=1, ensure_ascii=False, allow_nan=False)
        (staging / "report.json").write_text(report_json + "\n", encoding="utf-8")
        (staging / "report.md").write_text(markdown_report(report), encoding="utf-8")
        (staging / "report.html").write_text(html_report(report), encoding="utf-8")
        _plot(report["metrics"], staging / "metrics.png")
    return folder


METRIC_LABELS = {
    "perplexity": ("perplexity on the author's held-out prose", "lower"),
    "burrows_delta": ("Burrows' Delta to the author", "lower"),
    "sentence_length_distance": ("sentence-length distance (words)", "lower"),
    "mattr_gap": ("type-token ratio gap", "lower"),
    "dialogue_gap": ("dialogue share gap", "lower"),
    "mean_sentence_words": ("mean words per sentence", "closer to the author's"),
    "mattr": ("type-token ratio (MATTR)", "closer to the author's"),
    "dialogue_share": ("dialogue share", "closer to the author's"),
}


def metric_rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(label, author, base, tuned, which is better) for each metric, formatted."""
    rows = []
    for key, (label, better) in METRIC_LABELS.items():
        values = [report["author"].get(key)] + [
            report["metrics"][name].get(key) for name in ("base", "tuned")
        ]
        rows.append((label, *(_number(value) for value in values), better))
    return rows


def _rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_report(report: dict) -> str:
    """The report for people, as Markdown."""
    lines = [
        "# Base vs tuned: does it write like the author?",
        "",
        f"Base `{report['options']['base']}`, tuned `{report['options']['tuned']}`, "
        f"{report['validation_examples']} held-out passages. Created {report['created']}.",
        "",
        "| metric | author | base | tuned | better |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in metric_rows(report)),
    ]
    judge = report.get("judge")
    if judge:
        readable = judge["questions"] - judge["failures"]
        lines += [
            "",
            f"Blind judge: tuned preferred in {judge['tuned_wins']} of {readable} "
            f"readable verdicts (win rate {_number(judge['tuned_win_rate'])}), both orders agreeing on "
            f"{_number(judge['order_agreement'])} of the pairs; {judge['failures']} unreadable answers.",
        ]
    for index, sample in enumerate(report["samples"], start=1):
        lines += ["", f"## Request {index}: {sample['request']}", ""]
        for name in ("author", "base", "tuned"):
            lines += [f"**{name}**", "", sample[name] or "(empty)", ""]
    lines += [f"- note: {note}" for note in report["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def html_report(report: dict) -> str:
    """The same report as a self-contained HTML page, the samples in three columns."""
    escape = html.escape
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in metric_rows(report)
    )
    samples = "".join(
        f"<h3>{escape(sample['request'])}</h3><div class=row>"
        + "".join(
            f"<div><h4>{name}</h4><p>{escape(sample[name] or '(empty)')}</p></div>"
            for name in ("author", "base", "tuned")
        )
        + "</div>"
        for sample in report["samples"]
    )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto}td,th{padding:4px 10px}"
        ".row{display:grid;grid-template-columns:1fr 1fr 1fr;gap:16px}p{white-space:pre-wrap}"
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>tune compare</title><style>{style}</style>"
        f"<h1>Base vs tuned</h1><p>{escape(report['options']['base'])} vs "
        f"{escape(report['options']['tuned'])}</p><img src=metrics.png alt=metrics>"
        f"<table><tr><th>metric<th>author<th>base<th>tuned<th>better</tr>{rows}</table>"
        f"{samples}"
    )


def _plot(metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [key for key, (_, better) in METRIC_LABELS.items() if better == "lower"]
    figure, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 3))
    for axis, key in zip(axes, keys, strict=True):
        values = [metrics[name].get(key) for name in ("base", "tuned")]
        values = [
            value if isinstance(value, int | float) and not math.isnan(value) else 0 for value in values
        ]
        axis.bar(["base", "tuned"], values, color=["#999999", "#3b6ea5"])
        axis.set_title(METRIC_LABELS[key][0], fontsize=8)
    figure.suptitle("distance to the author (lower is closer)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
