#!/usr/bin/env python3
"""Black-box acceptance check for `scifi-llm tune prepare` on a folder made by make_messy.py.

Usage:
  python check.py MESSY_DIR [--tokenizer DIR] [--work DIR] [--min-tokens 500] [--max-tokens 2000]
                            [--sequence-len 2048]

Runs the tool twice (two output folders) and checks, independently of the tool's own code:
  (a) every manifest prose sentence is in exactly one assistant passage (whitespace collapsed)
  (b) no planted note text (nor text of unsupported files) appears in any message
  (c) skipped files, the duplicate and the cp1252 fallback are reported with a reason
  (d) passages within the token bounds; rendered examples fit --sequence-len
  (e) validation share ~10%
  (f) the two runs' output files are byte-identical
  (g) no passage starts or ends mid-sentence
and some extras: (h) no text in passages beyond the manifest sentences (no headings, scene
breaks, CR, BOM, mojibake); (i) paragraph structure (lines of a paragraph joined with one space,
paragraphs separated by a blank line); (j) no scene on both sides of the split; (k) the
~3,500-word paragraph became several examples.
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

WS = re.compile(r"\s+")


def col(s: str) -> str:
    """Collapse runs of whitespace to one space and strip."""
    return WS.sub(" ", s).strip()


RESULTS: list[tuple[str, bool]] = []


def report(name: str, ok: bool, msg: str, details: list[str] | None = None, limit: int = 12) -> None:
    """Record a check's result and print it with up to `limit` details."""
    RESULTS.append((name, ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}: {msg}")
    for d in (details or [])[:limit]:
        print(f"      - {d}")
    if details and len(details) > limit:
        print(f"      ... and {len(details) - limit} more")


def info(msg: str, details: list[str] | None = None, limit: int = 8) -> None:
    """Print an informational line (not a check) with up to `limit` details."""
    print(f"INFO {msg}")
    for d in (details or [])[:limit]:
        print(f"      - {d}")
    if details and len(details) > limit:
        print(f"      ... and {len(details) - limit} more")


def short(s: str, n: int = 110) -> str:
    """Shorten s to about n characters for display, newlines escaped."""
    s = s.replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 40] + " [...] " + s[-33:]


def find_tool() -> str:
    """The scifi-llm executable next to this Python interpreter, else the one on PATH."""
    exe = Path(sys.executable).parent / "scifi-llm"
    if exe.exists():
        return str(exe)
    w = shutil.which("scifi-llm")
    if not w:
        sys.exit("scifi-llm not found: activate /work/main/.venv")
    return w


def run_tool(tool, ws, inp, out, tok, a) -> tuple[dict, str]:
    """Run `tune prepare --json` into a fresh `out`; return its JSON report and stderr."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [
        tool,
        "--workspace",
        str(ws),
        "tune",
        "prepare",
        "--input",
        str(inp),
        "--output",
        str(out),
        "--tokenizer",
        str(tok),
        "--min-tokens",
        str(a.min_tokens),
        "--max-tokens",
        str(a.max_tokens),
        "--sequence-len",
        str(a.sequence_len),
        "--json",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    print("$ HF_HUB_OFFLINE=1 " + " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        sys.exit(f"tool failed with exit status {p.returncode}")
    try:
        rep = json.loads(p.stdout)
    except json.JSONDecodeError:
        print(p.stdout[-2000:])
        sys.exit("--json output is not JSON")
    return rep, p.stderr


def load_jsonl(path: Path) -> list[dict]:
    """The non-blank lines of a JSONL file, parsed."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dicts_mentioning(obj, path: str, parent_key: str = "") -> list[tuple[str, dict | str]]:
    """All (section, item) in the report that mention `path` (as a value of a dict or a string)."""
    out = []
    if isinstance(obj, dict):
        if any(isinstance(v, str) and (v == path or v.endswith("/" + path)) for v in obj.values()):
            out.append((parent_key, obj))
        for k, v in obj.items():
            out += dicts_mentioning(v, path, k)
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, str) and (v == path or path in v):
                out.append((parent_key, v))
            else:
                out += dicts_mentioning(v, path, parent_key)
    return out


