"""Softphone worker processes seen from the engine: spawn, talk, restart.

Each :class:`Worker` is one ``python -m softphone.worker`` process (one pjsua2
Endpoint, at most 4 calls) on its own SIP port and RTP range. Its events go
into one engine queue as ``(worker, event)``. When a worker dies, every call it
held is reported ended (a synthetic ``hung_up`` with ``by="lost"``), so nothing
waits forever, and the worker is started again with a short backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from callflow import Event
from screening import mask
from softphone import MAX_CALLS_PER_WORKER
from softphone import protocol as p

__all__ = ["LOST", "Worker", "WorkerPool", "WorkerSpec"]

log = logging.getLogger("engine.workers")

LOST: Final = "lost"  # HungUp.by for the calls of a worker that died
READY_TIMEOUT_S = 20.0
RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_LONG_DIGITS = re.compile(r"\d{7,}")  # a phone number in a line of pjsua's log
EXIT_GRACE_S = 2.0  # a worker whose output ended has this long to exit on its own
RTP_PORTS_PER_WORKER = 100
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    host: str
    sip_port: int
    rtp_port: int
    allow: Sequence[str] = ()
    trunk_user: str | None = None
    trunk_password_env: str | None = None
    trunk_registrar: str | None = None
    log_file: Path | None = None
    media_timeout_s: float = 0.0
    max_call_s: float = 0.0
    transaction_timeout_s: float = 0.0
    invite_rate: float = 0.0
    """New INVITEs a second the worker takes before it answers 503 (see softphone.guard)."""
    front: str | None = None
    """The Kamailio front's address: its X-Source-Address header names the real caller."""

    def argv(self) -> list[str]:
        args = [sys.executable, "-m", "softphone.worker", "--name", self.name,
                "--sip-host", self.host, "--sip-port", str(self.sip_port),
                "--rtp-port", str(self.rtp_port)]
        for network in self.allow:
            args += ["--allow", network]
        if self.trunk_user:
            args += ["--trunk-user", self.trunk_user]
        if self.trunk_password_env:
            args += ["--trunk-password-env", self.trunk_password_env]
        if self.trunk_registrar:
            args += ["--trunk-registrar", self.trunk_registrar]
        if self.media_timeout_s:
            args += ["--media-timeout-s", f"{self.media_timeout_s:g}"]
        if self.max_call_s:
            args += ["--max-call-s", f"{self.max_call_s:g}"]
        if self.front:
            args += ["--front", self.front]
        if self.transaction_timeout_s:
            args += ["--transaction-timeout-ms", str(round(self.transaction_timeout_s * 1000))]
        if self.invite_rate:
            args += ["--invite-rate", f"{self.invite_rate:g}"]
        return args


Inbox = asyncio.Queue[tuple["Worker", Event]]
"""What reaches the engine's loop: a worker's events, and a flow's timers and answers queued
behind them."""


