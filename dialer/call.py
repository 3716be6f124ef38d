"""One warning call: a pure flow, worker events in, commands and notices out.

Answered → the warning for the fraud type plays at once (it names the caller
first) while the answering-machine detector listens to the same seconds →

- the ack digit: a short thanks, hang up; outcome ``acknowledged``;
- the officer digit: the duty officer is called on the same worker and
  bridged in (``transferred``); if the officer does not answer, the person
  hears so and the warning resumes;
- no digit: the warning is said again, up to ``repeats`` times, then a
  goodbye and hang up (``answered_no_ack``);
- a machine (and no digit so far): the warning stops, the greeting is let
  finish, a short message is left (``machine``). A digit is proof of a person
  whatever the detector thought; silence never makes a machine.

Never answered: the final status decides (:func:`~dialer.model.outcome_of_status`).
Every transition is a row of :data:`TABLE`.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import ClassVar

from audio.amd import AmdSettings
from callflow import CallFlow, DigitPressed, Notice, StateTable, Timeout, Timer, leg_progress
from softphone import protocol as p

from .model import Outcome, outcome_of_status

__all__ = ["On", "Stage", "WarningCall", "WarningScript"]

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


class Stage(enum.Enum):
    DIALLING = "dialling"
    WARNING = "warning"  # the warning plays
    AWAIT_DIGIT = "await_digit"  # said; a moment of silence for the digit
    THANKING = "thanking"
    CLOSING = "closing"  # the goodbye plays
    CALLING_OFFICER = "calling_officer"
    OFFICER_AWAY = "officer_away"  # "the officer is busy", then the warning again
    BRIDGED = "bridged"
    MACHINE_GREETING = "machine_greeting"  # a machine: waiting for its greeting to end
    MACHINE_MESSAGE = "machine_message"
    ENDING = "ending"  # we hung up, waiting for hung_up
    ENDED = "ended"


class On(enum.Enum):
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


_IGNORED = (p.SpeechStarted, p.Digits, p.Error, p.Transferred)
_TIMERS = {"ack": On.ACK_TIMEOUT, "greeting": On.GREETING_TIMEOUT, "call": On.CALL_TIMEOUT}
_OFFICER = {"answered": On.OFFICER_ANSWERED, "unreached": On.OFFICER_UNREACHED,
            "hung_up": On.OFFICER_HUNG_UP}


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


class WarningCall(CallFlow):
    def __init__(self, call: str, task: str, attempt: int, uri: str, script: WarningScript,
                 record_to: str | None = None) -> None:
        super().__init__()
        self.call = call
        self.task = task
        self.attempt = attempt
        self.uri = uri
        self.script = script
        self.record_to = record_to
        self.state = Stage.DIALLING
        self.rang = False
        self.plays = 0
        self.playing = ""  # the file of the prompt playing now
        self.digits = ""
        self.heard_person = False  # a digit came: a person, whatever the detector says
        self.amd = ""  # the detector's verdict
        self.officer = "none"  # the officer leg: "none", "dialled", "gone"
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.outcome: Outcome | None = None
        self.status: int | None = None
        self.duration_s = 0.0

    @property
    def officer_leg(self) -> str:
        return f"{self.call}-officer"

    @property
    def legs(self) -> tuple[str, ...]:
        return (self.call, self.officer_leg)

    @property
    def finished(self) -> bool:
        return self.state is Stage.ENDED and self.officer != "dialled"

    # ------------------------------------------------------------ start

    def start(self, now: float) -> list:
        s = self.script
        self.emit(p.Dial(self.call, self.uri, s.caller_id, s.ring_timeout_s, {}))
        if s.amd is not None:
            self.emit(p.DetectMachine(self.call, **asdict(s.amd)))
        return self.take()

    def fail(self, error: BaseException) -> None:
        if self.outcome not in (Outcome.ACKNOWLEDGED, Outcome.TRANSFERRED):
            self.outcome = Outcome.ERROR
        self.state = Stage.ENDED
        self.officer = "gone"

    def classify(self, event: object) -> On | None:
        if getattr(event, "call", None) == self.officer_leg:
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
            if event.digit == self.script.ack_digit:
                return On.ACK_DIGIT
            return On.OFFICER_DIGIT if event.digit == self.script.officer_digit else On.OTHER_DIGIT
        if isinstance(event, p.PlaybackEnded):
            if event.file != self.playing:
                return None  # a prompt we already replaced
            return On.PROMPT_DONE if event.reason == "done" else On.PROMPT_CUT
        if isinstance(event, p.MachineDetection):
            return On.MACHINE if event.verdict == "machine" else On.PERSON
        if isinstance(event, p.SpeechEnded):
            return On.SPEECH_ENDED
        if isinstance(event, _IGNORED):
            return None
        raise TypeError(f"a warning call does not know the event {event!r}")

    # ------------------------------------------------------------ helpers

    def _play(self, file: str, loop: bool = False) -> None:
        self.playing = file
        self.emit(p.Play(self.call, file, loop=loop, interrupt_on_digit=not loop))

    def _timer(self, name: str, at: float | None) -> None:
        self.emit(Timer(self.call, name, at))

    def _cancel_waits(self) -> None:
        if self.state is Stage.AWAIT_DIGIT:
            self._timer("ack", None)
        if self.state is Stage.MACHINE_GREETING:
            self._timer("greeting", None)
        if self.state in (Stage.MACHINE_GREETING, Stage.MACHINE_MESSAGE):
            self.outcome = None  # a digit: a person after all

    def _hang_up(self) -> Stage:
        self.playing = ""
        self.emit(p.Hangup(self.call))
        return Stage.ENDING

    def _note_digit(self, event: p.Dtmf) -> None:
        self.digits += event.digit
        self.heard_person = True
        self.emit(DigitPressed(self.call, event.digit, event.method))

    # ------------------------------------------------------------ handlers

    def _stay(self, event: object, now: float) -> Stage:
        return self.state

    def _rang(self, event: object, now: float) -> Stage:
        self.rang = True
        return self.state

    def _unreached(self, event: p.Busy | p.NoAnswer | p.Failed, now: float) -> Stage:
        self.status = event.status
        self.outcome = outcome_of_status(event.status, self.rang)
        return self.state

    def _answered(self, event: object, now: float) -> Stage:
        self.answered_at = now
        self.emit(WarningAnswered(self.call, self.task, self.attempt))
        if self.record_to:
            self.emit(p.Record(self.call, self.record_to))
        self._timer("call", now + self.script.max_call_s)
        return self._warn()

    def _warn(self) -> Stage:
        self.plays += 1
        self._play(self.script.warning)
        return Stage.WARNING

    def _warning_said(self, event: object, now: float) -> Stage:
        self._timer("ack", now + self.script.ack_wait_s)
        return Stage.AWAIT_DIGIT

    def _silence_after_warning(self, event: object, now: float) -> Stage:
        if self.plays < self.script.repeats:
            return self._warn()
        self.outcome = Outcome.UNACKNOWLEDGED
        self._play(self.script.goodbye)
        return Stage.CLOSING

    def _acknowledged(self, event: p.Dtmf, now: float) -> Stage:
        self._note_digit(event)
        self._cancel_waits()
        if self.officer == "dialled":
            self.emit(p.Hangup(self.officer_leg))
        self.outcome = Outcome.ACKNOWLEDGED
        self.emit(WarningAcknowledged(self.call, self.task, self.attempt, event.digit))
        self._play(self.script.thanks)
        return Stage.THANKING

    def _call_officer(self, event: p.Dtmf, now: float) -> Stage:
        self._note_digit(event)
        self._cancel_waits()
        self.officer = "dialled"
        self.emit(OfficerCalled(self.call, self.task))
        self._play(self.script.connecting, loop=True)
        s = self.script
        self.emit(p.Dial(self.officer_leg, s.officer_uri, s.caller_id, s.officer_ring_timeout_s,
                         {"X-Warning-Task": self.task}))
        return Stage.CALLING_OFFICER

    def _other_digit(self, event: p.Dtmf, now: float) -> Stage:
        self._note_digit(event)
        return self.state

    def _person_after_all(self, event: p.Dtmf, now: float) -> Stage:
        """A digit while we took it for a machine: a person; the warning again."""
        self._note_digit(event)
        self._timer("greeting", None)
        self.outcome = None
        return self._warn()

    def _verdict(self, event: p.MachineDetection, now: float) -> Stage:
        self.amd = event.verdict
        self.emit(MachineVerdict(self.call, self.task, event.verdict, event.cause, event.words,
                                 event.voiced_s))
        return self.state

    def _machine(self, event: p.MachineDetection, now: float) -> Stage:
        self._verdict(event, now)
        if self.heard_person:
            return self.state
        self._timer("ack", None)
        self.playing = ""
        self.emit(p.Stop(self.call))
        self.outcome = Outcome.MACHINE
        self._timer("greeting", now + self.script.greeting_wait_s)
        return Stage.MACHINE_GREETING

    def _greeting_over(self, event: object, now: float) -> Stage:
        self._timer("greeting", None)
        self._play(self.script.machine)
        return Stage.MACHINE_MESSAGE

    def _said_and_done(self, event: object, now: float) -> Stage:
        return self._hang_up()

    def _too_long(self, event: object, now: float) -> Stage:
        if self.outcome is None:
            self.outcome = Outcome.UNACKNOWLEDGED
        return self._hang_up()

    def _officer_answered(self, event: object, now: float) -> Stage:
        self.outcome = Outcome.TRANSFERRED
        self.emit(OfficerAnswered(self.call, self.task))
        self._timer("call", None)  # the officer decides how long they talk
        self.playing = ""
        self.emit(p.Stop(self.call), p.Bridge(self.call, self.officer_leg))
        return Stage.BRIDGED

    def _officer_unreached(self, event: p.Busy | p.NoAnswer | p.Failed, now: float) -> Stage:
        self.emit(OfficerUnreachable(self.call, self.task, event.status))
        self._play(self.script.officer_unreachable)
        return Stage.OFFICER_AWAY

    def _resume(self, event: object, now: float) -> Stage:
        return self._warn()

    def _officer_gone(self, event: object, now: float) -> Stage:
        self.officer = "gone"
        return self.state

    def _officer_left(self, event: object, now: float) -> Stage:
        self.officer = "gone"
        return self._hang_up()

    def _hung_up(self, event: p.HungUp, now: float) -> Stage:
        self.ended_at = now
        self.status = self.status if self.answered_at is None and self.status else event.status
        self.duration_s = event.duration_s
        if self.outcome in (Outcome.ACKNOWLEDGED, Outcome.TRANSFERRED):
            pass  # done is done, however the line ended
        elif event.by == "lost":
            self.outcome = Outcome.LOST
        elif self.answered_at is None:
            if self.outcome is None:
                self.outcome = outcome_of_status(event.status, self.rang)
        elif self.outcome is None:
            self.outcome = Outcome.UNACKNOWLEDGED
        if self.officer == "dialled":
            self.emit(p.Hangup(self.officer_leg))
        self.playing = ""
        return Stage.ENDED


S, C = Stage, WarningCall
_STAY = ()
_DIGITS_TO = {  # what a digit does wherever the person is listening to us
    On.ACK_DIGIT: (C._acknowledged, [S.THANKING]),
    On.OFFICER_DIGIT: (C._call_officer, [S.CALLING_OFFICER]),
}
_LISTENING = {
    **_DIGITS_TO,
    On.OTHER_DIGIT: (C._other_digit, _STAY),
    On.PERSON: (C._verdict, _STAY),
    On.SPEECH_ENDED: (C._stay, _STAY),
    On.CALL_TIMEOUT: (C._too_long, [S.ENDING]),
    On.HUNG_UP: (C._hung_up, [S.ENDED]),
    On.PROMPT_CUT: (C._stay, _STAY),
    On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
}


def _rows(stage: Stage, rows: dict) -> dict:
    return {(stage, on): row for on, row in rows.items()}


TABLE: StateTable[Stage, On] = StateTable("warning call", {
    (S.DIALLING, On.RINGING): (C._rang, _STAY),
    (S.DIALLING, On.ANSWERED): (C._answered, [S.WARNING]),
    (S.DIALLING, On.UNREACHED): (C._unreached, _STAY),
    (S.DIALLING, On.PERSON): (C._stay, _STAY),
    (S.DIALLING, On.SPEECH_ENDED): (C._stay, _STAY),
    (S.DIALLING, On.HUNG_UP): (C._hung_up, [S.ENDED]),

    **_rows(S.WARNING, {**_LISTENING,
                        On.PROMPT_DONE: (C._warning_said, [S.AWAIT_DIGIT]),
                        On.MACHINE: (C._machine, [S.WARNING, S.MACHINE_GREETING])}),
    **_rows(S.AWAIT_DIGIT, {**_LISTENING,
                            On.ACK_TIMEOUT: (C._silence_after_warning, [S.WARNING, S.CLOSING]),
                            On.MACHINE: (C._machine, [S.AWAIT_DIGIT, S.MACHINE_GREETING])}),
    **_rows(S.CLOSING, {**_LISTENING,
                        On.PROMPT_DONE: (C._said_and_done, [S.ENDING]),
                        On.MACHINE: (C._verdict, _STAY),
                        On.ACK_TIMEOUT: (C._stay, _STAY)}),
    **_rows(S.OFFICER_AWAY, {**_LISTENING,
                             On.PROMPT_DONE: (C._resume, [S.WARNING]),
                             On.MACHINE: (C._verdict, _STAY)}),
    **_rows(S.THANKING, {
        On.PROMPT_DONE: (C._said_and_done, [S.ENDING]),
        On.PROMPT_CUT: (C._stay, _STAY),
        On.ACK_DIGIT: (C._other_digit, _STAY),
        On.OFFICER_DIGIT: (C._other_digit, _STAY),
        On.OTHER_DIGIT: (C._other_digit, _STAY),
        On.MACHINE: (C._verdict, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.SPEECH_ENDED: (C._stay, _STAY),
        On.ACK_TIMEOUT: (C._stay, _STAY),
        On.CALL_TIMEOUT: (C._said_and_done, [S.ENDING]),
        On.OFFICER_UNREACHED: (C._stay, _STAY),
        On.OFFICER_ANSWERED: (C._stay, _STAY),
        On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **_rows(S.CALLING_OFFICER, {
        On.OFFICER_ANSWERED: (C._officer_answered, [S.BRIDGED]),
        On.OFFICER_UNREACHED: (C._officer_unreached, [S.OFFICER_AWAY]),
        On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
        On.ACK_DIGIT: (C._acknowledged, [S.THANKING]),
        On.OFFICER_DIGIT: (C._other_digit, _STAY),
        On.OTHER_DIGIT: (C._other_digit, _STAY),
        On.PROMPT_DONE: (C._stay, _STAY),
        On.PROMPT_CUT: (C._stay, _STAY),
        On.MACHINE: (C._verdict, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.SPEECH_ENDED: (C._stay, _STAY),
        On.CALL_TIMEOUT: (C._too_long, [S.ENDING]),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **_rows(S.BRIDGED, {
        On.OFFICER_HUNG_UP: (C._officer_left, [S.ENDING]),
        On.ACK_DIGIT: (C._other_digit, _STAY),
        On.OFFICER_DIGIT: (C._other_digit, _STAY),
        On.OTHER_DIGIT: (C._other_digit, _STAY),
        On.PROMPT_CUT: (C._stay, _STAY),
        On.MACHINE: (C._verdict, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.SPEECH_ENDED: (C._stay, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **_rows(S.MACHINE_GREETING, {
        **_DIGITS_TO,
        On.OTHER_DIGIT: (C._person_after_all, [S.WARNING]),
        On.SPEECH_ENDED: (C._greeting_over, [S.MACHINE_MESSAGE]),
        On.GREETING_TIMEOUT: (C._greeting_over, [S.MACHINE_MESSAGE]),
        On.PROMPT_CUT: (C._stay, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.CALL_TIMEOUT: (C._said_and_done, [S.ENDING]),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **_rows(S.MACHINE_MESSAGE, {
        **_DIGITS_TO,
        On.OTHER_DIGIT: (C._person_after_all, [S.WARNING]),
        On.PROMPT_DONE: (C._said_and_done, [S.ENDING]),
        On.PROMPT_CUT: (C._stay, _STAY),
        On.SPEECH_ENDED: (C._stay, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.CALL_TIMEOUT: (C._said_and_done, [S.ENDING]),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **{(S.ENDING, on): (C._stay, _STAY)
       for on in On if on not in (On.HUNG_UP, On.OFFICER_HUNG_UP)},
    (S.ENDING, On.OFFICER_HUNG_UP): (C._officer_gone, _STAY),
    (S.ENDING, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    (S.ENDED, On.OFFICER_ANSWERED): (C._stay, _STAY),
    (S.ENDED, On.OFFICER_UNREACHED): (C._stay, _STAY),
    (S.ENDED, On.OFFICER_HUNG_UP): (C._officer_gone, _STAY),
})
WarningCall.TABLE = TABLE
