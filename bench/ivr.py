"""Voice-menu benchmark: digit → next prompt, IVR callers per worker, prompt catalog build.

    python bench/ivr.py [--presses 40] [--sample-s 10]

1. **Digit → the first RTP packet of the next prompt.** The engine runs as
   ``run_dialer.py run`` at night with a bench menu whose greeting is a 500 Hz
   tone and whose option 1 says a 1500 Hz tone (recordings made here with sox,
   so each 20 ms packet tells which prompt it belongs to). A caller written
   here (raw SIP and RTP over UDP: it sends PCMU silence and RFC 2833 events
   like a phone) presses 1 while the greeting plays; the time from its first
   event packet to the first 1500 Hz packet that arrives. Target p95 < 150 ms.
2. **IVR callers per worker and CPU per caller.** Four SIPp callers sending
   G.711 speech into the shipped voice menu on one worker (the most a worker
   holds), a worker holding none as the reference (``bench/calls.py``).
3. **Build of the whole prompt catalog** (built-in, voice menus, warnings),
   ``run_dialer.py prompts build --force`` with an empty speech cache.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from calls import BenchEngine, cpu_per_call
from enginectl import EngineProcess, engine_port, hours, write_config

console = Console(width=None if sys.stdout.isatty() else 150)
LOW, HIGH = 500, 1500  # Hz: the greeting, the prompt option 1 says


def ulaw_to_linear(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, np.uint8)
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84)


def pitch(payload: bytes) -> int:
    """The tone of a 20 ms PCMU packet, by zero crossings (0 for silence)."""
    pcm = ulaw_to_linear(payload).astype(np.float64)
    if np.abs(pcm).mean() < 200:
        return 0
    crossings = np.count_nonzero(np.diff(np.signbit(pcm)))
    return int(crossings * 25)  # 20 ms: crossings / 2 cycles × 50 a second


def bench_menus(work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    for name, hz, seconds in (("low", LOW, 30), ("high", HIGH, 1.5)):
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(work / f"{name}.wav"),
                        "synth", str(seconds), "sine", str(hz), "vol", "0.5"], check=True, timeout=30)
    texts = {k: "测试" for k in ("welcome", "goodbye", "invalid", "message_intro", "message_thanks",
                                 "message_failed")}
    prompts = "".join(f"  {k}: {v}\n" for k, v in texts.items())
    prompts += "  low: {text: 低音, wav: low.wav}\n  high: {text: 高音, wav: high.wav}\n"
    path = work / "bench-menus.yaml"
    path.write_text("entry: main\nwelcome: welcome\ngoodbye: goodbye\ninvalid: invalid\n"
                    f"settings: {{timeout_s: 60, max_timeouts: 10}}\nprompts:\n{prompts}menus:\n"
                    "  main:\n    greeting_long: low\n    greeting_short: low\n"
                    "    options:\n      \"1\": {say: high}\n", encoding="utf-8")
    return path


class Caller:
    """A phone written in a few lines: INVITE, ACK, PCMU silence every 20 ms, RFC 2833 digits."""

    def __init__(self, port: int) -> None:
        self.remote = ("127.0.0.1", port)
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.sip.settimeout(5)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.settimeout(0.2)
        self.media: tuple[str, int] | None = None
        self.heard: list[tuple[float, int]] = []  # (arrival, pitch)
        self.stopping = False
        self.seq, self.ts, self.ssrc = random.randrange(1 << 16), random.randrange(1 << 31), 0x0B5EEED
        self.lock = threading.Lock()

    def call(self) -> None:
        local, rtp_port = self.sip.getsockname(), self.rtp.getsockname()[1]
        self.call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
               f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n")
        uri = f"sip:961108@127.0.0.1:{self.remote[1]}"
        self.head = [f"Via: SIP/2.0/UDP 127.0.0.1:{local[1]};branch=z9hG4bK{self.call_id[:12]}",
                     f"From: <sip:13800138000@127.0.0.1:{local[1]}>;tag={tag}",
                     f"Call-ID: {self.call_id}", "Max-Forwards: 70"]
        invite = "\r\n".join([f"INVITE {uri} SIP/2.0", *self.head, f"To: <{uri}>", "CSeq: 1 INVITE",
                              f"Contact: <sip:bench@127.0.0.1:{local[1]}>",
                              "Content-Type: application/sdp", f"Content-Length: {len(sdp)}", "", sdp])
        self.sip.sendto(invite.encode(), self.remote)
        while True:
            reply = self.sip.recv(65535).decode(errors="replace")
            if reply.startswith("SIP/2.0 200"):
                break
        self.to = next(line for line in reply.split("\r\n") if line.startswith("To:"))
        body = reply.split("\r\n\r\n", 1)[1]
        port = int(next(ln for ln in body.split("\r\n") if ln.startswith("m=audio")).split()[1])
        self.media = ("127.0.0.1", port)
        self.uri = uri
        ack = [f"ACK {uri} SIP/2.0", *self.head, self.to, "CSeq: 1 ACK", "Content-Length: 0", "", ""]
        self.sip.sendto("\r\n".join(ack).encode(), self.remote)
        threading.Thread(target=self._send_silence, daemon=True).start()
        threading.Thread(target=self._listen, daemon=True).start()

    def _packet(self, pt: int, payload: bytes, marker: bool = False, ts: int | None = None) -> bytes:
        with self.lock:
            self.seq = (self.seq + 1) & 0xFFFF
            return struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq,
                               (self.ts if ts is None else ts) & 0xFFFFFFFF, self.ssrc) + payload

    def _send_silence(self) -> None:
        next_at = time.monotonic()
        while not self.stopping:
            assert self.media is not None
            self.rtp.sendto(self._packet(0, b"\xff" * 160), self.media)
            with self.lock:
                self.ts += 160
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _listen(self) -> None:
        while not self.stopping:
            try:
                data = self.rtp.recv(2048)
            except (TimeoutError, OSError):
                continue
            if len(data) >= 12 + 160 and data[1] & 0x7F == 0:
                self.heard.append((time.monotonic(), pitch(data[12:172])))

    def press(self, digit: int = 1) -> float:
        """An RFC 2833 event (start, two more, end three times); returns when it began."""
        assert self.media is not None
        with self.lock:
            start = self.ts
        sent = time.monotonic()
        for k in range(1, 7):
            end = k >= 4
            payload = struct.pack(">BBH", digit, (0x80 if end else 0) | 10, min(k, 4) * 160)
            self.rtp.sendto(self._packet(101, payload, marker=k == 1, ts=start), self.media)
            time.sleep(0.02 if k < 4 else 0.0)
        return sent

    def hang_up(self) -> None:
        self.stopping = True
        bye = [f"BYE {self.uri} SIP/2.0", *self.head, self.to, "CSeq: 2 BYE", "Content-Length: 0",
               "", ""]
        self.sip.sendto("\r\n".join(bye).encode(), self.remote)


def digit_to_prompt(work: Path, presses: int,
                    beside: Callable[[Path], AbstractContextManager[object]] | None = None
                    ) -> list[float]:
    """``beside``: given the configuration before the engine starts (to change it), what
    runs beside the engine while it is measured (``bench/console.py``: the console's load)."""
    menus = bench_menus(work)
    config = write_config(work, operator_hours=hours(inside_now=False),
                          hotline_extra=f"  menus: {menus.name}\n")
    load = beside(config) if beside else nullcontext()
    engine = EngineProcess(config)
    delays: list[float] = []
    try:
        with load:
            caller = Caller(engine_port(config))
            caller.call()
            for _ in range(presses):
                _wait_for(caller, LOW, timeout=10)
                time.sleep(random.uniform(0.3, 0.8))
                sent = caller.press(1)
                arrived = _wait_for(caller, HIGH, after=sent, timeout=5)
                delays.append(arrived - sent)
                time.sleep(1.6)  # the high tone ends, the greeting again
            caller.hang_up()
    finally:
        engine.stop()
    return delays


def _wait_for(caller: Caller, hz: int, after: float = 0.0, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, heard in list(caller.heard):
            if at > after and abs(heard - hz) < hz * 0.2:
                return at
        time.sleep(0.002)
    raise RuntimeError(f"no {hz} Hz tone in {timeout} s")


def build_time(work: Path) -> tuple[float, int]:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "dialer.yaml"
    config.write_text("engine:\n  data_dir: var\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "empty-cache")}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), "prompts", "build", "--force",
                          "-c", str(config)], capture_output=True, text=True, env=env, timeout=600,
                         check=True).stdout
    seconds = time.perf_counter() - started
    return seconds, int(out.split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--sample-s", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ivr-"))
    console.print("1. digit → next prompt …")
    delays = np.array(digit_to_prompt(work / "latency", args.presses)) * 1e3
    console.print("2. IVR callers on one worker …")
    engine = BenchEngine(work / "cpu", 2)
    try:
        cpu = cpu_per_call(engine, args.sample_s)
    finally:
        engine.process.stop()
    console.print("3. the whole prompt catalog …")
    seconds, count = build_time(work / "build")
    per_caller = (cpu.busy_pct - cpu.idle_pct) / cpu.calls
    table = Table(title="voice menus", title_justify="left")
    for column in ("figure", "result", "reference in the same run", "target"):
        table.add_column(column)
    p95 = float(np.percentile(delays, 95))
    table.add_row("digit (RFC 2833) → first RTP packet of the next prompt",
                  f"p50 {np.percentile(delays, 50):.0f} / p95 {p95:.0f} / max {delays.max():.0f} ms "
                  f"({len(delays)} presses)", "", f"p95 < 150 ms: {'met' if p95 < 150 else 'missed'}")
    table.add_row("IVR callers held by one worker (pjsua's limit)", f"{cpu.calls}", "", "")
    table.add_row("CPU per IVR caller (prompt playing, caller's speech, VAD)",
                  f"{per_caller:.2f} % of a core ({cpu.busy_pct:.1f} % for {cpu.calls})",
                  f"idle worker {cpu.idle_pct:.1f} %", "")
    cores = os.cpu_count() or 1
    table.add_row("IVR callers one machine holds, by CPU alone", f"about {int(cores * 100 / max(per_caller, 0.01)):,}"
                  f" on {cores} cores (4 per worker: {int(cores * 100 / max(per_caller, 0.01)) // 4:,} "
                  "workers)", "", "")
    table.add_row("build of the whole prompt catalog (espeak-ng, no cache)",
                  f"{seconds:.1f} s for {count} prompts ({seconds / count * 1e3:.0f} ms each)", "", "")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
