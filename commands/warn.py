"""``warn``, ``tasks`` and ``task show``: warning requests in, what became of them out.

The store is the queue: ``warn`` commits the task to the store under
``engine.data_dir`` and a running engine picks it up within 100 ms; with no
engine running the task waits there. Numbers shown are masked; the full number
stays in the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from dialer import (
    Attempt,
    Policy,
    RequestError,
    SqliteTaskStore,
    StoreError,
    Task,
    TaskState,
    known_by,
    open_store,
    parse_csv,
    validate,
)
from settings import Settings
from sip_config import LoadedConfig
from texts import Message, TextStore
from texts.store import FILE_NAME as TEXTS_FILE

from .errors import CommandError
from .shown import iso

_STATES = [s.value for s in TaskState]


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    warn = sub.add_parser(
        "warn", parents=[common], help="queue a warning call (or: warn cancel ID)",
        usage="%(prog)s NUMBER [--fraud-type T] [--risk high|normal] [--case-id ID] [--note TEXT]\n"
              "       %(prog)s --file REQUESTS.csv\n"
              "       %(prog)s cancel TASK_ID [--reason TEXT]",
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
    tasks.set_defaults(handler=list_tasks)

    task = sub.add_parser("task", help="one warning task")
    ops = task.add_subparsers(dest="op", metavar="OP", required=True)
    show = ops.add_parser("show", parents=[common], help="a task's attempts, one by one")
    show.add_argument("task_id", metavar="TASK_ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=show_task)


def _store(loaded: LoadedConfig) -> SqliteTaskStore:
    try:
        return open_store(loaded.data_dir, loaded.data_dir / "recordings")
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def warn_command(args: argparse.Namespace, settings: Settings) -> int:
    loaded, known = settings.loaded, settings.catalog.known()
    words = args.words
    if words[:1] == ["cancel"]:
        if len(words) != 2:
            raise CommandError("write: warn cancel TASK_ID")
        return cancel(words[1], args.reason, loaded)
    if args.file:
        if words:
            raise CommandError("give either a number or --file, not both")
        return from_file(args.file, loaded, known)
    if len(words) != 1:
        raise CommandError("give one number to call (or --file REQUESTS.csv, or cancel TASK_ID)")
    try:
        request = validate(words[0], args.fraud_type, args.risk, args.case_id, args.note,
                           args.request_id, known_types=known, source="cli",
                           country=loaded.config.screening.country)
    except RequestError as exc:
        raise CommandError(str(exc)) from None
    store = _store(loaded)
    policy = Policy(loaded.config.dialer, ZoneInfo(loaded.config.engine.timezone))
    now = time.time()
    submitted = store.submit(request, now, policy.not_before(request.risk, now))
    print(submitted.task.id)
    print(submitted.sentence(), file=sys.stderr)
    return 0


def from_file(name: str, loaded: LoadedConfig, known: list[str]) -> int:
    try:
        with open(name, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise CommandError(f"there is no file {name}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{name} is not UTF-8 text") from None
    good, bad = parse_csv(text, known_types=known, country=loaded.config.screening.country)
    store = _store(loaded)
    policy = Policy(loaded.config.dialer, ZoneInfo(loaded.config.engine.timezone))
    counts = {"queued": 0, "merged": 0, "already accepted": 0}
    for line, request in good:
        now = time.time()
        submitted = store.submit(request, now, policy.not_before(request.risk, now))
        kind = "already accepted" if submitted.duplicate else "merged" if submitted.merged else "queued"
        counts[kind] += 1
        print(f"{name}:{line}: {submitted.sentence()}")
    for error in bad:
        print(f"{name}:{error.line}: {error.message}", file=sys.stderr)
    print(f"{len(good)} requests accepted ({counts['queued']} queued, {counts['merged']} merged, "
          f"{counts['already accepted']} already accepted), {len(bad)} refused",
          file=sys.stderr)
    return 1 if bad else 0


def cancel(task_id: str, reason: str, loaded: LoadedConfig) -> int:
    store = _store(loaded)
    try:
        task = store.cancel(task_id, time.time(), reason)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    print(f"cancelled task {task.id} ({task.masked}) after {task.tries} attempts")
    return 0


# ------------------------------------------------------------------ reading


def _when(at: float | None, tz: ZoneInfo) -> str:
    if at is None:
        return ""
    moment = datetime.fromtimestamp(at, tz)
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now(tz).date() else "%m-%d %H:%M")



def task_record(task: Task, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "task_id": task.id, "state": task.state.value, "risk": task.risk.value,
        "fraud_type": task.fraud_type, "number": task.masked, "case_ids": list(task.case_ids),
        "attempts": task.tries, "counted_attempts": task.attempts,
        "last_outcome": task.last_outcome.value if task.last_outcome else None,
        "last_status": task.last_status, "next_attempt": iso(task.next_at, tz),
        "escalated": iso(task.escalated_at, tz), "created": iso(task.created_at, tz),
        "finished": iso(task.finished_at, tz), "reason": task.reason,
    }


def list_tasks(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    store = _store(loaded)
    states = ([TaskState.QUEUED, TaskState.CALLING, TaskState.WAITING] if args.state == "open"
              else [TaskState(args.state)] if args.state else [])
    tasks = store.tasks(states)
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


def attempt_record(a: Attempt, tz: ZoneInfo) -> dict[str, Any]:
    return {"attempt": a.n, "started": iso(a.started_at, tz), "answered": iso(a.answered_at, tz),
            "ended": iso(a.ended_at, tz), "sip_status": a.status,
            "outcome": a.outcome.value if a.outcome else None, "known_by": known_by(a.how),
            "how": a.how, "digits": a.digits, "amd": a.amd, "worker": a.worker, "counted": a.counted,
            "recording": a.recording if a.recording and os.path.exists(a.recording) else None}


def show_task(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    store = _store(loaded)
    try:
        task = store.task(args.task_id)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    attempts = store.attempts(task.id)
    texts = _texts_of(loaded, task.id)
    if args.json:
        history = [(a.started_at, {"kind": "call", **attempt_record(a, tz)}) for a in attempts]
        history += [(m.at, {"kind": "text", "attempt": i, "started": iso(m.at, tz),
                            "ended": iso(m.answered_at, tz), "sip_status": m.status,
                            "outcome": m.state, "text": m.body})
                    for i, m in enumerate(texts, 1)]
        history.sort(key=lambda h: h[0])
        print(json.dumps({**task_record(task, tz), "history": [h for _, h in history]},
                         ensure_ascii=False))
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
    table = Table(show_edge=False)
    for column in ("#", "kind", "started", "answered", "ended", "SIP", "outcome", "known by",
                   "digits", "amd", "worker", "recording"):
        table.add_column(column)
    rows: list[tuple[float, list[str]]] = []
    for a in attempts:
        rec = attempt_record(a, tz)
        rows.append((a.started_at, [str(a.n), "call", _when(a.started_at, tz) or "",
                                    _when(a.answered_at, tz) or "", _when(a.ended_at, tz) or "",
                                    str(a.status or ""), rec["outcome"] or "(in progress)",
                                    rec["known_by"], a.digits, a.amd, a.worker,
                                    rec["recording"] or ""]))
    for i, m in enumerate(texts, 1):  # warning texts: never counted as call attempts
        rows.append((m.at, [f"t{i}", "text", _when(m.at, tz) or "", "",
                            _when(m.answered_at, tz) or "", str(m.status or ""), m.state, "", "",
                            "", "", ""]))
    for _, row in sorted(rows, key=lambda r: r[0]):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def _texts_of(loaded: LoadedConfig, task_id: str) -> list[Message]:
    """The warning texts sent for a task (none when texts never ran here)."""
    if not (loaded.data_dir / TEXTS_FILE).exists():
        return []
    store = TextStore(loaded.data_dir)
    try:
        return store.of_task(task_id)
    finally:
        store.close()
