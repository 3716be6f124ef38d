"""The screening lists: look a number up (the decision a caller from it gets, with its rule
and reason); a supervisor adds or removes entries with a reason, or imports a file with a
progress bar.

An import runs in a thread of its own with its own store connections and its own list set,
so the pages stay quick while a national list of millions is read; its progress streams to
the page (``/lists/imports/{id}``) until the report.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from center import Actor, Center, Invalid, ListEdit
from screening import ListSet
from stores import StoreError, open_stores

from ..web import Ctx, page

if TYPE_CHECKING:
    from ..state import Console

__all__ = ["routes"]

UPLOAD_MAX = 512 * 1024 * 1024


def routes() -> list[BaseRoute]:
    return [Route("/lists", lists_page, methods=["GET"]),
            Route("/lists/lookup", lookup, methods=["POST"]),
            Route("/lists/edit", edit, methods=["POST"]),
            Route("/lists/import", start_import, methods=["POST"]),
            Route("/lists/imports/{job}", import_progress, methods=["GET"])]


@dataclass
class ImportJob:
    id: str
    list_name: str
    file_name: str
    user: str
    done: int = 0
    total: int = 0
    finished: bool = False
    result: dict[str, object] = field(default_factory=dict)
    error: object = None
    """What failed (a refusal, said in the asker's language when shown), or None."""


JOBS: dict[str, ImportJob] = {}


def _render(ctx: Ctx, status: int = 200, *, decision: dict[str, object] | None = None,
            errors: dict[str, str] | None = None, edit: ListEdit | None = None,
            job: ImportJob | None = None, values: dict[str, str] | None = None) -> Response:
    config = ctx.console.loaded.config.screening
    lists = [{"name": lst.name, "action": lst.action, "reason": lst.reason}
             for lst in config.lists]
    return ctx.render("lists.html", status=status, lists=lists, decision=decision,
                      errors=errors or {}, edit=edit, job=job, values=values or {})


@page()
async def lists_page(ctx: Ctx) -> Response:
    return _render(ctx)


@page()
async def lookup(ctx: Ctx) -> Response:
    """The decision for a number (a POST: the number stays out of addresses and history, and
    the page shows it masked)."""
    form = await ctx.request.form()
    number = str(form.get("number", "")).strip()[:40]
    if not number:
        return _render(ctx, 422, errors={"lookup": ctx._("Write a number.")})
    lists = ctx.console.center.lists
    lists.refresh()
    decision = lists.screener().decide(number, time.time()).as_dict()
    return _render(ctx, decision=decision)


@page("lists")
async def edit(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    values = {k: str(form.get(k, "")) for k in ("op", "list", "numbers", "reason")}
    entries = [e for e in values["numbers"].replace(",", "\n").split() if e.strip()]
    _ = ctx._
    if not entries:
        return _render(ctx, 422, errors={"numbers": _("Write at least one number.")},
                       values=values)
    if not values["reason"].strip():
        return _render(ctx, 422, errors={"reason": _("Say why (it goes in the audit trail).")},
                       values=values)
    try:
        result = ctx.console.center.edit_list(values["op"], entries, values["list"] or None,
                                              ctx.signed.actor(), values["reason"].strip())
    except (Invalid, StoreError) as exc:
        return _render(ctx, 422, errors={"numbers": ctx.said(exc)}, values=values)
    return _render(ctx, edit=result)


@page("lists")
async def start_import(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    upload = form.get("file")
    list_name = str(form.get("list", "")) or None
    reason = str(form.get("reason", "")).strip()
    replace = form.get("replace") == "1"
    _ = ctx._
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _render(ctx, 422, errors={"file": _("Choose a file to import.")})
    if not reason:
        return _render(ctx, 422, errors={"file": _("Say why (it goes in the audit trail).")})
    try:
        name = ctx.console.center.list_name(list_name)
    except Invalid as exc:
        return _render(ctx, 422, errors={"file": ctx.said(exc)})
    job = ImportJob(secrets.token_hex(6), name, Path(upload.filename).name[:100],
                    ctx.signed.user.name)
    folder = ctx.console.data_dir / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{job.id}.txt"
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > UPLOAD_MAX:
                out.close()
                path.unlink(missing_ok=True)
                return _render(ctx, 413, errors={"file": _("The file is larger than 512 MB.")})
            out.write(chunk)
    JOBS[job.id] = job
    threading.Thread(target=_run_import, args=(ctx.console, job, path, ctx.signed.actor(),
                                               replace, reason),
                     name=f"import-{job.id}", daemon=True).start()
    return _render(ctx, 202, job=job)


def _run_import(console: Console, job: ImportJob, path: Path, actor: Actor, replace: bool,
                reason: str) -> None:
    """In its own thread, with its own connections: the pages go on meanwhile."""
    stores = open_stores(console.settings.loaded)
    try:
        center = Center(console.loaded, console.settings.catalog, stores,
                        lists=ListSet(console.loaded))

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        report = center.import_list(path, job.list_name, actor, replace=replace,
                                    reason=reason, progress=progress)
        job.result = {"numbers": len(report.parsed.keys), "added": report.added,
                      "malformed": report.parsed.malformed_count,
                      "first_malformed": report.parsed.malformed[:5],
                      "seconds": round(report.seconds, 1)}
    except (Invalid, StoreError, OSError, ValueError) as exc:
        job.error = exc
    finally:
        stores.close()
        path.unlink(missing_ok=True)
        job.finished = True


@page("lists")
async def import_progress(ctx: Ctx) -> Response:
    job = JOBS.get(ctx.request.path_params["job"])
    if job is None or job.user != ctx.signed.user.name:
        return Response(ctx._("There is no such import."), status_code=404,
                        media_type="text/plain")
    _ = ctx._

    async def events() -> AsyncIterator[str]:
        while True:
            if job.finished:
                if job.error is not None:
                    text = _("The import failed: {why}", why=ctx.said(job.error))
                else:
                    text = _("{numbers} numbers read, {added} new, {malformed} lines that are "
                             "no number.", **job.result)
            else:
                text = _("{done} of {total} bytes read…", done=job.done, total=job.total)
            data = {"done": job.total if job.finished else job.done, "total": job.total,
                    "finished": job.finished, "text": text}
            yield f"event: progress\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            if job.finished or await ctx.request.is_disconnected():
                return
            await asyncio.sleep(0.25)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})
