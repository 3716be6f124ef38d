"""The hotline: callers waiting for an operator now; messages left for a callback, each with
its player and a done button; texts to the SMS line waiting for an answer, with the
conversation and a reply box (sent as ``sms reply`` sends it: the engine takes it from the
store)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from center import Invalid
from ops.observer import EVERY_S
from stores import NotFound, StoreError

from ..web import Ctx, page

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    return [Route("/hotline", hotline, methods=["GET"]),
            Route("/callbacks/{callback_id}/audio", callback_audio, methods=["GET"]),
            Route("/callbacks/{callback_id}/done", callback_done, methods=["POST"]),
            Route("/threads/{thread_id}/reply", reply, methods=["POST"])]


def _page(ctx: Ctx, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
          status: int = 200) -> Response:
    views, now = ctx.console.views, time.time()
    snapshot = views.status(now, EVERY_S, ctx.console.tz)
    queue = []
    if snapshot.running and snapshot.engine is not None:
        for caller, since in snapshot.engine.queue:
            waited = now - datetime.fromisoformat(since).timestamp() if since else 0.0
            queue.append({"caller": caller or ctx._("withheld"), "waited": int(waited)})
    callbacks = views.callbacks("waiting", limit=200).items
    threads = views.threads("waiting", limit=100).items
    texts = ctx.console.stores.texts
    conversations = {t.id: texts.of_thread(t.id) for t in threads}
    return ctx.render("hotline.html", status=status, running=snapshot.running, queue=queue,
                      callbacks=callbacks, threads=threads, conversations=conversations,
                      errors=errors or {}, values=values or {}, now=now)


@page()
async def hotline(ctx: Ctx) -> Response:
    return _page(ctx)


@page()
async def callback_audio(ctx: Ctx) -> Response:
    callback_id = ctx.request.path_params["callback_id"]
    try:
        callback = ctx.console.stores.callbacks.get(callback_id)
    except NotFound:
        callback = None
    root = (ctx.console.settings.loaded.media_dir / "messages").resolve()
    path = Path(callback.file).resolve() if callback and callback.file else None
    if path is None or not path.is_file() or root not in path.parents:
        return Response(ctx._("There is no such recording."), status_code=404,
                        media_type="text/plain")
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"},
                        filename=f"{callback_id}.wav", content_disposition_type="inline")


@page()
async def callback_done(ctx: Ctx) -> Response:
    callback_id = ctx.request.path_params["callback_id"]
    form = await ctx.request.form()
    try:
        ctx.console.center.callback_done(callback_id, ctx.signed.actor(),
                                         str(form.get("note", "")).strip())
    except NotFound:
        return ctx.refuse(ctx._("There is no message {id}.", id=callback_id), status=404)
    except (Invalid, StoreError) as exc:
        return _page(ctx, errors={f"callback-{callback_id}": ctx.said(exc)}, status=409)
    return RedirectResponse("/hotline", status_code=303)


@page()
async def reply(ctx: Ctx) -> Response:
    thread_id = ctx.request.path_params["thread_id"]
    form = await ctx.request.form()
    text = str(form.get("text", ""))
    try:
        ctx.console.center.reply(thread_id, text, ctx.signed.actor())
    except NotFound:
        return ctx.refuse(ctx._("There is no thread {id}.", id=thread_id), status=404)
    except (Invalid, StoreError) as exc:
        return _page(ctx, errors={f"thread-{thread_id}": ctx.said(exc)},
                     values={f"thread-{thread_id}": text}, status=422)
    return RedirectResponse("/hotline", status_code=303)
