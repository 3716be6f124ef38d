"""What keeps every open board current: one watcher of the stores and of the engine's status,
and a version number that every live stream waits on.

Every :data:`LOOK_S` the watcher asks the task, text and callback stores whether anything was
committed (their ``watch``: no file read on SQLite) and looks at the engine's ``status.json``;
on any change the version moves and every stream wakes. What a stream sends for a version is
rendered once per language and shared (twenty boards cost one rendering).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from stores import StoreError, Stores

__all__ = ["LOOK_S", "Live"]

log = logging.getLogger("console.live")

LOOK_S = 0.1
T = TypeVar("T")


class Live:
    def __init__(self, stores: Stores, status_file: Path) -> None:
        self.stores = stores
        self.status_file = status_file
        self.version = 0
        self._changed = asyncio.Condition()
        self._status_mtime = 0.0
        self._rendered: dict[tuple[str, int, str], Any] = {}

    def _looked(self) -> bool:
        changed = False
        for name in ("tasks", "texts", "callbacks"):
            if self.stores.exists(name):
                store = getattr(self.stores, name)
                changed = store.watch.changed() or changed
        try:
            mtime = self.status_file.stat().st_mtime
        except OSError:
            mtime = 0.0
        if mtime != self._status_mtime:
            self._status_mtime = mtime
            changed = True
        return changed

    async def run(self) -> None:
        while True:
            try:
                changed = self._looked()
            except StoreError as exc:  # say it, and look again
                log.warning("live view: %s", exc)
                changed = False
            if changed:
                self.version += 1
                self._rendered = {k: v for k, v in self._rendered.items()
                                  if k[1] >= self.version - 1}
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(LOOK_S)

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it is past ``seen``, or the same after ``timeout``."""
        if self.version > seen:
            return self.version
        with contextlib.suppress(TimeoutError):
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version > seen),
                                       timeout)
        return self.version

    def rendered(self, what: str, language: str, make: Callable[[], T]) -> T:
        """``make()`` once per version and language (what every stream of that view sends)."""
        key = (what, self.version, language)
        if key not in self._rendered:
            self._rendered[key] = make()
        return self._rendered[key]
