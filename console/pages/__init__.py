"""The console's pages, one module per job: signing in, the board, tasks, the hotline, the
lists, reports, the audit trail."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import audit, board, hotline, lists, reports, session, tasks, warn

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    return [*session.routes(), *board.routes(), *tasks.routes(), *warn.routes(),
            *hotline.routes(), *lists.routes(), *reports.routes(), *audit.routes()]
