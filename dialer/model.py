"""What the dialer keeps: tasks, attempts, their states and outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from screening import mask
from softphone import protocol as p
from softphone.outcome import BY_ANNOUNCEMENT, BY_CAUSE, BY_TONE, Ending, ending_of

from .requests import Risk

__all__ = ["OPEN", "Attempt", "Outcome", "Task", "TaskEvent", "TaskState", "how_of_heard",
           "how_of_status", "known_by", "outcome_of_ending", "outcome_of_heard",
           "outcome_of_status"]


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
    BUSY = "busy"  # 486/600, Q.850 17, the busy tone or announcement: on the phone with the scammer
    RANG_OUT = "rang_out"  # rang ring_timeout_s without pickup (call waiting: line in use)
    NO_ANSWER = "no_answer"  # 408/480/487 from the network, Q.850 18/19
    REJECTED = "rejected"  # 603 Decline, Q.850 21: the call was turned down
    UNREACHABLE = "unreachable"  # switched off, no signal (Q.850 20, the carrier's announcement)
    SUSPENDED = "suspended"  # the line is suspended (停机): failed, escalated at once
    INVALID_NUMBER = "invalid_number"  # 404/484/604/410, Q.850 1, 空号: no retry
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
                      Outcome.NO_ANSWER, Outcome.REJECTED, Outcome.UNREACHABLE, Outcome.SUSPENDED})

_OF_ENDING = {
    Ending.BUSY: Outcome.BUSY, Ending.NO_ANSWER: Outcome.NO_ANSWER,
    Ending.REJECTED: Outcome.REJECTED, Ending.UNREACHABLE: Outcome.UNREACHABLE,
    Ending.INVALID: Outcome.INVALID_NUMBER, Ending.SUSPENDED: Outcome.SUSPENDED,
    Ending.TRUNK: Outcome.TRUNK_ERROR,
}


def outcome_of_ending(ending: Ending) -> Outcome:
    return _OF_ENDING[ending]


def outcome_of_status(status: int, rang: bool, cause: int | None = None) -> Outcome:
    """An outbound call that was never answered, by its final status and Q.850 cause
    (:func:`softphone.outcome.ending_of`, the one table). A 408 after ringing is a ring that
    timed out: ``rang_out`` (call waiting: the line is in use)."""
    ending = ending_of(status, cause, rang)
    if status == 408 and rang and ending is Ending.NO_ANSWER:
        return Outcome.RANG_OUT
    return _OF_ENDING[ending]


def outcome_of_heard(by: str, what: str) -> Outcome | None:
    """What early media said (``by`` ``tone`` or ``announcement``); ``None``: it rings."""
    table = BY_TONE if by == "tone" else BY_ANNOUNCEMENT
    ending = table.get(what)
    return None if ending is None else _OF_ENDING[ending]


def how_of_status(status: int, cause: int | None) -> dict[str, Any]:
    """How an outcome was known from the final status (and its Q.850 cause): for
    :func:`known_by`."""
    how: dict[str, Any] = {"by": "q850" if cause in BY_CAUSE else "status", "status": status}
    if cause is not None:
        how["q850"] = cause
    return how


def how_of_heard(said: p.Progress) -> dict[str, Any]:
    """How an outcome was known from what the network said (a tone, an announcement): for
    :func:`known_by`."""
    how: dict[str, Any] = {"by": said.by, said.by if said.by == "tone" else "class": said.what,
                           "after_s": said.after_s}
    if said.by == "announcement":
        how.update(announcement=said.announcement, score=said.score, answered=said.answered)
    return how


_TONES = {"busy": "the busy tone", "congestion": "the congestion tone",
          "vacant": "the no-such-number tone", "sit": "the special information tone",
          "ringback": "the ringback tone"}


def known_by(how: dict[str, Any]) -> str:
    """How an attempt's outcome was known, in words (``task show``, a failed task's reason)."""
    by = how.get("by", "")
    after = f", {how['after_s']:g} s" if "after_s" in how else ""
    if by == "announcement":
        answered = ", after the answer" if how.get("answered") else ""
        return f"the carrier's announcement {how.get('announcement', '?')} " \
               f"({how.get('class', '?')}{answered}{after})"
    if by == "tone":
        return f"{_TONES.get(str(how.get('tone')), str(how.get('tone')))} ({after[2:] or '?'})"
    if by in ("status", "q850"):
        cause = f", Q.850 cause {how['q850']}" if how.get("q850") is not None else ""
        return f"SIP {how.get('status')}{cause}"
    return {
        "digit": f"the digit {how.get('digit', '')}",
        "officer": "the duty officer answered",
        "amd": f"answering-machine detection ({how.get('cause', '')})",
        "no_digit": f"no digit after {how.get('plays', '?')} warnings",
        "hung_up": "hung up before a digit" if how.get("side") == "remote" else "ended",
        "max_call_s": "the longest call allowed",
        "worker_lost": "the worker carrying the call died",
        "engine_stopped": "the engine stopped during the call",
        "error": f"the call's logic failed: {how.get('error', '')}",
    }.get(by, "")


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
    assigned_to: str = ""  # who took an escalated task over (a station, an officer)
    assign_note: str = ""

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
    how: dict[str, Any] = field(default_factory=dict)
    """How the outcome was known (see :func:`known_by`)."""


@dataclass(frozen=True)
class TaskEvent:
    seq: int
    task_id: str
    event: str
    attempt: int
    outcome: str | None
    at: float
    detail: dict[str, object]
