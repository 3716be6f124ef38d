"""Reports: the ``report`` figures for a period with charts (time to acknowledgement, outcomes
by fraud type, calls by hour, texts) drawn on the server as SVG, a CSV of the figures, and
each user's last period remembered.

The figures are read in a worker thread with store connections of its own, so a long period
never holds up the other pages (nor, the console being its own process, the engine's calls);
a period's figures are kept for :data:`KEEP_S` for the charts that follow the page.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from center import Views, read_events
from center.report import Report, to_csv
from dialer.model import Task
from stores import open_stores

from .. import charts
from ..web import Ctx, page

if TYPE_CHECKING:
    from ..state import Console

__all__ = ["routes"]

KEEP_S = 60.0
CHARTS = ("ack", "outcomes", "hours", "texts")


def routes() -> list[BaseRoute]:
    return [Route("/reports", reports, methods=["GET"]),
            Route("/reports.csv", report_csv, methods=["GET"]),
            Route("/reports/chart/{name}.svg", chart, methods=["GET"])]


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    since: float
    until: float


@dataclass(frozen=True)
class Figures:
    report: Report
    reach_s: list[float]
    inbound_by_hour: list[int]
    warning_by_hour: list[int]


_KEPT: dict[tuple[float, float], tuple[float, Figures]] = {}


def _period(ctx: Ctx) -> tuple[Period | None, dict[str, str], str]:
    """The period asked for (else the user's last one, else the last 30 days)."""
    query, users = ctx.request.query_params, ctx.console.stores.users
    if "since" in query or "until" in query:
        chosen = {"since": query.get("since", "")[:10], "until": query.get("until", "")[:10]}
    else:
        saved = users.prefs(ctx.signed.user.name, "reports")
        chosen = {"since": str(saved.get("since", "")), "until": str(saved.get("until", ""))}
    today = datetime.now(ctx.console.tz).date()
    try:
        first = date.fromisoformat(chosen["since"]) if chosen["since"] else today - timedelta(29)
        last = date.fromisoformat(chosen["until"]) if chosen["until"] else today
    except ValueError:
        return None, chosen, ctx._("Write the dates as YYYY-MM-DD.")
    if last < first:
        return None, chosen, ctx._("The period ends before it begins.")
    if "since" in query or "until" in query:
        users.set_prefs(ctx.signed.user.name, "reports", chosen)
    tz = ctx.console.tz
    since = datetime.combine(first, datetime.min.time(), tz).timestamp()
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).timestamp()
    return Period(first, last, since, until), {"since": first.isoformat(),
                                              "until": last.isoformat()}, ""


def _read(console: Console, since: float, until: float) -> Figures:
    """In a worker thread: its own connections."""
    stores = open_stores(console.settings.loaded)
    try:
        views = Views(stores, console.data_dir)
        report = views.report(since, until)
        tasks: list[Task] = stores.tasks.created_between(since, until)
        attempts = stores.tasks.attempts_of([t.id for t in tasks])
    finally:
        stores.close()
    tz = console.tz
    inbound = Counter(datetime.fromisoformat(e["at"]).astimezone(tz).hour for e in read_events(
        console.data_dir / "events.jsonl", since, until, ("screened",)))
    warning = Counter(datetime.fromtimestamp(a.started_at, tz).hour
                      for calls in attempts.values() for a in calls)
    return Figures(report, [t.time_to_reach_s for t in tasks if t.time_to_reach_s is not None],
                   [inbound[h] for h in range(24)], [warning[h] for h in range(24)])


async def _figures(console: Console, period: Period) -> Figures:
    key = (period.since, period.until)
    kept = _KEPT.get(key)
    now = time.monotonic()
    if kept and now - kept[0] < KEEP_S:
        return kept[1]
    figures = await asyncio.to_thread(_read, console, period.since, period.until)
    for old in [k for k, (at, _) in _KEPT.items() if now - at >= KEEP_S]:
        del _KEPT[old]
    _KEPT[key] = (now, figures)
    return figures


@page()
async def reports(ctx: Ctx) -> Response:
    period, chosen, error = _period(ctx)
    if period is None:
        return ctx.render("reports.html", status=422, chosen=chosen, error=error, figures=None,
                          charts=CHARTS)
    figures = await _figures(ctx.console, period)
    return ctx.render("reports.html", chosen=chosen, error="", figures=figures.report,
                      charts=CHARTS)


@page()
async def report_csv(ctx: Ctx) -> Response:
    period, _chosen, error = _period(ctx)
    if period is None:
        return ctx.refuse(error, status=422)
    figures = await _figures(ctx.console, period)
    name = f"report-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(to_csv(figures.report), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@page()
async def chart(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    period, _chosen, error = _period(ctx)
    if period is None or name not in CHARTS:
        return Response(error or "no such chart", status_code=404, media_type="text/plain")
    figures = await _figures(ctx.console, period)
    svg = await asyncio.to_thread(_draw, name, figures, ctx)
    return Response(svg, media_type="image/svg+xml")


def _draw(name: str, figures: Figures, ctx: Ctx) -> str:
    _ = ctx._
    report = figures.report
    if name == "ack":
        labels, counts = charts.buckets(figures.reach_s, _)
        return charts.bars(_("Time from the request to the acknowledgement"), labels,
                           {_("warnings"): counts})
    if name == "outcomes":
        kinds = list(report.by_type)[:15] or [_("none")]
        groups = [report.by_type.get(k) for k in kinds]
        series = {_(label): [getattr(g, field) if g else 0 for g in groups]
                  for label, field in (("acknowledged", "acknowledged"),
                                       ("transferred", "transferred"), ("failed", "failed"),
                                       ("cancelled", "cancelled"), ("open", "open"))}
        return charts.stacked(_("Outcomes by fraud type"), kinds, series)
    if name == "hours":
        return charts.bars(_("Calls by hour"), [f"{h:02d}" for h in range(24)],
                           {_("hotline calls"): figures.inbound_by_hour,
                            _("warning calls"): figures.warning_by_hour})
    texts = report.texts
    labels = [_("received"), _("replied"), _("automatic replies"), _("warning texts"),
              _("delivered"), _("refused")]
    values = [texts.get(k) or 0 for k in ("texts_received", "replied", "auto_replies",
                                           "warning_texts", "warning_texts_delivered",
                                           "warning_texts_refused")]
    return charts.bars(_("Texts"), labels, {_("texts"): values})
