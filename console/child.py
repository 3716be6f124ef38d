"""The console as ``run`` serves it: ``run_dialer.py console`` in a process of its own, started
with the engine, watched, restarted with a backoff if it dies, stopped with the engine.

Its own process keeps every page and report off the engine's loop (and its CPU time off the
engine's share of the interpreter). It learns that the engine went away when its standard
input closes, as the softphone workers do, so a killed engine leaves no console holding the
port. Its output goes to ``<data_dir>/logs/console.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ConsoleProcess"]

log = logging.getLogger("engine.console")

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 5.0
STABLE_S = 30.0


class ConsoleProcess:
    def __init__(self, config_path: Path, log_path: Path, restart_backoff_s: Sequence[float]) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.restart_backoff_s = tuple(restart_backoff_s)
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            started = time.monotonic()
            code = await self._run_once()
            if self._stopping:
                return
            if time.monotonic() - started > STABLE_S:
                attempt = 0
            delay = self.restart_backoff_s[min(attempt, len(self.restart_backoff_s) - 1)]
            attempt += 1
            self.restarts += 1
            log.error("the console exited (code %s); restarting in %.1f s (see %s)", code, delay,
                      self.log_path)
            await asyncio.sleep(delay)

    async def _run_once(self) -> int | None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "run_dialer.py"), "console", "-c",
                str(self.config_path), "--supervised", stdin=asyncio.subprocess.PIPE,
                stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
        return await self.process.wait()

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            if process.stdin is not None:
                process.stdin.close()  # the console stops when its input closes
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                log.warning("the console did not stop in %.0f s; killing it", STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
