"""Call benchmark: the whole engine (``run_dialer.py run``) against SIPp on loopback.

    python bench/calls.py [--workers 1 4] [--hold-ms 200] [--sample-s 10] [--keep DIR]

Targets (issue): ≥ 20 call setups/s with 4 workers; ≤ 3 % of a core per
active call; screening adds < 1 ms to the response. Method:

1. **Setups/s.** The engine runs as a subprocess outside operator hours (the
   IVR answers). Without a balancer one SIPp reaches one worker port, so N
   workers get N SIPp UACs in parallel, one per port (``sip.listen.port + i``),
   each ``-l 4``; their calls are added. A call is INVITE → 200 → ACK → hold
   ``--hold-ms`` → BYE. The per-worker rate climbs a ladder; a step is
   sustained when ≥ 99 % of calls succeed, no worker died, and INVITEs reached
   the engine at ≥ 90 % of the offered rate (``screened`` timestamps; with
   ``-l 4`` SIPp throttles rather than fails). 4 calls per worker cap the rate
   at ``4·N / hold`` (printed): 200 ms measures setup throughput, 1000 ms is
   channel-bound.
2. **Calls held at once.** Each worker gets 4 calls held for 3 s; the peak
   of (answered − ended) in ``events.jsonl`` is the count.
3. **CPU per call.** An engine with two workers: w1 holds 4 calls whose UAC
   plays the 7 s G.711 speech pcap three times (the worker runs webrtcvad on
   every received frame); w2 holds none and is the reference.
   utime+stime from ``/proc/<pid>/stat`` over ``--sample-s``.
4. **Latency.** A raw UDP client in this file sends one INVITE at a time to w1
   and times it to the final response, alternating a blocklisted caller (603)
   with an unlisted caller dialling an unknown number (404: the same path
   without the list hit). Also the engine's own ``decision_us`` (list
   refresh, screening and routing, before the command is written), beside
   the same code timed in a hot loop in this process. The worker's reader
   thread wakes its pjsua poll when a command arrives, so a reply does not
   wait for the 10 ms poll to end.

Every process started here is stopped in ``finally``. Exit 1 when a step
cannot run; a missed target only prints "missed".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # before bench/: bench/screening.py is no package

from enginectl import EngineProcess, hours, read_events, write_config
from workerproc import Sipp

from engine import Engine
from engine.core import CallScreened
from sip_config import load_config
from softphone import protocol as p

HOTLINE, BLOCKED, UNLISTED, UNKNOWN_CALLEE = "961108", "13900001111", "13800001234", "5550100"
PER_WORKER = 4  # calls one worker holds (PJSUA_MAX_CALLS)
LADDER = (1, 2, 3, 4, 6, 8, 10, 12, 15, 20)  # calls/s offered to each worker
CLK_TCK = os.sysconf("SC_CLK_TCK")
console = Console(width=None if sys.stdout.isatty() else 150)


class BenchError(Exception):
    """A step could not run (not a missed target)."""


# ---------------------------------------------------------------- SIPp and the engine


@dataclass
class SippStats:
    ok: int
    rtd_ms: float  # mean INVITE -> 200 (rtd 1), 0 when the scenario has none

    @classmethod
    def read(cls, csv: Path) -> SippStats:
        if not csv.exists():
            raise BenchError(f"SIPp wrote no statistics ({csv})")
        head, *rows = csv.read_text().splitlines()
        last = dict(zip(head.split(";"), rows[-1].split(";"), strict=False))
        h, m, s, us = (int(x) for x in last.get("ResponseTime1(C)", "0:0:0:0").split(":"))
        return cls(int(last["SuccessfulCall(C)"]), (h * 3600 + m * 60 + s) * 1e3 + us / 1e3)


class SippGroup:
    """One SIPp UAC per worker port, started together; ``finish`` waits and kills."""

    def __init__(self, scenario: str, work: Path, ports: list[int], args: list[str],
                 calls: int, timeout_s: float) -> None:
        self.csvs = [work / f"stat-{uuid.uuid4().hex[:8]}.csv" for _ in ports]
        self.runs: list[Sipp] = []
        for port, csv in zip(ports, self.csvs, strict=True):
            self.runs.append(Sipp(scenario, work, "-s", HOTLINE, *args, "-trace_stat",
                                  "-stf", str(csv), "-fd", "1", remote=f"127.0.0.1:{port}",
                                  calls=calls, timeout_s=int(timeout_s)))

    def finish(self) -> list[SippStats]:
        try:
            for run in self.runs:
                run.wait()
            return [SippStats.read(csv) for csv in self.csvs]
        finally:
            for run in self.runs:
                run.kill()


class BenchEngine:
    """An engine subprocess with N workers, outside operator hours (the IVR answers)."""

    def __init__(self, work: Path, workers: int) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        # the worker's INVITE guard off: what is measured is the engine, and the latency step
        # sends one INVITE after another, far more than 20 new calls a second
        self.config = write_config(work, workers=workers, operator_hours=hours(inside_now=False),
                                   blocked=(BLOCKED,), sip_extra="  new_calls_per_worker_s: 0\n")
        self.process = EngineProcess(self.config)
        self.ports = [self.process.port + i for i in range(workers)]
        self.seen = 0

    def new_events(self) -> list[dict[str, Any]]:
        """Events written since the last call."""
        events = read_events(self.config)
        fresh, self.seen = events[self.seen :], len(events)
        return fresh

    def worker_exits(self) -> int:
        """Worker processes that died so far (the engine logs each and restarts it)."""
        return self.process.log_path.read_text(errors="replace").count("exited (code")

    def worker_pids(self) -> list[int]:
        """Worker pids in port order, from the engine's "ready on SIP port" log lines."""
        log = self.process.log_path.read_text(errors="replace")
        found = {int(port): int(pid) for port, pid in
                 re.findall(r"ready on SIP port (\d+) \(pid (\d+)\)", log)}  # the latest wins
        if any(port not in found for port in self.ports):
            raise BenchError(f"engine log names workers on {sorted(found)}, expected {self.ports}")
        return [found[port] for port in self.ports]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


