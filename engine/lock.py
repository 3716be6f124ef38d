"""One engine per data directory: a lock file held for the engine's life.

Two engines on one task store would dial the same person twice at once.
``fcntl.flock`` is released by the kernel when the process dies, even by
``kill -9``, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

__all__ = ["DataDirLock", "EngineRunning"]


class EngineRunning(RuntimeError):
    """Another engine holds the data directory."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "engine.lock"
        self._file: IO[str] | None = None

    def take(self) -> None:
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            pid = file.read().strip() or "?"
            file.close()
            raise EngineRunning(f"another engine (pid {pid}) is running on {self.path.parent}; "
                                "stop it first") from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None
