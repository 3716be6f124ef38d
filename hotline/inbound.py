"""What happens to an inbound call: a pure flow, worker events in, outputs out.

The engine screens the caller, picks a :class:`~hotline.routing.Route` with
:func:`~hotline.routing.route_for`, and then feeds every event of the call (its
worker's, its operator legs', the queue's) to :meth:`InboundCall.on_event`,
sending what it returns. Nothing here touches a socket or a clock: tests drive
it with events alone.

Routes:

- ``REJECT``: the decision's final response (603 by default), no media.
- ``NOT_FOUND``: an INVITE for a number this engine does not serve: 404.
- ``OPERATOR``: inside operator hours. The caller joins the operators' queue
  (:class:`~hotline.queue.OperatorQueue`, kept by the engine) and hears ringing.
  When the queue rings operators for it, the worker calls them (showing the
  caller's number); the first to answer is bridged with the caller, any
  other still ringing is cancelled. A caller who has to wait is answered and
  hears their place in the queue (您前面还有 N 位) every
  ``queue_announce_s``. After ``max_wait_s``, or when no operator answered at
  all, the voice menu takes the call (it offers a message for callback).
- ``IVR``: outside operator hours: answered, the voice menu (:class:`~hotline.ivr.Ivr`)
  takes the call; the inbound call hands it every event of the caller's leg.
- A ``warn`` decision first answers and plays the warning, then goes on with
  the route of the hour.

Every transition is a row of :data:`TABLE`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from callflow import (
    CallEnded,
    CallFlow,
    DigitPressed,
    Event,
    Notice,
    StateTable,
    Timeout,
    Timer,
    leg_progress,
    rows_in,
)
from screening import Action, Decision
from softphone import protocol as p

from .ivr import Ivr
from .queue import JoinQueue, LeaveQueue, NoOperator, QueueReport, QueueUpdate, RingOperators
from .routing import Route

__all__ = [
    "InboundCall",
    "IvrAnswered",
    "OperatorAnswered",
    "OperatorDialled",
    "OperatorUnreachable",
    "Prompts",
    "QueueSettings",
    "Stage",
]

MANY = 10  # from this many callers ahead, the queue says "more than ten" (prompts.queue(-1))


class Stage(enum.Enum):
    NEW = "new"
    REJECTED = "rejected"
    WARNING = "warning"  # answered, the warning plays
    QUEUED = "queued"  # waiting for the queue to ring an operator
    CALLING_OPERATOR = "calling_operator"  # one or more operators' phones ring
    BRIDGED = "bridged"
    REDIRECTING = "redirecting"  # "the operators cannot answer": then the voice menu
    IVR = "ivr"
    ENDING = "ending"  # we hung up, waiting for hung_up
    ENDED = "ended"


class On(enum.Enum):
    """What an event means to an inbound call."""

    PROMPT_DONE = enum.auto()
    PROMPT_CUT = enum.auto()
    DIGIT = enum.auto()
    QUEUE_UPDATE = enum.auto()
    RING_OPERATORS = enum.auto()
    NO_OPERATOR = enum.auto()
    ANNOUNCE = enum.auto()  # time to say the place in the queue again
    MAX_WAIT = enum.auto()
    OPERATOR_ANSWERED = enum.auto()
    OPERATOR_UNREACHED = enum.auto()  # busy, no answer, failed
    OPERATOR_HUNG_UP = enum.auto()
    HUNG_UP = enum.auto()  # the caller's leg ended
    IVR_EVENT = enum.auto()  # for the voice menu that has the call


@dataclass(frozen=True)
class Prompts:
    warning: str
    connecting: str
    queue: Callable[[int], str] = lambda ahead: f"queue-{ahead if ahead >= 0 else 'many'}.wav"
    operators_busy: str = "operators-busy.wav"


@dataclass(frozen=True)
class QueueSettings:
    ring_s: float = 20.0  # one operator's phone rings this long
    max_wait_s: float = 120.0
    announce_s: float = 30.0


@dataclass(frozen=True)
class OperatorDialled(Notice):
    KIND: ClassVar[str] = "operator_dialled"
    operator: str = ""


@dataclass(frozen=True)
class OperatorAnswered(Notice):
    KIND: ClassVar[str] = "operator_answered"
    operator: str = ""


@dataclass(frozen=True)
class OperatorUnreachable(Notice):
    KIND: ClassVar[str] = "operator_unreachable"
    status: int
    operator: str = ""


@dataclass(frozen=True)
class CallerQueued(Notice):
    KIND: ClassVar[str] = "queued"
    ahead: int


@dataclass(frozen=True)
class QueueGaveUp(Notice):
    """The caller waited max_wait_s, or no operator answered: the voice menu takes over."""

    KIND: ClassVar[str] = "queue_gave_up"
    why: str
    waited_s: float


@dataclass(frozen=True)
class IvrAnswered(Notice):
    KIND: ClassVar[str] = "ivr"


_QUEUE_EVENTS = {QueueUpdate: On.QUEUE_UPDATE, RingOperators: On.RING_OPERATORS,
                 NoOperator: On.NO_OPERATOR}
_TIMERS = {"announce": On.ANNOUNCE, "max_wait": On.MAX_WAIT}
_OPERATOR = {"answered": On.OPERATOR_ANSWERED, "unreached": On.OPERATOR_UNREACHED,
             "hung_up": On.OPERATOR_HUNG_UP}
_IGNORED = (p.Answered, p.SpeechStarted, p.SpeechEnded, p.Digits, p.Ringing, p.Error, p.Transferred,
            p.MachineDetection)


class InboundCall(CallFlow):
    def __init__(self, call: str, caller: str, decision: Decision, route: Route, prompts: Prompts,
                 ivr: Callable[[], Ivr], queue: QueueSettings = QueueSettings()) -> None:
        super().__init__()
        self.call = call
        self.caller = caller  # as the caller id arrived: only sent to operators, never logged
        self.decision = decision
        self.route = route
        self.prompts = prompts
        self.new_ivr = ivr
        self.queue = queue
        self.state = Stage.NEW
        self.ivr: Ivr | None = None
        self.digits = ""
        self.answered = False  # we sent 200 to the caller
        self.in_queue = False
        self.announced = False
        self.queued_at = 0.0
        self.ahead = 0
        self.playing = ""
        self.operators: dict[str, str] = {}  # operator leg → the operator's URI
        self.live: dict[str, str] = {}  # operator leg → ringing / talking
        self._legs = 0

    @property
    def legs(self) -> tuple[str, ...]:
        return (self.call, *self.operators)

    @property
    def operator_leg(self) -> str:
        """The first operator leg (one operator: the only one)."""
        return next(iter(self.operators), f"{self.call}-op1")

    @property
    def finished(self) -> bool:
        return self.state is Stage.ENDED and not self.live

    def fail(self, error: BaseException) -> None:
        self.state = Stage.ENDED
        self.live.clear()

    # ------------------------------------------------------------ start

    def start(self, now: float) -> list:
        if self.route is Route.REJECT:
            self.state = Stage.REJECTED
            self.emit(p.Reject(self.call, self.decision.status or 603))
        elif self.route is Route.NOT_FOUND:
            self.state = Stage.REJECTED
            self.emit(p.Reject(self.call, 404))
        elif self.decision.action is Action.WARN:
            self.answered = True
            self.state = Stage.WARNING
            self.emit(p.Answer(self.call))
            self._play(self.prompts.warning, interruptible=False)
        else:
            self.state = self._go_on(now)
        return self.take()

    def classify(self, event: object) -> On | None:
        leg = getattr(event, "call", None)
        if leg in self.operators:
            return _OPERATOR.get(leg_progress(event) or "")  # type: ignore[arg-type]
        if type(event) in _QUEUE_EVENTS:
            return _QUEUE_EVENTS[type(event)]
        if self.state is Stage.IVR:
            return On.IVR_EVENT
        if isinstance(event, Timeout):
            return _TIMERS.get(event.name)
        if isinstance(event, p.HungUp):
            return On.HUNG_UP
        if isinstance(event, p.Dtmf):
            return On.DIGIT
        if isinstance(event, p.PlaybackEnded):
            if event.file != self.playing:
                return None
            return On.PROMPT_DONE if event.reason == "done" else On.PROMPT_CUT
        if isinstance(event, (*_IGNORED, p.RecordingSaved)):
            return None
        raise TypeError(f"an inbound call does not know the event {event!r}")

    # ------------------------------------------------------------ helpers

    def _play(self, file: str, loop: bool = False, interruptible: bool = True) -> None:
        self.playing = file
        self.emit(p.Play(self.call, file, loop=loop, interrupt_on_digit=interruptible and not loop))

    def _answer(self) -> None:
        if not self.answered:
            self.answered = True
            self.emit(p.Answer(self.call))

    def _leave_queue(self) -> None:
        if self.in_queue:
            self.in_queue = False
            self.emit(LeaveQueue(self.call), Timer(self.call, "announce", None),
                      Timer(self.call, "max_wait", None))

    def _hang_up_operators(self, keep: str = "") -> None:
        for leg, state in self.live.items():
            if leg != keep and state == "ringing":
                self.emit(p.Hangup(leg))

    # ------------------------------------------------------------ handlers

    def _stay(self, event: object, now: float) -> Stage:
        return self.state

    def _digit(self, event: p.Dtmf, now: float) -> Stage:
        self.digits += event.digit
        self.emit(DigitPressed(self.call, event.digit, event.method))
        return self.state

    def _warning_done(self, event: object, now: float) -> Stage:
        return self._go_on(now)

    def _go_on(self, now: float) -> Stage:
        if self.route is Route.OPERATOR:
            if not self.answered:
                self.emit(p.Ring(self.call))
            self.in_queue = True
            self.queued_at = now
            self.emit(JoinQueue(self.call, self.caller), Timer(self.call, "max_wait", now + self.queue.max_wait_s))
            return Stage.QUEUED
        return self._ivr(now)

    def _ivr(self, now: float) -> Stage:
        self.emit(IvrAnswered(self.call))
        self.ivr = self.new_ivr()
        self.emit(*self.ivr.start(now, self.answered))
        self.answered = True
        return Stage.IVR

    def _in_ivr(self, event: Event, now: float) -> Stage:
        assert self.ivr is not None
        if isinstance(event, p.Dtmf):
            self.digits += event.digit
        self.emit(*self.ivr.on_event(event, now))
        if not self.ivr.finished:
            return Stage.IVR
        if isinstance(event, p.HungUp):
            return self._hung_up(event, now)
        return Stage.ENDING

    def _queue_update(self, event: QueueUpdate, now: float) -> Stage:
        """The first time the caller has to wait: answered and told their place."""
        self.ahead = event.ahead
        if self.state is Stage.QUEUED and not self.announced:
            self._answer()
            self.emit(CallerQueued(self.call, event.ahead))
            return self._announce(event, now)
        return self.state

    def _announce(self, event: object, now: float) -> Stage:
        """Every announce_s: the place in the queue (not while an operator's phone rings)."""
        if self.state is Stage.QUEUED:
            self.announced = True
            self._play(self.prompts.queue(self.ahead if self.ahead < MANY else -1))
        self.emit(Timer(self.call, "announce", now + self.queue.announce_s))
        return self.state

    def _ring(self, event: RingOperators, now: float) -> Stage:
        if self.answered:
            self._play(self.prompts.connecting, loop=True)
        for uri in event.operators:
            self._legs += 1
            leg = f"{self.call}-op{self._legs}"
            self.operators[leg] = uri
            self.live[leg] = "ringing"
            self.emit(OperatorDialled(self.call, uri),
                      p.Dial(leg, uri, self.caller, self.queue.ring_s,
                             {"X-Screening": self.decision.action.value}))
        return Stage.CALLING_OPERATOR

    def _operator_answered(self, event: p.Answered, now: float) -> Stage:
        uri = self.operators[event.call]
        self.live[event.call] = "talking"
        self._hang_up_operators(keep=event.call)
        self.emit(QueueReport(self.call, uri, "answered"), OperatorAnswered(self.call, uri))
        self._leave_queue()
        if self.answered:
            self.emit(p.Stop(self.call))
        else:
            self._answer()
        self.playing = ""
        self.emit(p.Bridge(self.call, event.call))
        return Stage.BRIDGED

    def _operator_unreached(self, event: p.Busy | p.NoAnswer | p.Failed, now: float) -> Stage:
        uri = self.operators[event.call]
        self.live[event.call] = "gone"
        self.emit(OperatorUnreachable(self.call, event.status, uri),
                  QueueReport(self.call, uri, "unanswered"))
        if any(state == "ringing" for state in self.live.values()):
            return self.state
        return Stage.QUEUED  # the queue rings the next one, or says nobody answers

    def _late_operator(self, event: p.Answered, now: float) -> Stage:
        """An operator answered after another took the call, or after the caller left."""
        self.live[event.call] = "talking"
        self.emit(p.Hangup(event.call))
        return self.state

    def _operator_gone(self, event: p.HungUp, now: float) -> Stage:
        was = self.live.pop(event.call, "gone")
        if was == "talking":
            self.emit(QueueReport(self.call, self.operators[event.call], "done"))
        elif was == "ringing":
            self.emit(QueueReport(self.call, self.operators[event.call], "unanswered"))
        return self.state

    def _operator_left_bridge(self, event: p.HungUp, now: float) -> Stage:
        """The operator talking to the caller hung up (another leg ending changes nothing)."""
        talking = self.live.get(event.call) == "talking"
        self._operator_gone(event, now)
        if not talking:
            return self.state
        self.emit(p.Hangup(self.call))
        return Stage.ENDING

    def _give_up(self, why: str, now: float) -> Stage:
        self._hang_up_operators()
        self._leave_queue()
        self.emit(QueueGaveUp(self.call, why, round(now - self.queued_at, 1)))
        self._answer()
        self._play(self.prompts.operators_busy)
        return Stage.REDIRECTING

    def _to_ivr(self, event: object, now: float) -> Stage:
        return self._ivr(now)

    def _no_operator(self, event: object, now: float) -> Stage:
        return self._give_up("no operator answered", now)

    def _waited_too_long(self, event: object, now: float) -> Stage:
        return self._give_up("waited too long", now)

    def _hung_up(self, event: p.HungUp, now: float) -> Stage:
        self._leave_queue()
        self.emit(CallEnded(self.call, event.by, event.status, event.duration_s, self.digits,
                            event.reason))
        for leg, state in self.live.items():
            if state in ("ringing", "talking"):
                self.emit(p.Hangup(leg))
        return Stage.ENDED


S, C = Stage, InboundCall
_STAY = ()
_WAITING = {  # the caller waits for an operator: queued, or hearing operators ring
    On.QUEUE_UPDATE: (C._queue_update, _STAY),
    On.RING_OPERATORS: (C._ring, [S.CALLING_OPERATOR]),
    On.NO_OPERATOR: (C._no_operator, [S.REDIRECTING]),
    On.ANNOUNCE: (C._announce, _STAY),
    On.MAX_WAIT: (C._waited_too_long, [S.REDIRECTING]),
    On.OPERATOR_ANSWERED: (C._operator_answered, [S.BRIDGED]),
    On.OPERATOR_UNREACHED: (C._operator_unreached, [S.CALLING_OPERATOR, S.QUEUED]),
    On.OPERATOR_HUNG_UP: (C._operator_gone, _STAY),
    On.DIGIT: (C._digit, _STAY),
    On.PROMPT_DONE: (C._stay, _STAY),
    On.PROMPT_CUT: (C._stay, _STAY),
    On.HUNG_UP: (C._hung_up, [S.ENDED]),
}
_AFTER = {  # the queue or an operator, once the call has moved on
    On.QUEUE_UPDATE: (C._stay, _STAY),
    On.RING_OPERATORS: (C._stay, _STAY),
    On.NO_OPERATOR: (C._stay, _STAY),
    On.ANNOUNCE: (C._stay, _STAY),
    On.MAX_WAIT: (C._stay, _STAY),
    On.OPERATOR_ANSWERED: (C._late_operator, _STAY),
    On.OPERATOR_UNREACHED: (C._operator_unreached, _STAY),
    On.OPERATOR_HUNG_UP: (C._operator_gone, _STAY),
}


TABLE: StateTable[Stage, On] = StateTable("inbound call", {
    (S.REJECTED, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    (S.REJECTED, On.DIGIT): (C._stay, _STAY),
    (S.REJECTED, On.PROMPT_CUT): (C._stay, _STAY),

    (S.WARNING, On.PROMPT_DONE): (C._warning_done, [S.QUEUED, S.IVR]),
    (S.WARNING, On.PROMPT_CUT): (C._stay, _STAY),
    (S.WARNING, On.DIGIT): (C._digit, _STAY),
    (S.WARNING, On.HUNG_UP): (C._hung_up, [S.ENDED]),

    **rows_in(S.QUEUED, _WAITING),
    **rows_in(S.CALLING_OPERATOR, _WAITING),
    **rows_in(S.BRIDGED, {
        **_AFTER,
        On.OPERATOR_HUNG_UP: (C._operator_left_bridge, [S.BRIDGED, S.ENDING]),
        On.DIGIT: (C._digit, _STAY),
        On.PROMPT_CUT: (C._stay, _STAY),
        On.PROMPT_DONE: (C._stay, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **rows_in(S.REDIRECTING, {
        **_AFTER,
        On.PROMPT_DONE: (C._to_ivr, [S.IVR]),
        On.PROMPT_CUT: (C._to_ivr, [S.IVR]),
        On.DIGIT: (C._stay, _STAY),
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **rows_in(S.IVR, {**_AFTER, On.IVR_EVENT: (C._in_ivr, [S.IVR, S.ENDING, S.ENDED])}),
    **rows_in(S.ENDING, {
        **_AFTER,
        **{on: (C._stay, _STAY) for on in (On.PROMPT_DONE, On.PROMPT_CUT, On.DIGIT)},
        On.HUNG_UP: (C._hung_up, [S.ENDED]),
    }),
    **rows_in(S.ENDED, _AFTER),
})
InboundCall.TABLE = TABLE