# ---------------------------------------------------------------- 1, 2: setups/s, calls held


@dataclass
class Step:
    offered: float  # calls/s over all workers
    reached: float  # INVITEs/s that reached the engine
    ok: int
    total: int
    rtd_ms: float
    worker_exits: int

    @property
    def sustained(self) -> bool:
        return (self.ok >= 0.99 * self.total and self.reached >= 0.9 * self.offered
                and not self.worker_exits)


def ladder_step(engine: BenchEngine, rate: int, hold_ms: int, step_s: float) -> Step:
    calls = max(PER_WORKER, round(rate * step_s))
    engine.new_events()
    exits = engine.worker_exits()
    stats = SippGroup("uac_call_hold_bye.xml", engine.work, engine.ports,
                      ["-r", str(rate), "-l", str(PER_WORKER), "-d", str(hold_ms)], calls,
                      timeout_s=calls / rate + hold_ms / 1e3 + 20).finish()
    arrivals: dict[str, list[float]] = {}
    for event in engine.new_events():
        if event["event"] == "screened":
            at = datetime.fromisoformat(event["at"]).timestamp()
            arrivals.setdefault(event["worker"], []).append(at)
    reached = sum((len(t) - 1) / (max(t) - min(t)) for t in arrivals.values() if len(t) > 1)
    return Step(rate * len(engine.ports), reached, sum(s.ok for s in stats),
                calls * len(engine.ports), float(np.mean([s.rtd_ms for s in stats])),
                engine.worker_exits() - exits)


def ladder(engine: BenchEngine, hold_ms: int, step_s: float, budget_s: float) -> list[Step]:
    steps: list[Step] = []
    deadline = time.monotonic() + budget_s
    for rate in LADDER:
        steps.append(ladder_step(engine, rate, hold_ms, step_s))
        if not steps[-1].sustained or time.monotonic() > deadline:
            break
    return steps


def held_at_once(engine: BenchEngine, hold_s: float = 3.0) -> int:
    """Peak number of answered calls alive together, 4 calls sent to each worker."""
    engine.new_events()
    group = SippGroup("uac_call_hold_bye.xml", engine.work, engine.ports,
                      ["-r", "20", "-l", str(PER_WORKER), "-d", str(int(hold_s * 1e3))],
                      PER_WORKER, timeout_s=hold_s + 20)
    live: set[str] = set()
    peak = 0
    try:
        end = time.monotonic() + hold_s + 1
        while time.monotonic() < end:
            for event in engine.new_events():
                if event["event"] == "ivr":
                    live.add(event["call"])
                elif event["event"] == "ended":
                    live.discard(event["call"])
            peak = max(peak, len(live))
            time.sleep(0.1)
    finally:
        stats = group.finish()
    if sum(s.ok for s in stats) != PER_WORKER * len(engine.ports):
        raise BenchError(f"held calls: SIPp reports {[s.ok for s in stats]} successful calls")
    return peak


