"""What the dialer keeps: tasks, attempts, their states and outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from screening import mask

from .requests import Risk

__all__ = ["OPEN", "Attempt", "Outcome", "Task", "TaskEvent", "TaskState", "outcome_of_status"]


class TaskState(enum.Enum):
    QUEUED = "queued"  # accepted, not called yet
    CALLING = "calling"  # an attempt is in flight
    WAITING = "waiting"  # the next attempt is due at next_at
    ACKNOWLEDGED = "acknowledged"
    TRANSFERRED = "transferred"  # the person talked to the duty officer
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def open(self) -> bool:
        return self in OPEN


OPEN = frozenset({TaskState.QUEUED, TaskState.CALLING, TaskState.WAITING})


class Outcome(enum.Enum):
    """How one attempt ended."""

    ACKNOWLEDGED = "acknowledged"
    TRANSFERRED = "transferred"
    UNACKNOWLEDGED = "answered_no_ack"  # answered, heard (some of) the warning, no ack
    MACHINE = "machine"  # an answering machine; a short message was left
    BUSY = "busy"  # 486/600: probably on the phone with the scammer
    RANG_OUT = "rang_out"  # rang ring_timeout_s without pickup (call waiting: line in use)
    NO_ANSWER = "no_answer"  # 408/480/487/603 from the network
    INVALID_NUMBER = "invalid_number"  # 404/484/604/410: no retry
    TRUNK_ERROR = "trunk_error"  # 403/5xx/no response/auth: the trunk's fault, not counted
    LOST = "lost"  # the worker carrying the call died: not counted
    INTERRUPTED = "interrupted"  # the engine stopped mid-call: not counted
    ERROR = "error"  # the call's own logic failed: not counted

    @property
    def counted(self) -> bool:
        """Counted against the person (the phone was reached, or was busy)."""
        return self in _COUNTED

    @property
    def answered(self) -> bool:
        return self in (Outcome.ACKNOWLEDGED, Outcome.TRANSFERRED, Outcome.UNACKNOWLEDGED,
                        Outcome.MACHINE)


_COUNTED = frozenset({Outcome.UNACKNOWLEDGED, Outcome.MACHINE, Outcome.BUSY, Outcome.RANG_OUT,
                      Outcome.NO_ANSWER})
_INVALID = frozenset({404, 410, 484, 604})
_NO_ANSWER = frozenset({480, 487, 603})
_TRUNK_4XX = frozenset({400, 401, 403, 407, 415, 416, 420, 421, 488, 491, 493, 494})


def outcome_of_status(status: int, rang: bool) -> Outcome:
    """An outbound call that was never answered, by its final status.

    ``rang``: a 180/183 came first. A 408 after ringing is our own ring
    timeout (the phone rang, nobody took it); a 408 without it means no
    response at all, which is the trunk's fault, not the person's.
    """
    if status in (486, 600):
        return Outcome.BUSY
    if status == 408:
        return Outcome.RANG_OUT if rang else Outcome.TRUNK_ERROR
    if status in _INVALID:
        return Outcome.INVALID_NUMBER
    if status in _NO_ANSWER:
        return Outcome.NO_ANSWER
    if status >= 500 or status in _TRUNK_4XX:
        return Outcome.TRUNK_ERROR
    return Outcome.NO_ANSWER


@dataclass(frozen=True)
class Task:
    id: str
    number: str  # E.164 digits: stays in the store and the engine
    dial: str
    fraud_type: str
    risk: Risk
    state: TaskState
    case_ids: tuple[str, ...]
    note: str
    created_at: float
    updated_at: float
    next_at: float | None
    attempts: int  # counted against the person
    reached: int  # counted, busy excluded (what max_attempts limits)
    busy_run: int
    trunk_run: int
    first_attempt_at: float | None
    escalated_at: float | None
    last_outcome: Outcome | None
    last_status: int | None
    finished_at: float | None
    tries: int  # every attempt placed, counted or not
    reason: str = ""
    reached_at: float | None = None  # the ack digit, or the officer answering

    @property
    def time_to_reach_s(self) -> float | None:
        return None if self.reached_at is None else self.reached_at - self.created_at

    @property
    def masked(self) -> str:
        return mask(self.dial)


@dataclass(frozen=True)
class Attempt:
    task_id: str
    n: int
    call: str
    worker: str
    started_at: float
    answered_at: float | None
    ended_at: float | None
    status: int | None
    outcome: Outcome | None
    digits: str
    amd: str
    recording: str
    counted: bool
    reached_at: float | None = None


@dataclass(frozen=True)
class TaskEvent:
    seq: int
    task_id: str
    event: str
    attempt: int
    outcome: str | None
    at: float
    detail: dict[str, object]
