"""What a warning call says, hears and tells: its script, its triggers, its notices.

- :class:`WarningScript`: what one call says and how long it waits, read from
  the config and the catalog;
- :class:`On` and :func:`trigger_of`: what each worker event (or timeout)
  means to the call, the triggers of its state table;
- the notices (frozen dataclasses with a ``KIND``): what
  :class:`~dialer.call.WarningCall` tells the engine, the event file and the bus.

The states, the transitions and what each one does are in :mod:`dialer.call`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from audio.amd import AmdSettings
from callflow import Answer, Notice, Timeout, leg_progress
from softphone import protocol as p

from .model import outcome_of_heard

__all__ = [
    "DEFAULT_AMD",
    "EarlyMediaKept",
    "MachineVerdict",
    "NetworkSaid",
    "OfficerAnswered",
    "OfficerCalled",
    "OfficerUnreachable",
    "On",
    "TaskCancelled",
    "WarningAcknowledged",
    "WarningAnswered",
    "WarningScript",
    "trigger_of",
]

DEFAULT_AMD = AmdSettings()


@dataclass(frozen=True)
class WarningScript:
    """What one warning call says and how long it waits (from the config and catalog)."""

    warning: str  # the WAV of the fraud type's warning (intro, warning, keys)
    thanks: str
    goodbye: str
    machine: str
    connecting: str
    officer_unreachable: str
    caller_id: str
    ring_timeout_s: float = 40.0
    ack_digit: str = "1"
    officer_digit: str = "0"
    officer_uri: str = ""
    officer_ring_timeout_s: float = 30.0
    repeats: int = 3
    ack_wait_s: float = 6.0
    max_call_s: float = 300.0
    greeting_wait_s: float = 20.0
    amd: AmdSettings | None = DEFAULT_AMD
    progress: p.DetectProgress | None = None
    """What to listen for before (and just after) the answer; its ``call`` is filled in."""


class On(enum.Enum):
    """What an event means to a warning call: the triggers of its state table."""

    RINGING = enum.auto()
    ANSWERED = enum.auto()
    UNREACHED = enum.auto()  # busy, no answer, failed
    PROMPT_DONE = enum.auto()
    PROMPT_CUT = enum.auto()  # cut short by a digit, or stopped by us
    ACK_DIGIT = enum.auto()
    OFFICER_DIGIT = enum.auto()
    OTHER_DIGIT = enum.auto()
    MACHINE = enum.auto()
    PERSON = enum.auto()  # the detector heard a person, or could not tell
    SPEECH_ENDED = enum.auto()
    ACK_TIMEOUT = enum.auto()
    GREETING_TIMEOUT = enum.auto()
    CALL_TIMEOUT = enum.auto()
    OFFICER_ANSWERED = enum.auto()
    OFFICER_UNREACHED = enum.auto()
    OFFICER_HUNG_UP = enum.auto()
    HUNG_UP = enum.auto()
    NETWORK_SAID = enum.auto()  # before the answer: busy, off, vacant… (a tone or announcement)
    ANNOUNCED = enum.auto()  # an announcement in the first seconds after the answer
    CLIP_KEPT = enum.auto()  # unknown early media was kept for an operator
    CANCELLED = enum.auto()  # an operator cancelled the task while the call goes on


@dataclass(frozen=True)
class TaskCancelled(Answer):
    """The call's task was cancelled (an operator reached the person another way): a ringing
    call is cancelled too; an answered one goes on, the person is hearing the warning."""

    TYPE: ClassVar[str] = "task_cancelled"
    call: str


_IGNORED = (p.SpeechStarted, p.Digits, p.Error, p.Transferred)
_TIMERS = {"ack": On.ACK_TIMEOUT, "greeting": On.GREETING_TIMEOUT, "call": On.CALL_TIMEOUT}
_OFFICER = {"answered": On.OFFICER_ANSWERED, "unreached": On.OFFICER_UNREACHED,
            "hung_up": On.OFFICER_HUNG_UP}


def trigger_of(event: object, script: WarningScript, playing: str, officer_leg: str) -> On | None:
    """What ``event`` means to a warning call with this script, ``playing`` that prompt
    (``""``: none) and its officer on ``officer_leg``; ``None``: nothing to do."""
    if getattr(event, "call", None) == officer_leg:
        return _OFFICER.get(leg_progress(event) or "")  # type: ignore[arg-type]
    if isinstance(event, Timeout):
        return _TIMERS.get(event.name)
    if isinstance(event, p.HungUp):
        return On.HUNG_UP
    if isinstance(event, p.Ringing):
        return On.RINGING
    if isinstance(event, p.Answered):
        return On.ANSWERED
    if isinstance(event, (p.Busy, p.NoAnswer, p.Failed)):
        return On.UNREACHED
    if isinstance(event, p.Dtmf):
        if event.digit == script.ack_digit:
            return On.ACK_DIGIT
        return On.OFFICER_DIGIT if event.digit == script.officer_digit else On.OTHER_DIGIT
    if isinstance(event, p.PlaybackEnded):
        if event.file != playing:
            return None  # a prompt we already replaced
        return On.PROMPT_DONE if event.reason == "done" else On.PROMPT_CUT
    if isinstance(event, p.MachineDetection):
        return On.MACHINE if event.verdict == "machine" else On.PERSON
    if isinstance(event, p.SpeechEnded):
        return On.SPEECH_ENDED
    if isinstance(event, p.Progress):
        if outcome_of_heard(event.by, event.what) is None:
            return On.RINGING  # the ringback tone: it rings
        return On.ANNOUNCED if event.answered else On.NETWORK_SAID
    if isinstance(event, p.EarlyMediaKept):
        return On.CLIP_KEPT
    if isinstance(event, TaskCancelled):
        return On.CANCELLED
    if isinstance(event, _IGNORED):
        return None
    raise TypeError(f"a warning call does not know the event {event!r}")


@dataclass(frozen=True)
class WarningAnswered(Notice):
    KIND: ClassVar[str] = "warning_answered"
    task: str
    attempt: int


@dataclass(frozen=True)
class WarningAcknowledged(Notice):
    """The ack digit came: the warning has been heard (the call ends after the thanks)."""

    KIND: ClassVar[str] = "warning_acknowledged"
    task: str
    attempt: int
    digit: str


@dataclass(frozen=True)
class MachineVerdict(Notice):
    KIND: ClassVar[str] = "amd"
    task: str
    verdict: str
    cause: str
    words: int
    voiced_s: float


@dataclass(frozen=True)
class NetworkSaid(Notice):
    """The network said why the call will not (or did not really) reach the person."""

    KIND: ClassVar[str] = "network_said"
    task: str
    attempt: int
    by: str  # tone or announcement
    what: str  # busy, off, unreachable, invalid, suspended; busy, congestion, vacant, sit
    after_s: float
    announcement: str
    answered: bool


@dataclass(frozen=True)
class EarlyMediaKept(Notice):
    """Speech in early media matched nothing and the call failed: kept for an operator to label
    (``announcements add --from-heard CLIP --as CLASS``)."""

    KIND: ClassVar[str] = "early_media_kept"
    task: str
    clip: str
    status: int
    seconds: float


@dataclass(frozen=True)
class OfficerCalled(Notice):
    KIND: ClassVar[str] = "officer_dialled"
    task: str


@dataclass(frozen=True)
class OfficerAnswered(Notice):
    KIND: ClassVar[str] = "officer_answered"
    task: str


@dataclass(frozen=True)
class OfficerUnreachable(Notice):
    KIND: ClassVar[str] = "officer_unreachable"
    task: str
    status: int
