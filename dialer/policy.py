"""From each attempt's outcome to what happens next: pure, time and chance are arguments.

:meth:`Policy.after` takes what is known of a task (:class:`History`), the
outcome of the attempt that just ended, ``now`` and a number in ``[0, 1)``
for the jitter, and returns a :class:`Plan`: the task's new state, when to
call again, whether this attempt counts against the person, whether it is
time to escalate.

- Busy: the person is probably on the phone with the scammer, and the moment
  that call ends is the moment to reach them. Call again ``retry.busy_s``
  after the busy call *started* (a carrier that takes 3 s to say busy in early
  media does not slow the cadence), growing gently (``busy_growth``) to
  ``busy_cap_s``. Busy attempts count towards escalation but do not use up
  ``max_attempts``: a line that stays busy is called until ``give_up_after_s``.
- Unreachable (switched off, no signal: the carrier said so): ``unreachable_s``;
  counted towards escalation like busy, and like busy never using up
  ``max_attempts``: a phone that stays off is called until ``give_up_after_s``.
- A ring that ran out (call waiting: the line is in use): ``rang_out_s``; like
  busy, it does not use up ``max_attempts`` (a person who talks to the
  scammer for an hour lets our waiting call ring out every time).
- No answer from the network, or a declined call: ``no_answer_s``. Answered
  without an acknowledgement: ``unacknowledged_s``. A machine: ``machine_s``.
- Invalid number: failed at once. Suspended (停机): failed and escalated at
  once, the person must be reached another way. Trunk errors, a worker lost, the engine
  stopped, the call's logic failed: not the person's doing; backoff from
  ``trunk_s`` doubling to ``trunk_cap_s``, not counted.
- Normal risk waits out ``quiet_hours``; high risk calls at any hour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from sip_config.schema import DialerConfig, Hours

from .model import Outcome, Task, TaskState
from .requests import Risk

__all__ = ["History", "Plan", "Policy", "history_of"]


@dataclass(frozen=True)
class History:
    """What the policy knows of a task before the attempt that just ended."""

    risk: Risk
    first_attempt_at: float | None = None
    attempts: int = 0  # counted against the person
    reached: int = 0  # counted, busy excluded
    busy_run: int = 0  # busy attempts in a row
    trunk_run: int = 0  # not-counted failures in a row
    escalated: bool = False


def history_of(task: Task) -> History:
    """What the policy needs to know of a task as it stands."""
    return History(task.risk, task.first_attempt_at, task.attempts, task.reached, task.busy_run,
                   task.trunk_run, task.escalated_at is not None)


@dataclass(frozen=True)
class Plan:
    state: TaskState
    next_at: float | None
    counted: bool
    escalate: bool
    reason: str
    history: History  # the history after this attempt


_LINE_IN_USE = frozenset({Outcome.BUSY, Outcome.UNREACHABLE, Outcome.RANG_OUT})
"""The line was in use (busy, a waiting call that rang out) or the phone off: counted towards
escalation, never using up max_attempts."""

_WAIT_FIELD = {
    Outcome.RANG_OUT: "rang_out_s",
    Outcome.NO_ANSWER: "no_answer_s",
    Outcome.REJECTED: "no_answer_s",
    Outcome.UNREACHABLE: "unreachable_s",
    Outcome.UNACKNOWLEDGED: "unacknowledged_s",
    Outcome.MACHINE: "machine_s",
}


_FINAL = frozenset({Outcome.ACKNOWLEDGED, Outcome.TRANSFERRED, Outcome.INVALID_NUMBER,
                    Outcome.SUSPENDED})
"""Outcomes after which nothing is called again."""


class Policy:
    def __init__(self, config: DialerConfig, tz: tzinfo) -> None:
        self.config = config
        self.retry = config.retry
        self.tz = tz

    def after(self, history: History, outcome: Outcome, now: float, rand: float = 0.5,
              how: str = "", started_at: float | None = None) -> Plan:
        """``how``: how the outcome was known, for the reason people read (``"the carrier's
        announcement a1b2"``); ``started_at``: when the attempt began (a busy line is called
        again ``busy_s`` after that, not after its end)."""
        first = history.first_attempt_at if history.first_attempt_at is not None else now
        said = f" ({how})" if how else ""
        if outcome is Outcome.ACKNOWLEDGED:
            return self._done(history, first, TaskState.ACKNOWLEDGED, "the person acknowledged")
        if outcome is Outcome.TRANSFERRED:
            return self._done(history, first, TaskState.TRANSFERRED, "the person talked to the officer")
        if outcome is Outcome.INVALID_NUMBER:
            return self._done(history, first, TaskState.FAILED,
                              f"the number does not exist{said}", counted=True)
        if outcome is Outcome.SUSPENDED:
            plan = self._done(history, first, TaskState.FAILED,
                              f"the line is suspended{said}: reach the person another way",
                              counted=True)
            if history.escalated:
                return plan
            return replace(plan, escalate=True, history=replace(plan.history, escalated=True))
        if not outcome.counted:
            run = history.trunk_run + 1
            wait = min(self.retry.trunk_s * 2 ** (run - 1), self.retry.trunk_cap_s)
            after = replace(history, first_attempt_at=first, trunk_run=run)
            return self._again(after, first, now, wait, rand, counted=False, escalate=False)
        busy = outcome is Outcome.BUSY
        after = replace(
            history, first_attempt_at=first, attempts=history.attempts + 1,
            reached=history.reached + (0 if outcome in _LINE_IN_USE else 1),
            busy_run=history.busy_run + 1 if busy else 0, trunk_run=0)
        escalate = not history.escalated and after.attempts >= self.config.escalate_after_attempts
        if escalate:
            after = replace(after, escalated=True)
        if after.reached >= self.config.max_attempts:
            return Plan(TaskState.FAILED, None, True, escalate,
                        f"no acknowledgement after {after.reached} attempts", after)
        since = now
        if busy:
            wait = min(self.retry.busy_s * self.retry.busy_growth ** (after.busy_run - 1),
                       self.retry.busy_cap_s)
            since = min(now, started_at) if started_at is not None else now
        else:
            wait = getattr(self.retry, _WAIT_FIELD[outcome])
        return self._again(after, first, now, wait, rand, counted=True, escalate=escalate,
                           since=since)

    def _again(self, after: History, first: float, now: float, wait: float, rand: float,
               counted: bool, escalate: bool, since: float | None = None) -> Plan:
        """The next call ``wait`` (jittered) after ``since`` (default ``now``), never before
        ``now``."""
        if now - first >= self.config.give_up_after_s:
            return Plan(TaskState.FAILED, None, counted, escalate,
                        f"gave up after {_span(self.config.give_up_after_s)} without an "
                        "acknowledgement", after)
        jittered = wait * (1 + self.retry.jitter * (2 * rand - 1))
        at = self.not_before(after.risk, max(now, (now if since is None else since) + jittered))
        return Plan(TaskState.WAITING, at, counted, escalate, "", after)

    def _done(self, history: History, first: float, state: TaskState, reason: str,
              counted: bool = False) -> Plan:
        after = replace(history, first_attempt_at=first, trunk_run=0,
                        attempts=history.attempts + (1 if counted else 0))
        return Plan(state, None, counted, False, reason, after)

    def replan(self, task: Task, started_at: float, ended_at: float, rand: float = 0.5
               ) -> float | None:
        """A new time for the next call of a task waiting after an attempt (begun at
        ``started_at``, ended at ``ended_at``), when the one planned is later than this policy
        allows even at the top of its jitter (a retry made shorter by a reload); else None: a
        plan is never rewritten only because this policy would draw another moment."""
        outcome = task.last_outcome
        if (task.state is not TaskState.WAITING or task.next_at is None or outcome is None
                or outcome in _FINAL):
            return None
        retry = self.retry
        since = ended_at
        if not outcome.counted:
            wait = min(retry.trunk_s * 2 ** (max(task.trunk_run, 1) - 1), retry.trunk_cap_s)
        elif outcome is Outcome.BUSY:
            wait = min(retry.busy_s * retry.busy_growth ** (max(task.busy_run, 1) - 1),
                       retry.busy_cap_s)
            since = min(started_at, ended_at)
        elif outcome in _WAIT_FIELD:
            wait = getattr(retry, _WAIT_FIELD[outcome])
        else:
            return None
        latest = self.not_before(task.risk, since + wait * (1 + retry.jitter))
        if task.next_at <= latest:
            return None
        return max(ended_at, self.not_before(
            task.risk, since + wait * (1 + retry.jitter * (2 * rand - 1))))

    def not_before(self, risk: Risk, at: float) -> float:
        """``at``, or the end of the quiet hours it falls in for a normal-risk task."""
        quiet = self.config.quiet_hours
        if risk is Risk.HIGH or quiet is None:
            return at
        return quiet_end(quiet, at, self.tz)


def _span(seconds: float) -> str:
    """``4 h``, ``90 min``, ``45 s``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:g} s"


def quiet_end(quiet: Hours, at: float, tz: tzinfo) -> float:
    moment = datetime.fromtimestamp(at, tz)
    if not quiet.contains(moment.time()):
        return at
    end = moment.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= moment:
        end += timedelta(days=1)
    return end.timestamp()
