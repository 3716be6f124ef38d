"""Capacity benchmark: what the engine and its workers cost standing still and with calls.

    python bench/capacity.py [--calls 40,100,200] [--sample-s 10] [--idle-workers 4]

1. **Idle** (the shipped configuration with ``--idle-workers`` workers, no call): CPU of the
   engine and of each worker over ``--sample-s``, from ``/proc/PID/task/*/schedstat``. Before
   and after in the same run: "before" starts the same engine with the old behaviour behind
   two switches kept for this purpose (``SOFTPHONE_ALWAYS_BUSY=1``: the worker's 10 ms poll and
   pjmedia's media thread; ``ANTIFRAUD_STORE_POLL=1``: a look at each store every 20 ms).
2. **Calls at once through the front**: for each N of ``--calls``, the engine with N/4 workers
   behind the Kamailio front, the voice menu answering. SIPp places the N calls (signalling
   only, 20 a second); the benchmark's own phones carry their RTP: each sends speech (G.711
   μ-law, 20 ms packets) to the engine and measures what comes back (the menu's prompts): the
   packets lost and the interarrival jitter (RFC 3550) over the sample. Once every call is up:
   CPU of the engine, its workers and Kamailio over ``--sample-s``; memory (RSS; PSS, which
   counts shared pages once; and each worker's own pages, USS); every call set up and ended,
   and no worker restarted; the load generator's own CPU (SIPp and the phones) beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import socket
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from enginectl import EngineProcess, read_events
from reload import shipped_config
from sounds import speak, ulaw_encode
from workerproc import Sipp, thread_cpu

console = Console(width=None if sys.stdout.isatty() else 160)
FRAME = 160  # μ-law bytes in 20 ms
SETUP_CPS = 20


# ---------------------------------------------------------------- processes


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def kind(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    text = b" ".join(argv).decode(errors="replace")
    if "softphone.worker" in text:
        return "worker"
    if "kamailio" in text:
        return "kamailio"
    if "run_dialer.py" in text and " run " in f" {text} ":
        return "engine"
    return "other"


def memory_kb(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, USS) in kB. USS: the pages only this process maps (private clean and
    dirty), what one more worker costs; RSS also counts every shared library in full."""
    rss = pss = uss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                uss += int(line.split()[1])
    except OSError:
        pass
    return rss, pss, uss


def thread_ns(pid: int) -> dict[str, int]:
    """CPU time (ns) of ``pid``'s threads so far by what they are: ``main`` (the worker's
    loop: SIP, RTP in, commands), ``clock`` (pjmedia's media clock: the bridge, the players,
    RTP out, the speech port) and ``other``."""
    out = {"main": 0, "clock": 0, "other": 0}
    for tid, name, ns in thread_cpu(pid):
        out["main" if tid == pid else "clock" if name == "clock" else "other"] += ns
    return out


def sample_cpu(pids: list[int], seconds: float) -> dict[int, float]:
    """% of one core of each pid over ``seconds``; a process that was not there at the start
    or the end (a database's passing helper) is left out."""
    before = _cpu_of(pids)
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    after = _cpu_of(list(before))
    return {pid: (after[pid] - before[pid]) / 1e3 / took * 100 for pid in after}


def _cpu_of(pids: list[int]) -> dict[int, float]:
    """ms of CPU so far of each of ``pids`` that is still there (``cpu_ms`` gives 0 for one
    that is gone, which would read as a negative share)."""
    found = {}
    for pid in pids:
        threads = thread_cpu(pid)
        if threads:
            found[pid] = sum(ns for _, _, ns in threads) / 1e6
    return found


# ---------------------------------------------------------------- the phones' RTP


