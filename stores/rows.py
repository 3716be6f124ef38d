"""Rows of the task store as the domain's records, the same on every backend: the columns in
the order both backends select them, and how a row becomes a :class:`Task` or an
:class:`Attempt` (``decode``: how the backend gives JSON back: text on SQLite, already
decoded on PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from dialer.model import Attempt, Outcome, Task, TaskState
from dialer.requests import Risk

from .model import TaskQuery

__all__ = ["ATTEMPT_COLUMNS", "TASK_COLUMNS", "attempt_of", "find_sql", "from_json", "task_of"]

TASK_COLUMNS = ("id, number, dial, fraud_type, risk, state, case_ids, note, created_at, updated_at, "
                "next_at, attempts, reached, busy_run, trunk_run, first_attempt_at, escalated_at, "
                "last_outcome, last_status, finished_at, tries, reason, reached_at, assigned_to, "
                "assign_note")
ATTEMPT_COLUMNS = ("task_id, n, call, worker, started_at, answered_at, ended_at, status, outcome, "
                   "digits, amd, recording, counted, reached_at, how")


def from_json(value: Any) -> Any:
    """JSON stored as text (SQLite)."""
    return json.loads(value)


def task_of(row: Sequence[Any], decode: Callable[[Any], Any] = from_json) -> Task:
    (task_id, number, dial, fraud_type, risk, state, case_ids, note, created_at, updated_at, next_at,
     attempts, reached, busy_run, trunk_run, first, escalated, last_outcome, last_status,
     finished, tries, reason, reached_at, assigned_to, assign_note) = row
    return Task(task_id, number, dial, fraud_type, Risk(risk), TaskState(state),
                tuple(decode(case_ids)), note, created_at, updated_at, next_at, attempts,
                reached, busy_run, trunk_run, first, escalated,
                Outcome(last_outcome) if last_outcome else None, last_status, finished, tries,
                reason, reached_at, assigned_to, assign_note)


def attempt_of(row: Sequence[Any], decode: Callable[[Any], Any] = from_json) -> Attempt:
    (task_id, n, call, worker, started, answered, ended, status, outcome, digits, amd, recording,
     counted, reached_at, how) = row
    return Attempt(task_id, n, call, worker, started, answered, ended, status,
                   Outcome(outcome) if outcome else None, digits, amd, recording, bool(counted),
                   reached_at, dict(decode(how)))


def find_sql(query: TaskQuery, mark: str) -> tuple[str, list[object]]:
    """The statement selecting what ``query`` asks for, newest first, and its arguments;
    ``mark``: the backend's placeholder (``?`` on SQLite, ``%s`` on PostgreSQL)."""
    where: list[str] = ["1 = 1"]
    args: list[object] = []
    if query.states:
        where.append(f"state IN ({', '.join([mark] * len(query.states))})")
        args += [s.value for s in query.states]
    if query.risk is not None:
        where.append(f"risk = {mark}")
        args.append(query.risk.value)
    if query.escalated_open:
        where.append("escalated_at IS NOT NULL AND state IN ('queued', 'calling', 'waiting')")
    if query.fraud_type:
        where.append(f"fraud_type = {mark}")
        args.append(query.fraud_type)
    for column, op, value in (("created_at", ">=", query.since), ("created_at", "<", query.until),
                              ("finished_at", ">=", query.finished_since)):
        if value is not None:
            where.append(f"{column} {op} {mark}")
            args.append(value)
    if query.before is not None:
        where.append(f"(created_at, id) < ({mark}, {mark})")
        args += [query.before[0], query.before[1]]
    statement = (f"SELECT {TASK_COLUMNS} FROM tasks WHERE {' AND '.join(where)} "
                 f"ORDER BY created_at DESC, id DESC LIMIT {mark}")
    return statement, [*args, query.limit]
