"""What people read of the center's records: typed views, page by page, the same for every
reader. The command line renders them as tables or JSON; the console will render the same
objects as pages. Nothing here writes.

- :meth:`Views.tasks`: a page of tasks (by state, risk, escalated and still open, fraud type,
  created between), newest first, with the cursor of the next page;
- :meth:`Views.task`: one task with its calls and warning texts in the order they happened;
- :meth:`Views.threads`, :meth:`Views.callbacks`: pages of texts' threads and callback
  messages;
- :meth:`Views.status`: the engine's last snapshot (``status.json``) read into typed fields,
  with what the stores hold;
- :func:`read_events` reads the engine's event file, once, for every figure drawn from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from dialer import known_by
from dialer.model import Attempt, Task, TaskState
from dialer.requests import Risk
from hotline.callbacks import Callback
from stores import Stores, TaskQuery
from texts.model import Message, Thread

from .actions import Invalid
from .report import Report, build_report, text_figures

__all__ = ["Change", "EngineSnapshot", "HistoryEntry", "Page", "StatusView", "TaskDetail", "Views",
           "attempt_record", "read_events", "task_record"]

STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: str | None  # the cursor of the next page, or None: this was the last


def _cursor(at: float, key: str) -> str:
    return f"{at!r}/{key}"


def _parse_cursor(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    at, _, key = cursor.partition("/")
    try:
        return float(at), key
    except ValueError:
        raise Invalid("{cursor!r} is not a page cursor", cursor=cursor) from None


# ------------------------------------------------------------------ tasks


def iso(at: float | None, tz: ZoneInfo) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, tz).isoformat(timespec="seconds")


def task_record(task: Task, tz: ZoneInfo) -> dict[str, Any]:
    """A task as ``tasks --json`` and the console show it (the number masked)."""
    return {
        "task_id": task.id, "state": task.state.value, "risk": task.risk.value,
        "fraud_type": task.fraud_type, "number": task.masked, "case_ids": list(task.case_ids),
        "attempts": task.tries, "counted_attempts": task.attempts,
        "last_outcome": task.last_outcome.value if task.last_outcome else None,
        "last_status": task.last_status, "next_attempt": iso(task.next_at, tz),
        "escalated": iso(task.escalated_at, tz), "created": iso(task.created_at, tz),
        "finished": iso(task.finished_at, tz), "reason": task.reason,
    }


def attempt_record(a: Attempt, tz: ZoneInfo) -> dict[str, Any]:
    return {"attempt": a.n, "started": iso(a.started_at, tz), "answered": iso(a.answered_at, tz),
            "ended": iso(a.ended_at, tz), "sip_status": a.status,
            "outcome": a.outcome.value if a.outcome else None, "known_by": known_by(a.how),
            "how": a.how, "digits": a.digits, "amd": a.amd, "worker": a.worker,
            "counted": a.counted,
            "recording": a.recording if a.recording and os.path.exists(a.recording) else None}


@dataclass(frozen=True)
class HistoryEntry:
    """One call or one warning text of a task, in the order they happened."""

    kind: str  # call, text
    at: float
    attempt: Attempt | None = None
    text: Message | None = None
    number: int = 0  # the attempt's n, or the text's place among the task's texts

    def record(self, tz: ZoneInfo) -> dict[str, Any]:
        if self.attempt is not None:
            return {"kind": "call", **attempt_record(self.attempt, tz)}
        m = self.text
        assert m is not None
        return {"kind": "text", "attempt": self.number, "started": iso(m.at, tz),
                "ended": iso(m.answered_at, tz), "sip_status": m.status, "outcome": m.state,
                "text": m.body}


@dataclass(frozen=True)
class Change:
    """Something a person or a system asked of a task (accepted, merged, cancelled…), and who."""

    event: str
    at: float
    by: str

    def record(self, tz: ZoneInfo) -> dict[str, Any]:
        return {"event": self.event, "at": iso(self.at, tz), "by": self.by}


@dataclass(frozen=True)
class TaskDetail:
    task: Task
    history: list[HistoryEntry]
    changes: list[Change] = field(default_factory=list)

    def record(self, tz: ZoneInfo) -> dict[str, Any]:
        return {**task_record(self.task, tz), "history": [h.record(tz) for h in self.history],
                "changes": [c.record(tz) for c in self.changes]}


def merge_history(attempts: Sequence[Attempt], texts: Sequence[Message]) -> list[HistoryEntry]:
    """A task's calls and warning texts, in the order they happened (a call before a text
    that began at the same moment)."""
    entries = [HistoryEntry("call", a.started_at, attempt=a, number=a.n) for a in attempts]
    entries += [HistoryEntry("text", m.at, text=m, number=i) for i, m in enumerate(texts, 1)]
    return sorted(entries, key=lambda h: (h.at, h.kind != "call"))


# ------------------------------------------------------------------ the engine's status


@dataclass(frozen=True)
class WorkerView:
    name: str
    ready: bool
    calls: int
    sip_port: int


@dataclass(frozen=True)
class MqttView:
    url: str
    connected: bool
    outbox: int
    received: int
    stored: int
    refused: int
    published: int
    dropped: int
    last_error: str


@dataclass(frozen=True)
class ErrorLine:
    at: str
    level: str
    message: str


@dataclass(frozen=True)
class EngineSnapshot:
    """What a running engine wrote of itself last (``status.json``, every 2 s)."""

    running: bool
    pid: int
    started_at: str
    updated_at: str
    workers: list[WorkerView]
    calls: int
    trunk_in_use: int
    trunk_channels: int
    lists_unreadable: dict[str, str]
    front_running: bool | None  # None: no Kamailio front
    front_restarts: int
    mqtt: MqttView | None
    last_errors: list[ErrorLine]
    queue: list[tuple[str, str]] = field(default_factory=list)  # (masked caller, since ISO)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def read(cls, data_dir: Path) -> EngineSnapshot | None:
        """The snapshot in ``data_dir``, or None when there is none (or it cannot be read)."""
        try:
            raw = json.loads((data_dir / STATUS_FILE).read_text(encoding="utf-8"))
            return cls.of(raw)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> EngineSnapshot:
        front, mqtt = raw.get("front"), raw.get("mqtt")
        return cls(
            running=bool(raw["running"]), pid=int(raw["pid"]), started_at=str(raw["started_at"]),
            updated_at=str(raw["updated_at"]),
            workers=[WorkerView(str(w["name"]), bool(w["ready"]), int(w["calls"]),
                                int(w.get("sip_port", 0))) for w in raw["workers"]],
            calls=int(raw["calls"]), trunk_in_use=int(raw["trunk"]["in_use"]),
            trunk_channels=int(raw["trunk"]["max_channels"]),
            lists_unreadable={str(k): str(v) for k, v in (raw.get("lists_unreadable") or {}).items()},
            front_running=None if front is None else bool(front["running"]),
            front_restarts=0 if front is None else int(front["restarts"]),
            mqtt=None if mqtt is None else MqttView(
                str(mqtt["url"]), bool(mqtt["connected"]), int(mqtt["outbox"]),
                int(mqtt.get("received", 0)), int(mqtt["stored"]), int(mqtt["refused"]),
                int(mqtt["published"]), int(mqtt.get("dropped", 0)), str(mqtt["last_error"])),
            last_errors=[ErrorLine(str(e["at"]), str(e["level"]), str(e["message"]))
                         for e in raw.get("last_errors") or []],
            queue=[(str(q["caller"]), str(q["since"])) for q in raw.get("queue") or []],
            raw=raw)

    def fresh(self, now: datetime, every_s: float) -> bool:
        """Written by an engine that is alive and wrote lately (5 periods)."""
        return (self.running and _alive(self.pid)
                and (now - datetime.fromisoformat(self.updated_at)).total_seconds() < 5 * every_s)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class StatusView:
    engine: EngineSnapshot | None
    running: bool
    tasks: dict[TaskState, int]
    tasks_due: int
    next_due_at: float | None
    callbacks_waiting: int
    texts_waiting: int | None  # None: no text store yet


# ------------------------------------------------------------------ the views


class Views:
    """Every view of one data directory's stores."""

    def __init__(self, stores: Stores, data_dir: Path) -> None:
        self.stores = stores
        self.data_dir = data_dir

    def tasks(self, *, states: Iterable[TaskState] = (), risk: Risk | None = None,
              escalated_open: bool = False, fraud_type: str = "", since: float | None = None,
              until: float | None = None, after: str | None = None,
              limit: int = 50, finished_since: float | None = None) -> Page[Task]:
        found = self.stores.tasks.find(TaskQuery(
            tuple(states), risk, escalated_open, fraud_type, since, until, _parse_cursor(after),
            limit + 1, finished_since))
        more = len(found) > limit
        items = found[:limit]
        last = items[-1] if more else None
        return Page(items, _cursor(last.created_at, last.id) if last else None)

    def task(self, task_id: str) -> TaskDetail:
        task = self.stores.tasks.task(task_id)
        texts = self.stores.texts.of_task(task_id) if self.stores.exists("texts") else []
        changes = [Change(e.event, e.at, str(e.detail["by"]))
                   for e in self.stores.tasks.events(task_id) if e.detail.get("by")]
        return TaskDetail(task, merge_history(self.stores.tasks.attempts(task_id), texts), changes)

    def threads(self, state: str | None = None, after: str | None = None,
                limit: int = 50) -> Page[Thread]:
        if not self.stores.exists("texts"):
            return Page([], None)
        found = self.stores.texts.threads_page(state, _parse_cursor(after), limit + 1)
        last = found[limit - 1] if len(found) > limit else None
        return Page(found[:limit], _cursor(last.opened_at, last.id) if last else None)

    def callbacks(self, state: str | None = None, after: str | None = None,
                  limit: int = 50) -> Page[Callback]:
        found = self.stores.callbacks.page(state, _parse_cursor(after), limit + 1)
        last = found[limit - 1] if len(found) > limit else None
        return Page(found[:limit], _cursor(last.at, last.id) if last else None)

    def report(self, since: float, until: float) -> Report:
        """The center's figures for ``[since, until)`` (``report``, the console's reports)."""
        tasks = self.stores.tasks.created_between(since, until)
        attempts = self.stores.tasks.attempts_of([t.id for t in tasks])
        left = sum(since <= c.at < until for c in self.stores.callbacks.list())
        shared = self.stores.screened  # every node's, when the store is shared
        screened = shared.between(since, until) if shared is not None else read_events(
            self.data_dir / "events.jsonl", since, until, ("screened",))
        return build_report(since, until, tasks, attempts, screened, left,
                            self.text_figures(since, until))

    def text_figures(self, since: float, until: float) -> dict[str, Any]:
        """The SMS line's figures of a period ({} when there is no text store yet)."""
        if not self.stores.exists("texts"):
            return {}
        texts = self.stores.texts
        return text_figures(texts.threads_between(since, until),
                            [m for m in texts.between(since, until) if m.direction == "out"],
                            until)

    def status(self, now: float, every_s: float, tz: ZoneInfo) -> StatusView:
        snapshot = EngineSnapshot.read(self.data_dir)
        tasks = self.stores.tasks
        texts = self.stores.texts.count("waiting") if self.stores.exists("texts") else None
        return StatusView(
            engine=snapshot,
            running=snapshot is not None and snapshot.fresh(datetime.fromtimestamp(now, tz),
                                                            every_s),
            tasks=tasks.count_by_state(), tasks_due=tasks.due_count(now),
            next_due_at=tasks.next_due_at(),
            callbacks_waiting=len(self.stores.callbacks.list("waiting")), texts_waiting=texts)


def read_events(path: Path, since: float | None = None, until: float | None = None,
                kinds: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The engine's event file (one JSON record a line) in ``[since, until)``, of the given
    kinds (all by default); a line that is not a record is skipped."""
    wanted = set(kinds)
    if not path.exists():
        return []
    found = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if wanted and not any(f'"{kind}"' in line for kind in wanted):
                continue  # a cheap look before parsing: files grow to millions of lines
            try:
                record = json.loads(line)
                at = datetime.fromisoformat(record["at"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if wanted and record.get("event") not in wanted:
                continue
            if (since is None or at >= since) and (until is None or at < until):
                found.append(record)
    return found
