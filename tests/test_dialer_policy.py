"""The retry policy, pure: (history, outcome, now) → plan. Tables, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dialer import History, Outcome, Policy, Risk, Task, TaskState, outcome_of_status
from sip_config.schema import DialerConfig, RetryConfig, parse_hours

TZ = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=TZ).timestamp()
RETRY = RetryConfig(busy_s=15, busy_growth=1.5, busy_cap_s=30, rang_out_s=10, no_answer_s=60,
                    unreachable_s=30, unacknowledged_s=120, machine_s=300, trunk_s=5, trunk_cap_s=40, jitter=0.2)
CONFIG = DialerConfig(retry=RETRY, max_attempts=5, escalate_after_attempts=3, give_up_after_s=3600,
                      quiet_hours=parse_hours("22:00-08:00"))
POLICY = Policy(CONFIG, TZ)
HIGH = History(Risk.HIGH, first_attempt_at=NOON)


@pytest.mark.parametrize(("outcome", "history", "state", "wait", "counted"), [
    (Outcome.ACKNOWLEDGED, HIGH, TaskState.ACKNOWLEDGED, None, False),
    (Outcome.TRANSFERRED, HIGH, TaskState.TRANSFERRED, None, False),
    (Outcome.INVALID_NUMBER, HIGH, TaskState.FAILED, None, True),
    (Outcome.BUSY, HIGH, TaskState.WAITING, 15, True),
    (Outcome.BUSY, replace(HIGH, busy_run=1), TaskState.WAITING, 22.5, True),  # growing gently
    (Outcome.BUSY, replace(HIGH, busy_run=5), TaskState.WAITING, 30, True),  # to the cap
    (Outcome.RANG_OUT, HIGH, TaskState.WAITING, 10, True),
    (Outcome.NO_ANSWER, HIGH, TaskState.WAITING, 60, True),
    (Outcome.REJECTED, HIGH, TaskState.WAITING, 60, True),
    (Outcome.UNREACHABLE, HIGH, TaskState.WAITING, 30, True),
    (Outcome.UNREACHABLE, replace(HIGH, busy_run=3), TaskState.WAITING, 30, True),
    (Outcome.SUSPENDED, HIGH, TaskState.FAILED, None, True),
    (Outcome.UNACKNOWLEDGED, HIGH, TaskState.WAITING, 120, True),
    (Outcome.MACHINE, HIGH, TaskState.WAITING, 300, True),
    (Outcome.TRUNK_ERROR, HIGH, TaskState.WAITING, 5, False),
    (Outcome.TRUNK_ERROR, replace(HIGH, trunk_run=2), TaskState.WAITING, 20, False),  # doubling
    (Outcome.TRUNK_ERROR, replace(HIGH, trunk_run=9), TaskState.WAITING, 40, False),  # to the cap
    (Outcome.LOST, HIGH, TaskState.WAITING, 5, False),
    (Outcome.INTERRUPTED, HIGH, TaskState.WAITING, 5, False),
    (Outcome.ERROR, HIGH, TaskState.WAITING, 5, False),
])
def test_outcome_to_next_attempt(outcome: Outcome, history: History, state: TaskState,
                                 wait: float | None, counted: bool) -> None:
    plan = POLICY.after(history, outcome, NOON, rand=0.5)
    assert plan.state is state
    assert plan.counted is counted
    assert (None if plan.next_at is None else plan.next_at - NOON) == wait


@pytest.mark.parametrize(("rand", "wait"), [(0.0, 12.0), (0.5, 15.0), (0.999999, 18.0)])
def test_jitter_stretches_and_shortens_by_up_to_a_fifth(rand: float, wait: float) -> None:
    plan = POLICY.after(HIGH, Outcome.BUSY, NOON, rand=rand)
    assert plan.next_at - NOON == pytest.approx(wait, abs=1e-3)


def test_busy_counts_towards_escalation_but_not_max_attempts() -> None:
    history = HIGH
    for _ in range(40):  # a line busy for ten minutes
        plan = POLICY.after(history, Outcome.BUSY, NOON + 1)
        assert plan.state is TaskState.WAITING
        history = plan.history
    assert history.attempts == 40 and history.reached == 0 and history.escalated


@pytest.mark.parametrize("outcome", [Outcome.BUSY, Outcome.RANG_OUT, Outcome.UNREACHABLE])
def test_a_line_in_use_never_uses_up_max_attempts(outcome: Outcome) -> None:
    """Busy, a waiting call that rang out, a phone switched off: the person is there, on the
    scammer's call; they are called until give_up_after_s, escalated after 3."""
    plan = POLICY.after(replace(HIGH, attempts=30, reached=4, escalated=True), outcome, NOON)
    assert plan.state is TaskState.WAITING and plan.history.reached == 4


