"""The operators' queue by day: pure, time is an argument.

Callers wait in the order they came. Whenever an operator is free and a caller
waits, :meth:`OperatorQueue.offers` says whom to ring for whom: with
``round_robin`` the next free operator after the last one rung, with
``longest_idle`` the free one idle longest, with ``all`` every free operator at
once (the first to answer takes the call). An operator who does not answer is
not rung again for that caller; when every operator has been tried for a
caller without an answer, that caller is given up (:attr:`Offer.nobody`) and
goes to the voice menu.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from callflow import Answer, Request

__all__ = ["JoinQueue", "LeaveQueue", "NoOperator", "Offer", "OperatorQueue", "QueueReport",
           "QueueUpdate", "RingOperators", "Strategy"]

Strategy = Literal["round_robin", "longest_idle", "all"]


@dataclass(frozen=True)
class Offer:
    call: str
    operators: tuple[str, ...]  # ring these now
    nobody: bool = False  # every operator was tried: give this caller up


@dataclass
class OperatorQueue:
    operators: tuple[str, ...]
    strategy: Strategy = "round_robin"
    waiting: list[str] = field(default_factory=list)  # calls, first come first
    ringing: dict[str, str] = field(default_factory=dict)  # operator → the call it rings for
    talking: dict[str, str] = field(default_factory=dict)  # operator → the call it is on
    idle_since: dict[str, float] = field(default_factory=dict)
    tried: dict[str, set[str]] = field(default_factory=dict)  # call → operators tried
    _last: int = -1  # round robin: index of the operator rung last

    def join(self, call: str) -> int:
        if call not in self.waiting:
            self.waiting.append(call)
            self.tried.setdefault(call, set())
        return self.position(call)

    def position(self, call: str) -> int:
        """1 for the caller next in line; 0 if not waiting."""
        return self.waiting.index(call) + 1 if call in self.waiting else 0

    def ahead(self, call: str) -> int:
        """Callers waiting before this one (您前面还有 N 位)."""
        return max(0, self.position(call) - 1)

    def free(self) -> list[str]:
        return [op for op in self.operators if op not in self.ringing and op not in self.talking]

    def offers(self, now: float) -> list[Offer]:
        """Who rings for whom now; the operators offered are counted as ringing."""
        out: list[Offer] = []
        for call in list(self.waiting):
            if any(c == call for c in self.ringing.values()):
                continue  # already ringing for this caller
            untried = [op for op in self.operators if op not in self.tried[call]]
            if not untried:
                self.leave(call)
                out.append(Offer(call, (), nobody=True))
                continue
            free = [op for op in self.free() if op in untried]
            if not free:
                continue  # the ones left to try are busy: wait for them
            chosen = self._choose(free)
            for op in chosen:
                self.ringing[op] = call
            out.append(Offer(call, tuple(chosen)))
        return out

    def _choose(self, free: list[str]) -> list[str]:
        if self.strategy == "all":
            return free
        if self.strategy == "longest_idle":
            return [min(free, key=lambda op: (self.idle_since.get(op, float("-inf")),
                                              self.operators.index(op)))]
        n = len(self.operators)
        for step in range(1, n + 1):
            op = self.operators[(self._last + step) % n]
            if op in free:
                self._last = self.operators.index(op)
                return [op]
        return []

    def answered(self, call: str, operator: str) -> list[str]:
        """``operator`` took ``call``; returns the other operators still ringing for it (to stop)."""
        others = [op for op, c in self.ringing.items() if c == call and op != operator]
        for op in [operator, *others]:
            self.ringing.pop(op, None)
        self.talking[operator] = call
        self.leave(call)
        return others

    def not_answered(self, call: str, operator: str, now: float) -> None:
        if self.ringing.get(operator) == call:
            del self.ringing[operator]
            self.idle_since[operator] = now
        if call in self.tried:
            self.tried[call].add(operator)

    def done(self, operator: str, now: float) -> None:
        """The operator's call ended: free again."""
        self.talking.pop(operator, None)
        self.idle_since[operator] = now

    def leave(self, call: str) -> None:
        if call in self.waiting:
            self.waiting.remove(call)
        self.tried.pop(call, None)


# ------------------------------------------------ between a call's flow and the engine's queue

@dataclass(frozen=True)
class JoinQueue(Request):
    """A request of the caller's flow: wait for an operator."""

    call: str
    caller: str = ""  # as it arrived: the console shows it masked


@dataclass(frozen=True)
class LeaveQueue(Request):
    call: str


@dataclass(frozen=True)
class QueueReport(Request):
    """What became of an operator rung for ``call``: ``answered``, ``unanswered``, ``done``."""

    call: str
    operator: str
    result: Literal["answered", "unanswered", "done"]


@dataclass(frozen=True)
class QueueUpdate(Answer):
    """Event for a waiting caller's flow: how many wait before it."""

    TYPE = "queue_update"
    call: str
    ahead: int


@dataclass(frozen=True)
class RingOperators(Answer):
    """Event: ring these operators for the caller now."""

    TYPE = "ring_operators"
    call: str
    operators: tuple[str, ...]


@dataclass(frozen=True)
class NoOperator(Answer):
    """Event: every operator was tried and none answered."""

    TYPE = "no_operator"
    call: str
