"""A state machine's transitions, all in one table (h11's ``_state.py`` is the model).

A row maps ``(state, trigger)`` to the handler that runs and the states it may
lead to. Handlers choose among those targets (a guard: "replay the warning, or
say goodbye"), and :meth:`StateTable.enter` checks the choice, so the table
stays the whole truth about what can follow what.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["BadTransition", "Row", "StateTable", "UnexpectedEvent", "rows_in", "unique_rows"]

S = TypeVar("S", bound=enum.Enum)
T = TypeVar("T", bound=enum.Enum)


class UnexpectedEvent(Exception):
    """An event the flow's state table has no row for: a remote or timing surprise."""

    def __init__(self, flow: str, state: enum.Enum, trigger: enum.Enum, event: object = None) -> None:
        kind = getattr(event, "TYPE", None) or type(event).__name__
        super().__init__(f"{flow}: no transition for {trigger.name.lower()} ({kind}) "
                         f"in state {state.name.lower()}")
        self.flow, self.state, self.trigger, self.event = flow, state, trigger, event


class BadTransition(Exception):
    """A handler chose a state its row does not allow: a programming error."""


@dataclass(frozen=True)
class Row(Generic[S]):
    handler: Callable[..., S]
    targets: frozenset[S]


class StateTable(Generic[S, T]):
    """``{(state, trigger): (handler, targets)}``; ``targets`` empty means "stay"."""

    def __init__(self, name: str, rows: Mapping[tuple[S, T], tuple[Callable[..., S], Iterable[S]]]) -> None:
        self.name = name
        self.rows: dict[tuple[S, T], Row[S]] = {}
        for (state, trigger), (handler, targets) in rows.items():
            allowed = frozenset(targets) or frozenset({state})
            self.rows[(state, trigger)] = Row(handler, allowed)

    def row(self, state: S, trigger: T, event: object = None) -> Row[S]:
        try:
            return self.rows[(state, trigger)]
        except KeyError:
            raise UnexpectedEvent(self.name, state, trigger, event) from None

    def enter(self, row: Row[S], state: S, trigger: T, new: S) -> S:
        if new not in row.targets:
            raise BadTransition(f"{self.name}: {trigger.name.lower()} in {state.name.lower()} "
                                f"may lead to {sorted(s.name.lower() for s in row.targets)}, "
                                f"not {new.name.lower()}")
        return new

    def states(self) -> set[Any]:
        """Every state that appears in the table (for tests and docs)."""
        found: set[Any] = set()
        for (state, _), row in self.rows.items():
            found.add(state)
            found |= row.targets
        return found


def rows_in(state: enum.Enum, rows: Mapping[Any, Any]) -> dict[Any, Any]:
    """One state's rows, written ``{trigger: (handler, targets)}``, as rows of a table."""
    return {(state, trigger): row for trigger, row in rows.items()}


def unique_rows(*parts: Mapping[Any, Any]) -> dict[Any, Any]:
    """The parts of a table in one: a row written twice is a mistake (``ValueError``), not an
    override."""
    rows: dict[Any, Any] = {}
    for part in parts:
        twice = rows.keys() & part.keys()
        if twice:
            raise ValueError(f"rows written twice: {sorted((s.name, t.name) for s, t in twice)}")
        rows.update(part)
    return rows
