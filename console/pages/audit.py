"""The audit trail, for supervisors: every change (who, what, when, from which address),
newest first, by who or by what."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..web import Ctx, page

__all__ = ["routes"]

PAGE = 100


def routes() -> list[BaseRoute]:
    return [Route("/audit", audit, methods=["GET"])]


@page("audit")
async def audit(ctx: Ctx) -> Response:
    query = ctx.request.query_params
    actor, action = query.get("actor", "").strip()[:80], query.get("action", "").strip()[:40]
    before_text = query.get("before", "")
    before = int(before_text) if before_text.isdigit() else None
    entries = ctx.console.stores.audit.page(before, PAGE + 1, actor, action)
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    return ctx.render("audit.html", entries=entries, actor=actor, action=action,
                      next=entries[-1].id if more and entries else None)