class Worker:
    def __init__(self, spec: WorkerSpec, inbox: Inbox) -> None:
        self.spec = spec
        self.inbox = inbox
        self.calls: dict[str, float] = {}  # live call id -> start (monotonic)
        self.process: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self.restarts = 0
        self.draining = False  # takes no new call: it is about to be replaced, or we stop
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def free(self) -> int:
        if self.draining or not self.ready.is_set():
            return 0
        return MAX_CALLS_PER_WORKER - len(self.calls)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"worker-{self.name}")

    async def send(self, command: p.Command) -> bool:
        """False when the worker is not running (a call of the command is reported lost)."""
        call = getattr(command, "call", None)
        if isinstance(command, p.Dial):
            self.calls[command.call] = time.monotonic()
        process = self.process
        if process is None or process.stdin is None or process.returncode is not None \
                or process.stdin.is_closing():  # stopping: a write would go nowhere, unsaid
            if call is not None:
                self._lose(call, "worker is not running")
            return False
        try:
            process.stdin.write((p.encode(command) + "\n").encode())
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            if call is not None:
                self._lose(call, "worker is not running")
            return False
        return True

    async def stop(self, grace_s: float = 5.0) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if process.stdin is not None:
                    process.stdin.write((p.encode(p.Shutdown()) + "\n").encode())
                    await process.stdin.drain()
                    process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                log.warning("worker %s did not stop in %.0f s; killing it", self.name, grace_s)
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            started = time.monotonic()
            await self._run_once()
            if self._stopping:
                return
            self.restarts += 1
            if time.monotonic() - started > 30:
                attempt = 0
            delay = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
            attempt += 1
            log.error("worker %s exited (code %s)%s; restarting in %.1f s", self.name,
                      self.process.returncode if self.process else None, self._last_words(), delay)
            await asyncio.sleep(delay)

    def _last_words(self) -> str:
        """The last line of the worker's log, which says why it stopped more often than not."""
        if self.spec.log_file is None:
            return ""
        try:
            with self.spec.log_file.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                lines = f.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return f": {_LONG_DIGITS.sub(lambda m: mask(m.group()), lines[-1].strip()[:300])}" \
            if lines else ""

    async def _run_once(self) -> None:
        stderr = self.spec.log_file.open("ab") if self.spec.log_file else asyncio.subprocess.DEVNULL
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.spec.argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                limit=1 << 20)
        finally:
            if stderr is not asyncio.subprocess.DEVNULL:
                stderr.close()  # type: ignore[union-attr]
        assert self.process.stdout is not None
        try:
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    break
                self._receive(line.decode("utf-8", "replace"))
        finally:
            self.ready.clear()
            if self.process.returncode is None:  # its output ended: let it say how it exits
                try:
                    await asyncio.wait_for(self.process.wait(), EXIT_GRACE_S)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.kill()
            await self.process.wait()
            for call in list(self.calls):
                self._lose(call, f"worker {self.name} exited")

    def _receive(self, line: str) -> None:
        try:
            event = p.decode_event(line)
        except p.ProtocolError as exc:
            log.error("worker %s sent a line that is not an event: %s", self.name, exc)
            return
        if isinstance(event, p.Ready):
            self.ready.set()
            log.info("worker %s ready on SIP port %d (pid %s)", self.name, event.sip_port, self.pid)
        elif isinstance(event, p.Incoming):
            self.calls[event.call] = time.monotonic()
        elif isinstance(event, p.HungUp):
            self.calls.pop(event.call, None)
        self.inbox.put_nowait((self, event))

    def _lose(self, call: str, why: str) -> None:
        if call not in self.calls:  # ended already: nothing more to report
            return
        started = self.calls.pop(call, None)
        duration = time.monotonic() - started if started is not None else 0.0
        log.error("call %s lost: %s", call, why)
        self.inbox.put_nowait((self, p.HungUp(call, LOST, 500, round(duration, 3))))


class WorkerPool:
    def __init__(self, specs: Sequence[WorkerSpec], worker_type: type[Worker] = Worker) -> None:
        """``worker_type``: :class:`Worker`, or a stand-in with the same surface in tests."""
        self.inbox: Inbox = asyncio.Queue()
        self.workers = [worker_type(spec, self.inbox) for spec in specs]
        self._listeners: list[Callable[[], object]] = []

    async def start(self) -> None:
        for worker in self.workers:
            worker.start()
        try:
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in self.workers)),
                                   READY_TIMEOUT_S)
        except TimeoutError:
            late = [w.name for w in self.workers if not w.ready.is_set()]
            raise RuntimeError(f"workers {', '.join(late)} did not start in {READY_TIMEOUT_S:.0f} s "
                               "(see their logs)") from None

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))

    async def replace(self, index: int, spec: WorkerSpec) -> Worker:
        """Worker ``index`` stopped and a new process started in its place with ``spec``;
        returns once the new one is ready (raises RuntimeError if it does not start)."""
        old = self.workers[index]
        await old.stop()
        new = type(old)(spec, self.inbox)
        self.workers[index] = new
        await self._ready(new, "again")
        return new

    async def add(self, spec: WorkerSpec) -> Worker:
        """One more worker, started from ``spec``; returns once it is ready (raises
        RuntimeError if it does not start, and then it is not kept)."""
        new = type(self.workers[0])(spec, self.inbox) if self.workers else Worker(spec, self.inbox)
        self.workers.append(new)
        try:
            await self._ready(new)
        except RuntimeError:
            self.workers.remove(new)
            await new.stop()
            raise
        return new

    async def _ready(self, worker: Worker, again: str = "") -> None:
        """``worker`` started; returns once it is ready, or RuntimeError."""
        worker.start()
        try:
            await asyncio.wait_for(worker.ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(f"worker {worker.name} did not start {again + ' ' if again else ''}"
                               f"in {READY_TIMEOUT_S:.0f} s (see its log)") from None
        self.slot_freed()

    async def retire(self, worker: Worker) -> None:
        """``worker`` stopped and no longer part of the pool (its calls are over)."""
        self.workers.remove(worker)
        await worker.stop()

    def least_loaded(self) -> Worker | None:
        candidates = [w for w in self.workers if w.free > 0]
        return max(candidates, key=lambda w: w.free) if candidates else None

    def slot_freed(self) -> None:
        for listener in self._listeners:
            listener()

    def on_slot_freed(self, listener: Callable[[], object]) -> None:
        """``listener()`` whenever a call ends or a worker becomes ready."""
        self._listeners.append(listener)

    @property
    def capacity(self) -> int:
        return MAX_CALLS_PER_WORKER * len(self.workers)
