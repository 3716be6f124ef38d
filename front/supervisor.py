"""The Kamailio front, started and watched by the engine when ``sip.balancer`` is set.

A flood of INVITEs straight at a softphone worker kills it with its live calls
(pjsua opens two media sockets per INVITE before the engine sees the call and
frees them 500 ms later; the select ioqueue holds 64). So, with
``sip.balancer``, ``run`` puts Debian's Kamailio in front: it listens on
``sip.listen.host:sip.listen.port`` (the address callers use), bans flooding
sources (pike + htable), drops scanners, limits new calls per worker and hands
each call to a worker; the workers move behind it to ``sip.listen.port + 1`` and
up (:func:`front.setup.worker_ports`, :func:`front.setup.behind_front`).

:class:`Front` renders the configuration into ``<data_dir>/kamailio/`` (the
same files as ``kamailio-config``), runs ``kamailio -DD -E`` with a private
runtime directory and its output appended to ``<data_dir>/logs/kamailio.log``,
waits until it answers an OPTIONS, restarts it with the engine's backoff when it
dies (a :class:`FrontExited` then a :class:`FrontStarted` notice), and stops it
when the engine stops. Kamailio gets SIGTERM if the engine dies without
stopping it (``PR_SET_PDEATHSIG``), so a killed engine leaves no front behind
holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from callflow import Notice
from sip_config import LoadedConfig

from .cfg import render_cfg
from .dispatcher import render_dispatcher_list
from .setup import BalancerSetup, front_source, setup_from_config, start_argv

__all__ = ["KAMAILIO", "Front", "FrontError", "FrontExited", "FrontStarted"]

log = logging.getLogger("engine.front")  # the name its log lines carry: it runs in the engine

KAMAILIO = "kamailio"
READY_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0
STABLE_S = 30.0  # a front that ran this long starts the backoff again from its first step
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")  # Debian puts kamailio in /usr/sbin
_PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_prctl = _libc_prctl()  # looked up once, before any fork


@dataclass(frozen=True)
class FrontStarted(Notice):
    """Kamailio answers on the public address (``restarts``: how many times it was restarted)."""

    KIND: ClassVar[str] = "front_started"
    address: str
    workers: str
    pid: int
    restarts: int


@dataclass(frozen=True)
class FrontExited(Notice):
    """Kamailio exited on its own; it is started again in ``restart_in_s``."""

    KIND: ClassVar[str] = "front_exited"
    code: int | None
    restart_in_s: float


class FrontError(RuntimeError):
    """Kamailio cannot be started: one sentence for the operator."""


class Front:
    """Debian's Kamailio in front of the workers: written, started, watched, stopped."""

    def __init__(self, loaded: LoadedConfig, notify: Callable[[Notice], object], *,
                 restart_backoff_s: Sequence[float], binary: str | None = None,
                 ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        """``restart_backoff_s``: the waits before each restart in a row, the last repeated
        (the engine gives the one its workers restart with)."""
        self.loaded = loaded
        self.notify = notify
        self.restart_backoff_s = tuple(restart_backoff_s)
        self.binary = binary or KAMAILIO
        self.ready_timeout_s = ready_timeout_s
        self.dir = (loaded.data_dir / "kamailio").resolve()
        self.log_path = (loaded.data_dir / "logs" / "kamailio.log").resolve()
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None
        self.setup: BalancerSetup | None = None
        self._stopping = False
        self._started_at = 0.0
        self._group_killed: int | None = None  # the pid whose process group is gone
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        """Write the files, start Kamailio and wait until it answers; raises :class:`FrontError`."""
        executable = self._executable()
        try:
            self.setup = setup_from_config(self.loaded.config, self.dir,
                                           source=str(self.loaded.path))
        except ValueError as exc:
            raise FrontError(f"the Kamailio front cannot be configured: {exc}") from None
        self._write_files(self.setup)
        await self._launch(executable)
        self._task = asyncio.create_task(self._watch(executable), name="front-kamailio")

    async def stop(self) -> None:
        """Stop Kamailio (SIGTERM, then SIGKILL of its process group); never raises."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._end_process()

    async def workers_changed(self, loaded: LoadedConfig) -> None:
        """``engine.workers`` changed (``drain-workers``): the list of workers is written again
        from ``loaded`` and Kamailio reads it (``dispatcher.reload``) without a restart; raises
        :class:`FrontError` if it cannot."""
        self.loaded = loaded
        try:
            self.setup = setup_from_config(loaded.config, self.dir, source=str(loaded.path))
        except ValueError as exc:
            raise FrontError(f"the Kamailio front cannot be configured: {exc}") from None
        self._write_files(self.setup)
        kamcmd = shutil.which("kamcmd", path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))
        if kamcmd is None:
            raise FrontError("kamcmd is not installed: the front cannot read its new list of "
                             "workers (it comes with the kamailio package)")
        process = await asyncio.create_subprocess_exec(
            kamcmd, "-s", f"unix:{self.setup.control_socket}", "dispatcher.reload",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(process.communicate(), 5.0)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise FrontError("Kamailio did not answer dispatcher.reload in 5 s") from None
        if process.returncode != 0:
            raise FrontError(f"Kamailio refused its new list of workers: "
                             f"{out.decode(errors='replace').strip()}")
        log.info("the front now sends calls to %d workers", len(self.setup.workers))

    # ------------------------------------------------------------ running

    def _executable(self) -> str:
        path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
        found = shutil.which(self.binary, path=path)
        if found is None:
            raise FrontError(
                f"{self.binary} is not installed: sip.balancer in {self.loaded.path} puts Kamailio "
                "in front of the workers (install it with `apt-get install kamailio`, or remove "
                "sip.balancer to let callers reach the workers directly)")
        return found

    def _write_files(self, setup: BalancerSetup) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "run").mkdir(exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        setup.list_file.write_text(render_dispatcher_list(setup), encoding="utf-8")
        (self.dir / "kamailio.cfg").write_text(render_cfg(setup), encoding="utf-8")

    async def _launch(self, executable: str) -> None:
        """One Kamailio process, answering on the public address; raises :class:`FrontError`."""
        assert self.setup is not None
        self._check_port_free()
        argv = start_argv(self.dir / "kamailio.cfg", self.dir / "run", binary=executable)
        with self.log_path.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        self._started_at = time.monotonic()
        if not await self._answers(self.process, self._started_at + self.ready_timeout_s):
            code = self.process.returncode
            await self._end_process()
            why = (f"exited with code {code}" if code is not None
                   else f"did not answer in {self.ready_timeout_s:.0f} s")
            raise FrontError(f"kamailio (the SIP front on udp {self.setup.host}:{self.setup.port}) "
                             f"{why}: {self._last_error()} (see {self.log_path})")
        host, port = self.setup.host, self.setup.port
        workers = self.setup.workers
        span = f"{workers[0].host}:{workers[0].port}"
        if len(workers) > 1:
            span += f"-{workers[-1].port}"
        log.info("kamailio (pid %s) in front of the workers on udp %s:%d; workers on %s; log %s",
                 self.process.pid, host, port, span, self.log_path)
        self.notify(FrontStarted("", f"udp:{host}:{port}", span, self.process.pid, self.restarts))

    def _check_port_free(self) -> None:
        """Kamailio binds UDP with SO_REUSEADDR, so a second one on a taken port starts and
        shares it; a bind without that option fails on any taken port."""
        assert self.setup is not None
        host, port = self.setup.host, self.setup.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise FrontError(
                    f"udp {host}:{port} (sip.listen, where the Kamailio front listens) is taken: "
                    f"{exc.strerror}; stop what holds it (a kamailio system service, or a front "
                    "left by an engine that was killed) or change sip.listen.port") from None

    async def _watch(self, executable: str) -> None:
        attempt = 0
        while not self._stopping:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping:
                return
            self._kill_group(self.process)  # children of a killed Kamailio keep the port otherwise
            if time.monotonic() - self._started_at > STABLE_S:
                attempt = 0
            delay = self.restart_backoff_s[min(attempt, len(self.restart_backoff_s) - 1)]
            attempt += 1
            self.restarts += 1
            log.error("kamailio (the SIP front) exited with code %s; restarting in %.1f s (see %s)",
                      code, delay, self.log_path)
            self.notify(FrontExited("", code, delay))
            await asyncio.sleep(delay)
            try:
                await self._launch(executable)
            except FrontError as exc:
                log.error("%s", exc)  # the loop waits on the dead process and backs off again

    async def _end_process(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                log.warning("kamailio did not stop in %.0f s; killing it", STOP_GRACE_S)
        self._kill_group(process)
        await process.wait()

    def _kill_group(self, process: asyncio.subprocess.Process) -> None:
        """SIGKILL what is left of Kamailio's process group (its own session), once."""
        if self._group_killed != process.pid:
            self._group_killed = process.pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    async def _answers(self, process: asyncio.subprocess.Process, deadline: float) -> bool:
        """Wait until Kamailio replies to an OPTIONS (any status), or exits, or the deadline."""
        assert self.setup is not None
        host = front_source(self.loaded.config)
        while time.monotonic() < deadline:
            if process.returncode is not None:
                return False
            if await _options_answered(host, self.setup.port, timeout=0.3):
                await asyncio.sleep(0.05)  # a front that failed to bind exits at once
                return process.returncode is None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.1)
        return False

    def _last_error(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-40:]
        except OSError:
            return "no log"
        marked = [line for line in lines if "ERROR:" in line or "CRITICAL:" in line]
        if not marked:
            return "it printed no error"
        error = marked[-1].rsplit("]: ", 1)[-1].strip()
        if "Address already in use" in error:
            error += " (another program, perhaps a kamailio system service, holds that port)"
        return error


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.got.done():
            self.got.set_result(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: not up yet
        if not self.got.done():
            self.got.set_exception(exc)


async def _options_answered(host: str, port: int, timeout: float) -> bool:
    """One OPTIONS to ``host:port``; True on any SIP reply."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Reply, local_addr=(host, 0), remote_addr=(host, port))
    try:
        local = transport.get_extra_info("sockname")
        here = f"[{local[0]}]:{local[1]}" if ":" in local[0] else f"{local[0]}:{local[1]}"
        there = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        tag = uuid.uuid4().hex
        transport.sendto((
            f"OPTIONS sip:{there} SIP/2.0\r\nVia: SIP/2.0/UDP {here};branch=z9hG4bK{tag}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:engine@{here}>;tag={tag[:8]}\r\nTo: <sip:{there}>\r\n"
            f"Call-ID: {tag}@engine\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode())
        try:
            reply = await asyncio.wait_for(protocol.got, timeout)
        except (TimeoutError, OSError):
            return False
        return reply.startswith(b"SIP/2.0 ")
    finally:
        transport.close()
