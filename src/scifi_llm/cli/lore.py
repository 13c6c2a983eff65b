"""`scifi-llm lore ...`: ingest, query, eval, status, remove.

The lore library (LanceDB, the embedding model) is imported inside the commands that use it, so that
every other command starts at once.
"""

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from scifi_llm.cli.output import console, err_console, folding_table, print_json, warn
from scifi_llm.config import RetrievalMode, Workspace, check_collection_name
from scifi_llm.errors import UserError

if TYPE_CHECKING:
    from scifi_llm.lore import EvalReport, IngestReport, Retrieval, Retriever

app = typer.Typer(
    help="Index your worldbuilding notes and find the lore a request needs.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]
CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection", "-c", callback=check_collection_name, help="Collection (default: from settings)."
    ),
]
TopKOption = Annotated[
    int | None, typer.Option("-k", "--top-k", min=1, help="At most this many notes (default: from settings).")
]
ModeOption = Annotated[
    RetrievalMode | None,
    typer.Option("--mode", help="hybrid (names + meaning + keywords), dense or keyword."),
]
BudgetOption = Annotated[
    int | None,
    typer.Option(
        "--budget-tokens", min=1, help="Tokens of lore handed over, the real limit (default: from settings)."
    ),
]


SHOWN = 20  # files named one by one in `lore ingest` and `lore status --files`


def _workspace(ctx: typer.Context) -> Workspace:
    return ctx.obj.open_workspace()


class _RichIngestProgress:
    """A progress bar over the chunks being embedded (an `IngestProgress`)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("looking for changes", total=None)

    def planned(self, files_to_embed: int, chunks_to_embed: int) -> None:
        self.progress.update(
            self.task, description=f"embedding {files_to_embed} files", total=chunks_to_embed
        )

    def embedded(self, chunks: int) -> None:
        self.progress.advance(self.task, chunks)


def _loading(what: str):
    """A spinner while something slow loads, on a terminal only."""
    return err_console.status(f"loading {what}...") if err_console.is_terminal else nullcontext()


def _progress(*columns, json_output: bool) -> Progress:
    """A progress display on stderr, only for people at a terminal."""
    return Progress(
        *columns, console=err_console, transient=True, disable=json_output or not err_console.is_terminal
    )


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the workspace's lore folder).")
    ] = None,
    collection: CollectionOption = None,
    embedding_model: Annotated[
        str | None,
        typer.Option("--embedding-model", help="minilm (bundled, offline), a local folder or a hub name."),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the collection and embed everything again.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Chunk, embed and index lore notes (.md, .txt). Only new and changed files are embedded again."""
    from scifi_llm.lore import IngestOptions, LoreIndex, ingest_lore

    workspace = _workspace(ctx)
    options = IngestOptions.from_workspace(
        workspace, collection=collection, embedding_model=embedding_model, rebuild=rebuild
    )
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with _progress(*columns, json_output=json_output) as progress:
        report = ingest_lore(
            paths or [workspace.lore_dir],
            workspace.lore_dir,
            LoreIndex(workspace.index_dir),
            options,
            progress=_RichIngestProgress(progress),
        )
    if json_output:
        print_json(report.to_dict())
    else:
        _print_ingest(report)


def _print_ingest(report: "IngestReport") -> None:
    console.print(
        f"[bold]{report.collection}[/] ({report.embedding_model}): {report.files_seen} files, "
        f"{report.files_indexed} indexed, {report.files_unchanged} unchanged, "
        f"{report.files_removed} removed, "
        f"{len(report.skipped)} skipped; {report.chunks_embedded} chunks embedded, "
        f"{report.chunks_total} in the collection; {report.seconds:.1f} s"
    )
    for name, change in report.changes[:SHOWN]:
        console.print(escape(f"  {change} {name}"), soft_wrap=True)
    if len(report.changes) > SHOWN:
        console.print(f"  and {len(report.changes) - SHOWN} more (--json lists them all)")
    for name, reason in report.skipped:
        console.print(escape(f"  skipped {name}: {reason}"), soft_wrap=True)
    for name, message in report.warnings:
        warn(f"{name}: {message}")
    if report.unresolved_links:
        shown = "; ".join(f"[[{link}]] in {name}" for name, link in report.unresolved_links[:5])
        more = f" and {len(report.unresolved_links) - 5} more" if len(report.unresolved_links) > 5 else ""
        console.print(
            escape(f"  {len(report.unresolved_links)} wikilinks name no note: {shown}{more}"), soft_wrap=True
        )


