"""The one shape of every call's logic: a pure flow, worker events in, outputs out.

A flow (the inbound hotline call, the warning call, the operator leg) is a
plain object with ``start(now)`` and ``on_event(event, now)``; both return a
list of outputs: softphone commands for the worker that holds the call,
:class:`Notice` objects for people and other systems, and :class:`Timer`
requests that the engine turns into :class:`Timeout` events later. Nothing
here touches a socket, a process or a clock: ``now`` is an argument.

Each flow's states are one ``Enum`` and its transitions one
:class:`StateTable` in one place; an event the table has no row for raises
:class:`UnexpectedEvent`, naming the state and the event.
"""

from .flow import (
                   Answer,
                   CallFlow,
                   Event,
                   Output,
                   Request,
                   Timeout,
                   Timer,
                   commands_of,
                   leg_progress,
                   notices_of,
                   timers_of,
)
from .notice import CallEnded, DigitPressed, Notice
from .table import BadTransition, StateTable, UnexpectedEvent, rows_in, unique_rows

__all__ = [
    "Answer",
    "BadTransition",
    "CallEnded",
    "CallFlow",
    "DigitPressed",
    "Event",
    "Notice",
    "Output",
    "Request",
    "StateTable",
    "Timeout",
    "Timer",
    "UnexpectedEvent",
    "commands_of",
    "leg_progress",
    "notices_of",
    "rows_in",
    "timers_of",
    "unique_rows",
]
