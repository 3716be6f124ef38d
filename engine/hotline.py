"""What happens to an inbound call: a pure flow, worker events in, outputs out.

The engine screens the caller, picks a :class:`Route` with :func:`route_for`,
and then feeds every worker event of the call (and of its operator leg) to
:meth:`InboundCall.on_event`, sending the commands it returns. Nothing here
touches a socket or a clock: tests drive it with events alone.

Routes:

- ``REJECT``: the decision's final response (603 by default), no media.
- ``NOT_FOUND``: an INVITE for a number this engine does not serve: 404.
- ``OPERATOR``: inside operator hours. The caller hears ringing while the
  worker calls ``hotline.operator_uri`` (showing the caller's number); when the
  operator answers, the caller is answered and both are bridged. If the
  operator is busy or does not answer, the IVR takes the call instead.
- ``IVR``: outside operator hours: answered, the voice menu (:class:`hotline.Ivr`)
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

from callflow import CallEnded, CallFlow, DigitPressed, Notice, StateTable, Timeout, leg_progress
from hotline import Ivr
from screening import Action, Decision
from softphone import protocol as p

__all__ = [
    "InboundCall",
    "IvrAnswered",
    "OperatorAnswered",
    "OperatorDialled",
    "OperatorUnreachable",
    "Prompts",
    "Route",
    "Stage",
    "route_for",
]

class Route(enum.Enum):
    REJECT = "reject"
    NOT_FOUND = "not_found"
    OPERATOR = "operator"
    IVR = "ivr"


class Stage(enum.Enum):
    NEW = "new"
    REJECTED = "rejected"
    WARNING = "warning"  # answered, the warning plays
    CALLING_OPERATOR = "calling_operator"
    BRIDGED = "bridged"
    IVR = "ivr"
    ENDING = "ending"  # we hung up, waiting for hung_up
    ENDED = "ended"


class On(enum.Enum):
    """What an event means to an inbound call."""

    PROMPT_DONE = enum.auto()  # played to the end
    PROMPT_CUT = enum.auto()  # a digit cut it short
    PROMPT_STOPPED = enum.auto()  # we stopped it
    DIGIT = enum.auto()
    OPERATOR_ANSWERED = enum.auto()
    OPERATOR_UNREACHED = enum.auto()  # busy, no answer, failed
    OPERATOR_HUNG_UP = enum.auto()
    HUNG_UP = enum.auto()  # the caller's leg ended
    IVR_EVENT = enum.auto()  # for the voice menu that has the call


@dataclass(frozen=True)
class Prompts:
    warning: str
    connecting: str


@dataclass(frozen=True)
class OperatorDialled(Notice):
    KIND: ClassVar[str] = "operator_dialled"


@dataclass(frozen=True)
class OperatorAnswered(Notice):
    KIND: ClassVar[str] = "operator_answered"


@dataclass(frozen=True)
class OperatorUnreachable(Notice):
    KIND: ClassVar[str] = "operator_unreachable"
    status: int


@dataclass(frozen=True)
class IvrAnswered(Notice):
    KIND: ClassVar[str] = "ivr"


def route_for(decision: Decision, callee: str, hotline_number: str, operator_hours: bool) -> Route:
    if decision.action is Action.REJECT:
        return Route.REJECT
    if callee != hotline_number:
        return Route.NOT_FOUND
    return Route.OPERATOR if operator_hours else Route.IVR


_OPERATOR = {"answered": On.OPERATOR_ANSWERED, "unreached": On.OPERATOR_UNREACHED,
             "hung_up": On.OPERATOR_HUNG_UP}
_IGNORED = (p.Answered, p.SpeechStarted, p.SpeechEnded, p.Digits, p.Ringing, p.Error, p.Transferred)


class InboundCall(CallFlow):
    def __init__(self, call: str, caller: str, decision: Decision, route: Route, prompts: Prompts,
                 operator_uri: str, ivr: Callable[[], Ivr], ring_timeout_s: float = 30.0) -> None:
        super().__init__()
        self.call = call
        self.caller = caller  # as the caller id arrived: only sent to the operator, never logged
        self.decision = decision
        self.route = route
        self.prompts = prompts
        self.operator_uri = operator_uri
        self.ring_timeout_s = ring_timeout_s
        self.state = Stage.NEW
        self.new_ivr = ivr
        self.ivr: Ivr | None = None
        self.digits = ""
        self.operator = "none"  # the operator leg: "none", "dialled", "gone"

    @property
    def operator_leg(self) -> str:
        return f"{self.call}-op"

    @property
    def legs(self) -> tuple[str, ...]:
        return (self.call, self.operator_leg)

    @property
    def finished(self) -> bool:
        return self.state is Stage.ENDED and self.operator != "dialled"

    @property
    def answered_by_us(self) -> bool:
        return self.decision.action is Action.WARN

    def fail(self, error: BaseException) -> None:
        self.state = Stage.ENDED
        self.operator = "gone"

    # ------------------------------------------------------------ start

    def start(self, now: float) -> list:
        if self.route is Route.REJECT:
            self.state = Stage.REJECTED
            self.emit(p.Reject(self.call, self.decision.status or 603))
        elif self.route is Route.NOT_FOUND:
            self.state = Stage.REJECTED
            self.emit(p.Reject(self.call, 404))
        elif self.decision.action is Action.WARN:
            self.state = Stage.WARNING
            self.emit(p.Answer(self.call), p.Play(self.call, self.prompts.warning))
        else:
            self.state = self._go_on(answered=False, now=now)
        return self.take()

    def classify(self, event: object) -> On | None:
        if getattr(event, "call", None) == self.operator_leg:
            return _OPERATOR.get(leg_progress(event) or "")  # type: ignore[arg-type]
        if self.state is Stage.IVR:
            return On.IVR_EVENT
        if isinstance(event, p.HungUp):
            return On.HUNG_UP
        if isinstance(event, p.Dtmf):
            return On.DIGIT
        if isinstance(event, p.PlaybackEnded):
            return {"done": On.PROMPT_DONE, "interrupted": On.PROMPT_CUT}.get(event.reason,
                                                                              On.PROMPT_STOPPED)
        if isinstance(event, _IGNORED):
            return None
        return None if isinstance(event, Timeout) else _unknown(event)

    # ------------------------------------------------------------ handlers

    def _stay(self, event: object, now: float) -> Stage:
        return self.state

    def _digit(self, event: p.Dtmf, now: float) -> Stage:
        self.digits += event.digit
        self.emit(DigitPressed(self.call, event.digit, event.method))
        return self.state

    def _warning_done(self, event: object, now: float) -> Stage:
        return self._go_on(answered=True, now=now)

    def _go_on(self, answered: bool, now: float) -> Stage:
        if self.route is Route.OPERATOR:
            self.operator = "dialled"
            self.emit(OperatorDialled(self.call))
            if answered:
                self.emit(p.Play(self.call, self.prompts.connecting, loop=True))
            else:
                self.emit(p.Ring(self.call))
            self.emit(p.Dial(self.operator_leg, self.operator_uri, self.caller, self.ring_timeout_s,
                             {"X-Screening": self.decision.action.value}))
            return Stage.CALLING_OPERATOR
        return self._ivr(answered, now)

    def _ivr(self, answered: bool, now: float) -> Stage:
        self.emit(IvrAnswered(self.call))
        self.ivr = self.new_ivr()
        self.emit(*self.ivr.start(now, answered))
        return Stage.IVR

    def _in_ivr(self, event: object, now: float) -> Stage:
        assert self.ivr is not None
        self.emit(*self.ivr.on_event(event, now))
        if not self.ivr.finished:
            return Stage.IVR
        if isinstance(event, p.HungUp):
            return self._hung_up(event, now)
        return Stage.ENDING  # the menu hung up; its hung_up ends the call

    def _operator_answered(self, event: object, now: float) -> Stage:
        self.emit(OperatorAnswered(self.call))
        self.emit(p.Stop(self.call) if self.answered_by_us else p.Answer(self.call))
        self.emit(p.Bridge(self.call, self.operator_leg))
        return Stage.BRIDGED

    def _operator_unreached(self, event: p.Busy | p.NoAnswer | p.Failed, now: float) -> Stage:
        self.emit(OperatorUnreachable(self.call, event.status))
        if self.answered_by_us:
            self.emit(p.Stop(self.call))
        return self._ivr(self.answered_by_us, now)

    def _operator_gone(self, event: object, now: float) -> Stage:
        self.operator = "gone"
        return self.state

    def _operator_left_bridge(self, event: object, now: float) -> Stage:
        self.operator = "gone"
        self.emit(p.Hangup(self.call))
        return Stage.ENDING

    def _hung_up(self, event: p.HungUp, now: float) -> Stage:
        self.emit(CallEnded(self.call, event.by, event.status, event.duration_s, self.digits,
                            event.reason))
        if self.operator == "dialled":
            self.emit(p.Hangup(self.operator_leg))
        return Stage.ENDED


def _unknown(event: object) -> On:
    raise TypeError(f"an inbound call does not know the event {event!r}")


S, C = Stage, InboundCall
_STAY = ()
TABLE: StateTable[Stage, On] = StateTable("inbound call", {
    (S.REJECTED, On.HUNG_UP): (C._hung_up, [S.ENDED]),
    (S.REJECTED, On.DIGIT): (C._stay, _STAY),
    (S.REJECTED, On.PROMPT_STOPPED): (C._stay, _STAY),

    (S.WARNING, On.PROMPT_DONE): (C._warning_done, [S.CALLING_OPERATOR, S.IVR]),
    (S.WARNING, On.PROMPT_CUT): (C._stay, _STAY),
    (S.WARNING, On.PROMPT_STOPPED): (C._stay, _STAY),
    (S.WARNING, On.DIGIT): (C._digit, _STAY),
    (S.WARNING, On.HUNG_UP): (C._hung_up, [S.ENDED]),

    (S.CALLING_OPERATOR, On.OPERATOR_ANSWERED): (C._operator_answered, [S.BRIDGED]),
    (S.CALLING_OPERATOR, On.OPERATOR_UNREACHED): (C._operator_unreached, [S.IVR]),
    (S.CALLING_OPERATOR, On.OPERATOR_HUNG_UP): (C._operator_gone, _STAY),
    (S.CALLING_OPERATOR, On.DIGIT): (C._digit, _STAY),
    (S.CALLING_OPERATOR, On.PROMPT_DONE): (C._stay, _STAY),
    (S.CALLING_OPERATOR, On.PROMPT_CUT): (C._stay, _STAY),
    (S.CALLING_OPERATOR, On.PROMPT_STOPPED): (C._stay, _STAY),
    (S.CALLING_OPERATOR, On.HUNG_UP): (C._hung_up, [S.ENDED]),

    (S.BRIDGED, On.OPERATOR_HUNG_UP): (C._operator_left_bridge, [S.ENDING]),
    (S.BRIDGED, On.DIGIT): (C._digit, _STAY),
    (S.BRIDGED, On.PROMPT_STOPPED): (C._stay, _STAY),
    (S.BRIDGED, On.HUNG_UP): (C._hung_up, [S.ENDED]),

    (S.IVR, On.IVR_EVENT): (C._in_ivr, [S.IVR, S.ENDING, S.ENDED]),
    (S.IVR, On.OPERATOR_HUNG_UP): (C._operator_gone, _STAY),

    **{(S.ENDING, on): (C._stay, _STAY) for on in On if on not in (On.HUNG_UP, On.OPERATOR_HUNG_UP)},
    (S.ENDING, On.OPERATOR_HUNG_UP): (C._operator_gone, _STAY),
    (S.ENDING, On.HUNG_UP): (C._hung_up, [S.ENDED]),

    (S.ENDED, On.OPERATOR_ANSWERED): (C._stay, _STAY),
    (S.ENDED, On.OPERATOR_UNREACHED): (C._stay, _STAY),
    (S.ENDED, On.OPERATOR_HUNG_UP): (C._operator_gone, _STAY),
})
InboundCall.TABLE = TABLE
