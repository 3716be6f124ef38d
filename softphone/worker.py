"""Softphone worker process: ``python -m softphone.worker --name w1 --sip-port 5080 ...``.

Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout
(see :mod:`softphone.protocol`). Before pjsua2 is loaded, the original stdout
is duplicated for the protocol and fd 1 is pointed at stderr, so whatever
native pjsip prints never corrupts the protocol stream.

The main thread owns the Endpoint and every pjsua2 object. RTP is read in its
own poll (no media thread). While calls are up it turns every 20 ms: it
waits until then, watching only the SIP socket (a SIP request and a command,
whose :class:`Waker` datagram comes there, end the wait at once), reads
everything the network sent meanwhile in one ``libHandleEvents(0)`` (SIP,
the RTP of every call, pjsip's timers), then handles commands, queued media
notices, what the network said on outbound calls (:mod:`softphone.listening`)
and timers. RTP does not end the wait: with 4 calls that is 50 wake-ups a
second instead of 200, each with its select and its Python
(``bench/capacity.py``).
With nothing to do it waits in ``libHandleEvents`` up to a second: a packet,
a command or a pjsip timer ends that wait. The media clock runs only while a
call needs it (:class:`MediaClock`). An idle worker so costs a wake-up a
second. A reader thread only moves stdin lines into a queue.
"""

from __future__ import annotations

import functools
import gc
import io
import logging
import os
import queue
import select
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

import pjsua2 as pj

from softphone import protocol as p
from softphone.endpoint import (
    MAX_CALLS,
    MediaClock,
    WorkerConfig,
    create_accounts,
    parse_args,
    start_endpoint,
)
from softphone.exchange import Exchange
from softphone.guard import InviteGuard
from softphone.limits import CallLimits
from softphone.places import MediaPlaces

log = logging.getLogger("softphone.worker")

POLL_MS = 10
"""How long the loop waits in ``libHandleEvents`` while busy without its SIP socket to wait
on (:func:`sip_socket`), at shutdown, and with the old behaviour."""
TURN_S = 0.02
"""How often the loop turns while calls are up: RTP is read once a turn, so a digit's RTP or
a pjsip timer waits up to this long (a SIP packet or a command does not: it ends the wait).
Against 20 ms of audio a packet, and a digit to its next prompt in about 35 ms
(``bench/ivr.py``)."""
IDLE_POLL_MS = 1000
"""How long it waits with nothing to do. A SIP packet (an INVITE, a MESSAGE), a command
(the :class:`Waker`'s datagram) or one of pjsip's own timers (retransmissions,
registration: pjsip shortens the wait to the next of them) ends the wait at once."""
ALWAYS_BUSY_ENV = "SOFTPHONE_ALWAYS_BUSY"
"""Set (to 1) in a worker's environment: the loop turns every POLL_MS even with nothing to
do, and RTP has its own media thread, as before idle workers slept. For ``bench/capacity.py``'s
"before" figure only."""
GC_EVERY_S = 1.0
SHUTDOWN_GRACE_S = 2.0
EOF_MARK = None


class EventWriter:
    """Writes one event per line on the protocol fd, flushed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, event: p.Event) -> None:
        line = p.encode(event) + "\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                pass  # the engine is gone; shutdown follows from stdin EOF


def take_protocol_stdout() -> TextIO:
    """Duplicate fd 1 for the protocol, then send fd 1 (and sys.stdout) to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return io.TextIOWrapper(os.fdopen(protocol_fd, "wb"), encoding="utf-8",
                            line_buffering=True)


