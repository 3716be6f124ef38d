"""How a store tells its readers that something changed: awaited, never polled by callers.

A SQLite file learns of other processes' commits only by asking (``PRAGMA data_version``,
cheap: no file read), so :class:`SqliteWatch` asks every :data:`POLL_S` while someone waits;
commits of its own connection are known at once, and whoever subscribed hears of them at once
(the engine's dialer wakes on an in-process request without waiting for a poll). A PostgreSQL
store will wait on ``LISTEN`` instead, behind the same two methods.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Protocol

from sqlitefile import Changes

__all__ = ["POLL_S", "SqliteWatch", "Watch", "poll"]

POLL_S = 0.02


class Watch(Protocol):
    async def wait(self, timeout: float | None = None) -> bool:
        """Until something changed since the last call (True), or ``timeout`` passed (False)."""
        ...

    def subscribe(self, callback: Callable[[], object]) -> None:
        """``callback()`` after every commit of this process's own (at once, no polling)."""
        ...


class SqliteWatch:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._changes = Changes(db)
        self._local = False
        self._subscribers: list[Callable[[], object]] = []

    def touched(self) -> None:
        """This connection committed (the store calls this)."""
        self._local = True
        for callback in self._subscribers:
            callback()

    def subscribe(self, callback: Callable[[], object]) -> None:
        self._subscribers.append(callback)

    def changed(self) -> bool:
        """Whether anything changed since the last look (no waiting)."""
        local, self._local = self._local, False
        return self._changes() or local

    async def wait(self, timeout: float | None = None) -> bool:
        return await poll(self.changed, timeout, POLL_S)


async def poll(changed: Callable[[], bool], timeout: float | None, every_s: float) -> bool:
    """True as soon as ``changed()`` says so (asked every ``every_s``), False after
    ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not changed():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every_s)
    return True