def _open_retriever(workspace: Workspace, collection: str | None) -> "Retriever":
    from scifi_llm.lore import open_retriever

    with _loading("the lore index and its embedding model"):
        return open_retriever(workspace, collection)


@app.command("query")
def query_command(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="What to look up, e.g. a writing request.")] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="One query per line: text, or JSON with `query`, `question` or `prompt`. Bad lines are "
            "reported and the rest answered; then the exit code is 1.",
        ),
    ] = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    budget_tokens: BudgetOption = None,
    collection: CollectionOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the lore a query gets: passages grown from the best chunks, with their sources and why."""
    from scifi_llm.lore import read_queries

    if (text is None) == (from_file is None):
        raise UserError("give a query TEXT or --from-file FILE (one of the two)")
    if text is not None and not text.strip():
        raise UserError("the query is empty: say what to look up, e.g. a writing request")
    workspace = _workspace(ctx)
    lore = workspace.settings.lore
    queries, errors = read_queries(from_file) if from_file else ([(0, text)], [])
    retriever = _open_retriever(workspace, collection)
    for error in errors:
        warn(f"{from_file}:{error.line}: {error.message}; skipped")
    for _, query in queries:
        retrieval = retriever.search(
            query,
            k=top_k or lore.top_k,
            mode=mode or lore.mode,
            budget_tokens=budget_tokens or lore.budget_tokens,
        )
        if json_output:
            print_json(retrieval.to_dict())
        else:
            _print_retrieval(retrieval)
    if errors:
        raise typer.Exit(1)


def _print_retrieval(retrieval: "Retrieval") -> None:
    console.rule(f"[bold]{escape(retrieval.query)}")
    if retrieval.mentions:
        console.print(f"entities: {escape(', '.join(retrieval.mentions))}")
    for rank, hit in enumerate(retrieval.results, start=1):
        title = escape(f"{rank}. {hit.source} — {hit.heading}")
        chunks = len(hit.chunk_ids) or 1
        subtitle = escape(
            f"score {hit.score:.4f} · {hit.tokens} tokens in {chunks} chunks · {', '.join(hit.reasons)}"
        )
        panel = Panel(
            Text(hit.text), title=title, title_align="left", subtitle=subtitle, subtitle_align="right"
        )
        console.print(panel)
    for dropped in retrieval.dropped:
        console.print(escape(f"  dropped ({dropped['reason']}): {dropped['source']} — {dropped['heading']}"))


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    questions_file: Annotated[
        Path, typer.Argument(help="JSONL with `question`, `gold_phrases` and optional `kind`.")
    ],
    top_k: TopKOption = None,
    mode: ModeOption = None,
    budget_tokens: BudgetOption = None,
    collection: CollectionOption = None,
    json_output: JsonOption = False,
) -> None:
    """Measure retrieval: recall@1/3/5, MRR and per-kind results on a question file. Bad lines are
    reported and the rest scored; then the exit code is 1."""
    from scifi_llm.lore import evaluate_retrieval, load_questions

    workspace = _workspace(ctx)
    lore = workspace.settings.lore
    questions, errors = load_questions(questions_file)
    for error in errors:
        warn(f"{questions_file}:{error.line}: {error.message}; skipped")
    retriever = _open_retriever(workspace, collection)
    with _progress(json_output=json_output) as progress:
        task = progress.add_task("evaluating", total=len(questions))
        report = evaluate_retrieval(
            retriever,
            questions,
            top_k or lore.top_k,
            mode or lore.mode,
            budget_tokens or lore.budget_tokens,
            on_question=lambda: progress.advance(task),
        )
    report.skipped_lines = [{"line": error.line, "message": error.message} for error in errors]
    if json_output:
        print_json(report.to_dict())
    else:
        _print_eval(report)
    if errors:  # as `lore query --from-file`: the rest is answered, but a skipped line is a failure
        raise typer.Exit(1)


def _print_eval(report: "EvalReport") -> None:
    table = folding_table(
        "kind", "questions", f"recall@{report.k}", "MRR", title=f"lore eval · {report.mode} · k={report.k}"
    )
    for kind, row in report.by_kind.items():
        table.add_row(kind, str(row["questions"]), f"{row[f'recall@{report.k}']:.3f}", f"{row['mrr']:.3f}")
    recall = f"{report.recall[str(report.k)]:.3f}"
    table.add_row("[bold]all", str(report.questions), f"[bold]{recall}", f"[bold]{report.mrr:.3f}")
    console.print(table)
    console.print(
        "  ".join(f"recall@{n} {value:.3f}" for n, value in report.recall.items())
        + f"  MRR {report.mrr:.3f}  mean top-hit distance {report.mean_top_distance}"
        + f"  mean lore tokens {report.mean_tokens} ({report.mean_words} words, at most {report.max_words})"
    )
    for miss in report.misses:
        line = f"  missed ({miss['kind']}) {miss['question']}  (top: {miss['top_source']})"
        console.print(escape(line), soft_wrap=True)


@app.command("status")
def status_command(
    ctx: typer.Context,
    files: Annotated[bool, typer.Option("--files", help="Also list each collection's files.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List collections: files, chunks, embedding model and last ingest (with --files, every file)."""
    from scifi_llm.lore import LoreIndex

    workspace = _workspace(ctx)
    rows = LoreIndex(workspace.index_dir).describe(workspace.settings.lore.collection, files)
    if json_output:
        print_json({"workspace": str(workspace.root), "collections": rows})
        return
    if not rows:
        console.print("no lore index yet: run [bold]scifi-llm lore ingest[/]")
        return
    table = folding_table("collection", "files", "chunks", "embedding model", "last ingest")
    for row in rows:
        name = row["collection"] + (" (default)" if row["default"] else "")
        table.add_row(
            name, str(row["files"]), str(row["chunks"]), row["embedding_model"], str(row["last_ingest"])[:19]
        )
    console.print(table)
    for row in rows if files else []:
        listing = folding_table("file", "chunks", title=row["collection"])
        for entry in row["file_list"]:
            listing.add_row(escape(entry["file"]), str(entry["chunks"]))
        console.print(listing)