class Waker:
    """Ends the main thread's wait as soon as a command arrives.

    It sends a CRLF keep-alive datagram (which pjsip ignores) to the worker's own SIP
    port, which both of the loop's waits watch (``libHandleEvents`` idle, the SIP socket
    between turns): a command then waits microseconds, not up to a second.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._target: tuple[str, int] | None = None

    def aim(self, host: str, port: int) -> None:
        host = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._target = (host, port)

    def __call__(self) -> None:
        if self._sock is not None and self._target is not None:
            try:
                self._sock.sendto(b"\r\n\r\n", self._target)
            except OSError:
                pass  # the poll ends by itself within IDLE_POLL_MS


def read_commands(lines: queue.SimpleQueue[str | None], wake: Callable[[], None]) -> None:
    """Reader thread: stdin lines into the queue, ``None`` at EOF. Never touches pjsua2."""
    try:
        for line in sys.stdin:
            lines.put(line)
            wake()
    finally:
        lines.put(EOF_MARK)
        wake()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    out = take_protocol_stdout()
    config = parse_args(argv)
    emit = EventWriter(out)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    waker = Waker()
    threading.Thread(target=read_commands, args=(lines, waker), name="stdin", daemon=True).start()
    return run(config, emit, lines, stop, waker)


def run(config: WorkerConfig, emit: EventWriter, lines: queue.SimpleQueue[str | None],
        stop: threading.Event, waker: Waker) -> int:
    always_busy = os.environ.get(ALWAYS_BUSY_ENV, "") not in ("", "0")
    try:
        ep, sip_port = start_endpoint(config, media_thread=always_busy)
    except pj.Error as exc:
        emit(p.Error(f"cannot start SIP endpoint: {exc.reason or exc.title}"))
        return 2
    limits = CallLimits(config.media_timeout_s, config.max_call_s)
    places = MediaPlaces(max_calls=MAX_CALLS)
    exchange = Exchange(config.name, config.sources, emit, limits=limits, front=config.front,
                        places=places)
    guard = InviteGuard(config.sources, config.invite_rate, places,
                        lambda source, caller, status: emit(p.Refused(source, caller, status)))
    guard.register()
    exchange.local, exchange.trunk = create_accounts(config, sip_port, exchange)
    waker.aim(config.sip_host, sip_port)
    emit(p.Ready(config.name, sip_port, MAX_CALLS))
    # The cyclic collector runs on whichever thread allocates when it triggers,
    # the media clock thread included; a pjsua2 object it frees there dies on
    # the wrong thread. So it only runs here, on the thread that owns them all,
    # once a second while calls come and go, and once more when they are over.
    # What the start loaded (pjsua2's wrappers, numpy, the detectors) is frozen
    # out of its sight: a collection is then a hundredth of a millisecond.
    gc.disable()
    gc.collect()
    gc.freeze()
    next_collect = time.monotonic() + GC_EVERY_S
    dirty = False
    media_clock = None if always_busy else MediaClock(ep.audDevManager())
    turn = 0.0  # when the loop's own work is next due
    busy = True
    handle_events = events_handler(ep)
    sip = None if always_busy else sip_socket(sip_port)
    if sip is None and not always_busy:
        log.warning("SIP socket on port %d not found: the loop wakes for every RTP packet",
                    sip_port)
    while not stop.is_set():
        if busy and sip is not None:  # RTP read once a turn, SIP at once (see TURN_S)
            wait = turn - time.monotonic()
            if wait > 0 and lines.empty():
                select.select((sip,), (), (), wait)
            handle_events(0)
        else:
            handle_events(POLL_MS if busy else IDLE_POLL_MS)
        turn = time.monotonic() + TURN_S
        if not take_commands(lines, exchange, emit):
            break
        exchange.drain()
        exchange.listening.pump(exchange.legs.values())
        exchange.check_timers()
        needed = exchange.busy
        if media_clock is not None:  # a call made by a command above has its clock in time:
            media_clock.follow(needed, time.monotonic())  # its media come with later polls
        busy = always_busy or needed or (media_clock is not None and media_clock.running)
        dirty = dirty or busy
        if dirty and time.monotonic() >= next_collect:
            gc.collect()
            next_collect = time.monotonic() + GC_EVERY_S
            dirty = busy
    shut_down(ep, exchange)
    return 0


def events_handler(ep: pj.Endpoint) -> Callable[[int], int]:
    """``ep.libHandleEvents``, called a few hundred times a second with calls up (each RTP
    packet can end its wait). The wrapper method hands SWIG the Python proxy, which SWIG then
    identifies by its type's qualified name, looked up afresh on every call: measured as a
    tenth of the main thread's time with 4 calls. Bound to the wrapped pointer itself
    (``ep.this``), the call skips that (0.07 us against 0.56 us on a warm cache)."""
    native = getattr(pj, "_pjsua2", None)
    call = getattr(native, "Endpoint_libHandleEvents", None)
    if call is None:  # another build of the bindings: the method, as documented
        return ep.libHandleEvents  # type: ignore[no-any-return]
    return functools.partial(call, ep.this)


def sip_socket(port: int) -> socket.socket | None:
    """A duplicate of pjsip's UDP socket on ``port`` (found among the process's descriptors
    by the port it is bound to), for the loop to wait on between turns. Readiness is the
    socket's, so a packet there ends the wait; pjsip reads it in its own poll."""
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except (ValueError, OSError):
            continue
        try:
            if sock.type == socket.SOCK_DGRAM and sock.getsockname()[1] == port:
                return sock
        except (OSError, IndexError, TypeError):
            pass
        sock.close()
    return None


def take_commands(lines: queue.SimpleQueue[str | None], exchange: Exchange,
                  emit: EventWriter) -> bool:
    """Handle every waiting command; False on ``shutdown`` or stdin EOF."""
    while not lines.empty():  # only this thread takes from it: no raise of Empty each turn
        line = lines.get_nowait()
        if line is EOF_MARK:
            return False
        if not line.strip():
            continue
        try:
            command = p.decode_command(line)
        except p.ProtocolError as exc:
            emit(p.Error(f"malformed command: {exc}"))
            continue
        if isinstance(command, p.Shutdown):
            return False
        try:
            exchange.handle(command)
        except Exception as exc:
            log.exception("command %s", command)
            emit(p.Error(f"{command.TYPE}: internal error: {exc}", getattr(command, "call", None)))
    return True


def shut_down(ep: pj.Endpoint, exchange: Exchange) -> None:
    """Hang up, wait (bounded) for every call to end, drop references, destroy."""
    exchange.hang_up_all()
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    while exchange.legs and time.monotonic() < deadline:
        ep.libHandleEvents(POLL_MS)
        exchange.drain()
    if exchange.legs:
        log.warning("%d call(s) still up at shutdown", len(exchange.legs))
    exchange.legs.clear()
    exchange.local = exchange.trunk = None
    exchange.drain()
    exchange.retired.clear()
    exchange.recordings.closing.clear()
    gc.collect()
    # The speech ports outlive the library: an AudioMediaPort destroyed while the media
    # clock may tick is fed a frame half torn down (SIGSEGV), and one destroyed after
    # libDestroy calls into a library that is gone. The process ends without destroying
    # them (os._exit below, once the last event is written).
    ep.libDestroy()


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)
