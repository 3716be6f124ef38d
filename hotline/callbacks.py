"""Messages left on the hotline for a callback: the morning shift's list. Pure.

A caller after hours leaves a message (a WAV, closed by the worker before the row is
written); an operator calls back and marks it answered, once. The stores keep the list
(:mod:`stores`); the full number stays there, people see it masked.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from screening import mask

__all__ = ["TRANSITIONS", "Callback", "CallbackState"]


class CallbackState(enum.StrEnum):
    WAITING = "waiting"  # for an operator to call back
    DONE = "done"


TRANSITIONS: dict[CallbackState, frozenset[CallbackState]] = {
    CallbackState.WAITING: frozenset({CallbackState.DONE}),
    CallbackState.DONE: frozenset(),
}
"""A message is answered once."""


@dataclass(frozen=True)
class Callback:
    id: str
    caller: str
    at: float
    file: str
    duration_s: float
    path: str  # the menus the caller went through
    state: CallbackState
    done_at: float | None
    note: str
    done_by: str = ""  # who marked it answered (cli:<user>, mqtt:<client>…)

    @property
    def masked(self) -> str:
        return mask(self.caller) if self.caller else "withheld"
