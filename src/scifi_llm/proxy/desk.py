"""The writing desk: a page the proxy serves under /desk, and the JSON routes it reads and writes through.

The page is one HTML file with plain JavaScript and CSS beside it (`desk_static/`): nothing to build and
nothing fetched from anywhere but this proxy. It holds none of the writer's text, so it is served without
the API key; every route that reads or writes the writer's files needs the key like the rest of the proxy
(the page takes it from the address `scifi-llm desk` opens: `/desk#key=...`, which never reaches a server
log). Generation goes through the proxy's own `/v1/chat/completions`, so the desk gets exactly what any
client gets, and `/lore/<id>` tells it which lore each answer was given.
"""

import asyncio
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, Body
from fastapi.responses import HTMLResponse, Response

from scifi_llm.config import find_workspace
from scifi_llm.errors import UserError
from scifi_llm.fsutil import outside
from scifi_llm.lore import IngestOptions, LoreIndex, ingest_lore
from scifi_llm.proxy.drafts import Drafts
from scifi_llm.proxy.guard import error_response

if TYPE_CHECKING:
    from scifi_llm.proxy.app import ProxyState

STATIC = resources.files("scifi_llm.proxy") / "desk_static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_REPORT_TYPES = {
    ".md": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
}


Checker = Callable[[str, str], list[dict]]  # (draft text, file name) -> findings, as `scifi-llm check --json`


def desk_routes(root: Path, state: "ProxyState", checker: Checker | None = None) -> APIRouter:
    """The page, its static files, and the routes for the drafts in `root`'s writing/ and its lore;
    `checker` puts continuity marks in the draft's margin."""
    router = APIRouter(prefix="/desk")
    workspace = find_workspace(root)
    versions = workspace.state_dir / "versions"
    drafts = Drafts(workspace.writing_dir, versions / "writing")
    notes = Drafts(workspace.lore_dir, versions / "lore")
    collection = state.settings.collection

    @router.get("", response_class=HTMLResponse)
    async def page():
        return HTMLResponse((STATIC / "desk.html").read_text(encoding="utf-8"))

    @router.get("/static/{name}")
    async def static(name: str):
        kind = _TYPES.get(Path(name).suffix)
        if kind is None or "/" in name or not (STATIC / name).is_file():
            return error_response(404, f"no file {name}", "not_found")
        return Response((STATIC / name).read_bytes(), media_type=kind, headers={"cache-control": "no-cache"})

    @router.get("/api/drafts")
    async def listed():
        return {"drafts": [draft.__dict__ for draft in drafts.all()]}

    @router.get("/api/drafts/{name:path}")
    async def read(name: str):
        return _answer(lambda: {"name": name, "text": drafts.read(name)})

    @router.put("/api/drafts/{name:path}")
    async def save(name: str, text: str = Body(..., embed=True)):
        return _answer(lambda: {"name": name, "saved": drafts.save(name, text)})

    @router.post("/api/rename")
    async def rename(name: str = Body(...), new_name: str = Body(...)):
        return _answer(lambda: drafts.rename(name, new_name) or {"name": new_name})

    @router.get("/api/versions/{name:path}")
    async def versions(name: str):
        return _answer(lambda: {"name": name, "versions": drafts.versions(name)})

    @router.post("/api/restore")
    async def restore(name: str = Body(...), version: str = Body(...)):
        return _answer(lambda: {"name": name, "text": drafts.restore(name, version)})

    @router.get("/api/notes")
    async def listed_notes():
        return {"notes": [note.__dict__ for note in notes.all()]}

    @router.get("/api/notes/{name:path}")
    async def read_note(name: str):
        entities = await asyncio.to_thread(_entities, state, collection)
        named = [entity for entity in entities if entity["source"] == name]
        return _answer(lambda: {"name": name, "text": notes.read(name), "entities": named})

    @router.put("/api/notes/{name:path}")
    async def save_note(name: str, text: str = Body(..., embed=True)):
        saved = _answer(lambda: {"name": name, "saved": notes.save(name, text)})
        if not isinstance(saved, dict):
            return saved
        try:
            report = await asyncio.to_thread(_reingest, workspace.root, state)
        except UserError as exc:  # another ingest holds the index: the note is saved, not yet indexed
            return {**saved, "indexed": False, "reason": str(exc)}
        return {**saved, "indexed": True, "chunks_embedded": report.chunks_embedded}

    @router.get("/api/entities")
    async def entities():
        return {"entities": await asyncio.to_thread(_entities, state, collection)}

    @router.get("/api/history")
    async def history(q: str = "", limit: int = 100):
        if state.history is None:
            return {"enabled": False, "requests": []}
        rows = await asyncio.to_thread(state.history.recent, min(max(limit, 1), 1000), q)
        return {"enabled": True, "requests": rows}

    @router.get("/api/reports")
    async def reports():
        return {"reports": _reports(workspace.root / "results")}

    @router.get("/api/reports/{name:path}")
    async def report_file(name: str):
        results = workspace.root / "results"
        path = results / name
        kind = _REPORT_TYPES.get(path.suffix.lower())
        if kind is None or ".." in Path(name).parts or outside(path, [results]) or not path.is_file():
            return error_response(404, f"no report file {name}", "not_found")
        return Response(path.read_bytes(), media_type=kind)

    @router.post("/api/check")
    async def check(name: str = Body(...), text: str = Body(...)):
        if checker is None:
            return error_response(404, "this proxy was started without the continuity checker", "not_found")
        try:
            return {"findings": await asyncio.to_thread(checker, text, name)}
        except UserError as exc:  # no lore index yet, or one from an older scifi-llm
            return error_response(400, str(exc), "invalid_request_error")

    @router.get("/api/lore")
    async def search(q: str):
        if not q.strip():
            return {"query": q, "passages": []}
        lore = state.settings
        found = await state.lore.search(q, collection, lore.top_k, lore.budget_tokens, lore.mode)
        return {"query": q, "passages": [hit.to_dict() for hit in found.results]}

    return router


def _reports(results: Path) -> list[dict]:
    """The benchmark and compare runs in `results/`, newest first, with the files each can show."""
    if not results.is_dir():
        return []
    runs = [folder for folder in results.iterdir() if folder.is_dir() and not folder.name.startswith(".")]
    return [
        {
            "name": folder.name,
            "files": sorted(p.name for p in folder.iterdir() if p.suffix.lower() in _REPORT_TYPES),
        }
        for folder in sorted(runs, key=lambda folder: folder.name, reverse=True)
    ]


def _entities(state: "ProxyState", collection: str) -> list[dict]:
    """The people, ships, places and things the lore names, with their aliases."""
    try:
        registry = state.lore.retriever(collection).registry
    except UserError:  # no index yet
        return []
    return [{"name": e.name, "source": e.source, "aliases": list(e.aliases)} for e in registry.entities]


def _reingest(root: Path, state: "ProxyState"):
    """Bring the lore index up to date with the lore folder (only changed notes are embedded again)."""
    workspace = find_workspace(root)
    options = IngestOptions.from_workspace(workspace, collection=state.settings.collection)
    index = LoreIndex(state.settings.index_dir)
    report = ingest_lore([workspace.lore_dir], workspace.lore_dir, index, options, state.lore.embedder)
    state.lore.changed(options.collection)
    return report


def _answer(work):
    """The route's answer, or its one-line reason as a 400 in OpenAI's error shape."""
    try:
        return work()
    except UserError as exc:
        status = 404 if str(exc).startswith("no ") else 400
        return error_response(status, str(exc), "not_found" if status == 404 else "invalid_request_error")