@pytest.mark.parametrize(("started", "wait"), [(NOON - 3.0, 12.0), (NOON - 0.5, 14.5),
                                               (NOON - 40.0, 0.0), (None, 15.0)])
def test_a_busy_line_is_called_again_busy_s_after_the_busy_call_started(
        started: float | None, wait: float) -> None:
    """A carrier that says busy in early media takes 3 s to do it: the cadence stays."""
    plan = POLICY.after(HIGH, Outcome.BUSY, NOON, rand=0.5, started_at=started)
    assert plan.next_at - NOON == pytest.approx(wait)


def test_a_phone_that_stays_off_is_called_until_give_up_and_escalates_like_busy() -> None:
    history = HIGH
    for n in range(1, 60):  # switched off for half an hour: called every 30 s
        plan = POLICY.after(history, Outcome.UNREACHABLE, NOON + n * 30)
        assert plan.state is TaskState.WAITING and plan.counted
        assert plan.escalate is (n == CONFIG.escalate_after_attempts)
        history = plan.history
    assert history.attempts == 59 and history.reached == 0 and history.busy_run == 0
    assert POLICY.after(history, Outcome.UNREACHABLE, NOON + 3600).state is TaskState.FAILED


def test_busy_then_off_then_busy_starts_the_busy_cadence_again() -> None:
    plan = POLICY.after(replace(HIGH, busy_run=4), Outcome.UNREACHABLE, NOON)
    assert plan.history.busy_run == 0
    assert POLICY.after(plan.history, Outcome.BUSY, NOON).next_at - NOON == 15


@pytest.mark.parametrize(("history", "escalate"), [(HIGH, True),
                                                    (replace(HIGH, escalated=True), False)])
def test_a_suspended_line_fails_and_is_escalated_at_once(history: History, escalate: bool) -> None:
    plan = POLICY.after(history, Outcome.SUSPENDED, NOON, how="the carrier's announcement a1")
    assert (plan.state, plan.escalate, plan.counted) == (TaskState.FAILED, escalate, True)
    assert plan.history.escalated
    assert plan.reason == ("the line is suspended (the carrier's announcement a1): reach the "
                           "person another way")


def test_an_invalid_number_says_how_it_was_known() -> None:
    plan = POLICY.after(HIGH, Outcome.INVALID_NUMBER, NOON, how="Q.850 cause 1")
    assert plan.reason == "the number does not exist (Q.850 cause 1)"


@pytest.mark.parametrize(("before", "escalate"), [(1, False), (2, True), (3, False)])
def test_escalates_once_after_the_configured_attempts(before: int, escalate: bool) -> None:
    history = replace(HIGH, attempts=before, reached=before, escalated=before >= 3)
    assert POLICY.after(history, Outcome.NO_ANSWER, NOON).escalate is escalate


def test_max_attempts_fails_the_task() -> None:
    plan = POLICY.after(replace(HIGH, attempts=4, reached=4, escalated=True), Outcome.NO_ANSWER,
                        NOON)
    assert plan.state is TaskState.FAILED and plan.reason == "no acknowledgement after 5 attempts"


def test_gives_up_after_the_configured_time() -> None:
    plan = POLICY.after(HIGH, Outcome.BUSY, NOON + 3600)
    assert plan.state is TaskState.FAILED and "gave up after 1 h" in plan.reason
    assert POLICY.after(HIGH, Outcome.BUSY, NOON + 3599).state is TaskState.WAITING


@pytest.mark.parametrize(("risk", "at", "expected"), [
    (Risk.NORMAL, (23, 30), (8, 0)),  # next morning
    (Risk.NORMAL, (3, 0), (8, 0)),
    (Risk.NORMAL, (8, 0), (8, 0)),  # the window ends at 08:00
    (Risk.NORMAL, (21, 59), (21, 59)),
    (Risk.HIGH, (23, 30), (23, 30)),  # high risk calls at any hour
])
def test_quiet_hours(risk: Risk, at: tuple[int, int], expected: tuple[int, int]) -> None:
    moment = datetime(2026, 12, 1, *at, tzinfo=TZ)
    moved = datetime.fromtimestamp(POLICY.not_before(risk, moment.timestamp()), TZ)
    assert (moved.hour, moved.minute) == expected
    assert moved >= moment