@dataclass
class Stream:
    """What one phone hears: RFC 3550 loss and interarrival jitter of the PCMU it receives."""

    peer: tuple[str, int] | None = None
    received: int = 0
    highest: int = -1  # extended sequence number
    jitter: float = 0.0  # in timestamp units (1/8000 s)
    _transit: float | None = None
    _cycles: int = 0
    _last_seq: int = -1

    def heard(self, packet: bytes, arrival: float) -> None:
        if len(packet) < 12 or packet[1] & 0x7F != 0:
            return
        seq, ts = struct.unpack_from(">HI", packet, 2)
        if self._last_seq >= 0 and seq < self._last_seq and self._last_seq - seq > 30000:
            self._cycles += 1 << 16
        self._last_seq = seq
        self.highest = max(self.highest, self._cycles + seq)
        self.received += 1
        transit = arrival * 8000 - ts
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16
        self._transit = transit


class Phones:
    """The RTP side of N calls, in a thread of their own: one socket each (its port goes into
    SIPp's offer), speech sent every 20 ms to whoever sent to it (symmetric RTP), what comes
    back counted."""

    def __init__(self, count: int, speech: bytes) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            self.socks.append(sock)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.streams = [Stream() for _ in self.socks]
        self.speech = speech
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._seq = [random.randrange(1 << 16) for _ in self.socks]
        self._ts = [random.randrange(1 << 31) for _ in self.socks]
        self._ssrc = [random.randrange(1 << 31) for _ in self.socks]
        self._at = [random.randrange(len(speech) // FRAME) * FRAME for _ in self.socks]

    def start(self) -> None:
        for i, sock in enumerate(self.socks):
            self.loop.add_reader(sock.fileno(), self._read, i)
        self.loop.call_soon(self._tick, time.monotonic())
        self._thread.start()

    def _read(self, i: int) -> None:
        sock, stream = self.socks[i], self.streams[i]
        while True:
            try:
                packet, peer = sock.recvfrom(2048)
            except BlockingIOError:
                return
            stream.peer = peer
            stream.heard(packet, time.time())

    def _tick(self, due: float) -> None:
        for i, stream in enumerate(self.streams):
            if stream.peer is None:
                continue
            at = self._at[i]
            payload = self.speech[at:at + FRAME]
            self._at[i] = (at + FRAME) % (len(self.speech) - FRAME)
            self._seq[i] = (self._seq[i] + 1) & 0xFFFF
            self._ts[i] = (self._ts[i] + FRAME) & 0xFFFFFFFF
            header = struct.pack(">BBHII", 0x80, 0, self._seq[i], self._ts[i], self._ssrc[i])
            try:
                self.socks[i].sendto(header + payload, stream.peer)
            except OSError:
                pass
        due += 0.02
        self.loop.call_at(self.loop.time() + max(0.0, due - time.monotonic()), self._tick, due)

    def snapshot(self) -> list[tuple[int, int, float]]:
        """(received, highest sequence, jitter in ms) of each call, now."""
        return [(s.received, s.highest, s.jitter / 8) for s in self.streams]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2)
        for sock in self.socks:
            sock.close()


# ---------------------------------------------------------------- the runs


@dataclass
class Idle:
    engine: float
    workers: list[float]
    front: float


def idle(work: Path, workers: int, seconds: float, before: bool) -> Idle:
    switches = {"SOFTPHONE_ALWAYS_BUSY": "1", "ANTIFRAUD_STORE_POLL": "1"}
    saved = {k: os.environ.get(k) for k in switches}
    if before:
        os.environ.update(switches)
    try:
        config = shipped_config(work / ("idle-before" if before else "idle-after"), workers)
        engine = EngineProcess(config)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        time.sleep(3.0)  # the start's own work over, the media clocks of the start closed
        pids = tree(engine.proc.pid)
        kinds = {pid: kind(pid) for pid in pids}
        cpu = sample_cpu(pids, seconds)
    finally:
        engine.stop()
    return Idle(sum(c for p, c in cpu.items() if p == engine.proc.pid),
                sorted(c for p, c in cpu.items() if kinds[p] == "worker"),
                sum(c for p, c in cpu.items() if kinds[p] == "kamailio"))


@dataclass
class Load:
    calls: int
    workers: int
    up: int
    cpu_engine: float
    cpu_workers: float
    cpu_front: float
    rss_mb: float
    pss_mb: float
    rss_worker_mb: float
    pss_worker_mb: float
    uss_worker_mb: float
    loss_pct: float
    jitter_p50_ms: float
    jitter_max_ms: float
    silent_calls: int
    ended_ok: int
    sipp_failed: int
    restarts: int
    cpu_sipp: float
    cpu_phones: float
    worker_threads_ms: dict[str, float] = field(default_factory=dict)
    """Mean CPU of a worker's threads over the sample, ms a second, by kind (see thread_ns)."""


def load(work: Path, calls: int, seconds: float, speech: bytes) -> Load:
    workers = math.ceil(calls / 4)
    directory = work / f"calls-{calls}"
    config = shipped_config(directory, workers)
    engine = EngineProcess(config)
    phones = Phones(calls, speech)
    ports = directory / "ports.csv"
    ports.write_text("SEQUENTIAL\n" + "".join(f"{port};\n" for port in phones.ports))
    setup_s = calls / SETUP_CPS
    hold_s = setup_s + seconds + 15
    phones.start()
    sipp = None
    try:
        sipp = Sipp("uac_media_elsewhere_through_balancer.xml", directory, "-s", "961108",
                    "-inf", str(ports), "-d", str(int(hold_s * 1000)), "-r", str(SETUP_CPS),
                    "-l", str(calls), remote=engine.target, calls=calls,
                    timeout_s=int(hold_s + setup_s + 60))
        deadline = time.monotonic() + setup_s + 30
        while sum(s.peer is not None for s in phones.streams) < calls:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(2.0)  # every call past its first prompt
        up = sum(s.peer is not None for s in phones.streams)
        pids = tree(engine.proc.pid)
        first = phones.snapshot()
        phones_cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        watch = [*pids, sipp.proc.pid]
        workers_at_start = [p for p in pids if kind(p) == "worker"]
        threads_before = {p: thread_ns(p) for p in workers_at_start}
        cpu = sample_cpu(watch, seconds)
        threads_after = {p: thread_ns(p) for p in workers_at_start}
        phones_cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        last = phones.snapshot()
        memory = {pid: memory_kb(pid) for pid in pids}
        kinds = {pid: kind(pid) for pid in pids}
        sipp_code = sipp.wait()
    finally:
        if sipp is not None:
            sipp.kill()
        phones.close()
        engine.stop()
    lost = expected = 0
    jitters = []
    silent = 0
    for (r0, h0, _), (r1, h1, j1) in zip(first, last, strict=True):
        if h1 <= h0:
            silent += 1
            continue
        expected += h1 - h0
        lost += max(0, (h1 - h0) - (r1 - r0))
        jitters.append(j1)
    events = read_events(config)
    ended = [e for e in events if e["event"] == "ended"]
    log = (directory / "engine.log").read_text(errors="replace")
    worker_pids = [p for p, k in kinds.items() if k == "worker"]
    rusage = (phones_cpu_after.ru_utime + phones_cpu_after.ru_stime
              - phones_cpu_before.ru_utime - phones_cpu_before.ru_stime)
    return Load(
        calls=calls, workers=workers, up=up,
        cpu_engine=sum(c for p, c in cpu.items() if kinds.get(p) == "engine"),
        cpu_workers=sum(c for p, c in cpu.items() if kinds.get(p) == "worker"),
        cpu_front=sum(c for p, c in cpu.items() if kinds.get(p) == "kamailio"),
        rss_mb=sum(m[0] for m in memory.values()) / 1024,
        pss_mb=sum(m[1] for m in memory.values()) / 1024,
        rss_worker_mb=float(np.mean([memory[p][0] for p in worker_pids])) / 1024,
        pss_worker_mb=float(np.mean([memory[p][1] for p in worker_pids])) / 1024,
        uss_worker_mb=float(np.mean([memory[p][2] for p in worker_pids])) / 1024,
        loss_pct=100 * lost / expected if expected else 100.0,
        jitter_p50_ms=float(np.median(jitters)) if jitters else float("nan"),
        jitter_max_ms=max(jitters) if jitters else float("nan"),
        silent_calls=silent,
        ended_ok=sum(e["by"] == "remote" for e in ended),
        sipp_failed=0 if sipp_code == 0 else calls - sum(e["by"] == "remote" for e in ended),
        restarts=log.count("exited (code"),
        cpu_sipp=cpu.get(sipp.proc.pid, 0.0) if sipp is not None else 0.0,
        cpu_phones=rusage / seconds * 100,
        worker_threads_ms={
            name: float(np.mean([(threads_after[p][name] - threads_before[p][name]) / 1e6
                                 / seconds for p in threads_before]))
            for name in ("main", "clock", "other")} if threads_before else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="40,100,200")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--idle-workers", type=int, default=4)
    args = parser.parse_args()
    speech = ulaw_encode(speak("您好，我想问一下，刚才有人打电话说我的银行卡被冻结了，要我把钱转到安全账户，"
                                "这是不是诈骗？我现在应该怎么办？")).tobytes()
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        work = Path(tmp)
        console.print(f"[bold]1. idle[/]: the shipped configuration, {args.idle_workers} workers "
                      f"behind the front, no call, {args.sample_s:g} s")
        before = idle(work, args.idle_workers, args.sample_s, before=True)
        after = idle(work, args.idle_workers, args.sample_s, before=False)
        table = Table("% of one core", "before (10 ms polls)", "after", "target")
        table.add_row("each idle worker (mean; max)",
                      f"{np.mean(before.workers):.2f}; {max(before.workers):.2f}",
                      f"{np.mean(after.workers):.3f}; {max(after.workers):.3f}", "≤ 0.2")
        table.add_row("the engine", f"{before.engine:.2f}", f"{after.engine:.2f}", "≤ 1")
        table.add_row("Kamailio (all its processes)", f"{before.front:.2f}", f"{after.front:.2f}",
                      "")
        console.print(table)
        for calls in [int(n) for n in args.calls.split(",") if n]:
            console.print(f"[bold]2. {calls} calls at once[/] through the front into the voice "
                          f"menu, speech both ways, {math.ceil(calls / 4)} workers")
            r = load(work, calls, args.sample_s, speech)
            table = Table("figure", "value", "target")
            table.add_row("calls up / heard back", f"{r.up} / {r.up - r.silent_calls} of {calls}",
                          f"{calls}")
            total = r.cpu_engine + r.cpu_workers + r.cpu_front
            table.add_row("CPU, % of one core: engine + workers + Kamailio = total",
                          f"{r.cpu_engine:.1f} + {r.cpu_workers:.1f} + {r.cpu_front:.1f} = "
                          f"{total:.1f}", "")
            table.add_row("CPU per call (engine, workers and front)",
                          f"{total / calls:.2f} %", "≤ 0.5 %")
            table.add_row("memory, all processes: RSS / PSS",
                          f"{r.rss_mb:.0f} / {r.pss_mb:.0f} MB", "")
            table.add_row("a worker: RSS / PSS / its own (USS)",
                          f"{r.rss_worker_mb:.1f} / {r.pss_worker_mb:.1f} / "
                          f"{r.uss_worker_mb:.1f} MB",
                          "≤ 30 MB")
            table.add_row("a worker's threads, ms of CPU a second: main loop + media clock "
                          "+ others", " + ".join(f"{r.worker_threads_ms.get(n, 0):.1f}"
                                                 for n in ("main", "clock", "other")), "")
            table.add_row("RTP the callers received: loss", f"{r.loss_pct:.3f} %", "< 0.1 %")
            table.add_row("RTP jitter at the callers, p50 / max of the calls",
                          f"{r.jitter_p50_ms:.2f} / {r.jitter_max_ms:.2f} ms", "< 20 ms")
            table.add_row("calls ended by their caller's BYE / workers restarted",
                          f"{r.ended_ok} of {calls} / {r.restarts}", f"{calls} / 0")
            table.add_row("load generator, % of one core: SIPp + the phones' RTP",
                          f"{r.cpu_sipp:.1f} + {r.cpu_phones:.1f}", "")
            console.print(table)


if __name__ == "__main__":
    main()
