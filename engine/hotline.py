"""What happens to an inbound call: a pure state machine, worker events in, commands out.

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
- ``IVR``: outside operator hours: answered, the welcome prompt plays.
- A ``warn`` decision first answers and plays the warning, then goes on with
  the route of the hour.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from screening import Action, Decision
from softphone import protocol as p

__all__ = ["InboundCall", "Notice", "Prompts", "Route", "UnexpectedEvent", "route_for"]

WELCOME_PLAYS = 2  # the welcome is said twice, then the call ends


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


class UnexpectedEvent(Exception):
    """An event the call's state table has no row for (names stage and event)."""

    def __init__(self, stage: Stage, event: p.Event) -> None:
        super().__init__(f"{event.TYPE} in stage {stage.value}")
        self.stage, self.event = stage, event


@dataclass(frozen=True)
class Prompts:
    welcome: str
    warning: str
    connecting: str


@dataclass(frozen=True)
class Notice:
    """Something people and other systems hear about (logs, event file, MQTT)."""

    kind: str
    call: str
    data: dict[str, object] = field(default_factory=dict)


def route_for(decision: Decision, callee: str, hotline_number: str, operator_hours: bool) -> Route:
    if decision.action is Action.REJECT:
        return Route.REJECT
    if callee != hotline_number:
        return Route.NOT_FOUND
    return Route.OPERATOR if operator_hours else Route.IVR


@dataclass
class InboundCall:
    call: str
    caller: str  # as the caller id arrived: only sent back to the operator, never logged
    decision: Decision
    route: Route
    prompts: Prompts
    operator_uri: str
    ring_timeout_s: float = 30.0
    stage: Stage = Stage.NEW
    welcome_plays: int = 0
    digits: str = ""
    operator: str = "none"  # the operator leg: "none", "dialled", "gone"
    notices: list[Notice] = field(default_factory=list)

    @property
    def operator_leg(self) -> str:
        return f"{self.call}-op"

    def start(self) -> list[p.Command]:
        if self.route is Route.REJECT:
            self.stage = Stage.REJECTED
            return [p.Reject(self.call, self.decision.status or 603)]
        if self.route is Route.NOT_FOUND:
            self.stage = Stage.REJECTED
            return [p.Reject(self.call, 404)]
        if self.decision.action is Action.WARN:
            self.stage = Stage.WARNING
            return [p.Answer(self.call), p.Play(self.call, self.prompts.warning)]
        return self._go_on(answered=False)

    def _go_on(self, answered: bool) -> list[p.Command]:
        if self.route is Route.OPERATOR:
            self.stage = Stage.CALLING_OPERATOR
            self.operator = "dialled"
            self._notice("operator_dialled")
            first: list[p.Command] = (
                [p.Play(self.call, self.prompts.connecting, loop=True)] if answered else [p.Ring(self.call)]
            )
            return first + [p.Dial(self.operator_leg, self.operator_uri, self.caller, self.ring_timeout_s,
                                   {"X-Screening": self.decision.action.value})]
        return self._ivr(answered)

    def _ivr(self, answered: bool) -> list[p.Command]:
        self.stage = Stage.IVR
        self._notice("ivr")
        commands: list[p.Command] = [] if answered else [p.Answer(self.call)]
        return commands + [p.Play(self.call, self.prompts.welcome, interrupt_on_digit=True)]

    def on_event(self, event: p.Event) -> list[p.Command]:
        if isinstance(event, p.HungUp):
            return self._hung_up(event)
        if self.stage in (Stage.ENDING, Stage.ENDED, Stage.REJECTED):
            return []  # late media events of a call on its way out
        leg = getattr(event, "call", None)
        if leg == self.operator_leg:
            return self._operator_event(event)
        if isinstance(event, p.Dtmf):
            self.digits += event.digit
            self._notice("dtmf", digit=event.digit, method=event.method)
            return []
        if isinstance(event, p.PlaybackEnded):
            return self._playback_ended(event)
        if isinstance(event, (p.Answered, p.SpeechStarted, p.SpeechEnded, p.Digits, p.Ringing, p.Error)):
            return []
        raise UnexpectedEvent(self.stage, event)

    def _playback_ended(self, event: p.PlaybackEnded) -> list[p.Command]:
        if event.reason == "stopped":
            return []
        if self.stage is Stage.WARNING:
            return self._go_on(answered=True)
        if self.stage is Stage.IVR:
            if event.reason == "done":  # a digit cuts it short; only whole plays count
                self.welcome_plays += 1
            if self.welcome_plays < WELCOME_PLAYS:
                return [p.Play(self.call, self.prompts.welcome, interrupt_on_digit=True)]
            self.stage = Stage.ENDING
            return [p.Hangup(self.call)]
        return []

    def _operator_event(self, event: p.Event) -> list[p.Command]:
        if self.stage is not Stage.CALLING_OPERATOR:
            return []
        if isinstance(event, p.Answered):
            self.stage = Stage.BRIDGED
            self._notice("operator_answered")
            answered = self.decision.action is Action.WARN
            first: list[p.Command] = [p.Stop(self.call)] if answered else [p.Answer(self.call)]
            return first + [p.Bridge(self.call, self.operator_leg)]
        if isinstance(event, (p.Busy, p.NoAnswer, p.Failed)):
            self._notice("operator_unreachable", status=event.status)
            answered = self.decision.action is Action.WARN
            commands: list[p.Command] = [p.Stop(self.call)] if answered else []
            return commands + self._ivr(answered)
        return []

    def _hung_up(self, event: p.HungUp) -> list[p.Command]:
        if event.call == self.operator_leg:
            self.operator = "gone"
            if self.stage is Stage.BRIDGED:
                self.stage = Stage.ENDING
                return [p.Hangup(self.call)]
            return []
        self.stage = Stage.ENDED
        self._notice("ended", by=event.by, status=event.status, duration_s=event.duration_s,
                      digits=self.digits)
        return [p.Hangup(self.operator_leg)] if self.operator == "dialled" else []

    @property
    def finished(self) -> bool:
        """Both legs are gone: the engine may forget this call."""
        return self.stage is Stage.ENDED and self.operator != "dialled"

    def _notice(self, kind: str, **data: object) -> None:
        self.notices.append(Notice(kind, self.call, data))
