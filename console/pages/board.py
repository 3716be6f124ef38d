"""The board: what the center watches during an incident, kept current without a reload.

Four sections, each rendered on the server and pushed again by Server-Sent Events
(``/live/board``) whenever the stores or the engine's status change: the engine's health;
the open warnings by state and risk with each next attempt's countdown (calls in progress
first); escalations waiting for a station, with who took each over and the note; warnings
acknowledged or transferred today.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from center import StatusView
from dialer.model import Task, TaskState
from dialer.requests import Risk
from ops.observer import EVERY_S

from ..auth import COOKIE
from ..web import Ctx, gettext_of, language_of, page

if TYPE_CHECKING:
    from ..state import Console

__all__ = ["SECTIONS", "routes"]

SECTIONS = ("health", "open", "escalated", "today")
OPEN = (TaskState.QUEUED, TaskState.CALLING, TaskState.WAITING)
REACHED = (TaskState.ACKNOWLEDGED, TaskState.TRANSFERRED)
SHOWN = 200  # open tasks listed on the board; the counts cover them all
KEEP_ALIVE_S = 15.0
CSRF_MARK = "__CSRF_TOKEN__"  # the shared rendering's place for each reader's own token


def routes() -> list[BaseRoute]:
    return [Route("/", board, methods=["GET"]),
            Route("/live/board", board_stream, methods=["GET"])]


@dataclass(frozen=True)
class Board:
    status: StatusView
    open_tasks: list[Task]
    open_total: int
    by_state_risk: dict[tuple[str, str], int]
    escalated: list[Task]
    today: list[Task]
    today_counts: dict[str, int]


def read_board(console: Console, now: float) -> Board:
    views = console.views
    status = views.status(now, EVERY_S, console.tz)
    open_page = views.tasks(states=OPEN, limit=5000)
    tasks = open_page.items
    by = Counter((t.state.value, t.risk.value) for t in tasks)
    shown = sorted(tasks, key=lambda t: (t.state is not TaskState.CALLING,
                                         t.risk is not Risk.HIGH, t.next_at or 0.0))[:SHOWN]
    escalated = views.tasks(escalated_open=True, limit=200).items
    midnight = datetime.fromtimestamp(now, console.tz).replace(hour=0, minute=0, second=0,
                                                              microsecond=0).timestamp()
    today = views.tasks(states=REACHED, finished_since=midnight, limit=1000).items
    today.sort(key=lambda t: t.finished_at or 0.0, reverse=True)
    return Board(status, shown, sum(status.tasks[s] for s in OPEN), dict(by),
                 sorted(escalated, key=lambda t: t.escalated_at or 0.0), today[:20],
                 dict(Counter(t.state.value for t in today)))


def render_sections(console: Console, language: str, board: Board, csrf: str) -> dict[str, str]:
    _ = gettext_of(language)
    env = console.env
    values: dict[str, Any] = {"_": _, "b": board, "now": time.time(), "csrf": csrf,
                              "states": OPEN, "risks": (Risk.HIGH, Risk.NORMAL),
                              "when": lambda at: _clock(at, console)}
    return {name: env.get_template(f"board/{name}.html").render(**values) for name in SECTIONS}


def _clock(at: float | None, console: Console) -> str:
    return "" if at is None else datetime.fromtimestamp(at, console.tz).strftime("%H:%M:%S")


def _shared_sections(console: Console, language: str) -> dict[str, str]:
    """The sections as every stream of this language sends them (the board read once)."""
    board = console.live.rendered("board-data", "", lambda: read_board(console, time.time()))
    return render_sections(console, language, board, CSRF_MARK)


@page()
async def board(ctx: Ctx) -> Response:
    data = read_board(ctx.console, time.time())
    sections = render_sections(ctx.console, ctx.language, data, ctx.signed.session.csrf)
    return ctx.render("board.html", sections=sections, live_version=ctx.console.live.version)


async def board_stream(request: Request) -> Response:
    """The board's sections each time something changed; ``expired`` when the session ends."""
    console = request.app.state.console
    language = language_of(console, request)
    token = request.cookies.get(COOKIE)
    signed = console.sessions.peek(token, time.time())
    if signed is None:
        return Response(gettext_of(language)("Sign in first."), status_code=401,
                        media_type="text/plain")
    csrf = signed.session.csrf

    async def events() -> AsyncIterator[str]:
        seen = console.live.version
        yield "retry: 2000\n\n"
        while True:
            version = await console.live.wait(seen, KEEP_ALIVE_S)
            if await request.is_disconnected():
                return
            if console.sessions.peek(token, time.time()) is None:
                yield "event: expired\ndata: {}\n\n"
                return
            if version == seen:
                yield ": still here\n\n"
                continue
            seen = version
            sections = console.live.rendered("board", language,
                                             lambda: _shared_sections(console, language))
            payload = {name: html.replace(CSRF_MARK, csrf) for name, html in sections.items()}
            data = json.dumps({"version": version, "sections": payload}, ensure_ascii=False)
            yield f"event: board\ndata: {data}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})
