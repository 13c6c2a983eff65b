"""`bench context`: how prompt length slows the model: time to first token and decode speed from 1k
tokens up to the served model's maximum.

Prompts are real prose (the example writing, repeated) cut to an exact token count with the model's
tokenizer when it is here. The maximum comes from `/v1/models` (`max_model_len`, as vLLM reports it), else
from `--max-model-len`; lengths that would not fit with the answer are skipped and listed, never sent.
The old plan's sweep, 1k to 60k, is the default for an 8B model served at 64k.
"""

import asyncio

from scifi_llm.bench.loadgen import CountTokens, Load, run_load, summarize
from scifi_llm.bench.throughput import endpoint_info, prose_prompt, request_body
from scifi_llm.errors import UserError

DEFAULT_LENGTHS = (1024, 2048, 4096, 8192, 16384, 32768, 61440)
TEMPLATE_ALLOWANCE = 64  # the chat template's tokens around the prose, kept free below the maximum


def context_sweep(
    url: str,
    lengths: tuple[int, ...] = DEFAULT_LENGTHS,
    max_model_len: int | None = None,
    output_tokens: int = 64,
    requests: int = 2,
    count_tokens: CountTokens | None = None,
) -> dict:
    """TTFT and decode tok/s at each prompt length that fits the model."""
    info = asyncio.run(endpoint_info(url))
    limit = info["max_model_len"] or max_model_len
    fitting = [n for n in lengths if limit is None or n + TEMPLATE_ALLOWANCE + output_tokens <= limit]
    rows = []
    for length in fitting:
        body = request_body(
            info["model"], prose_prompt(length, count_tokens), output_tokens, info["owned_by"]
        )
        load = Load(requests=requests, concurrency=1)
        summary = summarize(*asyncio.run(run_load(url, [body], load, count_tokens)), load)
        tpot = summary["median_tpot_ms"]
        rows.append(
            {
                "target_tokens": length,
                "prompt_tokens": summary["total_input_tokens"] // max(summary["completed"], 1) or None,
                "median_ttft_ms": summary["median_ttft_ms"],
                "decode_tok_s": round(1000 / tpot, 2) if tpot else None,
                "median_e2el_ms": summary["median_e2el_ms"],
                "failed": summary["failed"],
                "errors": summary["errors"],
            }
        )
    if rows and all(row["median_ttft_ms"] is None for row in rows):
        raise UserError(f"no request to {url} was answered: {(rows[0]['errors'] or ['no answer'])[0]}")
    return {
        "endpoint": info,
        "max_model_len": limit,
        "max_model_len_from": "server" if info["max_model_len"] else ("flag" if max_model_len else None),
        "output_tokens": output_tokens,
        "rows": rows,
        "skipped_over_max": [length for length in lengths if length not in fitting],
    }


def plot(result: dict, path) -> None:
    """TTFT and decode speed against prompt length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in result["rows"] if row["median_ttft_ms"] is not None]
    lengths = [row["prompt_tokens"] or row["target_tokens"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(lengths, [row["median_ttft_ms"] for row in rows], marker="o")
    left.set(xlabel="prompt tokens", ylabel="time to first token (ms)", xscale="log")
    right.plot(lengths, [row["decode_tok_s"] or 0 for row in rows], marker="o")
    right.set(xlabel="prompt tokens", ylabel="decode tokens/s", xscale="log")
    figure.suptitle("context scaling")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
