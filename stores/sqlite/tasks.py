"""The task store on SQLite: warning tasks, every attempt, and the history of events.

One file under ``engine.data_dir`` (``tasks.sqlite``), WAL, ``synchronous=FULL``: a request
is accepted only once its transaction is on disk, and every change of a task commits
together with its event rows. What a merge does, which events an attempt's end writes and
where a task may move are :mod:`dialer.history`'s rules, not this file's. Due work is taken
by :meth:`SqliteTaskStore.claim` in one write transaction (SQLite serialises writers, so two
processes never claim one task); an engine that stops recovers its own node's open attempts.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dialer.history import TransitionError, attempt_ended, check, merge
from dialer.model import OPEN, Attempt, Outcome, Task, TaskEvent, TaskState
from dialer.policy import Plan
from dialer.requests import Risk, WarningRequest
from sqlitefile import open_file, transaction

from ..errors import NotFound, Refused, StoreError, StoreUnavailable
from ..model import Claim, Submitted, TaskQuery
from ..rows import ATTEMPT_COLUMNS, TASK_COLUMNS, attempt_of, find_sql, task_of
from ..watch import SqliteWatch

__all__ = ["FILE_NAME", "MIGRATIONS", "SqliteTaskStore"]

FILE_NAME = "tasks.sqlite"


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


def _v3(db: sqlite3.Connection) -> None:
    """Which engine node placed each attempt (recovery after a crash is per node); the
    listing of tasks newest first, page by page."""
    db.execute("ALTER TABLE attempts ADD COLUMN node TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX tasks_created ON tasks (created_at, id)")


def _v4(db: sqlite3.Connection) -> None:
    """Who at a station took an escalated task over, and the officer's note about it."""
    db.execute("ALTER TABLE tasks ADD COLUMN assigned_to TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE tasks ADD COLUMN assign_note TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX tasks_finished ON tasks (finished_at)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4]
"""``MIGRATIONS[i]`` brings a file of version ``i`` to ``i + 1``."""

_OPEN = tuple(s.value for s in OPEN)
_DUE = "state IN ('queued', 'waiting') AND next_at <= ?"
_PRIORITY = "CASE risk WHEN 'high' THEN 0 ELSE 1 END, created_at, rowid"


class SqliteTaskStore:
    def __init__(self, path: Path, recordings: Path | None = None) -> None:
        self.path = path  # full phone numbers: for the owner only
        self.recordings = recordings
        if recordings is not None:
            recordings.mkdir(mode=0o700, parents=True, exist_ok=True)  # people's voices
        self.db = open_file(path, MIGRATIONS, "the task store", StoreError, foreign_keys=True)
        self.watch = SqliteWatch(self.db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, taken for writing at once (no lock upgrade deadlock); a file that
        cannot be written now is :class:`StoreUnavailable`."""
        try:
            with transaction(self.db) as db:
                yield db
        except TransitionError as exc:
            raise Refused(str(exc)) from None
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the task store {self.path} cannot be written now: "
                                   f"{exc}") from None
        self.watch.touched()

    def close(self) -> None:
        self.watch.close()
        self.db.close()

    # ------------------------------------------------------------ requests

    def submit(self, request: WarningRequest, now: float, not_before: float,
               by: str = "") -> Submitted:
        with self._write():
            return self._submit(request, now, not_before, by)

    def submit_many(self, requests: Sequence[tuple[WarningRequest, float]], now: float,
                    by: str = "") -> list[Submitted]:
        """``(request, not_before)`` pairs in one transaction: all on disk, or none."""
        with self._write():
            return [self._submit(request, now, not_before, by) for request, not_before in requests]

    def _submit(self, request: WarningRequest, now: float, not_before: float,
                by: str) -> Submitted:
        db = self.db
        if request.request_id:
            row = db.execute("SELECT task_id FROM requests WHERE request_id = ?",
                             (request.request_id,)).fetchone()
            if row:
                return Submitted(self._task(row[0]), merged=False, duplicate=True)
        row = db.execute(f"SELECT id FROM tasks WHERE number = ? AND state IN {_OPEN}",
                         (request.number,)).fetchone()
        if row:
            task = self._merge(row[0], request, now, by)
            merged = True
        else:
            task = self._insert(request, now, not_before, by)
            merged = False
        if request.request_id:
            db.execute("INSERT INTO requests (request_id, task_id, at) VALUES (?, ?, ?)",
                       (request.request_id, task.id, now))
        return Submitted(task, merged=merged, duplicate=False)

    def _insert(self, request: WarningRequest, now: float, not_before: float, by: str) -> Task:
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
                                                      "case_ids": list(request.case_ids)}, by)
        return self._task(task_id)

    def _merge(self, task_id: str, request: WarningRequest, now: float, by: str) -> Task:
        task = self._task(task_id)
        merged = merge(task, request, now)
        self.db.execute(
            "UPDATE tasks SET risk = ?, case_ids = ?, fraud_type = ?, note = ?, next_at = ?, "
            "updated_at = ? WHERE id = ?",
            (merged.risk.value, json.dumps(list(merged.case_ids)), merged.fraud_type, merged.note,
             merged.next_at, now, task_id))
        self._event(task_id, "merged", task.tries, None, now,
                    {"risk": merged.risk.value, "case_ids": list(merged.case_ids),
                     "source": request.source}, by)
        return self._task(task_id)

    def _exists(self, task_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is not None

    def _new_id(self) -> str:
        while True:
            task_id = "t" + secrets.token_hex(4)
            if not self._exists(task_id):
                return task_id

    # ------------------------------------------------------------ operators' changes

    def cancel(self, task_id: str, now: float, reason: str = "", by: str = "") -> Task:
        with self._write():
            task = self._task(task_id)
            check(task, TaskState.CANCELLED, "cancel")
            self.db.execute(
                "UPDATE tasks SET state = 'cancelled', next_at = NULL, finished_at = ?, "
                "updated_at = ?, reason = ? WHERE id = ?",
                (now, now, reason or "cancelled by an operator", task_id))
            self._event(task_id, "cancelled", task.tries, None, now, {"reason": reason}, by)
            return self._task(task_id)

    def requeue(self, task_id: str, now: float, by: str = "") -> Task:
        """Call again now: a waiting task's next attempt is due at once."""
        with self._write():
            task = self._task(task_id)
            if task.state is TaskState.QUEUED:
                self.db.execute("UPDATE tasks SET next_at = ?, updated_at = ? WHERE id = ?",
                                (now, now, task_id))
            else:
                check(task, TaskState.QUEUED, "be called again")
                self.db.execute("UPDATE tasks SET state = 'queued', next_at = ?, updated_at = ? "
                                "WHERE id = ?", (now, now, task_id))
            self._event(task_id, "requeued", task.tries, None, now, {}, by)
            return self._task(task_id)

    def bring_forward(self, task_id: str, at: float, now: float, by: str = "") -> Task | None:
        with self._write():
            task = self._task(task_id)
            if task.state is not TaskState.WAITING or task.next_at is None or task.next_at <= at:
                return None
            self.db.execute("UPDATE tasks SET next_at = ?, updated_at = ? WHERE id = ?",
                            (at, now, task_id))
            self._event(task_id, "rescheduled", task.tries, None, now,
                        {"next_at": at, "was": task.next_at}, by)
            return self._task(task_id)

    def assign(self, task_id: str, now: float, assignee: str, note: str, by: str = "") -> Task:
        """Who takes an open task over (a station, an officer) and a note about it."""
        with self._write():
            task = self._task(task_id)
            if not task.state.open:
                raise Refused(f"task {task_id} is already {task.state.value}; nothing to assign")
            self.db.execute("UPDATE tasks SET assigned_to = ?, assign_note = ?, updated_at = ? "
                            "WHERE id = ?", (assignee, note, now, task_id))
            self._event(task_id, "assigned", task.tries, None, now,
                        {"assigned_to": assignee, "note": note}, by)
            return self._task(task_id)

    def raise_risk(self, task_id: str, now: float, by: str = "") -> Task:
        """High risk: calls at any hour, first in line; a task waiting out the night is due."""
        with self._write():
            task = self._task(task_id)
            if not task.state.open:
                raise Refused(f"task {task_id} is already {task.state.value}; its risk stays")
            if task.risk is Risk.HIGH:
                raise Refused(f"task {task_id} is high risk already")
            next_at = task.next_at
            if task.state is not TaskState.CALLING and next_at is not None and next_at > now:
                next_at = now
            self.db.execute("UPDATE tasks SET risk = 'high', next_at = ?, updated_at = ? "
                            "WHERE id = ?", (next_at, now, task_id))
            self._event(task_id, "risk_raised", task.tries, None, now, {"risk": "high"}, by)
            return self._task(task_id)

    # ------------------------------------------------------------ reading

    def task(self, task_id: str) -> Task:
        return self._task(task_id)

    def _task(self, task_id: str) -> Task:
        row = self.db.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise NotFound(f"there is no task {task_id}")
        return task_of(row)

    def tasks(self, states: Sequence[TaskState] = ()) -> list[Task]:
        query = f"SELECT {TASK_COLUMNS} FROM tasks"
        args: tuple[Any, ...] = ()
        if states:
            query += f" WHERE state IN ({', '.join('?' * len(states))})"
            args = tuple(s.value for s in states)
        return [task_of(r) for r in self.db.execute(query + " ORDER BY created_at, rowid", args)]

    def find(self, query: TaskQuery) -> list[Task]:
        """Tasks as ``query`` selects them, newest first, ``query.limit`` after its cursor."""
        statement, args = find_sql(query, "?")
        return [task_of(r) for r in self.db.execute(statement, args)]

    def created_between(self, since: float, until: float) -> list[Task]:
        """Tasks requested in ``[since, until)``, oldest first (for reports)."""
        rows = self.db.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE created_at >= ? AND "
                               "created_at < ? ORDER BY created_at, rowid", (since, until))
        return [task_of(r) for r in rows]

    def attempts_of(self, task_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        """Every attempt of many tasks at once, by task, in order."""
        out: dict[str, list[Attempt]] = {t: [] for t in task_ids}
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start:start + 500]
            rows = self.db.execute(
                f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id "
                f"IN ({', '.join('?' * len(chunk))}) ORDER BY task_id, n", tuple(chunk))
            for r in rows:
                out[r[0]].append(attempt_of(r))
        return out

    def count_by_state(self) -> dict[TaskState, int]:
        counts = dict(self.db.execute("SELECT state, count(*) FROM tasks GROUP BY state"))
        return {state: int(counts.get(state.value, 0)) for state in TaskState}

    def attempts(self, task_id: str) -> list[Attempt]:
        rows = self.db.execute(f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = ? "
                               "ORDER BY n", (task_id,))
        return [attempt_of(r) for r in rows]

    def events(self, task_id: str | None = None, after: int = 0) -> list[TaskEvent]:
        query = "SELECT seq, task_id, event, attempt, outcome, at, detail FROM events WHERE seq > ?"
        args: tuple[Any, ...] = (after,)
        if task_id is not None:
            query += " AND task_id = ?"
            args += (task_id,)
        return [TaskEvent(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
                for r in self.db.execute(query + " ORDER BY seq", args)]

    def last_event_seq(self) -> int:
        return int(self.db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    # ------------------------------------------------------------ dialing

    def claim(self, now: float, node: str, worker: str, limit: int = 1,
              only: str | None = None) -> list[Claim]:
        """Take up to ``limit`` due tasks for a call by ``node``'s ``worker``: high risk first,
        then the oldest (a burst of new requests never starves a task that waited longer);
        ``only``: that task, if it is due. Each is ``calling`` with its attempt on disk before
        this returns; no other claim, in this process or another, can take it."""
        if limit <= 0:
            return []
        where, args = (f"{_DUE} AND id = ?", (now, only)) if only else (_DUE, (now,))
        if self.db.execute(f"SELECT 1 FROM tasks WHERE {where} LIMIT 1", args).fetchone() is None:
            return []  # nothing due: no write, so nobody watching the store is woken for nothing
        with self._write() as db:
            rows = db.execute(f"SELECT id FROM tasks WHERE {where} ORDER BY {_PRIORITY} LIMIT ?",
                              (*args, limit)).fetchall()
            for (task_id,) in rows:
                self._begin(task_id, node, worker, now)
        return [self._claim_of(task_id) for (task_id,) in rows]

    def _begin(self, task_id: str, node: str, worker: str, now: float) -> None:
        task = self._task(task_id)
        check(task, TaskState.CALLING, "be called")
        n = task.tries + 1
        call = f"{task_id}-{n}"
        recording = str(self.recordings / f"{task_id}-{n}.wav") if self.recordings else ""
        self.db.execute("INSERT INTO attempts (task_id, n, call, worker, started_at, recording, "
                        "node) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (task_id, n, call, worker, now, recording, node))
        self.db.execute("UPDATE tasks SET state = 'calling', tries = ?, updated_at = ?, "
                        "first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ?",
                        (n, now, now, task_id))
        self._event(task_id, "attempt", n, None, now,
                    {"worker": worker, "call": call, **({"node": node} if node else {})})

    def _claim_of(self, task_id: str) -> Claim:
        return Claim(self._task(task_id), self.attempts(task_id)[-1])

    def due_count(self, now: float) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM tasks WHERE {_DUE}", (now,)).fetchone()[0])

    def next_due_at(self) -> float | None:
        row = self.db.execute(
            "SELECT MIN(next_at) FROM tasks WHERE state IN ('queued', 'waiting')").fetchone()
        return row[0] if row else None

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
                    amd: str, now: float, plan: Plan, how: dict[str, Any] | None = None) -> Task:
        """``how``: how the outcome was known (kept with the attempt and in its event)."""
        h, how = plan.history, how or {}
        with self._write() as db:
            db.execute(
                "UPDATE attempts SET ended_at = ?, status = ?, outcome = ?, digits = ?, amd = ?, "
                "counted = ?, how = ? WHERE task_id = ? AND n = ?",
                (now, status, outcome.value, digits, amd, int(plan.counted),
                 json.dumps(how, ensure_ascii=False), task_id, n))
            task = self._task(task_id)
            events = attempt_ended(task, n, outcome, status, plan, how, self._marked(task_id, n))
            if task.state is TaskState.CALLING:
                final = not plan.state.open
                db.execute(
                    "UPDATE tasks SET state = ?, next_at = ?, attempts = ?, reached = ?, "
                    "busy_run = ?, trunk_run = ?, last_outcome = ?, last_status = ?, "
                    "updated_at = ?, escalated_at = CASE WHEN ? THEN ? ELSE escalated_at END, "
                    "finished_at = ?, reason = ? WHERE id = ?",
                    (plan.state.value, plan.next_at, h.attempts, h.reached, h.busy_run,
                     h.trunk_run, outcome.value, status, now, int(plan.escalate), now,
                     now if final else None, plan.reason, task_id))
                if plan.state in (TaskState.ACKNOWLEDGED, TaskState.TRANSFERRED):
                    db.execute("UPDATE tasks SET reached_at = COALESCE(reached_at, ?) WHERE id = ?",
                               (now, task_id))
            for event in events:
                self._event(task_id, event.event, event.attempt, event.outcome, now, event.detail)
            return self._task(task_id)

    def _marked(self, task_id: str, n: int) -> bool:
        row = self.db.execute("SELECT reached_at FROM attempts WHERE task_id = ? AND n = ?",
                              (task_id, n)).fetchone()
        return bool(row and row[0] is not None)

    def recover(self, node: str, now: float, due_at: float | None = None) -> list[Attempt]:
        """After a stop of ``node``: its attempts left open (and those of no node, written
        before nodes were recorded) are interrupted, not counted; their tasks are due at
        ``due_at`` (default at once). Other nodes' calls are left alone."""
        with self._write() as db:
            rows = db.execute("SELECT task_id, n FROM attempts WHERE ended_at IS NULL AND "
                              "node IN (?, '')", (node,)).fetchall()
            for task_id, n in rows:
                db.execute("UPDATE attempts SET ended_at = ?, outcome = 'interrupted', "
                           "counted = 0, how = ? WHERE task_id = ? AND n = ?",
                           (now, json.dumps({"by": "engine_stopped"}), task_id, n))
                self._event(task_id, "attempt_ended", n, Outcome.INTERRUPTED.value, now,
                            {"reason": "the engine stopped during the call"})
                db.execute("UPDATE tasks SET state = 'waiting', next_at = ?, updated_at = ? "
                           "WHERE id = ? AND state = 'calling'",
                           (now if due_at is None else due_at, now, task_id))
        return [a for task_id, n in rows for a in self.attempts(task_id) if a.n == n]

    def _event(self, task_id: str, event: str, attempt: int, outcome: str | None, at: float,
               detail: dict[str, Any], by: str = "") -> None:
        if by:
            detail = {**detail, "by": by}
        self.db.execute("INSERT INTO events (task_id, event, attempt, outcome, at, detail) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (task_id, event, attempt, outcome, at, json.dumps(detail, ensure_ascii=False)))
