"""The task store: warning tasks, every attempt, and the history of events.

SQLite in WAL mode under ``engine.data_dir`` (``tasks.sqlite``), written with
``synchronous=FULL``: a request is accepted only once its transaction is on
disk, and every change of a task commits together with its event row. The
engine and the command line open the same file; the engine notices changes
from other processes with ``PRAGMA data_version``.

:class:`TaskStore` is the interface the engine and the commands use, so that a
PostgreSQL store can follow for several engine nodes; :class:`SqliteTaskStore`
is the one there is. The schema carries its version (``PRAGMA user_version``)
and :data:`MIGRATIONS` brings an older file up to date.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlitefile import Changes, open_file, transaction

from .model import OPEN, Attempt, Outcome, Task, TaskEvent, TaskState
from .policy import History, Plan
from .requests import Risk, WarningRequest

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteTaskStore", "StoreError", "Submitted", "TaskStore",
           "open_store"]

FILE_NAME = "tasks.sqlite"


class StoreError(Exception):
    """The store cannot do what was asked; ``str()`` is one sentence."""


@dataclass(frozen=True)
class Submitted:
    task: Task
    merged: bool  # joined a task already open for the number
    duplicate: bool  # this request id was accepted before: nothing changed

    def sentence(self) -> str:
        t = self.task
        if self.duplicate:
            return f"request already accepted as task {t.id} ({t.masked}, {t.state.value})"
        if self.merged:
            return (f"merged into task {t.id}, already open for {t.masked} "
                    f"(risk {t.risk.value}, cases {', '.join(t.case_ids) or 'none'})")
        return f"queued task {t.id} for {t.masked} ({t.fraud_type}, risk {t.risk.value})"


class TaskStore(Protocol):
    def submit(self, request: WarningRequest, now: float, not_before: float) -> Submitted: ...
    def submit_many(self, requests: Sequence[tuple[WarningRequest, float]],
                    now: float) -> list[Submitted]: ...
    def cancel(self, task_id: str, now: float, reason: str = "") -> Task: ...
    def task(self, task_id: str) -> Task: ...
    def tasks(self, states: Sequence[TaskState] = ()) -> list[Task]: ...
    def attempts(self, task_id: str) -> list[Attempt]: ...
    def created_between(self, since: float, until: float) -> list[Task]: ...
    def attempts_of(self, task_ids: Sequence[str]) -> dict[str, list[Attempt]]: ...
    def count_by_state(self) -> dict[TaskState, int]: ...
    def events(self, task_id: str | None = None, after: int = 0) -> list[TaskEvent]: ...
    def due(self, now: float, limit: int, skip_numbers: Sequence[str] = ()) -> list[Task]: ...
    def next_due_at(self) -> float | None: ...
    def due_count(self, now: float) -> int: ...
    def begin_attempt(self, task_id: str, call: str, worker: str, now: float) -> Attempt: ...
    def mark_answered(self, task_id: str, n: int, now: float) -> None: ...
    def mark_reached(self, task_id: str, n: int, how: str, now: float) -> None: ...
    def end_attempt(self, task_id: str, n: int, outcome: Outcome, status: int | None, digits: str,
                    amd: str, now: float, plan: Plan,
                    how: dict[str, Any] | None = None) -> Task: ...
    def recover(self, now: float, due_at: float | None = None) -> list[Attempt]: ...
    def history(self, task: Task) -> History: ...
    def changed(self) -> bool: ...
    def close(self) -> None: ...


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Statements one by one, inside the caller's transaction (``executescript`` commits)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(db, """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            number TEXT NOT NULL,
            dial TEXT NOT NULL,
            fraud_type TEXT NOT NULL,
            risk TEXT NOT NULL CHECK (risk IN ('high', 'normal')),
            state TEXT NOT NULL,
            case_ids TEXT NOT NULL DEFAULT '[]',
            note TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            next_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            reached INTEGER NOT NULL DEFAULT 0,
            busy_run INTEGER NOT NULL DEFAULT 0,
            trunk_run INTEGER NOT NULL DEFAULT 0,
            tries INTEGER NOT NULL DEFAULT 0,
            first_attempt_at REAL,
            escalated_at REAL,
            last_outcome TEXT,
            last_status INTEGER,
            finished_at REAL,
            reached_at REAL,
            reason TEXT NOT NULL DEFAULT ''
        );
        -- one open task per person
        CREATE UNIQUE INDEX tasks_open_number ON tasks (number)
            WHERE state IN ('queued', 'calling', 'waiting');
        CREATE INDEX tasks_due ON tasks (state, next_at);
        CREATE TABLE requests (
            request_id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks (id),
            at REAL NOT NULL
        );
        CREATE TABLE attempts (
            task_id TEXT NOT NULL REFERENCES tasks (id),
            n INTEGER NOT NULL,
            call TEXT NOT NULL,
            worker TEXT NOT NULL,
            started_at REAL NOT NULL,
            answered_at REAL,
            reached_at REAL,
            ended_at REAL,
            status INTEGER,
            outcome TEXT,
            digits TEXT NOT NULL DEFAULT '',
            amd TEXT NOT NULL DEFAULT '',
            recording TEXT NOT NULL DEFAULT '',
            counted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (task_id, n)
        );
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            task_id TEXT NOT NULL,
            event TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0,
            outcome TEXT,
            at REAL NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX events_task ON events (task_id, seq);
    """)


def _v2(db: sqlite3.Connection) -> None:
    """How each attempt's outcome was known (a status, a Q.850 cause, a tone, an
    announcement), as JSON."""
    db.execute("ALTER TABLE attempts ADD COLUMN how TEXT NOT NULL DEFAULT '{}'")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2]
"""``MIGRATIONS[i]`` brings a file of version ``i`` to ``i + 1``."""
SCHEMA_VERSION = len(MIGRATIONS)

_TASK_COLUMNS = ("id, number, dial, fraud_type, risk, state, case_ids, note, created_at, updated_at, "
                 "next_at, attempts, reached, busy_run, trunk_run, first_attempt_at, escalated_at, "
                 "last_outcome, last_status, finished_at, tries, reason, reached_at")
_OPEN = tuple(s.value for s in OPEN)


def open_store(data_dir: Path, recordings: Path | None = None) -> SqliteTaskStore:
    return SqliteTaskStore(data_dir / FILE_NAME, recordings)


class SqliteTaskStore:
    def __init__(self, path: Path, recordings: Path | None = None) -> None:
        self.path = path  # full phone numbers: for the owner only
        self.recordings = recordings
        if recordings is not None:
            recordings.mkdir(mode=0o700, parents=True, exist_ok=True)  # people's voices
        self.db = open_file(path, MIGRATIONS, "the task store", StoreError, foreign_keys=True)
        self.changed = Changes(self.db)
        """Another connection committed since the last call (cheap: no file read)."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One transaction, taken for writing at once (no lock upgrade deadlock)."""
        return transaction(self.db)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ requests

    def submit(self, request: WarningRequest, now: float, not_before: float) -> Submitted:
        with self._write():
            return self._submit(request, now, not_before)

    def submit_many(self, requests: Sequence[tuple[WarningRequest, float]],
                    now: float) -> list[Submitted]:
        """``(request, not_before)`` pairs in one transaction: all on disk, or none."""
        with self._write():
            return [self._submit(request, now, not_before) for request, not_before in requests]

    def _submit(self, request: WarningRequest, now: float, not_before: float) -> Submitted:
        db = self.db
        if request.request_id:
            row = db.execute("SELECT task_id FROM requests WHERE request_id = ?",
                             (request.request_id,)).fetchone()
            if row:
                return Submitted(self._task(row[0]), merged=False, duplicate=True)
        row = db.execute(f"SELECT id FROM tasks WHERE number = ? AND state IN {_OPEN}",
                         (request.number,)).fetchone()
        if row:
            task = self._merge(row[0], request, now)
            merged = True
        else:
            task = self._insert(request, now, not_before)
            merged = False
        if request.request_id:
            db.execute("INSERT INTO requests (request_id, task_id, at) VALUES (?, ?, ?)",
                       (request.request_id, task.id, now))
        return Submitted(task, merged=merged, duplicate=False)

    def _insert(self, request: WarningRequest, now: float, not_before: float) -> Task:
        task_id = request.request_id if request.request_id and not self._exists(request.request_id) \
            else self._new_id()
        self.db.execute(
            "INSERT INTO tasks (id, number, dial, fraud_type, risk, state, case_ids, note, source, "
            "created_at, updated_at, next_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            (task_id, request.number, request.dial, request.fraud_type, request.risk.value,
             json.dumps(list(request.case_ids)), request.note, request.source, now, now,
             max(now, not_before)))
        self._event(task_id, "queued", 0, None, now, {"risk": request.risk.value,
                                                      "fraud_type": request.fraud_type,
                                                      "source": request.source,
                                                      "case_ids": list(request.case_ids)})
        return self._task(task_id)

    def _merge(self, task_id: str, request: WarningRequest, now: float) -> Task:
        task = self._task(task_id)
        risk = Risk.HIGH if Risk.HIGH in (task.risk, request.risk) else Risk.NORMAL
        cases = list(dict.fromkeys([*task.case_ids, *request.case_ids]))
        fraud_type = request.fraud_type if task.fraud_type == "general" else task.fraud_type
        note = "\n".join(n for n in (task.note, request.note) if n)
        next_at = task.next_at
        if risk is Risk.HIGH and task.risk is Risk.NORMAL and task.state is TaskState.QUEUED:
            next_at = min(next_at or now, now)  # a normal task waiting out the night is urgent now
        self.db.execute(
            "UPDATE tasks SET risk = ?, case_ids = ?, fraud_type = ?, note = ?, next_at = ?, "
            "updated_at = ? WHERE id = ?",
            (risk.value, json.dumps(cases), fraud_type, note, next_at, now, task_id))
        self._event(task_id, "merged", task.tries, None, now,
                    {"risk": risk.value, "case_ids": cases, "source": request.source})
        return self._task(task_id)

    def _exists(self, task_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is not None

    def _new_id(self) -> str:
        while True:
            task_id = "t" + secrets.token_hex(4)
            if not self._exists(task_id):
                return task_id

    def cancel(self, task_id: str, now: float, reason: str = "") -> Task:
        with self._write():
            task = self._task(task_id)
            if not task.state.open:
                raise StoreError(f"task {task_id} is already {task.state.value}; nothing to cancel")
            self.db.execute(
                "UPDATE tasks SET state = 'cancelled', next_at = NULL, finished_at = ?, "
                "updated_at = ?, reason = ? WHERE id = ?",
                (now, now, reason or "cancelled by an operator", task_id))
            self._event(task_id, "cancelled", task.tries, None, now, {"reason": reason})
            return self._task(task_id)

    # ------------------------------------------------------------ reading

    def task(self, task_id: str) -> Task:
        return self._task(task_id)

    def _task(self, task_id: str) -> Task:
        row = self.db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise StoreError(f"there is no task {task_id}")
        return _task_of(row)

    def tasks(self, states: Sequence[TaskState] = ()) -> list[Task]:
        query = f"SELECT {_TASK_COLUMNS} FROM tasks"
        args: tuple[Any, ...] = ()
        if states:
            query += f" WHERE state IN ({', '.join('?' * len(states))})"
            args = tuple(s.value for s in states)
        return [_task_of(r) for r in self.db.execute(query + " ORDER BY created_at, rowid", args)]

    def created_between(self, since: float, until: float) -> list[Task]:
        """Tasks requested in ``[since, until)``, oldest first (for reports)."""
        rows = self.db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE created_at >= ? AND "
                               "created_at < ? ORDER BY created_at, rowid", (since, until))
        return [_task_of(r) for r in rows]

    def attempts_of(self, task_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        """Every attempt of many tasks at once, by task, in order."""
        out: dict[str, list[Attempt]] = {t: [] for t in task_ids}
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start:start + 500]
            rows = self.db.execute(
                "SELECT task_id, n, call, worker, started_at, answered_at, ended_at, status, "
                "outcome, digits, amd, recording, counted, reached_at, how FROM attempts WHERE task_id "
                f"IN ({', '.join('?' * len(chunk))}) ORDER BY task_id, n", tuple(chunk))
            for r in rows:
                out[r[0]].append(_attempt_of(r))
        return out

    def count_by_state(self) -> dict[TaskState, int]:
        counts = dict(self.db.execute("SELECT state, count(*) FROM tasks GROUP BY state"))
        return {state: int(counts.get(state.value, 0)) for state in TaskState}

    def attempts(self, task_id: str) -> list[Attempt]:
        rows = self.db.execute(
            "SELECT task_id, n, call, worker, started_at, answered_at, ended_at, status, outcome, "
            "digits, amd, recording, counted, reached_at, how FROM attempts WHERE task_id = ? "
            "ORDER BY n",
            (task_id,))
        return [_attempt_of(r) for r in rows]

    def events(self, task_id: str | None = None, after: int = 0) -> list[TaskEvent]:
        query = "SELECT seq, task_id, event, attempt, outcome, at, detail FROM events WHERE seq > ?"
        args: tuple[Any, ...] = (after,)
        if task_id is not None:
            query += " AND task_id = ?"
            args += (task_id,)
        return [TaskEvent(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
                for r in self.db.execute(query + " ORDER BY seq", args)]

    # ------------------------------------------------------------ dialing

    def due(self, now: float, limit: int, skip_numbers: Sequence[str] = ()) -> list[Task]:
        """Tasks to call now: high risk first, then the oldest (a burst of new requests never
        starves a task that waited longer)."""
        if limit <= 0:
            return []
        skip = tuple(skip_numbers)
        query = (f"SELECT {_TASK_COLUMNS} FROM tasks WHERE state IN ('queued', 'waiting') "
                 f"AND next_at <= ?")
        if skip:
            query += f" AND number NOT IN ({', '.join('?' * len(skip))})"
        query += " ORDER BY CASE risk WHEN 'high' THEN 0 ELSE 1 END, created_at, rowid LIMIT ?"
        return [_task_of(r) for r in self.db.execute(query, (now, *skip, limit))]

    def due_count(self, now: float) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM tasks WHERE state IN ('queued', 'waiting') "
                                   "AND next_at <= ?", (now,)).fetchone()[0])

    def next_due_at(self) -> float | None:
        row = self.db.execute(
            "SELECT MIN(next_at) FROM tasks WHERE state IN ('queued', 'waiting')").fetchone()
        return row[0] if row else None

    def begin_attempt(self, task_id: str, call: str, worker: str, now: float) -> Attempt:
        with self._write() as db:
            task = self._task(task_id)
            if task.state not in (TaskState.QUEUED, TaskState.WAITING):
                raise StoreError(f"task {task_id} is {task.state.value}, not due for a call")
            n = task.tries + 1
            recording = str(self.recordings / f"{task_id}-{n}.wav") if self.recordings else ""
            db.execute("INSERT INTO attempts (task_id, n, call, worker, started_at, recording) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (task_id, n, call, worker, now, recording))
            db.execute("UPDATE tasks SET state = 'calling', tries = ?, updated_at = ?, "
                       "first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ?",
                       (n, now, now, task_id))
            self._event(task_id, "attempt", n, None, now, {"worker": worker, "call": call})
        return self.attempts(task_id)[-1]

    def mark_answered(self, task_id: str, n: int, now: float) -> None:
        with self._write() as db:
            db.execute("UPDATE attempts SET answered_at = ? WHERE task_id = ? AND n = ?",
                       (now, task_id, n))
            self._event(task_id, "answered", n, None, now, {})

    def mark_reached(self, task_id: str, n: int, how: str, now: float) -> None:
        """The warning reached the person during attempt ``n`` (``acknowledged`` when the digit
        came, ``transferred`` when the officer answered); the task ends with the call."""
        with self._write() as db:
            db.execute("UPDATE attempts SET reached_at = COALESCE(reached_at, ?) "
                       "WHERE task_id = ? AND n = ?", (now, task_id, n))
            db.execute("UPDATE tasks SET reached_at = COALESCE(reached_at, ?), updated_at = ? "
                       "WHERE id = ?", (now, now, task_id))
            self._event(task_id, how, n, how, now, {})

    def end_attempt(self, task_id: str, n: int, outcome: Outcome, status: int | None, digits: str,
                    amd: str, now: float, plan: Plan,
                    how: dict[str, Any] | None = None) -> Task:
        """``how``: how the outcome was known (kept with the attempt and in its event)."""
        h = plan.history
        how = how or {}
        with self._write() as db:
            db.execute(
                "UPDATE attempts SET ended_at = ?, status = ?, outcome = ?, digits = ?, amd = ?, "
                "counted = ?, how = ? WHERE task_id = ? AND n = ?",
                (now, status, outcome.value, digits, amd, int(plan.counted),
                 json.dumps(how, ensure_ascii=False), task_id, n))
            task = self._task(task_id)
            if task.state is not TaskState.CALLING:  # cancelled while the call went on
                self._event(task_id, "attempt_ended", n, outcome.value, now,
                            {"status": status, "how": how})
                return task
            final = not plan.state.open
            db.execute(
                "UPDATE tasks SET state = ?, next_at = ?, attempts = ?, reached = ?, busy_run = ?, "
                "trunk_run = ?, last_outcome = ?, last_status = ?, updated_at = ?, "
                "escalated_at = CASE WHEN ? THEN ? ELSE escalated_at END, "
                "finished_at = ?, reason = ? WHERE id = ?",
                (plan.state.value, plan.next_at, h.attempts, h.reached, h.busy_run, h.trunk_run,
                 outcome.value, status, now, int(plan.escalate), now, now if final else None,
                 plan.reason, task_id))
            self._event(task_id, "attempt_ended", n, outcome.value, now,
                        {"status": status, "counted": plan.counted, "next_at": plan.next_at,
                         "how": how})
            if plan.escalate:
                self._event(task_id, "escalated", n, outcome.value, now,
                            {"case_ids": list(task.case_ids), "attempts": h.attempts})
            if plan.state in (TaskState.ACKNOWLEDGED, TaskState.TRANSFERRED) and not self._marked(
                    task_id, n):
                self._event(task_id, plan.state.value, n, outcome.value, now, {})
                db.execute("UPDATE tasks SET reached_at = COALESCE(reached_at, ?) WHERE id = ?",
                           (now, task_id))
            if plan.state in (TaskState.ACKNOWLEDGED, TaskState.TRANSFERRED):
                self._event(task_id, "completed", n, outcome.value, now, {})
            elif plan.state is TaskState.FAILED:
                self._event(task_id, "failed", n, outcome.value, now, {"reason": plan.reason})
            return self._task(task_id)

    def _marked(self, task_id: str, n: int) -> bool:
        row = self.db.execute("SELECT reached_at FROM attempts WHERE task_id = ? AND n = ?",
                              (task_id, n)).fetchone()
        return bool(row and row[0] is not None)

    def recover(self, now: float, due_at: float | None = None) -> list[Attempt]:
        """After a crash: attempts left open are interrupted; their tasks are due at ``due_at``
        (default at once)."""
        with self._write() as db:
            rows = db.execute("SELECT task_id, n FROM attempts WHERE ended_at IS NULL").fetchall()
            for task_id, n in rows:
                db.execute("UPDATE attempts SET ended_at = ?, outcome = 'interrupted', counted = 0, "
                           "how = ? WHERE task_id = ? AND n = ?",
                           (now, json.dumps({"by": "engine_stopped"}), task_id, n))
                self._event(task_id, "attempt_ended", n, Outcome.INTERRUPTED.value, now,
                            {"reason": "the engine stopped during the call"})
            db.execute("UPDATE tasks SET state = 'waiting', next_at = ?, updated_at = ? "
                       "WHERE state = 'calling'", (now if due_at is None else due_at, now))
        return [a for task_id, n in rows for a in self.attempts(task_id) if a.n == n]

    def history(self, task: Task) -> History:
        return History(task.risk, task.first_attempt_at, task.attempts, task.reached, task.busy_run,
                       task.trunk_run, task.escalated_at is not None)

    def _event(self, task_id: str, event: str, attempt: int, outcome: str | None, at: float,
               detail: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO events (task_id, event, attempt, outcome, at, detail) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (task_id, event, attempt, outcome, at, json.dumps(detail, ensure_ascii=False)))


def _task_of(row: Sequence[Any]) -> Task:
    (task_id, number, dial, fraud_type, risk, state, case_ids, note, created_at, updated_at, next_at,
     attempts, reached, busy_run, trunk_run, first, escalated, last_outcome, last_status,
     finished, tries, reason, reached_at) = row
    return Task(task_id, number, dial, fraud_type, Risk(risk), TaskState(state),
                tuple(json.loads(case_ids)), note, created_at, updated_at, next_at, attempts,
                reached, busy_run, trunk_run, first, escalated,
                Outcome(last_outcome) if last_outcome else None, last_status, finished, tries,
                reason, reached_at)


def _attempt_of(row: Sequence[Any]) -> Attempt:
    (task_id, n, call, worker, started, answered, ended, status, outcome, digits, amd, recording,
     counted, reached_at, how) = row
    return Attempt(task_id, n, call, worker, started, answered, ended, status,
                   Outcome(outcome) if outcome else None, digits, amd, recording, bool(counted),
                   reached_at, json.loads(how))