@app.command("remove")
def remove_command(
    ctx: typer.Context,
    collection: Annotated[str, typer.Argument(help="The collection to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Delete a collection from the index (your lore files are not touched)."""
    from scifi_llm.lore import LoreIndex

    index = LoreIndex(_workspace(ctx).index_dir)
    index.open(collection)
    if not yes and not typer.confirm(f"Delete collection {collection}?"):
        raise typer.Exit(1)
    with index.writing():
        index.drop(collection)
    if json_output:
        print_json({"removed": collection})
    else:
        console.print(f"removed collection {collection}")


@app.command("harvest")
def harvest_command(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Draft files (Markdown or text) to harvest from.")],
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Write the proposals into lore/: new notes under lore/harvested/, facts as a marked "
            "section at the end of each note; then ingest those files.",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="The review file (default: results/lore-harvest.md).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON proposal per line.")] = False,
) -> None:
    """Propose what the lore is missing, from your drafts: a stub note for each name the drafts use that
    the lore does not know (with the sentences that mention it and the shorter forms of its name), and
    new facts about known characters (a look, a rank, an age) that their notes do not state yet.

    Writes a review file; nothing enters lore/ without --apply. Contradictions are `scifi-llm check`'s job."""
    from scifi_llm.check import Lore, apply_harvest, harvest_drafts, review_text
    from scifi_llm.fsutil import atomic_write_text
    from scifi_llm.lore import IngestOptions, LoreIndex, ingest_lore
    from scifi_llm.textio import NotText, read_text

    workspace = _workspace(ctx)
    drafts = {}
    for path in files:
        try:
            drafts[str(path)] = read_text(path).text
        except (NotText, OSError) as exc:
            raise UserError(f"{path}: cannot be read as a draft ({exc})") from exc
    stubs, facts = harvest_drafts(Lore(workspace), drafts)
    review = out or workspace.root / "results" / "lore-harvest.md"
    review.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(review, review_text(stubs, facts))
    written = apply_harvest(workspace.lore_dir, stubs, facts) if apply else []
    if written:
        options = IngestOptions.from_workspace(workspace)
        ingest_lore(written, workspace.lore_dir, LoreIndex(workspace.index_dir), options)
    if json_output:
        for proposal in [*stubs, *facts]:
            print_json(proposal.to_dict())
        return
    console.print(f"{len(stubs)} new names and {len(facts)} new facts proposed: {escape(str(review))}")
    if written:
        console.print(f"written into the lore and ingested: {escape(', '.join(str(p) for p in written))}")
    elif stubs or facts:
        console.print("[dim]review the file, then run again with --apply to write them into lore/[/]")
