"""The task store on PostgreSQL: the SQLite store's contract, shared by every node.

The rules are :mod:`dialer.history`'s, as on SQLite. What the database adds:

- **A claim is one node's.** Due tasks are taken with ``FOR UPDATE SKIP LOCKED``: nodes
  claiming at once each get different tasks and never wait for one another.
- **A number is in one call at once**, whichever node dials: a unique index over the attempts
  that have not ended (``attempts_live_number``), beside the one open task per number.
- **Events in commit order.** A task's events are written last in each transaction, under a
  transaction-wide advisory lock, so their sequence numbers are handed out in the order
  transactions commit: a reader that keeps the last number it saw (the MQTT outbox's copy)
  never misses an event committed after it looked. No transaction waits for a row while
  holding that lock, so it cannot deadlock.
- **Fencing.** Claims and the end of an attempt carry the node's lease generation when the
  engine has one (:mod:`stores.postgres.leases`); an attempt whose node lost its lease
  meanwhile is not touched by the node that comes back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dialer.history import TransitionError, attempt_ended, check, merge
from dialer.model import Attempt, Outcome, Task, TaskEvent, TaskState
from dialer.policy import Plan
from dialer.requests import Risk, WarningRequest

from ..errors import NotFound, Refused, StoreUnavailable
from ..model import Claim, Submitted, TaskQuery, TrunkLimits
from ..rows import ATTEMPT_COLUMNS, TASK_COLUMNS, attempt_of, find_sql, task_of
from .db import Database, PgWatch, _lock_key, notify

__all__ = ["MIGRATIONS", "PgTaskStore"]

STORE = "tasks"
WHAT = "the task store"

MIGRATIONS: list[str] = ["""
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        number TEXT NOT NULL,
        dial TEXT NOT NULL,
        fraud_type TEXT NOT NULL,
        risk TEXT NOT NULL CHECK (risk IN ('high', 'normal')),
        state TEXT NOT NULL,
        case_ids JSONB NOT NULL DEFAULT '[]',
        note TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        next_at DOUBLE PRECISION,
        attempts INTEGER NOT NULL DEFAULT 0,
        reached INTEGER NOT NULL DEFAULT 0,
        busy_run INTEGER NOT NULL DEFAULT 0,
        trunk_run INTEGER NOT NULL DEFAULT 0,
        tries INTEGER NOT NULL DEFAULT 0,
        first_attempt_at DOUBLE PRECISION,
        escalated_at DOUBLE PRECISION,
        last_outcome TEXT,
        last_status INTEGER,
        finished_at DOUBLE PRECISION,
        reached_at DOUBLE PRECISION,
        reason TEXT NOT NULL DEFAULT '',
        assigned_to TEXT NOT NULL DEFAULT '',
        assign_note TEXT NOT NULL DEFAULT '',
        ord BIGSERIAL
    );
    CREATE UNIQUE INDEX tasks_open_number ON tasks (number)
        WHERE state IN ('queued', 'calling', 'waiting');
    CREATE INDEX tasks_due ON tasks (next_at) WHERE state IN ('queued', 'waiting');
    CREATE INDEX tasks_state ON tasks (state);
    CREATE INDEX tasks_created ON tasks (created_at, id);
    CREATE INDEX tasks_finished ON tasks (finished_at);
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL REFERENCES tasks (id),
        at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE attempts (
        task_id TEXT NOT NULL REFERENCES tasks (id),
        n INTEGER NOT NULL,
        number TEXT NOT NULL,
        call TEXT NOT NULL,
        worker TEXT NOT NULL,
        node TEXT NOT NULL DEFAULT '',
        lease BIGINT NOT NULL DEFAULT 0,
        started_at DOUBLE PRECISION NOT NULL,
        answered_at DOUBLE PRECISION,
        reached_at DOUBLE PRECISION,
        ended_at DOUBLE PRECISION,
        status INTEGER,
        outcome TEXT,
        digits TEXT NOT NULL DEFAULT '',
        amd TEXT NOT NULL DEFAULT '',
        recording TEXT NOT NULL DEFAULT '',
        counted BOOLEAN NOT NULL DEFAULT FALSE,
        how JSONB NOT NULL DEFAULT '{}',
        PRIMARY KEY (task_id, n)
    );
    -- one call at once per number, whichever node places it
    CREATE UNIQUE INDEX attempts_live_number ON attempts (number) WHERE ended_at IS NULL;
    CREATE INDEX attempts_live_node ON attempts (node) WHERE ended_at IS NULL;
    CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY,
        task_id TEXT NOT NULL,
        event TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        outcome TEXT,
        at DOUBLE PRECISION NOT NULL,
        detail JSONB NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_task ON events (task_id, seq)
