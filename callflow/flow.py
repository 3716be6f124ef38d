"""The base of every call flow: event classification, the table step, outputs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from softphone import protocol as p

from .notice import Notice
from .table import StateTable

__all__ = ["Answer", "CallFlow", "Event", "Output", "Request", "Timeout", "Timer", "commands_of",
           "leg_progress", "notices_of", "timers_of"]


@dataclass(frozen=True)
class Timer:
    """Ask the engine for a :class:`Timeout` named ``name`` at ``at``; ``at=None`` cancels it."""

    call: str
    name: str
    at: float | None


@dataclass(frozen=True)
class Timeout:
    """A timer a flow asked for has expired (delivered like a worker event)."""

    TYPE: ClassVar[str] = "timeout"
    call: str
    name: str


@dataclass(frozen=True)
class Request:
    """Something a flow asks of the engine's own parts (store a message, wait in the queue…);
    the engine answers, if at all, with an :class:`Answer` for the same flow."""

    call: str


@dataclass(frozen=True)
class Answer:
    """An event for one call's flow from the engine's own parts, not from a worker (a message
    stored, the queue moved, the task cancelled), delivered behind what the worker sent so far."""

    TYPE: ClassVar[str] = "answer"
    call: str


Output = p.Command | Notice | Timer | Request
"""A softphone command, a notice, a timer, or a request of the engine."""
Event = p.Event | Timeout | Answer
"""What a flow hears: a worker's event, its own timer, or an answer of the engine."""


def leg_progress(event: Event) -> str | None:
    """What an event on a call we placed means to the flow that placed it: ``"answered"``,
    ``"unreached"`` (busy, no answer, failed), ``"hung_up"``, or ``None`` (ringing, media)."""
    if isinstance(event, p.Answered):
        return "answered"
    if isinstance(event, (p.Busy, p.NoAnswer, p.Failed)):
        return "unreached"
    if isinstance(event, p.HungUp):
        return "hung_up"
    return None


_COMMANDS = tuple(p.COMMANDS.values())


def commands_of(outputs: list[Output]) -> list[p.Command]:
    """The softphone commands among a flow's outputs (not notices, timers or requests)."""
    return [o for o in outputs if isinstance(o, _COMMANDS)]  # type: ignore[misc]


def notices_of(outputs: list[Output]) -> list[Notice]:
    return [o for o in outputs if isinstance(o, Notice)]


def timers_of(outputs: list[Output]) -> list[Timer]:
    return [o for o in outputs if isinstance(o, Timer)]


class CallFlow:
    """Subclasses set ``TABLE`` and ``state``, and implement :meth:`classify` and :meth:`start`.

    ``on_event`` turns the event into a trigger (``None``: nothing for the
    flow to do, e.g. a late media event), looks the row up (missing:
    :class:`~callflow.UnexpectedEvent`), runs its handler, checks the state
    it chose and returns what the handler put out.
    """

    TABLE: ClassVar[StateTable[Any, Any]]
    state: Any

    def __init__(self) -> None:
        self._out: list[Output] = []

    # What the engine needs to route events: every call id this flow owns.
    @property
    def legs(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        """Every leg is gone: the engine may forget the flow."""
        raise NotImplementedError

    def classify(self, event: Event) -> enum.Enum | None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        """The engine gave up on this flow (it raised): record why, end it."""

    def on_event(self, event: Event, now: float) -> list[Output]:
        trigger = self.classify(event)
        if trigger is None:
            return []
        row = self.TABLE.row(self.state, trigger, event)
        new = row.handler(self, event, now)
        self.state = self.TABLE.enter(row, self.state, trigger, new)
        return self.take()

    # -------------------------------------------------------- for handlers

    def emit(self, *outputs: Output) -> None:
        self._out.extend(outputs)

    def take(self) -> list[Output]:
        out, self._out = self._out, []
        return out
