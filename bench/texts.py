"""Texts benchmark: the SMS consultation line through one worker, with calls beside it.

    python bench/texts.py [--texts 200] [--flood-s 8] [--rate 100]

The engine runs as ``run_dialer.py run`` (one worker, outside operator hours,
``sms.number`` set) with a SIP peer written for the tests (``tests/textpeer.py``)
as both the people's phones and the carrier's SMS gateway on the trunk.

1. **MESSAGE in → stored, MESSAGE in → auto-reply sent.** ``--texts`` texts,
   one at a time, each from its own number (a new thread, so each gets its
   automatic reply). Stored: the text's ``sms received`` line in
   ``events.jsonl``, which the engine writes after the commit (the file is
   followed every millisecond). Reply: the auto-reply MESSAGE arriving at the
   gateway. Targets: stored p99 < 20 ms, reply p99 < 100 ms.
2. **Texts per second beside calls.** Two callers in the voice menu on the
   same worker (``bench/ivr.py``'s caller: PCMU both ways, the engine's RTP
   arrival times kept). For ``--flood-s`` seconds without texts (the
   reference), then as long again with texts sent at ``--rate`` a second:
   replies counted at the gateway, and the engine's RTP to the callers
   compared between the two periods: packets lost (expected 50 a second) and
   jitter (the spread of the gaps between packets, RFC 3550's
   interarrival-jitter idea on arrival times). Target: no loss, no more jitter.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from enginectl import EngineProcess, engine_port, hours, write_config
from ivr import Caller, bench_menus
from textpeer import TextPeer

console = Console(width=None if sys.stdout.isatty() else 150)
SMS = "121100130"


class EventTail:
    """Follows ``events.jsonl``: when each ``sms received`` line appeared (by worker text id)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[str, float] = {}
        self.stopping = False
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        import json

        while not self.path.exists():
            time.sleep(0.01)
        with self.path.open(encoding="utf-8") as lines:
            lines.seek(0, 2)
            buffer = ""
            while not self.stopping:
                chunk = lines.readline()
                if not chunk:
                    time.sleep(0.001)
                    continue
                buffer += chunk
                if not buffer.endswith("\n"):
                    continue
                line, buffer = buffer, ""
                event = json.loads(line)
                if event.get("event") == "sms" and event.get("sms_event") == "received":
                    self.seen[event["call"]] = time.monotonic()

    def wait(self, key: str, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while key not in self.seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no 'received' event for {key} in {timeout} s")
            time.sleep(0.0005)
        return self.seen[key]


def engine_for(work: Path, gateway: TextPeer) -> Path:
    menus = bench_menus(work)
    return write_config(work, operator_hours=hours(inside_now=False), trunk=gateway.uri,
                        hotline_extra=f"  menus: {menus.name}\n",
                        extra=f'sms:\n  number: "{SMS}"\n')


def latency(work: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    gateway = TextPeer()
    config = engine_for(work, gateway)
    engine = EngineProcess(config)
    tail = EventTail(config.parent / "var" / "events.jsonl")
    stored, replied = [], []
    try:
        target = ("127.0.0.1", engine_port(config))
        for i in range(count):
            sent = time.monotonic()
            gateway.send(target, SMS, f"1380000{i:04d}", "有人让我把钱转到安全账户", timeout=0.0)
            reply = gateway.next_text(timeout=5)
            stored.append(tail.wait(f"w1-txt-{i + 1}") - sent)
            replied.append(reply.at - sent)
            time.sleep(0.02)
    finally:
        tail.stopping = True
        engine.stop()
        gateway.close()
    return np.array(stored) * 1000, np.array(replied) * 1000


def rtp_figures(caller: Caller, since: float, until: float) -> tuple[int, int, float, float]:
    """(packets, expected, jitter ms, the longest gap ms) of the engine's RTP in a period."""
    arrivals = np.array([at for at, _ in caller.heard if since <= at < until])
    expected = int((until - since) * 50)
    if len(arrivals) < 2:
        return len(arrivals), expected, float("nan"), float("nan")
    gaps = np.diff(arrivals) * 1000
    return len(arrivals), expected, float(np.mean(np.abs(gaps - 20.0))), float(gaps.max())


def beside_calls(work: Path, flood_s: float, rate: float) -> dict[str, object]:
    gateway = TextPeer()
    config = engine_for(work, gateway)
    engine = EngineProcess(config)
    callers: list[Caller] = []
    try:
        port = engine_port(config)
        for _ in range(2):
            caller = Caller(port)
            caller.call()
            callers.append(caller)
        time.sleep(1.0)  # the menu's long tone is playing to both
        quiet_from = time.monotonic()
        time.sleep(flood_s)
        flood_from = time.monotonic()
        sent = 0
        while time.monotonic() < flood_from + flood_s:
            gateway.send(("127.0.0.1", port), SMS, f"1390000{sent:04d}", "网上刷单返利，要我垫付",
                         timeout=0.0)
            sent += 1
            time.sleep(max(0.0, flood_from + sent / rate - time.monotonic()))
        flood_until = time.monotonic()
        replies = gateway.quiet(3.0)
        for caller in callers:
            caller.hang_up()
    finally:
        engine.stop()
        gateway.close()
    in_time = [r for r in replies if r.at < flood_until + 0.2]
    quiet = [rtp_figures(c, quiet_from, quiet_from + flood_s) for c in callers]
    flood = [rtp_figures(c, flood_from, flood_until) for c in callers]
    return {"sent": sent, "seconds": flood_until - flood_from, "replies": len(replies),
            "replies_in_time": len(in_time), "quiet": quiet, "flood": flood}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--flood-s", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=100.0, help="texts a second in the flood")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-texts-") as tmp:
        work = Path(tmp)
        stored, replied = latency(work / "latency", args.texts)
        table = Table(title=f"{args.texts} texts, one at a time (ms)", title_justify="left")
        for column in ("", "p50", "p99", "max", "target"):
            table.add_column(column, justify="right")
        for name, values, target in (("MESSAGE in → stored", stored, 20.0),
                                     ("MESSAGE in → auto-reply sent", replied, 100.0)):
            p50, p99 = np.percentile(values, [50, 99])
            table.add_row(name, f"{p50:.1f}", f"{p99:.1f}", f"{values.max():.1f}",
                          f"p99 < {target:.0f} " + ("met" if p99 < target else "missed"))
        console.print(table)
        result = beside_calls(work / "flood", args.flood_s, args.rate)
    rate = result["replies"] / result["seconds"]  # type: ignore[operator]
    console.print(f"texts beside 2 calls on one worker: {result['sent']} sent in "
                  f"{result['seconds']:.1f} s ({args.rate:.0f}/s offered), {result['replies']} "
                  f"auto-replies ({rate:.0f}/s)")
    table = Table(title="the engine's RTP to the two callers", title_justify="left")
    for column in ("period", "caller", "packets", "expected", "lost", "jitter ms", "longest gap ms"):
        table.add_column(column, justify="right")
    for period in ("quiet", "flood"):
        for n, (got, expected, jitter, gap) in enumerate(result[period], 1):  # type: ignore[arg-type]
            table.add_row("no texts (reference)" if period == "quiet" else "texts", str(n),
                          str(got), str(expected), str(max(0, expected - got)), f"{jitter:.2f}",
                          f"{gap:.1f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
