"""Warning tasks: the list with its filters (remembered per user) and a CSV of it; one task with
every call and text in the order they happened, a player for each recording, and the actions
(cancel with a reason, call again now, raise the risk, who took an escalation over; a
supervisor may reveal the full number, which the audit trail records).

A form carries the task's state as the officer saw it (``seen``): if the task moved since,
the change is refused in one sentence beside the form and nothing changes.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from center import Invalid, task_record
from dialer.model import TaskState
from dialer.requests import Risk
from stores import NotFound, StoreError

from ..names import known_by
from ..web import Ctx, page

__all__ = ["routes"]

OPEN = (TaskState.QUEUED, TaskState.CALLING, TaskState.WAITING)
PAGE = 50
CSV_MAX = 100_000
FILTERS = ("state", "risk", "escalated", "fraud_type", "since", "until")


def routes() -> list[BaseRoute]:
    return [Route("/tasks", task_list, methods=["GET"]),
            Route("/tasks.csv", task_csv, methods=["GET"]),
            Route("/tasks/{task_id}", task_page, methods=["GET"]),
            Route("/tasks/{task_id}/{action:str}", task_action, methods=["POST"]),
            Route("/recordings/{task_id}/{n:int}", recording, methods=["GET"])]


def _filters(ctx: Ctx) -> dict[str, str]:
    """The list's filters: from the address, else the user's last ones; kept for next time."""
    query = ctx.request.query_params
    users = ctx.console.stores.users
    if any(k in query for k in (*FILTERS, "filter")):
        chosen = {k: query.get(k, "").strip()[:40] for k in FILTERS}
        users.set_prefs(ctx.signed.user.name, "tasks", chosen)
        return chosen
    saved = users.prefs(ctx.signed.user.name, "tasks")
    return {k: str(saved.get(k, "")) for k in FILTERS}


def _query(ctx: Ctx, chosen: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The views' arguments for these filters, or an error sentence for the one that is
    wrong."""
    _ = ctx._
    args: dict[str, Any] = {}
    state = chosen["state"]
    if state == "open":
        args["states"] = OPEN
    elif state:
        try:
            args["states"] = (TaskState(state),)
        except ValueError:
            return {}, _("There is no state {s}.", s=state)
    if chosen["risk"]:
        try:
            args["risk"] = Risk(chosen["risk"])
        except ValueError:
            return {}, _("There is no risk {r}.", r=chosen["risk"])
    args["escalated_open"] = chosen["escalated"] == "1"
    args["fraud_type"] = chosen["fraud_type"]
    for key, shift in (("since", 0), ("until", 1)):
        if chosen[key]:
            try:
                day = date.fromisoformat(chosen[key]) + timedelta(days=shift)
            except ValueError:
                return {}, _("{d} is not a date (YYYY-MM-DD).", d=chosen[key])
            args[key] = datetime.combine(day, datetime.min.time(), ctx.console.tz).timestamp()
    return args, ""


@page()
async def task_list(ctx: Ctx) -> Response:
    chosen = _filters(ctx)
    args, error = _query(ctx, chosen)
    after = ctx.request.query_params.get("after") or None
    found = None
    if not error:
        try:
            found = ctx.console.views.tasks(**args, after=after, limit=PAGE)
        except Invalid as exc:
            error = ctx.said(exc)
    return ctx.render("tasks.html", chosen=chosen, page=found, error=error,
                      fraud_types=sorted(ctx.console.settings.catalog.known()),
                      states=[s.value for s in TaskState], after=after)


@page()
async def task_csv(ctx: Ctx) -> Response:
    chosen = _filters(ctx)
    args, error = _query(ctx, chosen)
    if error:
        return ctx.refuse(error, status=400)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["task_id", "state", "risk", "fraud_type", "number", "case_ids", "attempts",
               "last_outcome", "last_status", "next_attempt", "escalated", "created", "finished",
               "reason"]
    writer.writerow(columns)
    after, rows = None, 0
    while rows < CSV_MAX:
        found = ctx.console.views.tasks(**args, after=after, limit=1000)
        for task in found.items:
            record = task_record(task, ctx.console.tz)
            record["case_ids"] = " ".join(record["case_ids"])
            writer.writerow([record[c] if record[c] is not None else "" for c in columns])
            rows += 1
        if found.next is None:
            break
        after = found.next
    stamp = datetime.now(ctx.console.tz).strftime("%Y%m%d-%H%M")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="tasks-{stamp}.csv"'})