def main() -> int:
    """Run the tool twice on the messy folder, run every check, and return the exit status."""
    ap = argparse.ArgumentParser()
    ap.add_argument("messy")
    ap.add_argument("--tokenizer", default="/tmp/acc/tiny")
    ap.add_argument("--work", default=None, help="where workspace and outputs go (default MESSY_runs)")
    ap.add_argument("--min-tokens", type=int, default=500)
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("--sequence-len", type=int, default=2048)
    ap.add_argument("--tool", default=None, help="path of the scifi-llm executable (default: the venv's)")
    a = ap.parse_args()

    messy = Path(a.messy).resolve()
    man = json.loads((messy.parent / (messy.name + ".manifest.json")).read_text(encoding="utf-8"))
    work = Path(a.work or str(messy) + "_runs").resolve()
    work.mkdir(parents=True, exist_ok=True)
    tool = a.tool or find_tool()
    ws = work / "ws"
    if not (ws / "scifi-llm.toml").exists():
        if ws.exists():
            shutil.rmtree(ws)
        subprocess.run([tool, "init", str(ws)], check=True, capture_output=True)

    out1, out2 = work / "out1", work / "out2"
    rep1, err1 = run_tool(tool, ws, messy, out1, a.tokenizer, a)
    rep2, _ = run_tool(tool, ws, messy, out2, a.tokenizer, a)
    if err1.strip():
        info("stderr of run 1:", err1.strip().splitlines()[-5:])

    train = load_jsonl(out1 / "training.jsonl")
    val = load_jsonl(out1 / "validation.jsonl")
    examples = [("train", e) for e in train] + [("val", e) for e in val]
    file_report = json.loads((out1 / "prepare_report.json").read_text(encoding="utf-8"))
    if file_report != rep1:
        info("prepare_report.json differs from the --json output of the same run")

    # ---- shape ----
    bad_shape = []
    passages = []  # (split, raw assistant text)
    for split, e in examples:
        msgs = e.get("messages")
        roles = [m.get("role") for m in msgs] if isinstance(msgs, list) else None
        if roles != ["system", "user", "assistant"] or not all(
            isinstance(m.get("content"), str) and m["content"].strip() for m in msgs
        ):
            bad_shape.append(f"{split}: roles={roles}")
            continue
        passages.append((split, msgs[2]["content"]))
    report(
        "(0) example shape",
        not bad_shape,
        (
            f"{len(examples)} examples ({len(train)} train, {len(val)} val), "
            "each system/user/assistant with text"
        ),
        bad_shape,
    )

    # ---- manifest sentences ----
    sent_pos = {}  # sentence -> (file, scene, para, idx)
    for f, meta in man["files"].items():
        for si, sc in enumerate(meta["scenes"]):
            for pi, p in enumerate(sc):
                for k, s in enumerate(p):
                    sent_pos[s] = (f, si, pi, k)
    sents = list(sent_pos)
    tricky = man.get("tricky_sentences", {})
    cpass = [col(t) for _, t in passages]

    # (a) every sentence in exactly one passage
    missing, multi = [], []
    by_file_missing = Counter()
    for s in sents:
        cs = col(s)
        n = sum(1 for p in cpass if cs in p)
        if n == 0:
            missing.append(s)
            by_file_missing[sent_pos[s][0]] += 1
        elif n > 1:
            multi.append(s)
    det = [
        f"missing ({sent_pos[s][0]}{', ' + tricky[s] if s in tricky else ''}): {short(s)}" for s in missing
    ]
    det += [f"in >1 passage ({sent_pos[s][0]}): {short(s)}" for s in multi]
    report(
        "(a) sentence coverage",
        not missing and not multi,
        f"{len(sents) - len(missing) - len(multi)}/{len(sents)} sentences in exactly one passage; "
        f"missing {len(missing)} {dict(by_file_missing)}, duplicated {len(multi)}",
        det,
    )

    # (b) notes and unsupported-file text nowhere in outputs
    everything = []  # (where, collapsed text)
    for i, (split, e) in enumerate(examples):
        for m in e["messages"]:
            everything.append((f"{split}#{i}:{m['role']}", col(m["content"])))
    everything.append(("style_profile.json", col((out1 / "style_profile.json").read_text(encoding="utf-8"))))
    hits = []
    probes = []
    for n in man["notes"]:
        probes += [("note", col(n["text"])), ("note", col(n["marker"]))]
    for line in man["notes"]:  # each line of a multi-line note on its own, too
        for part in line["text"].split("\n"):
            part = col(part)
            if len(part) > 12 and part not in ("<!--", "-->"):
                probes.append(("note line", part))
    probes += [("unsupported file text", m) for m in man["unsupported_markers"]]
    probes += [
        ("comment delimiter", "<!--"),
        ("comment delimiter", "-->"),
        ("note brackets", "[["),
        ("note brackets", "]]"),
    ]
    seen = set()
    for kind, pr in probes:
        if pr in seen:
            continue
        seen.add(pr)
        for where, text in everything:
            if pr.lower() in text.lower():
                hits.append(f"{kind} {pr!r} found in {where}")
    asst_lines = [(i, ln) for i, (_, t) in enumerate(passages) for ln in t.split("\n")]
    for i, ln in asst_lines:
        if re.match(r"\s*(TODO|FIXME|XXX|NOTE TO SELF)\b", ln):
            hits.append(f"note-like line in passage {i}: {short(ln)}")
    report(
        "(b) planted notes absent",
        not hits,
        (
            f"{len(seen)} probe strings x {len(everything)} texts "
            f"(system, user, assistant, style profile): {len(hits)} hits"
        ),
        hits,
    )

    # (c) report: skipped with reason, duplicate, cp1252 fallback
    problems, lines = [], []
    kw = {
        "empty": ["empty"],
        "empty (whitespace only)": ["empty", "whitespace", "blank"],
        "binary": ["binary"],
        "unreadable docx": ["docx"],
        "unsupported extension": ["unsupported", "extension"],
    }
    for f, why in man["skipped"].items():
        ms = dicts_mentioning(rep1, f)
        reasons = [
            " ".join(str(v) for k, v in d.items() if isinstance(v, str) and v != f)
            if isinstance(d, dict)
            else d
            for sec, d in ms
            if "skip" in sec.lower()
        ]
        reasons = [r for r in reasons if r.strip()]
        if not reasons:
            problems.append(f"{f} ({why}) not in a 'skipped' section with a reason; mentions: {ms}")
        elif not any(any(k in r.lower() for k in kw[why]) for r in reasons):
            problems.append(f"{f} ({why}) reason does not say so: {reasons}")
        else:
            lines.append(f"{f}: {reasons[0][:80]}")
    for orig, dup in man["duplicates"]:
        ms = dicts_mentioning(rep1, dup) + dicts_mentioning(rep1, orig)
        dsec = [d for sec, d in ms if "dup" in sec.lower()]
        if not any(
            isinstance(d, dict) and {orig, dup} <= {v for v in d.values() if isinstance(v, str)} for d in dsec
        ):
            problems.append(f"duplicate pair {orig} / {dup} not reported as such: {dsec}")
        else:
            lines.append(f"duplicate: {dsec[0]}")
    for f in man["latin1_files"]:
        ms = dicts_mentioning(rep1, f)
        fb = [d for sec, d in ms if "fallback" in sec.lower() or "encod" in json.dumps(d).lower()]
        if not fb or not re.search(r"cp1252|latin|1252|iso-8859|windows", json.dumps(fb).lower()):
            problems.append(f"{f} (cp1252) fallback not reported with its encoding: {ms}")
        else:
            lines.append(f"fallback: {fb[0]}")
        if any("skip" in sec.lower() for sec, _ in ms):
            problems.append(f"{f} reported as skipped")
    for f in man["bom_files"] + [x for x in man["files"] if x not in man["latin1_files"]]:
        ms = dicts_mentioning(rep1, f)
        if any("skip" in sec.lower() or "fallback" in sec.lower() for sec, _ in ms):
            problems.append(f"kept UTF-8 file {f} reported as skipped/fallback: {ms}")
    fr = rep1.get("files_read")
    if fr is not None and fr != len(man["files"]):
        problems.append(f"files_read={fr}, expected {len(man['files'])} kept files")
    report(
        "(c) report: skipped/duplicate/fallback",
        not problems,
        f"{len(man['skipped'])} skips, {len(man['duplicates'])} duplicate, "
        f"{len(man['latin1_files'])} cp1252 file expected; "
        f"files_read={fr}; {len(problems)} problems",
        list(problems),
    )
    for ln in lines:
        print(f"      . {ln}")

    # (d) token bounds
    from transformers import AutoTokenizer

    tk = AutoTokenizer.from_pretrained(a.tokenizer)
    max_used = rep1.get("max_tokens_used", a.max_tokens)
    upper = min(a.max_tokens, max_used) if isinstance(max_used, int) else a.max_tokens
    counts, viol, rend_max = [], [], 0
    for i, (split, e) in enumerate(examples):
        t = e["messages"][2]["content"]
        n = len(tk(t, add_special_tokens=False)["input_ids"])
        counts.append(n)
        if not (a.min_tokens <= n <= upper):
            viol.append(f"{split}#{i}: {n} tokens (bounds {a.min_tokens}..{upper}) starts {short(t, 60)}")
        r = tk.apply_chat_template(e["messages"], tokenize=True)
        if isinstance(r, dict) or hasattr(r, "keys"):
            r = r["input_ids"]
        if r and isinstance(r[0], list):
            r = r[0]
        rend_max = max(rend_max, len(r))
        if len(r) > a.sequence_len:
            viol.append(f"{split}#{i}: rendered {len(r)} tokens > {a.sequence_len}")
    warn = [w for w in rep1.get("warnings", []) if "lower" in w.lower()]
    if upper < a.max_tokens and not warn:
        viol.append(f"max lowered to {upper} but no warning in report")
    report(
        "(d) token bounds",
        not viol and bool(counts),
        f"assistant tokens min {min(counts)} / median {sorted(counts)[len(counts) // 2]} / max {max(counts)} "
        f"within {a.min_tokens}..{upper} (report max_tokens_used={max_used}, warning: {warn[:1]}); "
        f"longest rendered example {rend_max} <= {a.sequence_len}",
        viol,
    )

    # (e) validation share
    share = len(val) / max(1, len(train) + len(val))
    report(
        "(e) validation share",
        0.05 <= share <= 0.20 and len(val) > 0,
        f"{len(val)}/{len(train) + len(val)} = {share:.1%} (accepted 5%..20%, target ~10%)",
    )
    tv = (rep1.get("train_examples"), rep1.get("validation_examples"))
    if tv != (len(train), len(val)):
        info(f"report counts {tv} differ from file line counts {(len(train), len(val))}")

    # (f) determinism
    diffs = []
    names = sorted({p.name for p in out1.iterdir()} | {p.name for p in out2.iterdir()})
    for nm in names:
        p1, p2 = out1 / nm, out2 / nm
        if not (p1.exists() and p2.exists()):
            diffs.append(f"{nm} only in one run")
        elif p1.read_bytes() != p2.read_bytes():
            diffs.append(f"{nm} differs")
    if rep1 != rep2:
        diffs.append("--json reports differ")
    report("(f) byte-identical runs", not diffs, f"{len(names)} files compared: {', '.join(names)}", diffs)

    # ---- parse every passage into manifest sentences (for g, h, i, j) ----
    by_first = defaultdict(list)
    for s in sents:
        by_first[col(s)[:12]].append(col(s))

    def parse_block(b: str):
        """b is collapsed; returns (list of sentences, list of leftover texts)."""
        out, left, p = [], [], 0
        while p < len(b):
            cands = [
                s
                for s in by_first.get(b[p : p + 12], [])
                if b.startswith(s, p) and (p + len(s) == len(b) or b[p + len(s)] == " ")
            ]
            if cands:
                s = max(cands, key=len)
                out.append(s)
                p += len(s) + 1
                continue
            # skip to the next place where some sentence starts
            nxt = len(b)
            for s in sents:
                cs = col(s)
                j = b.find(cs, p)
                if j != -1 and j < nxt and (j == 0 or b[j - 1] == " "):
                    nxt = j
            left.append(b[p:nxt].strip())
            out.append(None)
            p = nxt
        return out, left

    colmap = {col(s): s for s in sents}
    parsed = []  # per passage: list of blocks, each list of sentence-originals (None = unknown text)
    leftovers = []
    for i, (split, raw) in enumerate(passages):
        blocks = []
        for blk in re.split(r"\n[ \t]*\n", raw.strip()):
            seq, left = parse_block(col(blk))
            for lt in left:
                leftovers.append(f"passage {i} ({split}): {short(lt, 140)!r}")
            blocks.append(([colmap.get(s) if s else None for s in seq], blk))
        parsed.append(blocks)

    # (g) no passage starts or ends mid-sentence
    g = []
    end_re = re.compile(r"[.!?…][”’\"')\]]*$")
    start_re = re.compile(r"^[“\"'(A-ZÀ-ÖØ-Þ]")
    for i, ((split, raw), blocks) in enumerate(zip(passages, parsed, strict=True)):
        t = raw.strip()
        first = blocks[0][0][0] if blocks and blocks[0][0] else None
        last = blocks[-1][0][-1] if blocks and blocks[-1][0] else None
        if not end_re.search(t):
            g.append(f"passage {i} ({split}) ends without sentence punctuation: ...{t[-90:]!r}")
        elif last is None:
            g.append(f"passage {i} ({split}) does not end at the end of a manifest sentence: ...{t[-90:]!r}")
        if not start_re.match(t):
            g.append(f"passage {i} ({split}) starts oddly: {t[:90]!r}...")
        elif first is None:
            g.append(
                f"passage {i} ({split}) does not start at the start of a manifest sentence: {t[:90]!r}..."
            )
    report(
        "(g) no passage starts/ends mid-sentence",
        not g,
        (
            f"{len(passages)} passages: each ends with . ! ? … (+closing quote) "
            "and starts and ends on a manifest sentence boundary"
        ),
        g,
    )

    # (h) nothing but prose in assistant text
    h = list(leftovers)
    for i, (_split, raw) in enumerate(passages):
        for bad, why in [
            ("\r", "CR"),
            ("\ufeff", "BOM"),
            ("Ã", "mojibake"),
            ("â€", "mojibake"),
            ("\x93", "C1 control (latin-1 decode)"),
            ("\x94", "C1 control"),
            ("\x97", "C1 control"),
            ("�", "replacement char"),
        ]:
            if bad in raw:
                h.append(f"passage {i}: contains {why}")
        for ln in raw.split("\n"):
            s = ln.strip()
            if s in ("***", "* * *", "---") or s.startswith("#"):
                h.append(f"passage {i}: scene break/heading line {s!r}")
        for hd in man["headings"]:
            if hd in raw:
                h.append(f"passage {i}: heading text {hd!r}")
    report(
        "(h) assistant text is only the prose",
        not h,
        (
            f"text left after removing manifest sentences: {len(leftovers)} pieces; "
            f"other problems: {len(h) - len(leftovers)}"
        ),
        h,
    )

    # (i) paragraph structure
    mixed, inner_nl, split_para, exact, nblocks = [], [], [], 0, 0
    for i, blocks in enumerate(parsed):
        prev_last = None
        for seq, blk in blocks:
            nblocks += 1
            known = [s for s in seq if s]
            if "\n" in blk.strip():
                inner_nl.append(f"passage {i}: line break inside a paragraph: {short(blk, 100)!r}")
            keys = [sent_pos[s][:3] for s in known]
            idx = [sent_pos[s][3] for s in known]
            if len(set(keys)) > 1 or any(b != a_ + 1 for a_, b in pairwise(idx)):
                mixed.append(
                    f"passage {i}: one paragraph block mixes/reorders source paragraphs "
                    f"{sorted(set(keys))}: {short(blk, 100)!r}"
                )
            if known and blk.strip() == " ".join(known):
                exact += 1
            if prev_last and known:
                a0, b0 = sent_pos[prev_last], sent_pos[known[0]]
                if a0[:3] == b0[:3] and b0[3] == a0[3] + 1:
                    split_para.append(
                        f"passage {i}: paragraph {a0[:3]} broken by a blank line "
                        f"before {short(known[0], 70)!r}"
                    )
            prev_last = known[-1] if known else None
    report(
        "(i) paragraph structure",
        not mixed and not inner_nl,
        f"{nblocks} paragraph blocks; {exact} byte-exact to the source sentences joined by one space; "
        f"{len(mixed)} mix paragraphs; {len(inner_nl)} keep a line break inside",
        mixed + inner_nl,
    )
    if split_para:
        info(f"{len(split_para)} source paragraphs split by a blank line inside one passage", split_para)

    # (j) no scene on both sides of the split
    scene_split = defaultdict(set)
    for (split, _), blocks in zip(passages, parsed, strict=True):
        for seq, _ in blocks:
            for s in seq:
                if s:
                    scene_split[sent_pos[s][:2]].add(split)
    both = [f"{k[0]} scene {k[1]}" for k, v in scene_split.items() if len(v) > 1]
    report(
        "(j) no scene on both sides of the split",
        not both,
        f"{len(scene_split)} scenes; {len(both)} in both training and validation",
        both,
    )

    # (k) the long paragraph becomes several examples
    longf = next(f for f in man["files"] if "monologue" in f)
    nlong = sum(
        1 for blocks in parsed if any(s and sent_pos[s][0] == longf for seq, _ in blocks for s in seq)
    )
    words = sum(len(s.split()) for sc in man["files"][longf]["scenes"] for p in sc for s in p)
    report("(k) long paragraph split", nlong >= 2, f"{words}-word single paragraph -> {nlong} examples")

    # a little more information
    per_file = Counter()
    cross = 0
    for blocks in parsed:
        fs = {sent_pos[s][0] for seq, _ in blocks for s in seq if s}
        cross += len(fs) > 1
        for f in fs:
            per_file[f] += 1
    info(f"passages per source file: {dict(per_file)}; passages mixing files: {cross}")
    info(f"report warnings: {rep1.get('warnings')}; dropped: {rep1.get('dropped')}")

    failed = [n for n, ok in RESULTS if not ok]
    print()
    print(
        f"OVERALL: {'FAIL' if failed else 'PASS'} ({len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed"
        + (f"; failed: {', '.join(failed)})" if failed else ")")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