# ---------------------------------------------------------------- 3: CPU per call


@dataclass
class Cpu:
    calls: int
    busy_pct: float  # % of one core: the worker holding the calls
    idle_pct: float  # % of one core: a worker holding none, same run


def cpu_per_call(engine: BenchEngine, sample_s: float) -> Cpu:
    busy, idle = engine.worker_pids()[:2]
    engine.new_events()
    group = SippGroup("uac_pcap_speech_loop_bye.xml", engine.work, engine.ports[:1],
                      ["-r", "10", "-l", str(PER_WORKER)], PER_WORKER, timeout_s=45)
    try:
        answered: set[str] = set()
        deadline = time.monotonic() + 10
        while len(answered) < PER_WORKER and time.monotonic() < deadline:
            answered |= {e["call"] for e in engine.new_events() if e["event"] == "ivr"}
            time.sleep(0.1)
        if len(answered) < PER_WORKER:
            raise BenchError(f"CPU: only {len(answered)} of {PER_WORKER} calls answered")
        time.sleep(2.0)  # media flowing, speech detected
        before, t0 = (cpu_s(busy), cpu_s(idle)), time.monotonic()
        time.sleep(sample_s)
        after, wall = (cpu_s(busy), cpu_s(idle)), time.monotonic() - t0
        if any(e["event"] == "ended" for e in engine.new_events()):
            raise BenchError("CPU: a call ended during the sample")
    finally:
        stats = group.finish()
    if stats[0].ok != PER_WORKER:
        raise BenchError(f"CPU: SIPp reports {stats[0].ok} successful calls of {PER_WORKER}")
    return Cpu(PER_WORKER, *(100 * (b - a) / wall for a, b in zip(before, after, strict=True)))


# ---------------------------------------------------------------- 4: latency


