"""Time for the engine: wall-clock seconds (epoch) and timers, real or fake.

Flows and policies never read a clock: the engine passes ``now``. The engine
itself asks a :class:`Clock`, so a test swaps in :class:`FakeClock` and runs a
whole campaign (busy, busy, answered) in microseconds, with timers firing in
order as the test advances time (in the spirit of trio's ``MockClock``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock", "TimerHandle"]


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle: ...

    async def sleep_until(self, when: float) -> None: ...


def local(clock: Clock, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(clock.now(), tz)


class SystemClock:
    def now(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, when - time.time()), callback)

    async def sleep_until(self, when: float) -> None:
        delay = when - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)


class _FakeHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Time that moves only when told to; timers fire in order as it moves."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeHandle, Callable[[], object]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        handle = _FakeHandle()
        heapq.heappush(self._timers, (when, next(self._order), handle, callback))
        return handle

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self.call_at(when, wake)
        await done

    def next_deadline(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer due on the way, in order."""
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        while (deadline := self.next_deadline()) is not None and deadline <= when:
            at, _, handle, callback = heapq.heappop(self._timers)
            self._now = max(self._now, at)
            if not handle.cancelled:
                callback()
        self._now = max(self._now, when)

    def jump(self) -> bool:
        """Move to the next timer and fire it (and any due with it); False if none is set."""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self.set(deadline)
        return True