def _task_view(ctx: Ctx, task_id: str, errors: dict[str, str] | None = None,
               revealed: str = "", status: int = 200) -> Response:
    try:
        detail = ctx.console.views.task(task_id)
    except NotFound:
        return ctx.refuse(ctx._("There is no task {id}.", id=task_id), status=404)
    history = []
    for entry in detail.history:
        if entry.attempt is not None:
            a = entry.attempt
            history.append({
                "kind": "call", "n": a.n, "started": a.started_at, "answered": a.answered_at,
                "ended": a.ended_at, "status": a.status or "",
                "outcome": a.outcome.value if a.outcome else "",
                "known_by": known_by(a.how, ctx._), "digits": a.digits, "amd": a.amd,
                "worker": a.worker,
                "recording": bool(a.recording) and Path(a.recording).is_file()})
        elif entry.text is not None:
            m = entry.text
            history.append({"kind": "text", "n": entry.number, "started": m.at,
                            "answered": None, "ended": m.answered_at, "status": m.status or "",
                            "outcome": m.state, "known_by": "", "digits": "", "amd": "",
                            "worker": "", "recording": False, "body": m.body})
    return ctx.render("task.html", status=status, t=detail.task, history=history,
                      changes=detail.changes, errors=errors or {}, revealed=revealed)


@page()
async def task_page(ctx: Ctx) -> Response:
    return _task_view(ctx, ctx.request.path_params["task_id"])


@page()
async def task_action(ctx: Ctx) -> Response:
    task_id = ctx.request.path_params["task_id"]
    action = ctx.request.path_params["action"]
    form = await ctx.request.form()
    seen = str(form.get("seen", "")) or None
    center, actor = ctx.console.center, ctx.signed.actor()
    if action == "reveal":
        if not ctx.signed.role.may("reveal"):
            return ctx.refuse(ctx._("Only a supervisor may do this."))
        try:
            number = center.reveal(task_id, actor)
        except NotFound:
            return ctx.refuse(ctx._("There is no task {id}.", id=task_id), status=404)
        return _task_view(ctx, task_id, revealed=number)
    try:
        if action == "cancel":
            center.cancel(task_id, actor, str(form.get("reason", "")).strip(), seen=seen)
        elif action == "again":
            center.requeue(task_id, actor, seen=seen)
        elif action == "raise":
            center.raise_risk(task_id, actor, seen=seen)
        elif action == "assign":
            center.assign(task_id, str(form.get("assigned_to", "")), str(form.get("note", "")),
                          actor, seen=seen)
        else:
            return ctx.refuse(ctx._("There is no such action."), status=404)
    except NotFound:
        return ctx.refuse(ctx._("There is no task {id}.", id=task_id), status=404)
    except (Invalid, StoreError) as exc:
        return _task_view(ctx, task_id, errors={action: ctx.said(exc)}, status=409)
    back = str(form.get("back", ""))
    target = back if back == "/" else f"/tasks/{task_id}"
    return RedirectResponse(target, status_code=303)


@page()
async def recording(ctx: Ctx) -> Response:
    """A call's recording, for the player: only to a signed-in user, never by a file path."""
    task_id, n = ctx.request.path_params["task_id"], ctx.request.path_params["n"]
    try:
        attempts = ctx.console.stores.tasks.attempts(task_id)
    except NotFound:
        attempts = []
    found = next((a for a in attempts if a.n == n and a.recording), None)
    root = (ctx.console.settings.loaded.media_dir / "recordings").resolve()
    path = Path(found.recording).resolve() if found else None
    if path is None or not path.is_file() or root not in path.parents:
        return Response(ctx._("There is no such recording."), status_code=404,
                        media_type="text/plain")
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"},
                        filename=f"{task_id}-{n}.wav", content_disposition_type="inline")

