"""What a task's history records, decided once for every store: pure.

A second request for a number with an open task is merged into it (:func:`merge`); the end
of an attempt writes one or more events in a fixed order (:func:`attempt_ended`); a task
moves only along :data:`TRANSITIONS`. The SQLite store applies these today and a PostgreSQL
store will apply the same, so the rules live here and not in either's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Outcome, Task, TaskState
from .policy import Plan
from .requests import Risk, WarningRequest

__all__ = ["TRANSITIONS", "Merged", "NewEvent", "TransitionError", "attempt_ended", "check",
           "merge"]

S = TaskState
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    S.QUEUED: frozenset({S.CALLING, S.CANCELLED}),
    S.CALLING: frozenset({S.WAITING, S.ACKNOWLEDGED, S.TRANSFERRED, S.FAILED, S.CANCELLED}),
    S.WAITING: frozenset({S.CALLING, S.CANCELLED, S.QUEUED}),
    S.ACKNOWLEDGED: frozenset(),
    S.TRANSFERRED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
"""Where a task may go from each state; a final state goes nowhere. (``waiting → queued``: an
operator asks for the next call now.)"""


class TransitionError(ValueError):
    """A task asked to move where its state table does not lead; ``str()`` is one sentence."""


def check(task: Task, to: TaskState, what: str) -> None:
    """Raise :class:`TransitionError` unless ``task`` may move to ``to`` (``what``: the act,
    for the sentence: "cancel")."""
    if to not in TRANSITIONS[task.state]:
        if not task.state.open:
            raise TransitionError(f"task {task.id} is already {task.state.value}; "
                                  f"nothing to {what}")
        raise TransitionError(f"task {task.id} is {task.state.value}; it cannot {what} now")


@dataclass(frozen=True)
class Merged:
    """A task's fields after a request merged into it."""

    risk: Risk
    case_ids: tuple[str, ...]
    fraud_type: str
    note: str
    next_at: float | None


def merge(task: Task, request: WarningRequest, now: float) -> Merged:
    """The higher risk wins, every case id is kept (in order, once), a known fraud type is not
    overwritten by ``general``, notes are joined; a normal task waiting in the queue (out of
    the quiet hours, say) becomes due now when a high-risk request joins it."""
    risk = Risk.HIGH if Risk.HIGH in (task.risk, request.risk) else Risk.NORMAL
    cases = tuple(dict.fromkeys([*task.case_ids, *request.case_ids]))
    fraud_type = request.fraud_type if task.fraud_type == "general" else task.fraud_type
    note = "\n".join(n for n in (task.note, request.note) if n)
    next_at = task.next_at
    if risk is Risk.HIGH and task.risk is Risk.NORMAL and task.state is TaskState.QUEUED:
        next_at = min(next_at or now, now)
    return Merged(risk, cases, fraud_type, note, next_at)


@dataclass(frozen=True)
class NewEvent:
    """One row of a task's history, before the store numbers it."""

    event: str
    attempt: int
    outcome: str | None
    detail: dict[str, Any]


def attempt_ended(task: Task, n: int, outcome: Outcome, status: int | None, plan: Plan,
                  how: dict[str, Any], marked: bool) -> list[NewEvent]:
    """The events the end of attempt ``n`` writes, in order. ``task`` is as it stood before
    (``calling``, unless it was cancelled while the call went on); ``marked``: the
    acknowledgement (or the officer's answer) was recorded during the call already."""
    value = outcome.value
    if task.state is not TaskState.CALLING:  # cancelled while the call went on
        return [NewEvent("attempt_ended", n, value, {"status": status, "how": how})]
    events = [NewEvent("attempt_ended", n, value,
                       {"status": status, "counted": plan.counted, "next_at": plan.next_at,
                        "how": how})]
    if plan.escalate:
        events.append(NewEvent("escalated", n, value, {"case_ids": list(task.case_ids),
                                                       "attempts": plan.history.attempts}))
    reached = plan.state in (TaskState.ACKNOWLEDGED, TaskState.TRANSFERRED)
    if reached and not marked:
        events.append(NewEvent(plan.state.value, n, value, {}))
    if reached:
        events.append(NewEvent("completed", n, value, {}))
    elif plan.state is TaskState.FAILED:
        events.append(NewEvent("failed", n, value, {"reason": plan.reason}))
    return events
