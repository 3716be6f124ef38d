"""``warn``, ``tasks`` and ``task show``: warning requests in, what became of them out.

The store is the queue: ``warn`` hands the request to :class:`center.Center`, which commits
the task to the store and records who asked (``cli:<login>``); a running engine hears of it
within ~20 ms; with no engine running the task waits there. ``tasks`` and ``task show``
render :class:`center.Views`. Numbers shown are masked; the full number stays in the store.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from center import Actor, Center, Views, task_record
from dialer import TaskState
from dialer.requests import Risk
from settings import Settings
from sip_config import LoadedConfig
from stores import open_stores

from .errors import CommandError

_STATES = [s.value for s in TaskState]


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    warn = sub.add_parser(
        "warn", parents=[common], help="queue a warning call (or: warn cancel ID)",
        usage="%(prog)s NUMBER [--fraud-type T] [--risk high|normal] [--case-id ID] [--note TEXT]\n"
              "       %(prog)s --file REQUESTS.csv\n"
              "       %(prog)s cancel TASK_ID [--reason TEXT]\n"
              "       %(prog)s again TASK_ID   (call now)\n"
              "       %(prog)s raise TASK_ID   (high risk)",
        description="Queue a warning for a person being defrauded right now. The engine keeps "
                    "calling until the warning is heard and acknowledged.")
    warn.add_argument("words", nargs="*", metavar="NUMBER", help="the number to call")
    warn.add_argument("--fraud-type", help="the kind of fraud (default: general)")
    warn.add_argument("--risk", choices=("high", "normal"), help="high (default) calls at any hour")
    warn.add_argument("--case-id", help="the case this warning belongs to")
    warn.add_argument("--note", help="a note for the officers")
    warn.add_argument("--id", dest="request_id", help="a request id: repeating it makes no second task")
    warn.add_argument("--file", help="a CSV of requests: number,fraud_type,risk,case_id,note,request_id")
    warn.add_argument("--reason", default="", help="why a task is cancelled")
    warn.set_defaults(handler=warn_command, takes_settings=True)

    tasks = sub.add_parser("tasks", parents=[common], help="warning tasks and where they stand")
    tasks.add_argument("--json", action="store_true", help="one JSON object per task, for tools")
    tasks.add_argument("--state", choices=_STATES + ["open"], help="only tasks in this state")
    tasks.add_argument("--escalated", action="store_true",
                       help="only open tasks escalated to a station")
    tasks.add_argument("--fraud-type", help="only tasks of this fraud type")
    tasks.add_argument("--risk", choices=("high", "normal"), help="only tasks of this risk")
    tasks.set_defaults(handler=list_tasks)

    task = sub.add_parser("task", help="one warning task")
    ops = task.add_subparsers(dest="op", metavar="OP", required=True)
    show = ops.add_parser("show", parents=[common], help="a task's attempts, one by one")
    show.add_argument("task_id", metavar="TASK_ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=show_task)


def center_of(settings: Settings) -> Center:
    return Center(settings.loaded, settings.catalog, open_stores(settings.loaded))


def views_of(loaded: LoadedConfig) -> Views:
    return Views(open_stores(loaded), loaded.data_dir)


def warn_command(args: argparse.Namespace, settings: Settings) -> int:
    words = args.words
    center = center_of(settings)
    if words[:1] in (["cancel"], ["again"], ["raise"]):
        if len(words) != 2:
            raise CommandError(f"write: warn {words[0]} TASK_ID")
        return change(center, words[0], words[1], args.reason)
    if args.file:
        if words:
            raise CommandError("give either a number or --file, not both")
        return from_file(args.file, center)
    if len(words) != 1:
        raise CommandError("give one number to call (or --file REQUESTS.csv, or cancel TASK_ID)")
    request = center.request(words[0], args.fraud_type, args.risk, args.case_id, args.note,
                             args.request_id, source="cli")
    submitted = center.warn(request, Actor.cli())
    print(submitted.task.id)
    print(submitted.sentence(), file=sys.stderr)
    return 0


def from_file(name: str, center: Center) -> int:
    try:
        with open(name, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise CommandError(f"there is no file {name}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{name} is not UTF-8 text") from None
    good, bad = center.warn_csv(text, Actor.cli())
    counts = {"queued": 0, "merged": 0, "already accepted": 0}
    for line, submitted in good:
        kind = "already accepted" if submitted.duplicate else "merged" if submitted.merged else "queued"
        counts[kind] += 1
        print(f"{name}:{line}: {submitted.sentence()}")
    for error in bad:
        print(f"{name}:{error.line}: {error.message}", file=sys.stderr)
    print(f"{len(good)} requests accepted ({counts['queued']} queued, {counts['merged']} merged, "
          f"{counts['already accepted']} already accepted), {len(bad)} refused",
          file=sys.stderr)
    return 1 if bad else 0


def change(center: Center, what: str, task_id: str, reason: str) -> int:
    """``warn cancel``, ``warn again`` (call now), ``warn raise`` (high risk)."""
    actor = Actor.cli()
    if what == "cancel":
        task = center.cancel(task_id, actor, reason)
        print(f"cancelled task {task.id} ({task.masked}) after {task.tries} attempts")
    elif what == "again":
        task = center.requeue(task_id, actor)
        print(f"task {task.id} ({task.masked}) is called again now")
    else:
        task = center.raise_risk(task_id, actor)
        print(f"task {task.id} ({task.masked}) is high risk now: called at any hour, first")
    return 0


# ------------------------------------------------------------------ reading


def _when(at: float | None, tz: ZoneInfo) -> str:
    if at is None:
        return ""
    moment = datetime.fromtimestamp(at, tz)
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now(tz).date() else "%m-%d %H:%M")



def list_tasks(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    views = views_of(loaded)
    states = ([TaskState.QUEUED, TaskState.CALLING, TaskState.WAITING] if args.state == "open"
              else [TaskState(args.state)] if args.state else [])
    tasks, after = [], None
    while True:  # every page, then oldest first as the list has always read
        page = views.tasks(states=states, escalated_open=args.escalated,
                           fraud_type=args.fraud_type or "",
                           risk=Risk(args.risk) if args.risk else None, after=after, limit=500)
        tasks += page.items
        if page.next is None:
            break
        after = page.next
    tasks.reverse()
    if args.json:
        for task in tasks:
            print(json.dumps(task_record(task, tz), ensure_ascii=False))
        return 0
    table = Table(title=f"{len(tasks)} warning tasks", title_justify="left")
    for column in ("task", "state", "risk", "fraud type", "attempts", "last outcome",
                   "next attempt", "number", "created"):
        table.add_column(column, no_wrap=column in ("task", "number"))
    for t in tasks:
        state = t.state.value + (" (escalated)" if t.escalated_at and t.state.open else "")
        table.add_row(t.id, state, t.risk.value, t.fraud_type, str(t.tries),
                      t.last_outcome.value if t.last_outcome else "",
                      _when(t.next_at, tz) if t.state.open else "", t.masked, _when(t.created_at, tz))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def show_task(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    detail = views_of(loaded).task(args.task_id)
    task = detail.task
    if args.json:
        print(json.dumps(detail.record(tz), ensure_ascii=False))
        return 0
    r = task_record(task, tz)
    print(f"task {task.id}: {task.masked}, {task.fraud_type}, risk {task.risk.value}, "
          f"{task.state.value}" + (f" ({task.reason})" if task.reason else ""))
    print(f"  cases: {', '.join(task.case_ids) or 'none'}; created {r['created']}; "
          f"{task.tries} attempts ({task.attempts} counted)"
          + (f"; escalated {r['escalated']}" if task.escalated_at else "")
          + (f"; next attempt {r['next_attempt']}" if task.state.open and task.next_at else ""))
    if task.note:
        print(f"  note: {task.note}")
    if detail.changes:
        print("  asked: " + "; ".join(f"{c.event} by {c.by} {_when(c.at, tz)}"
                                      for c in detail.changes))
    table = Table(show_edge=False)
    for column in ("#", "kind", "started", "answered", "ended", "SIP", "outcome", "known by",
                   "digits", "amd", "worker", "recording"):
        table.add_column(column)
    for entry in detail.history:
        rec = entry.record(tz)
        if entry.attempt is not None:  # a call
            a = entry.attempt
            table.add_row(str(a.n), "call", _when(a.started_at, tz), _when(a.answered_at, tz),
                          _when(a.ended_at, tz), str(a.status or ""),
                          rec["outcome"] or "(in progress)", rec["known_by"], a.digits, a.amd,
                          a.worker, rec["recording"] or "")
        elif entry.text is not None:  # a warning text: never counted as a call attempt
            m = entry.text
            table.add_row(f"t{entry.number}", "text", _when(m.at, tz), "", _when(m.answered_at, tz),
                          str(m.status or ""), m.state, "", "", "", "", "")
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0