class RawCaller:
    """One UDP socket: send an INVITE, time it to the final response, ACK it."""

    SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

    def __init__(self, port: int) -> None:
        self.remote = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local = self.sock.getsockname()[1]

    def call(self, caller: str, callee: str) -> tuple[int, float]:
        """(final status, seconds from sending the INVITE to receiving it)."""
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        uri = f"sip:{callee}@127.0.0.1:{self.remote[1]}"
        common = [f"Via: SIP/2.0/UDP 127.0.0.1:{self.local};branch=z9hG4bK{call_id[:16]};rport",
                  f"From: <sip:{caller}@127.0.0.1:{self.local}>;tag={tag}", f"Call-ID: {call_id}"]
        invite = "\r\n".join([f"INVITE {uri} SIP/2.0", *common, f"To: <{uri}>", "CSeq: 1 INVITE",
                              f"Contact: <sip:{caller}@127.0.0.1:{self.local}>", "Max-Forwards: 70",
                              "Content-Type: application/sdp", f"Content-Length: {len(self.SDP)}",
                              "", self.SDP]).encode()
        started = time.perf_counter()
        self.sock.sendto(invite, self.remote)
        status, to = self._final(call_id, invite, started)
        elapsed = time.perf_counter() - started
        ack = [f"ACK {uri} SIP/2.0", *common, to, "CSeq: 1 ACK", "Max-Forwards: 70",
               "Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(ack).encode(), self.remote)
        return status, elapsed

    def _final(self, call_id: str, invite: bytes, started: float) -> tuple[int, str]:
        resend = 0.5
        while time.perf_counter() - started < 4.0:
            self.sock.settimeout(max(0.01, started + resend - time.perf_counter()))
            try:
                lines = self.sock.recv(65535).decode(errors="replace").split("\r\n")
            except TimeoutError:
                self.sock.sendto(invite, self.remote)  # UDP retransmission (timer A)
                resend *= 2
                continue
            if not lines[0].startswith("SIP/2.0 "):
                continue
            status = int(lines[0].split()[1])
            if f"Call-ID: {call_id}" in lines and status >= 200:
                return status, next(line for line in lines if line.startswith("To:"))
        raise BenchError(f"latency: no final response to an INVITE in 4 s ({call_id})")


@dataclass
class Latency:
    blocked_ms: np.ndarray  # INVITE -> 603, blocklisted caller
    unknown_ms: np.ndarray  # INVITE -> 404, unlisted caller, unknown callee
    decision_us: np.ndarray  # the engine's decision_us for the 603 calls
    decision_404_us: np.ndarray
    alone_us: np.ndarray  # decision_us of the same code in this process, a hot loop


class Discard:
    """A worker that only encodes commands: ``Engine._incoming`` without the pipe."""

    name = "in-process"
    draining = False  # never being replaced

    async def send(self, command: p.Command) -> None:
        p.encode(command)


def decision_in_process(config: Path, count: int) -> np.ndarray:
    """The engine's inbound path (``Engine._incoming``) timed in this process."""

    async def run() -> np.ndarray:
        engine = Engine(load_config(config), specs=[])
        engine.events_path = config.parent / "in-process-events.jsonl"
        notices = engine.subscribe()
        for i in range(count):
            caller, callee = (BLOCKED, HOTLINE) if i % 2 else (UNLISTED, UNKNOWN_CALLEE)
            await engine._incoming(Discard(), p.Incoming(f"b-{i}", caller, callee, "127.0.0.1:5060",
                                                         f"b-{i}"))
        found = [notices.get_nowait() for _ in range(notices.qsize())]
        engine.store.close()
        return np.array([n.decision_us for n in found if isinstance(n, CallScreened)])
    return asyncio.run(run())


def latency(engine: BenchEngine, count: int, gap_s: float = 0.025) -> Latency:
    """Paced at one INVITE per ``gap_s`` at most (a worker aborts above ~60 rejects/s)."""
    engine.new_events()
    exits = engine.worker_exits()
    raw = RawCaller(engine.ports[0])
    times: dict[int, list[float]] = {603: [], 404: []}
    try:
        for _ in range(count):
            for caller, callee, want in ((BLOCKED, HOTLINE, 603), (UNLISTED, UNKNOWN_CALLEE, 404)):
                status, seconds = raw.call(caller, callee)
                if status != want:
                    raise BenchError(f"latency: got {status} where {want} was expected")
                times[want].append(seconds * 1e3)
                time.sleep(max(0.0, gap_s - seconds))
    finally:
        raw.sock.close()
    if engine.worker_exits() != exits:
        raise BenchError("latency: a worker died during the run (see its log)")
    time.sleep(0.5)
    screened = [e for e in engine.new_events() if e["event"] == "screened"]
    us = {r: np.array([e["decision_us"] for e in screened if e["route"] == r])
          for r in ("reject", "not_found")}
    if len(us["reject"]) != count or len(us["not_found"]) != count:
        raise BenchError(f"latency: {len(us['reject'])}/{len(us['not_found'])} screened events, "
                         f"expected {count} each")
    return Latency(np.array(times[603]), np.array(times[404]), us["reject"], us["not_found"],
                   decision_in_process(engine.config, 2 * count))


# ---------------------------------------------------------------- report


def verdict(met: bool) -> str:
    return "[green]target met[/]" if met else "[red]missed[/]"


def pcts(values: np.ndarray, unit: str) -> str:
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return f"p50 {p50:.2f} / p90 {p90:.2f} / p99 {p99:.2f} {unit}"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")),
                 platform.machine())
    sipp = subprocess.run(["sipp", "-v"], check=False, capture_output=True, text=True,
                          timeout=10).stdout
    version = next((w for w in sipp.split() if w.startswith("v3")), "?")
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, SIPp {version}")