""", """
    CREATE TABLE nodes (
        name TEXT PRIMARY KEY,
        generation BIGINT NOT NULL,
        state TEXT NOT NULL,
        lease_s DOUBLE PRECISION NOT NULL,
        renewed_at TIMESTAMPTZ NOT NULL,
        joined_at TIMESTAMPTZ NOT NULL,
        beats BIGINT NOT NULL DEFAULT 0,
        info JSONB NOT NULL DEFAULT '{}'
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        generation BIGINT NOT NULL,
        lease_s DOUBLE PRECISION NOT NULL,
        renewed_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE trunk (
        name TEXT PRIMARY KEY,
        next_setup_at DOUBLE PRECISION NOT NULL
    )
"""]

_OPEN_SQL = "('queued', 'calling', 'waiting')"
_DUE = "state IN ('queued', 'waiting') AND next_at <= %s"
_PRIORITY = "CASE risk WHEN 'high' THEN 0 ELSE 1 END, created_at, ord"
EVENTS_LOCK = _lock_key("task events")
FULL_RECHECK_S = 0.2
"""Every trunk channel of the cluster in use: look again this soon (an end also wakes)."""

Event = tuple[str, str, int, "str | None", float, dict[str, Any]]


class _Tx:
    """One transaction of the task store: its cursor and the events it writes at the end."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self.cur = cur
        self.events: list[Event] = []
        self.quiet = False
        """Nothing worth telling the listeners (a claim that took nothing): no NOTIFY, or every
        node would wake, claim nothing and wake the others again."""

    def execute(self, statement: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.cur.execute(statement, args)  # type: ignore[arg-type]

    def event(self, task_id: str, event: str, attempt: int, outcome: str | None, at: float,
              detail: dict[str, Any], by: str = "") -> None:
        if by:
            detail = {**detail, "by": by}
        self.events.append((task_id, event, attempt, outcome, at, detail))


class PgTaskStore:
    def __init__(self, db: Database, recordings: Path | None = None) -> None:
        self.db = db
        self.recordings = recordings
        if recordings is not None:
            recordings.mkdir(mode=0o700, parents=True, exist_ok=True)
        db.migrate(STORE, MIGRATIONS)
        self.watch: PgWatch = db.watch(STORE)
        self.lease = 0  # the node's lease generation, when the engine holds one
        self.trunk: TrunkLimits | None = None
        self.trunk_free_at = 0.0  # when the trunk refused a claim: when to look again

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        try:
            with self.db.transaction(WHAT) as cur:
                tx = _Tx(cur)
                yield tx
                if tx.events:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
                    cur.executemany(
                        "INSERT INTO events (task_id, event, attempt, outcome, at, detail) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        [(t, e, a, o, at, Jsonb(d)) for t, e, a, o, at, d in tx.events])
                if not tx.quiet:
                    notify(cur, STORE)
        except TransitionError as exc:
            raise Refused(str(exc)) from None
        if not tx.quiet:
            self.watch.touched()

    def _rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(WHAT, statement, args)

    def close(self) -> None:
        """The connection is the :class:`Database`'s, closed with it."""

    # ------------------------------------------------------------ requests

    def submit(self, request: WarningRequest, now: float, not_before: float,
               by: str = "") -> Submitted:
        with self._write() as tx:
            return self._submit(tx, request, now, not_before, by)

    def submit_many(self, requests: Sequence[tuple[WarningRequest, float]], now: float,
                    by: str = "") -> list[Submitted]:
        with self._write() as tx:
            for number in sorted({request.number for request, _ in requests}):
                # every number's lock first, in one order: two lists never wait on each other
                tx.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("number:" + number),))
            return [self._submit(tx, request, now, not_before, by)
                    for request, not_before in requests]

    def _submit(self, tx: _Tx, request: WarningRequest, now: float, not_before: float,
                by: str) -> Submitted:
        # one request at a time per number, cluster-wide: the merge reads what it changes
        tx.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("number:" + request.number),))
        if request.request_id:
            row = tx.execute("SELECT task_id FROM requests WHERE request_id = %s",
                             (request.request_id,)).fetchone()
            if row:
                return Submitted(self._task(row[0], tx), merged=False, duplicate=True)
        row = tx.execute(f"SELECT id FROM tasks WHERE number = %s AND state IN {_OPEN_SQL} "
                         "FOR UPDATE", (request.number,)).fetchone()
        if row:
            task = self._merge(tx, row[0], request, now, by)
            merged = True
        else:
            task = self._insert(tx, request, now, not_before, by)
            merged = False
        if request.request_id:
            tx.execute("INSERT INTO requests (request_id, task_id, at) VALUES (%s, %s, %s)",
                       (request.request_id, task.id, now))
        return Submitted(task, merged=merged, duplicate=False)

    def _insert(self, tx: _Tx, request: WarningRequest, now: float, not_before: float,
                by: str) -> Task:
        task_id = request.request_id if request.request_id and not self._exists(
            tx, request.request_id) else self._new_id(tx)
        tx.execute(
            "INSERT INTO tasks (id, number, dial, fraud_type, risk, state, case_ids, note, source, "
            "created_at, updated_at, next_at) VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s, "
            "%s, %s, %s)",
            (task_id, request.number, request.dial, request.fraud_type, request.risk.value,
             Jsonb(list(request.case_ids)), request.note, request.source, now, now,
             max(now, not_before)))
        tx.event(task_id, "queued", 0, None, now, {"risk": request.risk.value,
                                                   "fraud_type": request.fraud_type,
                                                   "source": request.source,
                                                   "case_ids": list(request.case_ids)}, by)
        return self._task(task_id, tx)

    def _merge(self, tx: _Tx, task_id: str, request: WarningRequest, now: float, by: str) -> Task:
        task = self._task(task_id, tx)
        merged = merge(task, request, now)
        tx.execute(
            "UPDATE tasks SET risk = %s, case_ids = %s, fraud_type = %s, note = %s, next_at = %s, "
            "updated_at = %s WHERE id = %s",
            (merged.risk.value, Jsonb(list(merged.case_ids)), merged.fraud_type, merged.note,
             merged.next_at, now, task_id))
        tx.event(task_id, "merged", task.tries, None, now,
                 {"risk": merged.risk.value, "case_ids": list(merged.case_ids),
                  "source": request.source}, by)
        return self._task(task_id, tx)

    def _exists(self, tx: _Tx, task_id: str) -> bool:
        return tx.execute("SELECT 1 FROM tasks WHERE id = %s", (task_id,)).fetchone() is not None

    def _new_id(self, tx: _Tx) -> str:
        while True:
            task_id = "t" + secrets.token_hex(4)
            if not self._exists(tx, task_id):
                return task_id

    # ------------------------------------------------------------ operators' changes

    def _locked(self, tx: _Tx, task_id: str) -> Task:
        return self._task(task_id, tx, lock=True)

    def cancel(self, task_id: str, now: float, reason: str = "", by: str = "") -> Task:
        with self._write() as tx:
            task = self._locked(tx, task_id)
            check(task, TaskState.CANCELLED, "cancel")
            tx.execute("UPDATE tasks SET state = 'cancelled', next_at = NULL, finished_at = %s, "
                       "updated_at = %s, reason = %s WHERE id = %s",
                       (now, now, reason or "cancelled by an operator", task_id))
            tx.event(task_id, "cancelled", task.tries, None, now, {"reason": reason}, by)
            return self._task(task_id, tx)

    def requeue(self, task_id: str, now: float, by: str = "") -> Task:
        with self._write() as tx:
            task = self._locked(tx, task_id)
            if task.state is TaskState.QUEUED:
                tx.execute("UPDATE tasks SET next_at = %s, updated_at = %s WHERE id = %s",
                           (now, now, task_id))
            else:
                check(task, TaskState.QUEUED, "be called again")
                tx.execute("UPDATE tasks SET state = 'queued', next_at = %s, updated_at = %s "
                           "WHERE id = %s", (now, now, task_id))
            tx.event(task_id, "requeued", task.tries, None, now, {}, by)
            return self._task(task_id, tx)

    def bring_forward(self, task_id: str, at: float, now: float, by: str = "") -> Task | None:
        with self._write() as tx:
            task = self._locked(tx, task_id)
            if task.state is not TaskState.WAITING or task.next_at is None or task.next_at <= at:
                return None
            tx.execute("UPDATE tasks SET next_at = %s, updated_at = %s WHERE id = %s",
                       (at, now, task_id))
            tx.event(task_id, "rescheduled", task.tries, None, now,
                     {"next_at": at, "was": task.next_at}, by)
            return self._task(task_id, tx)

    def assign(self, task_id: str, now: float, assignee: str, note: str, by: str = "") -> Task:
        with self._write() as tx:
            task = self._locked(tx, task_id)
            if not task.state.open:
                raise Refused(f"task {task_id} is already {task.state.value}; nothing to assign")
            tx.execute("UPDATE tasks SET assigned_to = %s, assign_note = %s, updated_at = %s "
                       "WHERE id = %s", (assignee, note, now, task_id))
            tx.event(task_id, "assigned", task.tries, None, now,
                     {"assigned_to": assignee, "note": note}, by)
            return self._task(task_id, tx)

    def raise_risk(self, task_id: str, now: float, by: str = "") -> Task:
        with self._write() as tx:
            task = self._locked(tx, task_id)
            if not task.state.open:
                raise Refused(f"task {task_id} is already {task.state.value}; its risk stays")
            if task.risk is Risk.HIGH:
                raise Refused(f"task {task_id} is high risk already")
            next_at = task.next_at
            if task.state is not TaskState.CALLING and next_at is not None and next_at > now:
                next_at = now
            tx.execute("UPDATE tasks SET risk = 'high', next_at = %s, updated_at = %s "
                       "WHERE id = %s", (next_at, now, task_id))
            tx.event(task_id, "risk_raised", task.tries, None, now, {"risk": "high"}, by)
            return self._task(task_id, tx)

    # ------------------------------------------------------------ reading

    def task(self, task_id: str) -> Task:
        return self._task(task_id)

    def _task(self, task_id: str, tx: _Tx | None = None, lock: bool = False) -> Task:
        statement = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = %s" + (
            " FOR UPDATE" if lock else "")
        if tx is not None:
            row = tx.execute(statement, (task_id,)).fetchone()
        else:
            rows = self._rows(statement, (task_id,))
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"there is no task {task_id}")
        return task_of_row(row)

    def tasks(self, states: Sequence[TaskState] = ()) -> list[Task]:
        statement = f"SELECT {TASK_COLUMNS} FROM tasks"
        args: tuple[Any, ...] = ()
        if states:
            statement += " WHERE state = ANY(%s)"
            args = ([s.value for s in states],)
        return [task_of_row(r) for r in self._rows(statement + " ORDER BY created_at, ord", args)]

    def find(self, query: TaskQuery) -> list[Task]:
        """Tasks as ``query`` selects them, newest first, ``query.limit`` after its cursor."""
        statement, args = find_sql(query, "%s")
        return [task_of_row(r) for r in self._rows(statement, args)]

    def created_between(self, since: float, until: float) -> list[Task]:
        rows = self._rows(f"SELECT {TASK_COLUMNS} FROM tasks WHERE created_at >= %s AND "
                          "created_at < %s ORDER BY created_at, ord", (since, until))
        return [task_of_row(r) for r in rows]

    def attempts_of(self, task_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = {t: [] for t in task_ids}
        for start in range(0, len(task_ids), 5000):
            chunk = list(task_ids[start:start + 5000])
            for r in self._rows(f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = ANY(%s) "
                                "ORDER BY task_id, n", (chunk,)):
                out[r[0]].append(attempt_of_row(r))
        return out

    def count_by_state(self) -> dict[TaskState, int]:
        counts = dict(self._rows("SELECT state, count(*) FROM tasks GROUP BY state"))
        return {state: int(counts.get(state.value, 0)) for state in TaskState}

    def attempts(self, task_id: str) -> list[Attempt]:
        return [attempt_of_row(r) for r in self._rows(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = %s ORDER BY n", (task_id,))]

    def events(self, task_id: str | None = None, after: int = 0) -> list[TaskEvent]:
        statement = ("SELECT seq, task_id, event, attempt, outcome, at, detail FROM events "
                     "WHERE seq > %s")
        args: tuple[Any, ...] = (after,)
        if task_id is not None:
            statement += " AND task_id = %s"
            args += (task_id,)
        return [TaskEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
                for r in self._rows(statement + " ORDER BY seq", args)]

    def last_event_seq(self) -> int:
        return int(self._rows("SELECT coalesce(max(seq), 0) FROM events", ())[0][0])

    # ------------------------------------------------------------ dialing

    def claim(self, now: float, node: str, worker: str, limit: int = 1,
              only: str | None = None) -> list[Claim]:
        """Take up to ``limit`` due tasks for ``node``'s ``worker``: high risk first, then the
        oldest; rows another node is claiming at this moment are skipped, never waited for.
        With the trunk's limits set (:meth:`pace`), the channels in use and the calls per
        second are those of every node together; a node whose lease was taken claims
        nothing."""
        if limit <= 0:
            return []
        where, args = (f"{_DUE} AND id = %s", (now, only)) if only else (_DUE, (now,))
        if not self._rows(f"SELECT 1 FROM tasks WHERE {where} LIMIT 1", args):
            return []  # nothing due: no write, so no node is woken for nothing
        with self._write() as tx:
            tx.quiet = True  # until a task is taken
            if self.lease:
                row = tx.execute("SELECT generation, state FROM nodes WHERE name = %s FOR SHARE",
                                 (node,)).fetchone()
                if row is None or row[0] != self.lease or row[1] != "alive":
                    raise Refused(f"node {node} lost its lease; it claims nothing until it "
                                  "joins again")
            if self.trunk is not None:
                limit = self._trunk_allows(tx, now, limit)
                if limit <= 0:
                    return []
            rows = tx.execute(f"SELECT id FROM tasks WHERE {where} ORDER BY {_PRIORITY} "
                              "LIMIT %s FOR UPDATE SKIP LOCKED", (*args, limit)).fetchall()
            tx.quiet = not rows
            try:
                for (task_id,) in rows:
                    self._begin(tx, task_id, node, worker, now)
            except psycopg.errors.UniqueViolation:
                raise StoreUnavailable("a number of these tasks is in a call already") from None
            if rows and self.trunk is not None:
                tx.execute("UPDATE trunk SET next_setup_at = GREATEST(next_setup_at, %s) + %s "
                           "WHERE name = 'trunk'", (now, len(rows) / self.trunk.max_cps))
        return [self._claim_of(task_id) for (task_id,) in rows]

    def _trunk_allows(self, tx: _Tx, now: float, limit: int) -> int:
        """How many calls may start now on the trunk, all nodes counted (the trunk's row is
        held until this transaction ends: claims of all nodes pass it one by one)."""
        assert self.trunk is not None
        tx.execute("INSERT INTO trunk (name, next_setup_at) VALUES ('trunk', 0) "
                   "ON CONFLICT (name) DO NOTHING")
        row: Any = tx.execute("SELECT next_setup_at FROM trunk WHERE name = 'trunk' "
                              "FOR UPDATE").fetchone()
        next_setup_at = row[0]
        if next_setup_at > now:
            self.trunk_free_at = next_setup_at
            return 0
        live: Any = tx.execute("SELECT count(*) FROM attempts WHERE ended_at IS NULL").fetchone()
        free = self.trunk.max_channels - int(live[0])
        if free <= 0:
            self.trunk_free_at = now + FULL_RECHECK_S
            return 0
        self.trunk_free_at = 0.0
        return min(limit, free)

    def pace(self, limits: TrunkLimits | None) -> None:
        """Hold the trunk's limits across every node in :meth:`claim`."""
        self.trunk = limits

    def _begin(self, tx: _Tx, task_id: str, node: str, worker: str, now: float) -> None:
        task = self._task(task_id, tx)
        check(task, TaskState.CALLING, "be called")
        n = task.tries + 1
        call = f"{task_id}-{n}"
        recording = str(self.recordings / f"{task_id}-{n}.wav") if self.recordings else ""
        tx.execute("INSERT INTO attempts (task_id, n, number, call, worker, started_at, "
                   "recording, node, lease) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                   (task_id, n, task.number, call, worker, now, recording, node, self.lease))
        tx.execute("UPDATE tasks SET state = 'calling', tries = %s, updated_at = %s, "
                   "first_attempt_at = COALESCE(first_attempt_at, %s) WHERE id = %s",
                   (n, now, now, task_id))
        tx.event(task_id, "attempt", n, None, now,
                 {"worker": worker, "call": call, **({"node": node} if node else {})})

    def _claim_of(self, task_id: str) -> Claim:
        return Claim(self._task(task_id), self.attempts(task_id)[-1])

    def due_count(self, now: float) -> int:
        return int(self._rows(f"SELECT COUNT(*) FROM tasks WHERE {_DUE}", (now,))[0][0])

    def next_due_at(self) -> float | None:
        rows = self._rows("SELECT MIN(next_at) FROM tasks WHERE state IN ('queued', 'waiting')")
        due = rows[0][0] if rows else None
        if due is not None and self.trunk_free_at > due:
            return float(self.trunk_free_at)  # the trunk (all nodes') is full or pacing
        return due

    def mark_answered(self, task_id: str, n: int, now: float) -> None:
        with self._write() as tx:
            if tx.execute("UPDATE attempts SET answered_at = %s WHERE task_id = %s AND n = %s "
                          "AND ended_at IS NULL", (now, task_id, n)).rowcount:
                tx.event(task_id, "answered", n, None, now, {})

    def mark_reached(self, task_id: str, n: int, how: str, now: float) -> None:
        with self._write() as tx:
            marked = tx.execute("UPDATE attempts SET reached_at = COALESCE(reached_at, %s) "
                                "WHERE task_id = %s AND n = %s AND ended_at IS NULL",
                                (now, task_id, n)).rowcount
            if not marked:  # another node ended it (this node's lease lapsed)
                return
            tx.execute("UPDATE tasks SET reached_at = COALESCE(reached_at, %s), updated_at = %s "
                       "WHERE id = %s", (now, now, task_id))
            tx.event(task_id, how, n, how, now, {})

    def end_attempt(self, task_id: str, n: int, outcome: Outcome, status: int | None, digits: str,
                    amd: str, now: float, plan: Plan, how: dict[str, Any] | None = None) -> Task:
        h, how = plan.history, how or {}
        with self._write() as tx:
            task = self._locked(tx, task_id)
            ended = tx.execute("SELECT ended_at, reached_at FROM attempts WHERE task_id = %s "
                               "AND n = %s FOR UPDATE", (task_id, n)).fetchone()
            if ended is not None and ended[0] is not None:
                # another node ended it (this node's lease lapsed): what it decided stands
                raise Refused(f"attempt {n} of task {task_id} was ended already "
                              "(its node's lease lapsed)")
            tx.execute(
                "UPDATE attempts SET ended_at = %s, status = %s, outcome = %s, digits = %s, "
                "amd = %s, counted = %s, how = %s WHERE task_id = %s AND n = %s",
                (now, status, outcome.value, digits, amd, plan.counted, Jsonb(how), task_id, n))
            marked = bool(ended and ended[1] is not None)
            events = attempt_ended(task, n, outcome, status, plan, how, marked)
            if task.state is TaskState.CALLING:
                final = not plan.state.open
                tx.execute(
                    "UPDATE tasks SET state = %s, next_at = %s, attempts = %s, reached = %s, "
                    "busy_run = %s, trunk_run = %s, last_outcome = %s, last_status = %s, "
                    "updated_at = %s, escalated_at = CASE WHEN %s THEN %s ELSE escalated_at END, "
                    "finished_at = %s, reason = %s WHERE id = %s",
                    (plan.state.value, plan.next_at, h.attempts, h.reached, h.busy_run,
                     h.trunk_run, outcome.value, status, now, plan.escalate, now,
                     now if final else None, plan.reason, task_id))
                if plan.state in (TaskState.ACKNOWLEDGED, TaskState.TRANSFERRED):
                    tx.execute("UPDATE tasks SET reached_at = COALESCE(reached_at, %s) "
                               "WHERE id = %s", (now, task_id))
            for event in events:
                tx.event(task_id, event.event, event.attempt, event.outcome, now, event.detail)
            return self._task(task_id, tx)

    def recover(self, node: str, now: float, due_at: float | None = None) -> list[Attempt]:
        """``node``'s attempts left open are interrupted, not counted; their tasks are due at
        ``due_at`` (default at once). Other nodes' calls are left alone."""
        with self._write() as tx:
            rows = self.interrupt(tx, node, now, due_at, "engine_stopped",
                                  "the engine stopped during the call")
        return self._attempts_at(rows)

    def interrupt(self, tx: _Tx, node: str, now: float, due_at: float | None, by: str,
                  reason: str) -> list[tuple[str, int]]:
        """Inside ``tx``: end ``node``'s open attempts as interrupted (not counted) and make
        their tasks due at ``due_at`` (default at once)."""
        rows = tx.execute("SELECT task_id, n FROM attempts WHERE ended_at IS NULL AND "
                          "node IN (%s, '') ORDER BY task_id, n FOR UPDATE", (node,)).fetchall()
        for task_id, n in rows:
            tx.execute("UPDATE attempts SET ended_at = %s, outcome = 'interrupted', "
                       "counted = FALSE, how = %s WHERE task_id = %s AND n = %s",
                       (now, Jsonb({"by": by}), task_id, n))
            tx.event(task_id, "attempt_ended", n, Outcome.INTERRUPTED.value, now,
                     {"reason": reason})
            tx.execute("UPDATE tasks SET state = 'waiting', next_at = %s, updated_at = %s "
                       "WHERE id = %s AND state = 'calling'",
                       (now if due_at is None else due_at, now, task_id))
        return [(task_id, n) for task_id, n in rows]

    def _attempts_at(self, rows: Sequence[tuple[str, int]]) -> list[Attempt]:
        out: list[Attempt] = []
        for task_id, n in rows:
            out += [a for a in self.attempts(task_id) if a.n == n]
        return out


def _as_is(value: Any) -> Any:
    """JSON as psycopg gives it back: decoded already."""
    return value


def task_of_row(row: Sequence[Any]) -> Task:
    return task_of(row, _as_is)


def attempt_of_row(row: Sequence[Any]) -> Attempt:
    return attempt_of(row, _as_is)
