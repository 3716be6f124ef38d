"""How a store tells its readers that something changed: awaited, never polled by callers.

A SQLite file learns of other processes' commits only by asking (``PRAGMA data_version``,
cheap: no file read). :class:`SqliteWatch` asks when the kernel says the store's write-ahead
log was written (inotify on its directory: a commit of any process writes it), and every
:data:`IDLE_POLL_S` besides, in case a change came another way; without inotify it asks every
:data:`POLL_S`. Commits of its own connection are known at once, and whoever subscribed hears
of them at once (the engine's dialer wakes on an in-process request without waiting). A
PostgreSQL store waits on ``LISTEN`` instead, behind the same two methods.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sqlite3
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sqlitefile import Changes

__all__ = ["IDLE_POLL_S", "POLL_S", "FileWrites", "SqliteWatch", "Watch", "next_look", "poll", "settle",
           "settled"]

POLL_S = 0.02  # without inotify
IDLE_POLL_S = 1.0  # with it: a look now and then all the same
POLL_ENV = "ANTIFRAUD_STORE_POLL"
"""Set (to 1): look every POLL_S even where inotify works, as before. For the "before" figure
of ``bench/capacity.py`` only."""
SETTLE_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
"""After a write to the log: how long to wait before each look, until the commit shows."""

_IN_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000
_IN_WRITTEN = 0x00000002 | 0x00000080 | 0x00000100  # IN_MODIFY | IN_MOVED_TO | IN_CREATE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, NUL padded)


class Watch(Protocol):
    async def wait(self, timeout: float | None = None) -> bool:
        """Until something changed since the last call (True), or ``timeout`` passed (False)."""
        ...

    def subscribe(self, callback: Callable[[], object]) -> None:
        """``callback()`` after every commit of this process's own (at once, no polling)."""
        ...


def settle(waiter: asyncio.Future[bool], result: bool) -> None:
    """``waiter``'s result, unless it has one."""
    if not waiter.done():
        waiter.set_result(result)


async def settled(waiter: asyncio.Future[bool], timeout: float) -> bool:
    """``waiter``'s result, or False after ``timeout``. A future and a timer, not
    ``asyncio.wait_for``: before Python 3.12 that can swallow a cancellation that comes with
    the result (the awaiting task then never ends, and neither does the engine's stop)."""
    timer = asyncio.get_running_loop().call_later(timeout, settle, waiter, False)
    try:
        return await waiter
    finally:
        timer.cancel()


def next_look(deadline: float | None) -> float:
    """How long to wait before the next look: IDLE_POLL_S at most, less before ``deadline``
    (≤ 0: it has passed)."""
    return IDLE_POLL_S if deadline is None else min(IDLE_POLL_S, deadline - time.monotonic())


class FileWrites:
    """Writes to files of one directory, as the kernel reports them (inotify), awaited on the
    event loop: nothing runs until one of ``names`` is written. :meth:`open` is False where
    inotify is not to be had (then the caller polls)."""

    def __init__(self, directory: Path, names: set[str]) -> None:
        self.directory = directory
        self.names = {name.encode() for name in names}
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._written = False
        self._waiters: set[asyncio.Future[bool]] = set()

    def open(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._fd >= 0 and self._loop is loop:
            return True
        self.close()  # a watch awaited on another loop than before (tests run several)
        self._written = False
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK_CLOEXEC)
            if fd < 0:
                return False
            if libc.inotify_add_watch(fd, os.fsencode(self.directory), _IN_WRITTEN) < 0:
                os.close(fd)
                return False
            loop.add_reader(fd, self._read)
        except (OSError, AttributeError, RuntimeError):
            return False
        self._fd, self._loop = fd, loop
        return True

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        at = 0
        while at + _EVENT.size <= len(data):
            _, _, _, length = _EVENT.unpack_from(data, at)
            name = data[at + _EVENT.size:at + _EVENT.size + length].rstrip(b"\0")
            at += _EVENT.size + length
            if name in self.names:
                self._written = True
                for waiter in self._waiters:
                    settle(waiter, True)

    async def wait(self, timeout: float) -> bool:
        """Until one of the files is written (True: at once if one was since the last wait),
        or ``timeout`` (False)."""
        if self._written:
            self._written = False
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            return await settled(waiter, timeout)
        finally:
            self._waiters.discard(waiter)
            self._written = False

    def close(self) -> None:
        if self._fd >= 0:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd, self._loop = -1, None


class SqliteWatch:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._changes = Changes(db)
        self._local = False
        self._subscribers: list[Callable[[], object]] = []
        self._writes: FileWrites | None = None
        path = next((row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main"),
                    "")
        if path:
            store = Path(path)
            self._writes = FileWrites(store.parent, {f"{store.name}-wal", store.name})

    def touched(self) -> None:
        """This connection committed (the store calls this)."""
        self._local = True
        for callback in self._subscribers:
            callback()

    def subscribe(self, callback: Callable[[], object]) -> None:
        self._subscribers.append(callback)

    def close(self) -> None:
        if self._writes is not None:
            self._writes.close()

    def changed(self) -> bool:
        """Whether anything changed since the last look (no waiting)."""
        local, self._local = self._local, False
        return self._changes() or local

    async def wait(self, timeout: float | None = None) -> bool:
        writes = self._writes
        if writes is None or os.environ.get(POLL_ENV, "") not in ("", "0") or not writes.open():
            return await poll(self.changed, timeout, POLL_S)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.changed():
            left = next_look(deadline)
            if left <= 0:
                return False
            if await writes.wait(left):
                # the log is written before the commit shows (in the shared-memory index,
                # which the kernel does not report): look again a few times meanwhile
                for pause in SETTLE_S:
                    if self.changed():
                        return True
                    await asyncio.sleep(pause)
        return True


async def poll(changed: Callable[[], bool], timeout: float | None, every_s: float) -> bool:
    """True as soon as ``changed()`` says so (asked every ``every_s``), False after
    ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not changed():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every_s)
    return True
