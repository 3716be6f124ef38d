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

Before the answer the network may say why it will not be answered (early media: the
busy tone, the carrier's announcement that the phone is busy, switched off, vacant or
suspended; the worker's ``progress`` events): the call is cancelled at once and ends as
that (``busy``, ``unreachable``, ``invalid_number``, ``suspended``). The same
announcement heard in the first seconds after an answer ends the call the same way,
never as a machine. A 彩铃, the ringback tone or silence say nothing: it rings. The
answering-machine detector starts at the answer, so early media is never a machine.

Never answered and nothing said: the final status, or its Q.850 cause, decides
(:func:`~dialer.model.outcome_of_status`). Each outcome comes with how it was known
(:attr:`WarningCall.how`), for ``task show`` and the events.

Every transition is a row of :data:`TABLE`, and the table is total: every trigger has a
row in every state, so a surprise from the network never ends a call as an error.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, replace

from callflow import CallFlow, DigitPressed, StateTable, Timer, rows_in, unique_rows
from softphone import protocol as p

from .model import Outcome, how_of_heard, how_of_status, outcome_of_heard, outcome_of_status
from .warning import (
    EarlyMediaKept,
    MachineVerdict,
    NetworkSaid,
    OfficerAnswered,
    OfficerCalled,
    OfficerUnreachable,
    On,
    TaskCancelled,
    WarningAcknowledged,
    WarningAnswered,
    WarningScript,
    trigger_of,
)

# the script, the triggers and the notices live in dialer.warning; named here too for callers
__all__ = ["NetworkSaid", "OfficerAnswered", "On", "Stage", "WarningAcknowledged",
           "WarningAnswered", "WarningCall", "WarningScript"]


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
        self.how: dict[str, object] = {}
        """How the outcome was known: a status, a Q.850 cause, a tone, an announcement…"""
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
        if s.progress is not None:
            self.emit(replace(s.progress, call=self.call))
        return self.take()

    def fail(self, error: BaseException) -> None:
        if self.outcome not in (Outcome.ACKNOWLEDGED, Outcome.TRANSFERRED):
            self.outcome = Outcome.ERROR
            self.how = {"by": "error", "error": str(error)}
        self.state = Stage.ENDED
        self.officer = "gone"

    def classify(self, event: object) -> On | None:
        return trigger_of(event, self.script, self.playing, self.officer_leg)

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
        self.outcome = outcome_of_status(event.status, self.rang, event.cause)
        self.how = how_of_status(event.status, event.cause)
        return self.state

    def _network_said(self, event: p.Progress, now: float) -> Stage:
        """Busy, switched off, vacant, suspended: said in early media (or just after an
        answer); the call is cancelled at once and ends as that. A digit already pressed is a
        person: then the warning goes on."""
        self._said(event)
        if self.heard_person:
            return self.state
        self.outcome = outcome_of_heard(event.by, event.what)
        self.how = how_of_heard(event)
        if self.state is not Stage.DIALLING:
            self._cancel_waits()
            self.outcome = outcome_of_heard(event.by, event.what)  # never a machine
        return self._hang_up()

    def _said(self, event: p.Progress) -> None:
        self.emit(NetworkSaid(self.call, self.task, self.attempt, event.by, event.what,
                              event.after_s, event.announcement, event.answered))

    def _heard_only(self, event: p.Progress, now: float) -> Stage:
        """What the network said once the call is over, or taken by a person: noted only."""
        self._said(event)
        return self.state

    def _clip_kept(self, event: p.EarlyMediaKept, now: float) -> Stage:
        self.emit(EarlyMediaKept(self.call, self.task, event.clip, event.status, event.seconds))
        return self.state

    def _task_cancelled(self, event: TaskCancelled, now: float) -> Stage:
        """Cancelled while it rings: the call is cancelled (the status then decides)."""
        return self._hang_up()

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
        self.how = {"by": "no_digit", "plays": self.plays}
        self._play(self.script.goodbye)
        return Stage.CLOSING

    def _acknowledged(self, event: p.Dtmf, now: float) -> Stage:
        self._note_digit(event)
        self._cancel_waits()
        if self.officer == "dialled":
            self.emit(p.Hangup(self.officer_leg))
        self.outcome = Outcome.ACKNOWLEDGED
        self.how = {"by": "digit", "digit": event.digit}
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
        self.how = {"by": "amd", "cause": event.cause}
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
            self.how = {"by": "max_call_s"}
        return self._hang_up()

    def _officer_answered(self, event: object, now: float) -> Stage:
        self.outcome = Outcome.TRANSFERRED
        self.how = {"by": "officer"}
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
            self.how = {"by": "worker_lost"}
        elif self.answered_at is None:
            if self.outcome is None:
                self.outcome = outcome_of_status(event.status, self.rang)
                self.how = {"by": "status", "status": event.status}
        elif self.outcome is None:
            self.outcome = Outcome.UNACKNOWLEDGED
            self.how = {"by": "hung_up", "side": event.by}
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


def _said_to(stage: Stage) -> dict:
    """The carrier answered, then announced: the call ends as that, never as a machine (but
    stays with a person who has pressed a digit)."""
    return {On.ANNOUNCED: (C._network_said, [S.ENDING, stage]),
            On.NETWORK_SAID: (C._network_said, [S.ENDING, stage])}


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
_NOTED = {  # the network speaks once a person took the call, or after it ended: noted only
    On.ANNOUNCED: (C._heard_only, _STAY),
    On.NETWORK_SAID: (C._heard_only, _STAY),
}


def _ignored(stage: Stage, *ons: On) -> dict:
    """Triggers that mean nothing in ``stage`` (stale timers, a late ringing, media events
    of a call already decided): written out, so that the table is total and each is a choice."""
    return {(stage, on): (C._stay, _STAY) for on in ons}


_ANSWERED_ALREADY = (On.RINGING, On.ANSWERED, On.UNREACHED, On.CLIP_KEPT, On.CANCELLED)
"""Nothing once the call is answered: a cancelled task's call goes on, the warning is heard."""

TABLE: StateTable[Stage, On] = StateTable("warning call", unique_rows(
    {
        (S.DIALLING, On.RINGING): (C._rang, _STAY),
        (S.DIALLING, On.ANSWERED): (C._answered, [S.WARNING]),
        (S.DIALLING, On.UNREACHED): (C._unreached, _STAY),
        (S.DIALLING, On.NETWORK_SAID): (C._network_said, [S.ENDING]),
        (S.DIALLING, On.ANNOUNCED): (C._network_said, [S.ENDING]),
        (S.DIALLING, On.CLIP_KEPT): (C._clip_kept, _STAY),
        (S.DIALLING, On.PERSON): (C._verdict, _STAY),
        (S.DIALLING, On.MACHINE): (C._verdict, _STAY),  # it starts at the answer: noted only
        (S.DIALLING, On.HUNG_UP): (C._hung_up, [S.ENDED]),
        (S.DIALLING, On.CANCELLED): (C._task_cancelled, [S.ENDING]),
    },
    _ignored(S.DIALLING, On.SPEECH_ENDED, On.PROMPT_DONE, On.PROMPT_CUT,
             On.ACK_DIGIT, On.OFFICER_DIGIT, On.OTHER_DIGIT,  # digits in early media: no person
             On.ACK_TIMEOUT, On.GREETING_TIMEOUT, On.CALL_TIMEOUT,
             On.OFFICER_ANSWERED, On.OFFICER_UNREACHED, On.OFFICER_HUNG_UP),
    rows_in(S.WARNING, {**_LISTENING, **_said_to(S.WARNING),
                      On.PROMPT_DONE: (C._warning_said, [S.AWAIT_DIGIT]),
                      On.MACHINE: (C._machine, [S.WARNING, S.MACHINE_GREETING])}),
    _ignored(S.WARNING, *_ANSWERED_ALREADY, On.ACK_TIMEOUT, On.GREETING_TIMEOUT,
             On.OFFICER_ANSWERED, On.OFFICER_UNREACHED),
    rows_in(S.AWAIT_DIGIT, {**_LISTENING, **_said_to(S.AWAIT_DIGIT),
                          On.ACK_TIMEOUT: (C._silence_after_warning, [S.WARNING, S.CLOSING]),
                          On.MACHINE: (C._machine, [S.AWAIT_DIGIT, S.MACHINE_GREETING])}),
    _ignored(S.AWAIT_DIGIT, *_ANSWERED_ALREADY, On.PROMPT_DONE, On.GREETING_TIMEOUT,
             On.OFFICER_ANSWERED, On.OFFICER_UNREACHED),
    rows_in(S.CLOSING, {**_LISTENING, **_said_to(S.CLOSING),
                      On.PROMPT_DONE: (C._said_and_done, [S.ENDING]),
                      On.MACHINE: (C._verdict, _STAY),
                      On.ACK_TIMEOUT: (C._stay, _STAY)}),
    _ignored(S.CLOSING, *_ANSWERED_ALREADY, On.GREETING_TIMEOUT, On.OFFICER_ANSWERED,
             On.OFFICER_UNREACHED),
    rows_in(S.OFFICER_AWAY, {**_LISTENING, **_said_to(S.OFFICER_AWAY),
                           On.PROMPT_DONE: (C._resume, [S.WARNING]),
                           On.MACHINE: (C._verdict, _STAY)}),
    _ignored(S.OFFICER_AWAY, *_ANSWERED_ALREADY, On.ACK_TIMEOUT, On.GREETING_TIMEOUT,
             On.OFFICER_ANSWERED, On.OFFICER_UNREACHED),
    rows_in(S.THANKING, {
        **_NOTED,
        On.PROMPT_DONE: (C._said_and_done, [S.ENDING]),
        On.ACK_DIGIT: (C._other_digit, _STAY),
        On.OFFICER_DIGIT: (C._other_digit, _STAY),
        On.OTHER_DIGIT: (C._other_digit, _STAY),
        On.MACHINE: (C._verdict, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.CALL_TIMEOUT: (C._said_and_done, [S.ENDING]),
        On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    _ignored(S.THANKING, *_ANSWERED_ALREADY, On.PROMPT_CUT, On.SPEECH_ENDED, On.ACK_TIMEOUT,
             On.GREETING_TIMEOUT, On.OFFICER_UNREACHED, On.OFFICER_ANSWERED),
    rows_in(S.CALLING_OFFICER, {
        **_NOTED,  # the person pressed 0: a person, whatever the network says now
        On.OFFICER_ANSWERED: (C._officer_answered, [S.BRIDGED]),
        On.OFFICER_UNREACHED: (C._officer_unreached, [S.OFFICER_AWAY]),
        On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
        On.ACK_DIGIT: (C._acknowledged, [S.THANKING]),
        On.OFFICER_DIGIT: (C._other_digit, _STAY),
        On.OTHER_DIGIT: (C._other_digit, _STAY),
        On.MACHINE: (C._verdict, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.CALL_TIMEOUT: (C._too_long, [S.ENDING]),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    _ignored(S.CALLING_OFFICER, *_ANSWERED_ALREADY, On.PROMPT_DONE, On.PROMPT_CUT,
             On.SPEECH_ENDED, On.ACK_TIMEOUT, On.GREETING_TIMEOUT),
    rows_in(S.BRIDGED, {
        **_NOTED,
        On.OFFICER_HUNG_UP: (C._officer_left, [S.ENDING]),
        On.ACK_DIGIT: (C._other_digit, _STAY),
        On.OFFICER_DIGIT: (C._other_digit, _STAY),
        On.OTHER_DIGIT: (C._other_digit, _STAY),
        On.MACHINE: (C._verdict, _STAY),
        On.PERSON: (C._verdict, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    _ignored(S.BRIDGED, *_ANSWERED_ALREADY, On.PROMPT_DONE, On.PROMPT_CUT, On.SPEECH_ENDED,
             On.ACK_TIMEOUT, On.GREETING_TIMEOUT, On.CALL_TIMEOUT, On.OFFICER_ANSWERED,
             On.OFFICER_UNREACHED),
    rows_in(S.MACHINE_GREETING, {
        **_DIGITS_TO,
        **_said_to(S.MACHINE_GREETING),  # the "machine" was the carrier's announcement
        On.OTHER_DIGIT: (C._person_after_all, [S.WARNING]),
        On.SPEECH_ENDED: (C._greeting_over, [S.MACHINE_MESSAGE]),
        On.GREETING_TIMEOUT: (C._greeting_over, [S.MACHINE_MESSAGE]),
        On.PERSON: (C._verdict, _STAY),
        On.CALL_TIMEOUT: (C._said_and_done, [S.ENDING]),
        On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    _ignored(S.MACHINE_GREETING, *_ANSWERED_ALREADY, On.PROMPT_DONE, On.PROMPT_CUT,
             On.MACHINE, On.ACK_TIMEOUT, On.OFFICER_ANSWERED, On.OFFICER_UNREACHED),
    rows_in(S.MACHINE_MESSAGE, {
        **_DIGITS_TO,
        **_said_to(S.MACHINE_MESSAGE),
        On.OTHER_DIGIT: (C._person_after_all, [S.WARNING]),
        On.PROMPT_DONE: (C._said_and_done, [S.ENDING]),
        On.PERSON: (C._verdict, _STAY),
        On.CALL_TIMEOUT: (C._said_and_done, [S.ENDING]),
        On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    _ignored(S.MACHINE_MESSAGE, *_ANSWERED_ALREADY, On.PROMPT_CUT, On.SPEECH_ENDED,
             On.MACHINE, On.ACK_TIMEOUT, On.GREETING_TIMEOUT, On.OFFICER_ANSWERED,
             On.OFFICER_UNREACHED),
    rows_in(S.ENDING, {**_NOTED,
                     On.CLIP_KEPT: (C._clip_kept, _STAY),
                     On.OFFICER_HUNG_UP: (C._officer_gone, _STAY),
                     On.HUNG_UP: (C._hung_up, [S.ENDED])}),
    _ignored(S.ENDING, *(on for on in On if on not in (
        On.ANNOUNCED, On.NETWORK_SAID, On.CLIP_KEPT, On.OFFICER_HUNG_UP, On.HUNG_UP))),
    rows_in(S.ENDED, {**_NOTED,
                    On.OFFICER_HUNG_UP: (C._officer_gone, _STAY)}),
    _ignored(S.ENDED, *(on for on in On if on not in (
        On.ANNOUNCED, On.NETWORK_SAID, On.OFFICER_HUNG_UP))),
))
WarningCall.TABLE = TABLE
