"""``sms list`` and ``sms reply``: the texts people sent to the SMS consultation line.

``sms list`` shows the threads (one question and its answer: the texts one
number sent within ``sms.thread_s`` of each other) with masked numbers, when
the first text came, what was written, the state and how long the person has
waited. ``sms reply ID TEXT`` stores the operator's answer; the running engine
sends it as a MESSAGE within a moment (or when it starts), and the thread is
marked replied.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from center import Actor
from settings import Settings
from sip_config import LoadedConfig
from stores import open_stores
from texts import Thread

from .shown import duration, iso
from .warn import center_of


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    sms = sub.add_parser("sms", help="texts to the SMS consultation line")
    ops = sms.add_subparsers(dest="op", metavar="OP", required=True)
    listing = ops.add_parser("list", parents=[common], help="threads of texts, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per thread")
    listing.add_argument("--state", choices=("waiting", "replied", "blocked"))
    listing.set_defaults(handler=list_command)
    reply = ops.add_parser("reply", parents=[common], help="answer a thread by text")
    reply.add_argument("thread", metavar="ID")
    reply.add_argument("text", metavar="TEXT")
    reply.set_defaults(handler=reply_command, takes_settings=True)


def list_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    stores = open_stores(loaded)
    now = time.time()
    threads = stores.texts.threads(args.state) if stores.exists("texts") else []
    if args.json:
        for t in threads:
            print(json.dumps(_row(t, now, tz), ensure_ascii=False))
        return 0
    waiting = sum(t.state == "waiting" for t in threads)
    table = Table(title=f"{len(threads)} threads, {waiting} waiting for an operator",
                  title_justify="left")
    for column in ("id", "received", "number", "state", "waited", "type", "text"):
        table.add_column(column, no_wrap=column in ("id", "number", "received"))
    for t in threads:
        row = _row(t, now, tz)
        table.add_row(t.id, row["received"], t.masked, t.state, duration(row["waited_s"]),
                      t.fraud_type, " / ".join(t.texts))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _row(t: Thread, now: float, tz: ZoneInfo) -> dict[str, Any]:
    return {"id": t.id, "number": t.masked, "received": iso(t.opened_at, tz), "state": t.state,
            "waited_s": round(t.waited_s(now), 1), "fraud_type": t.fraud_type,
            "texts": list(t.texts), "replied_at": iso(t.replied_at, tz) if t.replied_at else None}


def reply_command(args: argparse.Namespace, settings: Settings) -> int:
    center = center_of(settings)
    message = center.reply(args.thread, args.text, Actor.cli())
    print(f"reply {message.id} to {message.masked} queued; the engine sends it now "
          "(or when it starts)")
    return 0
