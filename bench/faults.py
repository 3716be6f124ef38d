"""Faults, measured: a corrupt list, peers that vanish, media that never comes (issue 7).

    python bench/faults.py [--count 40]

Each part runs the engine as ``run_dialer.py run`` (one worker, no front) on
loopback:

1. **A list corrupted while the engine runs.** A raw UDP caller times INVITE →
   final response, before and after ``meta.json`` of the blocklist is
   overwritten with garbage: a blocklisted caller (603 from the last good
   copy) and an unlisted one calling an unknown number (404).
2. **Peers that vanish.** Four INVITEs that are answered and never ACKed (no
   RTP, no reply to the BYE) take the worker's four channels; a probe INVITE
   every 0.5 s gets 486 until a channel is free again. The time to the first
   other answer, with ``sip.transaction_timeout_s`` at its default and, as the
   reference in the same run, at pjsip's own 32 s (64·T1).
3. **Media that never comes.** A SIPp caller that ACKs and sends no RTP; the
   time from its INVITE to the engine's BYE with ``sip.media_timeout_s`` at
   its default.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from calls import RawCaller
from enginectl import EngineProcess, engine_port, hours, write_config
from workerproc import Sipp

from sip_config.schema import SipConfig

console = Console(width=None if sys.stdout.isatty() else 150)
BLOCKED, UNLISTED, UNKNOWN = "13900001111", "13800001234", "5550100"


def ms(values: list[float]) -> str:
    a = np.array(values) * 1e3
    return f"p50 {np.percentile(a, 50):.1f} / p99 {np.percentile(a, 99):.1f} / max {a.max():.1f} ms"


def corrupt_list(work: Path, count: int) -> dict[str, str]:
    # one INVITE after another, far more than the worker's guard takes a second: guard off
    config = write_config(work, operator_hours=hours(inside_now=False),
                          sip_extra="  new_calls_per_worker_s: 0\n")
    engine = EngineProcess(config)
    out: dict[str, str] = {}
    try:
        caller = RawCaller(engine_port(config))
        for phase in ("healthy", "corrupt"):
            if phase == "corrupt":
                (work / "var" / "lists" / "fraud" / "meta.json").write_text("{ broken")
            for who, number, expected in (("blocked", BLOCKED, 603), ("unlisted", UNLISTED, 404)):
                times = []
                for _ in range(count):
                    status, seconds = caller.call(number, UNKNOWN)
                    if status != expected:
                        raise RuntimeError(f"{phase} list, {who} caller: {status}, not {expected}")
                    times.append(seconds)
                    time.sleep(0.02)
                out[f"{phase} {who}"] = ms(times)
    finally:
        engine.stop()
    return out


def vanished(port: int, count: int = 4) -> socket.socket:
    """INVITEs answered and never ACKed, from a peer that replies to nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    local = f"127.0.0.1:{sock.getsockname()[1]}"
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    for i in range(count):
        tag = uuid.uuid4().hex
        sock.sendto((f"INVITE sip:961108@127.0.0.1:{port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{tag}\r\nMax-Forwards: 70\r\n"
                     f"From: <sip:1380013{7400 + i}@{local}>;tag={tag[:8]}\r\n"
                     f"To: <sip:961108@127.0.0.1:{port}>\r\nCall-ID: {tag}@vanished\r\n"
                     f"CSeq: 1 INVITE\r\nContact: <sip:vanished@{local}>\r\n"
                     f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
                    .encode(), ("127.0.0.1", port))
    return sock


def channels_back_after(work: Path, transaction_timeout_s: float) -> float:
    config = write_config(work, operator_hours=hours(inside_now=False))
    config.write_text(config.read_text().replace(
        "sip:\n", f"sip:\n  transaction_timeout_s: {transaction_timeout_s:g}\n", 1))
    engine = EngineProcess(config)
    try:
        port = engine_port(config)
        sent = time.perf_counter()
        peer = vanished(port)
        time.sleep(1.0)  # all four answered
        probe = RawCaller(port)
        while time.perf_counter() - sent < 120:
            status, _ = probe.call(UNLISTED, UNKNOWN)
            if status != 486:
                peer.close()
                return time.perf_counter() - sent
            time.sleep(0.5)
        raise RuntimeError("the channels were not free after 120 s")
    finally:
        engine.stop()


def media_timeout(work: Path) -> float:
    config = write_config(work, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        started = time.monotonic()
        caller = Sipp("uac_answered_silent_until_bye.xml", work, "-s", "961108",
                      remote=engine.target, timeout_s=40)
        if caller.wait() != 0:
            raise RuntimeError(caller.report())
        return time.monotonic() - started
    finally:
        engine.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=40, help="INVITEs per kind in part 1")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    defaults = SipConfig()
    try:
        console.print("1. a list corrupted while the engine runs …")
        lists = corrupt_list(work / "lists", args.count)
        console.print("2. peers that vanish …")
        ours = channels_back_after(work / "vanish-ours", defaults.transaction_timeout_s)
        pjsip = channels_back_after(work / "vanish-pjsip", 32)
        console.print("3. media that never comes …")
        media = media_timeout(work / "media")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title="faults (one worker, no front)", title_justify="left")
    for column in ("fault", "result", "reference in the same run"):
        table.add_column(column)
    table.add_row("list corrupted: INVITE → 603, blocked caller (last good copy)",
                  lists["corrupt blocked"], f"list healthy: {lists['healthy blocked']}")
    table.add_row("list corrupted: INVITE → 404, unlisted caller",
                  lists["corrupt unlisted"], f"list healthy: {lists['healthy unlisted']}")
    table.add_row("4 INVITEs never ACKed: the channels free again after",
                  f"{ours:.1f} s (transaction_timeout_s {defaults.transaction_timeout_s:g})",
                  f"pjsip's 32 s timers: {pjsip:.1f} s (×{pjsip / ours:.1f})")
    table.add_row("no RTP after the answer: BYE after", f"{media:.1f} s "
                  f"(media_timeout_s {defaults.media_timeout_s:g})", "")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
