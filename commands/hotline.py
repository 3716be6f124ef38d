"""``callbacks`` and ``hotline stats``: what the hotline's callers left and asked about.

``callbacks`` lists the messages left after hours for the morning shift
(masked numbers, time, length, the menus the caller went through, the WAV);
``callbacks done ID`` marks one answered. ``hotline stats`` reads the engine's
event file: calls by hour and by route, the fraud types people asked about
most, and calls abandoned before any choice or before an operator answered.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from center import Actor, Views, read_events
from center.figures import hotline_figures
from settings import Settings
from sip_config import LoadedConfig
from stores import open_stores

from .errors import CommandError
from .shown import iso
from .warn import center_of


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    callbacks = sub.add_parser("callbacks", parents=[common],
                               help="messages left on the hotline (or: callbacks done ID)",
                               usage="%(prog)s [--json] [--state waiting|done]\n"
                                     "       %(prog)s done MESSAGE_ID [--note TEXT]")
    callbacks.add_argument("words", nargs="*", metavar="done ID", help=argparse.SUPPRESS)
    callbacks.add_argument("--json", action="store_true", help="one JSON object per message")
    callbacks.add_argument("--state", choices=("waiting", "done"))
    callbacks.add_argument("--note", default="", help="what came of the callback")
    callbacks.set_defaults(handler=callbacks_command, takes_settings=True)

    hotline = sub.add_parser("hotline", help="the hotline's figures")
    ops = hotline.add_subparsers(dest="op", metavar="OP", required=True)
    stats = ops.add_parser("stats", parents=[common], help="calls by hour and route, fraud types "
                                                            "asked about, abandoned calls")
    stats.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=stats_command)


def callbacks_command(args: argparse.Namespace, settings: Settings) -> int:
    tz = ZoneInfo(settings.config.engine.timezone)
    if args.words:
        if args.words[0] != "done" or len(args.words) != 2:
            raise CommandError("write: callbacks done MESSAGE_ID")
        callback = center_of(settings).callback_done(args.words[1], Actor.cli(), args.note)
        print(f"message {callback.id} from {callback.masked} marked answered")
        return 0
    store = open_stores(settings.loaded).callbacks
    rows = store.list(args.state)
    if args.json:
        for c in rows:
            print(json.dumps({"id": c.id, "number": c.masked, "at": iso(c.at, tz),
                              "duration_s": c.duration_s, "path": c.path, "state": c.state,
                              "file": c.file, "done_at": iso(c.done_at, tz), "note": c.note,
                              "done_by": c.done_by},
                             ensure_ascii=False))
        return 0
    waiting = sum(c.state == "waiting" for c in rows)
    table = Table(title=f"{len(rows)} messages, {waiting} waiting for a callback",
                  title_justify="left")
    for column in ("id", "left at", "number", "length", "state", "the caller went through", "file"):
        table.add_column(column, no_wrap=column in ("id", "number"))
    for c in rows:
        table.add_row(c.id, iso(c.at, tz) or "", c.masked, f"{c.duration_s:.0f} s", c.state,
                      c.path, c.file)
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0



def stats_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    since = datetime.combine(args.since, datetime.min.time(), tz).timestamp() if args.since else 0.0
    figures = hotline_figures(read_events(loaded.data_dir / "events.jsonl", since or None))
    figures["texts"] = Views(open_stores(loaded), loaded.data_dir).text_figures(
        since, time.time())
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return 0
    console = Console(width=None if sys.stdout.isatty() else 120)
    since_text = f" since {args.since}" if args.since else ""
    console.print(f"{figures['calls']} hotline calls{since_text}, {figures['abandoned']} abandoned")
    x = figures["texts"]
    if x:
        console.print(f"{x['texts_received']} texts to the SMS line in {x['threads']} threads: "
                      f"{x['replied']} replied (median {x['reply_median_s']} s), {x['waiting']} "
                      "waiting")
    for title, key in (("calls by hour", "by_hour"), ("by route", "by_route"),
                       ("fraud types asked about", "fraud_types_asked")):
        table = Table(title=title, title_justify="left")
        table.add_column(title.split()[-1])
        table.add_column("calls", justify="right")
        for name, count in figures[key].items():
            table.add_row(str(name), str(count))
        console.print(table)
    return 0
