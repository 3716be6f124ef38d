"""The after-hours voice menu of one call: a pure flow, worker events in, commands out.

The welcome, then the entry menu's long greeting. Digits cut any prompt short
(barge-in). In a menu: an option's digits act at once (when no longer option
starts with them; else the inter-digit timeout decides); ``*`` says the menu
again, ``#`` goes back; a digit that is no option gets the invalid prompt and
the short greeting; no digit within the menu's timeout gets the long greeting
again. ``max_failures`` invalid digits or ``max_timeouts`` timeouts in a row:
the polite goodbye, then hang up: never a dead line.

Leaving a message: its introduction, a beep, then the recording, which ends
on ``#``, after ``silence_s`` of silence following speech (the worker's
speech detector), after ``initial_silence_s`` with no word at all, or at
``max_s``. The flow asks the engine to store the message
(:class:`SaveMessage`); only once it is stored does the caller hear the
thanks (or, if it could not be, that it failed).

Every step is a notice carrying the path the caller took. Every transition is
a row of :data:`TABLE`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from callflow import Answer, CallFlow, DigitPressed, Notice, Request, StateTable, Timeout, Timer
from softphone import protocol as p

from .menus import BACK, BEEP, REPEAT, Action, Kind, Menu, MenuBook

__all__ = ["Ivr", "IvrStage", "MessageSaved", "MessageSettings", "SaveMessage"]

SPEECH_HANGOVER_S = 0.5  # the worker says speech_ended this long after the last voiced frame


@dataclass(frozen=True)
class MessageSettings:
    max_s: float = 60.0
    silence_s: float = 3.0
    initial_silence_s: float = 8.0


class IvrStage(enum.Enum):
    WELCOME = "welcome"
    GREETING = "greeting"  # a menu's greeting plays
    WAITING = "waiting"  # for a digit
    SAYING = "saying"  # an information prompt plays
    INVALID = "invalid"
    GOODBYE = "goodbye"
    MESSAGE_INTRO = "message_intro"
    BEEP = "beep"
    RECORDING = "recording"
    SAVING = "saving"  # the recording is closed and stored
    THANKS = "thanks"
    ENDING = "ending"
    ENDED = "ended"


class On(enum.Enum):
    PROMPT_DONE = enum.auto()
    PROMPT_CUT = enum.auto()
    DIGIT = enum.auto()
    DIGIT_TIMEOUT = enum.auto()
    INTERDIGIT_TIMEOUT = enum.auto()
    SPEECH_STARTED = enum.auto()
    SPEECH_ENDED = enum.auto()
    SILENCE_TIMEOUT = enum.auto()
    MESSAGE_TIMEOUT = enum.auto()
    RECORDING_SAVED = enum.auto()
    STORED = enum.auto()
    NOT_STORED = enum.auto()
    HUNG_UP = enum.auto()


@dataclass(frozen=True)
class SaveMessage(Request):
    """Ask the engine to store a message left for a callback; it answers with
    :class:`MessageSaved`, delivered to the flow like a worker event."""

    call: str
    caller: str
    file: str
    duration_s: float
    path: str


@dataclass(frozen=True)
class MessageSaved(Answer):
    TYPE: ClassVar[str] = "message_saved"
    call: str
    id: str | None  # None: it could not be stored
    error: str = ""


@dataclass(frozen=True)
class IvrEntered(Notice):
    KIND: ClassVar[str] = "ivr_menu"
    menu: str
    path: str


@dataclass(frozen=True)
class IvrPrompt(Notice):
    KIND: ClassVar[str] = "ivr_prompt"
    prompt: str
    path: str
    fraud_type: str | None = None


@dataclass(frozen=True)
class IvrTimeout(Notice):
    KIND: ClassVar[str] = "ivr_timeout"
    menu: str
    path: str
    count: int


@dataclass(frozen=True)
class IvrInvalid(Notice):
    KIND: ClassVar[str] = "ivr_invalid"
    menu: str
    digits: str
    path: str
    count: int


@dataclass(frozen=True)
class MessageLeft(Notice):
    KIND: ClassVar[str] = "message_left"
    NUMBERS: ClassVar[tuple[str, ...]] = ("caller",)
    id: str | None
    caller: str
    duration_s: float
    path: str
    stored: bool


@dataclass(frozen=True)
class IvrEnded(Notice):
    KIND: ClassVar[str] = "ivr_ended"
    path: str
    by: str
    how: str  # goodbye, message, hung_up


_TIMERS = {"digit": On.DIGIT_TIMEOUT, "interdigit": On.INTERDIGIT_TIMEOUT,
           "silence": On.SILENCE_TIMEOUT, "message": On.MESSAGE_TIMEOUT}
_IGNORED = (p.Answered, p.Ringing, p.Digits, p.Error, p.Transferred, p.MachineDetection)


class Ivr(CallFlow):
    """``prompt(id)`` is the WAV of a prompt; ``recording`` where a message goes."""

    def __init__(self, call: str, caller: str, book: MenuBook, prompt: Callable[[str], str],
                 recording: str, message: MessageSettings = MessageSettings()) -> None:
        super().__init__()
        self.call = call
        self.caller = caller
        self.book = book
        self.prompt = prompt
        self.recording = recording
        self.message = message
        self.state = IvrStage.WELCOME
        self.stack: list[str] = []
        self.digits = ""
        self.failures = 0
        self.timeouts = 0
        self.playing = ""
        self.steps: list[str] = []  # the path: menus entered and options chosen
        self.recording_since: float | None = None
        self.spoke = False
        self.how = "hung_up"

    @property
    def legs(self) -> tuple[str, ...]:
        return (self.call,)

    @property
    def finished(self) -> bool:
        return self.state is IvrStage.ENDED

    @property
    def menu(self) -> Menu:
        return self.book.menus[self.stack[-1] if self.stack else self.book.entry]

    @property
    def path(self) -> str:
        return ">".join(self.steps)

    def fail(self, error: BaseException) -> None:
        self.state = IvrStage.ENDED

    def start(self, now: float, answered: bool = False) -> list:
        if not answered:
            self.emit(p.Answer(self.call))
        self._play(self.book.welcome)
        self.state = IvrStage.WELCOME
        return self.take()

    def classify(self, event: object) -> On | None:
        if isinstance(event, Timeout):
            return _TIMERS.get(event.name)
        if isinstance(event, p.HungUp):
            return On.HUNG_UP
        if isinstance(event, p.Dtmf):
            return On.DIGIT
        if isinstance(event, p.PlaybackEnded):
            if event.file != self.playing:
                return None  # a prompt we already replaced
            return On.PROMPT_DONE if event.reason == "done" else On.PROMPT_CUT
        if isinstance(event, (p.SpeechStarted, p.SpeechEnded)):
            if self.state is not IvrStage.RECORDING:
                return None  # the caller's voice only matters while a message is recorded
            return On.SPEECH_STARTED if isinstance(event, p.SpeechStarted) else On.SPEECH_ENDED
        if isinstance(event, p.RecordingSaved):
            return On.RECORDING_SAVED
        if isinstance(event, MessageSaved):
            return On.STORED if event.id else On.NOT_STORED
        if isinstance(event, _IGNORED):
            return None
        raise TypeError(f"the voice menu does not know the event {event!r}")

    # ------------------------------------------------------------ helpers

    def _play(self, prompt_id: str, fraud_type: str | None = None) -> None:
        self.playing = self.prompt(prompt_id)
        self.emit(p.Play(self.call, self.playing, interrupt_on_digit=True),
                  IvrPrompt(self.call, prompt_id, self.path, fraud_type))

    def _timer(self, name: str, at: float | None) -> None:
        self.emit(Timer(self.call, name, at))

    def _enter(self, menu_id: str) -> IvrStage:
        self.stack.append(menu_id)
        self.steps.append(menu_id)
        self.emit(IvrEntered(self.call, menu_id, self.path))
        return self._greet(long=True)

    def _greet(self, long: bool) -> IvrStage:
        menu = self.menu
        self._play(menu.greeting_long if long else menu.greeting_short)
        return IvrStage.GREETING

    def _goodbye(self) -> IvrStage:
        self.how = "goodbye"
        self._play(self.book.goodbye)
        return IvrStage.GOODBYE

    def _listen(self, now: float) -> IvrStage:
        self._timer("digit", now + self.menu.timeout_s)
        return IvrStage.WAITING

    # ------------------------------------------------------------ handlers

    def _stay(self, event: object, now: float) -> IvrStage:
        return self.state

    def _welcomed(self, event: object, now: float) -> IvrStage:
        return self._enter(self.book.entry)

    def _greeted(self, event: object, now: float) -> IvrStage:
        return self._listen(now)

    def _said(self, event: object, now: float) -> IvrStage:
        return self._greet(long=False)

    def _digit(self, event: p.Dtmf, now: float) -> IvrStage:
        self.emit(DigitPressed(self.call, event.digit, event.method))
        self._timer("digit", None)
        if not self.stack:  # a digit during the welcome: the entry menu takes it
            self.stack.append(self.book.entry)
            self.steps.append(self.book.entry)
            self.emit(IvrEntered(self.call, self.book.entry, self.path))
        if event.digit == REPEAT:
            self.digits = ""
            return self._greet(long=True)
        if event.digit == BACK:
            self.digits = ""
            if len(self.stack) > 1:
                self.stack.pop()
                self.steps.append(self.stack[-1])
                self.emit(IvrEntered(self.call, self.stack[-1], self.path))
            return self._greet(long=True)
        wanted = self.digits + event.digit
        action, longer = self.menu.matches(wanted)
        if action is not None and not longer:
            self.digits = ""
            self._timer("interdigit", None)
            return self._act(action, wanted, now)
        if longer:
            self.digits = wanted
            self._timer("interdigit", now + self.menu.inter_digit_s)
            return IvrStage.WAITING
        self.digits = ""
        return self._invalid(wanted)

    def _interdigit(self, event: object, now: float) -> IvrStage:
        wanted, self.digits = self.digits, ""
        action, _ = self.menu.matches(wanted)
        if action is not None:
            return self._act(action, wanted, now)
        return self._invalid(wanted)

    def _act(self, action: Action, digits: str, now: float) -> IvrStage:
        self.failures = self.timeouts = 0
        self.steps.append(digits)
        if action.kind is Kind.MENU:
            return self._enter(action.target)
        if action.kind is Kind.SAY:
            self._play(action.target, action.fraud_type)
            return IvrStage.SAYING
        self._play("message_intro")
        return IvrStage.MESSAGE_INTRO

    def _invalid(self, digits: str) -> IvrStage:
        self.failures += 1
        self.emit(IvrInvalid(self.call, self.menu.id, digits, self.path, self.failures))
        if self.failures >= self.menu.max_failures:
            return self._goodbye()
        self._play(self.menu.invalid or self.book.invalid)
        return IvrStage.INVALID

    def _no_digit(self, event: object, now: float) -> IvrStage:
        self.timeouts += 1
        self.emit(IvrTimeout(self.call, self.menu.id, self.path, self.timeouts))
        if self.timeouts >= self.menu.max_timeouts:
            return self._goodbye()
        return self._greet(long=True)

    def _said_goodbye(self, event: object, now: float) -> IvrStage:
        self.emit(p.Hangup(self.call))
        return IvrStage.ENDING

    # -- the message

    def _beep(self, event: object, now: float) -> IvrStage:
        self._play(BEEP)
        return IvrStage.BEEP

    def _record(self, event: object, now: float) -> IvrStage:
        self.playing = ""
        self.recording_since = now
        self.spoke = False
        self.emit(p.Record(self.call, self.recording))
        self._timer("message", now + self.message.max_s)
        self._timer("silence", now + self.message.initial_silence_s)
        return IvrStage.RECORDING

    def _speaking(self, event: object, now: float) -> IvrStage:
        self.spoke = True
        self._timer("silence", None)
        return self.state

    def _paused(self, event: object, now: float) -> IvrStage:
        wait = max(0.1, self.message.silence_s - SPEECH_HANGOVER_S)
        self._timer("silence", now + wait)
        return self.state

    def _message_digit(self, event: p.Dtmf, now: float) -> IvrStage:
        self.emit(DigitPressed(self.call, event.digit, event.method))
        if event.digit != "#":
            return self.state
        return self._stop_recording(event, now)

    def _stop_recording(self, event: object, now: float) -> IvrStage:
        self._timer("silence", None)
        self._timer("message", None)
        self.emit(p.StopRecording(self.call))
        return IvrStage.SAVING

    def _recorded(self, event: p.RecordingSaved, now: float) -> IvrStage:
        self.steps.append("message")
        self.emit(SaveMessage(self.call, self.caller, event.file, event.duration_s, self.path))
        return IvrStage.SAVING

    def _stored(self, event: MessageSaved, now: float) -> IvrStage:
        self.how = "message"
        self._play("message_thanks" if event.id else "message_failed")
        return IvrStage.THANKS

    def _hung_up_recording(self, event: p.HungUp, now: float) -> IvrStage:
        """The caller hung up while speaking: the message counts (the worker closes the file)."""
        self.steps.append("message")
        duration = now - (self.recording_since or now)
        self.emit(SaveMessage(self.call, self.caller, self.recording, round(duration, 2), self.path))
        self.how = "message"
        return self._hung_up(event, now)

    def _hung_up(self, event: p.HungUp, now: float) -> IvrStage:
        self.emit(IvrEnded(self.call, self.path, event.by, self.how))
        return IvrStage.ENDED


S, C = IvrStage, Ivr
_STAY = ()
_MENU_DIGIT: tuple[Callable[..., IvrStage], list[IvrStage]] = (
    C._digit, [S.GREETING, S.WAITING, S.SAYING, S.INVALID, S.GOODBYE, S.MESSAGE_INTRO])
TABLE: StateTable[IvrStage, On] = StateTable("voice menu", {
    (S.WELCOME, On.PROMPT_DONE): (C._welcomed, [S.GREETING]),
    (S.WELCOME, On.PROMPT_CUT): (C._stay, _STAY),
    (S.WELCOME, On.DIGIT): _MENU_DIGIT,
    (S.WELCOME, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    **{(stage, on): row for stage in (S.GREETING, S.WAITING, S.SAYING, S.INVALID)
       for on, row in {
           On.DIGIT: _MENU_DIGIT,
           On.PROMPT_CUT: (C._stay, _STAY),
           On.INTERDIGIT_TIMEOUT: (C._interdigit, [S.GREETING, S.SAYING, S.INVALID, S.GOODBYE,
                                                   S.MESSAGE_INTRO]),
           On.HUNG_UP: (C._hung_up, [S.ENDED]),
       }.items()},
    (S.GREETING, On.PROMPT_DONE): (C._greeted, [S.WAITING]),
    (S.WAITING, On.DIGIT_TIMEOUT): (C._no_digit, [S.GREETING, S.GOODBYE]),
    (S.SAYING, On.PROMPT_DONE): (C._said, [S.GREETING]),
    (S.INVALID, On.PROMPT_DONE): (C._said, [S.GREETING]),

    (S.GOODBYE, On.PROMPT_DONE): (C._said_goodbye, [S.ENDING]),
    (S.GOODBYE, On.PROMPT_CUT): (C._stay, _STAY),
    (S.GOODBYE, On.DIGIT): (C._stay, _STAY),
    (S.GOODBYE, On.HUNG_UP): (C._hung_up, [S.ENDED]),

    (S.MESSAGE_INTRO, On.PROMPT_DONE): (C._beep, [S.BEEP]),
    (S.MESSAGE_INTRO, On.PROMPT_CUT): (C._beep, [S.BEEP]),  # a digit skips the introduction
    (S.MESSAGE_INTRO, On.DIGIT): (C._stay, _STAY),
    (S.MESSAGE_INTRO, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    (S.BEEP, On.PROMPT_DONE): (C._record, [S.RECORDING]),
    (S.BEEP, On.PROMPT_CUT): (C._record, [S.RECORDING]),
    (S.BEEP, On.DIGIT): (C._stay, _STAY),
    (S.BEEP, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    (S.RECORDING, On.SPEECH_STARTED): (C._speaking, _STAY),
    (S.RECORDING, On.SPEECH_ENDED): (C._paused, _STAY),
    (S.RECORDING, On.DIGIT): (C._message_digit, [S.RECORDING, S.SAVING]),
    (S.RECORDING, On.SILENCE_TIMEOUT): (C._stop_recording, [S.SAVING]),
    (S.RECORDING, On.MESSAGE_TIMEOUT): (C._stop_recording, [S.SAVING]),
    (S.RECORDING, On.HUNG_UP): (C._hung_up_recording, [S.ENDED]),
    (S.SAVING, On.RECORDING_SAVED): (C._recorded, _STAY),
    (S.SAVING, On.STORED): (C._stored, [S.THANKS]),
    (S.SAVING, On.NOT_STORED): (C._stored, [S.THANKS]),
    (S.SAVING, On.DIGIT): (C._stay, _STAY),
    (S.SAVING, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    (S.THANKS, On.PROMPT_DONE): (C._said_goodbye, [S.ENDING]),
    (S.THANKS, On.PROMPT_CUT): (C._stay, _STAY),
    (S.THANKS, On.DIGIT): (C._stay, _STAY),
    (S.THANKS, On.STORED): (C._stay, _STAY),
    (S.THANKS, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    **{(S.ENDING, on): (C._stay, _STAY) for on in On if on is not On.HUNG_UP},
    (S.ENDING, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    (S.ENDED, On.STORED): (C._stay, _STAY),
    (S.ENDED, On.NOT_STORED): (C._stay, _STAY),
    (S.ENDED, On.RECORDING_SAVED): (C._stay, _STAY),
})
Ivr.TABLE = TABLE