def report(setups: dict[int, list[Step]], held: dict[int, int], cpu: Cpu, lat: Latency,
           hold_ms: int) -> None:
    detail = Table(title=f"Setup ladder: one SIPp UAC per worker port, -l 4, hold {hold_ms} ms")
    for name in ("workers", "offered /s", "reached engine /s", "calls ok", "INVITE→200 mean",
                 "worker deaths", "sustained"):
        detail.add_column(name, justify="right")
    for n, steps in setups.items():
        for s in steps:
            detail.add_row(str(n), f"{s.offered:.0f}", f"{s.reached:.1f}", f"{s.ok}/{s.total}",
                           f"{s.rtd_ms:.1f} ms", str(s.worker_exits),
                           "yes" if s.sustained else "[red]no[/]")
    console.print(detail)

    table = Table(title="Calls: engine subprocess and softphone workers against SIPp, 127.0.0.1")
    for name in ("measure", "result", "reference (same run)", "ratio", "target", "verdict"):
        table.add_column(name)
    best = {n: max((s.offered for s in steps if s.sustained), default=0.0)
            for n, steps in setups.items()}
    ref = min(best)
    for n, rate in best.items():
        bound = f"channel bound {PER_WORKER * n / (hold_ms / 1e3):.0f} /s"
        vs = n != ref and best[ref] > 0
        table.add_row(f"call setups/s, {n} worker(s)", f"{rate:.0f} /s",
                      f"{ref} worker(s): {best[ref]:.0f} /s" if vs else "",
                      f"×{rate / best[ref]:.2f}" if vs else "",
                      f"≥ 20 /s; {bound}" if n == 4 else bound,
                      verdict(rate >= 20) if n == 4 else "")
    for n, peak in held.items():
        table.add_row(f"calls held at once, {n} worker(s)", str(peak), f"capacity {PER_WORKER * n}",
                      f"{peak / (PER_WORKER * n):.2f}", "", verdict(peak >= PER_WORKER * n))
    per_call, above = cpu.busy_pct / cpu.calls, (cpu.busy_pct - cpu.idle_pct) / cpu.calls
    table.add_row(f"CPU per active call ({cpu.calls} talking calls in one worker, VAD on)",
                  f"{per_call:.2f} % of a core ({above:.2f} % above idle)",
                  f"idle worker {cpu.idle_pct:.2f} %, loaded {cpu.busy_pct:.2f} %",
                  f"×{cpu.busy_pct / cpu.idle_pct:.1f}" if cpu.idle_pct else "", "≤ 3 %",
                  verdict(per_call <= 3))
    alone = pcts(lat.alone_us, "µs")
    for status, values in ((603, lat.decision_us), (404, lat.decision_404_us)):
        table.add_row(f"engine decision_us, {status} calls (list refresh, screen, route; one call at a time, cold)",
                      pcts(values, "µs"), f"same code in-process, hot loop: {alone}",
                      f"×{np.median(values) / np.median(lat.alone_us):.1f}", "< 1 ms (p99)",
                      verdict(float(np.percentile(values, 99)) < 1000))
    table.add_row("INVITE → 603, blocklisted caller", pcts(lat.blocked_ms, "ms"),
                  f"INVITE → 404, unlisted caller: {pcts(lat.unknown_ms, 'ms')}",
                  f"×{np.median(lat.blocked_ms) / np.median(lat.unknown_ms):.2f}", "", "")
    diff = float(np.median(lat.blocked_ms) - np.median(lat.unknown_ms))
    table.add_row("screening adds: p50(603) − p50(404)", f"{diff * 1e3:+.0f} µs", "", "",
                  "< 1 ms", verdict(diff < 1.0))
    console.print(table)
    console.print(f"machine: {machine()}")
    console.print(f"N workers: N SIPp UACs in parallel, one per worker port (no balancer), calls "
                  f"added. Latency: {len(lat.blocked_ms)} raw INVITEs of each kind, sequential, "
                  "interleaved, 25 ms apart.")
    if any(s.worker_exits for steps in setups.values() for s in steps):
        console.print("[red]a worker died during the ladder[/]: run with --keep DIR and read "
                      "DIR/workers-N/var/logs/worker-*.log (faulthandler output)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--hold-ms", type=int, default=200, help="call hold in the setup ladder")
    parser.add_argument("--step-s", type=float, default=4.0, help="seconds per ladder step")
    parser.add_argument("--sample-s", type=float, default=10.0, help="CPU sample window")
    parser.add_argument("--latency-calls", type=int, default=200, help="INVITEs of each kind")
    parser.add_argument("--keep", type=Path, help="keep configs, logs and SIPp output here")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")  # a crashing worker logs its tracebacks
    started = time.monotonic()
    setups: dict[int, list[Step]] = {}
    held: dict[int, int] = {}
    engine: BenchEngine | None = None
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as scratch:
        work = args.keep or Path(scratch)
        try:
            for n in args.workers:
                console.print(f"[bold]{n} worker(s)[/]: ladder, then {PER_WORKER * n} held calls")
                engine = BenchEngine(work / f"workers-{n}", n)
                setups[n] = ladder(engine, args.hold_ms, args.step_s, budget_s=80)
                held[n] = held_at_once(engine)
                engine.process.stop()
                engine = None
            console.print("[bold]2 workers[/]: CPU, 4 talking calls on w1 (w2 idle); latency")
            engine = BenchEngine(work / "cpu-latency", 2)
            cpu = cpu_per_call(engine, args.sample_s)
            lat = latency(engine, args.latency_calls)
        except (BenchError, AssertionError, OSError, subprocess.SubprocessError) as exc:
            console.print(f"[red]benchmark step failed:[/] {exc}")
            return 1
        finally:
            if engine is not None:
                engine.process.stop()
    report(setups, held, cpu, lat, args.hold_ms)
    console.print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