def test_a_normal_task_retried_into_the_night_waits_for_the_morning() -> None:
    evening = datetime(2026, 12, 1, 21, 59, 50, tzinfo=TZ).timestamp()
    plan = POLICY.after(History(Risk.NORMAL, evening), Outcome.BUSY, evening)
    assert datetime.fromtimestamp(plan.next_at, TZ).hour == 8


@pytest.mark.parametrize(("status", "rang", "outcome"), [
    (486, False, Outcome.BUSY), (600, True, Outcome.BUSY),
    (408, True, Outcome.RANG_OUT),  # our own ring timeout: the phone rang, nobody took it
    (408, False, Outcome.TRUNK_ERROR),  # no response at all
    (480, True, Outcome.NO_ANSWER), (487, True, Outcome.NO_ANSWER),
    (603, True, Outcome.REJECTED),  # Decline: the call was turned down (counted, retried)
    (404, False, Outcome.INVALID_NUMBER), (484, False, Outcome.INVALID_NUMBER),
    (604, False, Outcome.INVALID_NUMBER),
    (403, False, Outcome.TRUNK_ERROR), (503, False, Outcome.TRUNK_ERROR),
    (500, False, Outcome.TRUNK_ERROR), (401, False, Outcome.TRUNK_ERROR),
    (400, False, Outcome.TRUNK_ERROR),  # the worker could not send the INVITE
])
def test_final_status_of_an_unanswered_call(status: int, rang: bool, outcome: Outcome) -> None:
    assert outcome_of_status(status, rang) is outcome


# ------------------------------------------------------------------ a reload's new policy


def waiting(outcome: Outcome, next_at: float, risk: Risk = Risk.HIGH, busy_run: int = 0,
            trunk_run: int = 0, state: TaskState = TaskState.WAITING) -> Task:
    return Task("t1", "8613800137490", "13800137490", "general", risk, state, (), "",
                NOON - 600, NOON, next_at, 1, 1, busy_run, trunk_run, NOON - 600, None,
                outcome, None, None, 1)


START, END = NOON - 3.0, NOON  # the attempt that ended, 3 s of ringing or of a carrier's words


@pytest.mark.parametrize(("task", "expected"), [
    # busy: busy_s (15, jitter up to 18) after the busy call *started*
    (waiting(Outcome.BUSY, START + 60, busy_run=1), START + 15),  # an old busy_s of 60
    (waiting(Outcome.BUSY, START + 18, busy_run=1), None),  # at the top of the jitter: kept
    (waiting(Outcome.BUSY, START + 12, busy_run=1), None),  # sooner than this policy: kept
    (waiting(Outcome.BUSY, START + 60, busy_run=2), START + 22.5),  # the growth applies
    (waiting(Outcome.NO_ANSWER, END + 600), END + 60),
    (waiting(Outcome.NO_ANSWER, END + 70), None),
    (waiting(Outcome.UNACKNOWLEDGED, END + 900), END + 120),
    (waiting(Outcome.TRUNK_ERROR, END + 300, trunk_run=3), END + 20),
    (waiting(Outcome.TRUNK_ERROR, END + 300, trunk_run=9), END + 40),  # the cap
    (waiting(Outcome.NO_ANSWER, NOON + 21 * 3600, risk=Risk.NORMAL), END + 60),
    # nothing planned by a retry: untouched
    (waiting(Outcome.BUSY, NOON + 600, state=TaskState.QUEUED), None),
    (waiting(Outcome.ACKNOWLEDGED, NOON + 600), None),
])
def test_a_retry_planned_later_than_a_new_policy_allows_is_planned_again(
        task: Task, expected: float | None) -> None:
    assert POLICY.replan(task, START, END, rand=0.5) == expected


@pytest.mark.parametrize(("planned", "expected"), [
    (NOON + 21 * 3600, NOON + 20 * 3600),  # the old quiet hours ended at 09:00, these at 08:00
    (NOON + 20 * 3600, None),
])
def test_a_normal_task_at_night_waits_out_the_new_quiet_hours(planned: float,
                                                             expected: float | None) -> None:
    night = NOON + 11 * 3600  # 23:00
    task = waiting(Outcome.NO_ANSWER, planned, risk=Risk.NORMAL)
    assert POLICY.replan(task, night - 30, night) == expected
