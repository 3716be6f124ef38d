"""Warning-dialer benchmark: request → INVITE latency and a 200-request campaign, against SIPp.

    python bench/dialer.py [--requests 40] [--campaign 200] [--keep DIR]

1. **Request → INVITE** with a free channel. The time from a request being
   accepted (its row committed: ``created_at`` in the task store) to its INVITE
   arriving at the SIPp phone (SIPp's ``-trace_msg`` timestamps, same clock):
   - from ``run_dialer.py warn`` in another process, the engine running as
     ``run_dialer.py run`` (it hears of the store's change through the store's
     watch: SQLite's ``PRAGMA data_version``, asked every 20 ms while it waits);
   - from an in-process request (``Center.warn``, as the MQTT bus does), the
     engine in this process (it hears its own commit at once);
   - reference, same run: a bare softphone worker told to dial (the command
     written to its stdin → the INVITE at SIPp), i.e. what the engine adds.
   The phone answers 486 and ``retry.busy_s`` is an hour, so nothing is retried.
   Target: p99 < 100 ms.
2. **Campaign.** ``--campaign`` requests queued at once (``warn --file``)
   before the engine starts; SIPp phones busy at random (50 %, 486 after 1 s)
   or answering and pressing 1 two seconds later into the shipped warning
   (then the thanks, then BYE). Channel utilisation: mean
   calls up at once at the phones (from the trace) over max_channels, from the
   first INVITE until fewer open tasks remain than channels (while work is
   due). Target ≥ 90 %. Tasks finished per minute over the whole campaign.

Every process started here is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from dialerctl import cli, dialer_config, store_of, wait_tasks
from enginectl import EngineProcess
from rtppcap import write_pcap
from sipptrace import calls_of
from workerproc import Sipp, WorkerProcess

from center import Actor
from dialer import REQUIRED_TYPES, validate
from engine import Engine
from sip_config import load_config
from softphone import protocol as p

console = Console(width=None if sys.stdout.isatty() else 150)
NO_RETRY = "{busy_s: 3600, busy_growth: 1.0, busy_cap_s: 3600, jitter: 0}"


def numbers(count: int, base: int) -> list[str]:
    return [f"1390{base + i:07d}" for i in range(count)]


def invite_times(work: Path, scenario: str) -> dict[str, float]:
    [trace] = work.glob(f"{Path(scenario).stem}_*_messages.log")
    return {c.number: c.start for c in calls_of(trace)}


def busy_phones(work: Path, count: int) -> Sipp:
    return Sipp("uas_busy_486.xml", work, "-trace_msg", calls=count, timeout_s=300)


def latency_worker(work: Path, count: int) -> list[float]:
    """Reference: a worker alone, the dial command written → the INVITE at the phone."""
    phones = busy_phones(work, count)
    worker = WorkerProcess("ref", work)
    sent: dict[str, float] = {}
    try:
        for i, number in enumerate(numbers(count, 1000)):
            sent[number] = time.time()
            worker.send(p.Dial(f"c{i}", f"sip:{number}@{phones.uri_host}", "96110", 5))
            worker.wait_for("hung_up", f"c{i}", timeout=10)
            time.sleep(0.05)
        phones.wait()
    finally:
        worker.shutdown()
        phones.kill()
    arrived = invite_times(work, "uas_busy_486.xml")
    return [arrived[n] - sent[n] for n in sent]


def latency_warn(work: Path, count: int,
                 beside: Callable[[Path], AbstractContextManager[object]] | None = None
                 ) -> list[float]:
    """``warn`` in another process; the engine as ``run_dialer.py run``. ``beside``: given the
    configuration before the engine starts (to change it), what runs beside the engine while
    it is measured (``bench/console.py``: the console's load)."""
    phones = busy_phones(work, count)
    config = dialer_config(work, phones.uri_host, retries=NO_RETRY)
    load = beside(config) if beside else nullcontext()
    engine = EngineProcess(config)
    ids: dict[str, str] = {}
    try:
        with load:
            for number in numbers(count, 2000):
                ids[number] = cli(config, "warn", number).stdout.strip()
                time.sleep(0.15)
            wait_tasks(config, list(ids.values()), done=lambda t: t.tries == 1, timeout=60)
        phones.wait()
    finally:
        engine.stop()
        phones.kill()
    store = store_of(config)
    accepted = {n: store.task(t).created_at for n, t in ids.items()}
    store.close()
    arrived = invite_times(work, "uas_busy_486.xml")
    return [arrived[n] - accepted[n] for n in ids]


def latency_in_process(work: Path, count: int) -> list[float]:
    """``Center.warn`` in this process, the engine in this process."""
    phones = busy_phones(work, count)
    config = dialer_config(work, phones.uri_host, retries=NO_RETRY)
    accepted: dict[str, float] = {}

    async def run() -> None:
        engine = Engine(load_config(config))
        await engine.start()
        try:
            for number in numbers(count, 3000):
                request = validate(number, known_types=REQUIRED_TYPES, source="bench")
                accepted[number] = time.time()
                engine.center.warn(request, Actor("bench", "dialer"))
                await asyncio.sleep(0.15)
            await asyncio.sleep(1.0)
        finally:
            await engine.stop()

    try:
        asyncio.run(run())
        phones.wait()
    finally:
        phones.kill()
    arrived = invite_times(work, "uas_busy_486.xml")
    return [arrived[n] - accepted[n] for n in accepted]


def campaign(work: Path, count: int, channels: int, workers: int) -> dict[str, float]:
    dtmf = write_pcap(work / "dtmf-1.pcap", digits=(("1", 0),))
    phones = Sipp("uas_random_busy_then_dtmf.xml", work, "-key", "busy_percent", "50",
                  "-key", "dtmf_pcap", str(dtmf), "-trace_msg", calls=100_000, timeout_s=900)
    retries = ("{busy_s: 2, busy_growth: 1.0, busy_cap_s: 2, rang_out_s: 2, no_answer_s: 2, "
               "unacknowledged_s: 5, trunk_s: 1, trunk_cap_s: 5, jitter: 0.2}")
    config = dialer_config(work, phones.uri_host, workers=workers, max_channels=channels,
                           max_cps=20, max_attempts=50, retries=retries, short_prompts=False)
    requests = work / "campaign.csv"
    requests.write_text("number,fraud_type\n" + "".join(f"{n},investment\n"
                                                         for n in numbers(count, 4000)))
    cli(config, "warn", "--file", str(requests))
    engine = EngineProcess(config)
    store = store_of(config)
    try:
        ids = [t.id for t in store.tasks()]
        tasks = wait_tasks(config, ids, timeout=900)
    finally:
        engine.stop()
        phones.kill()
        store.close()
    calls = [c for c in calls_of(next(work.glob("uas_random_busy_then_dtmf_*_messages.log")))
             if c.end is not None]
    first = min(c.start for c in calls)
    finished = sorted(t.finished_at for t in tasks if t.finished_at)
    due_until = finished[count - channels] if count > channels else finished[0]
    grid = np.arange(first, due_until, 0.1)
    up = np.zeros_like(grid)
    for c in calls:
        up += (grid >= c.start) & (grid < c.end)
    call_s = sum(c.end - c.start for c in calls if c.end is not None)
    ceiling = channels * 60 / (call_s / count)  # tasks a minute if every channel were always busy
    return {"utilisation": float(up.mean() / channels), "minutes": (finished[-1] - first) / 60,
            "ceiling": ceiling,
            "calls": len(calls), "done": sum(t.state.value == "acknowledged" for t in tasks),
            "busiest": float(up.max())}


def stats(values: list[float]) -> tuple[float, float, float]:
    ms = np.array(values) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--campaign", type=int, default=200)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="keep the work files here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-dialer-"))
    try:
        parts = {}
        for name, run in (("worker", latency_worker), ("warn", latency_warn),
                          ("in-process", latency_in_process)):
            part = work / name
            part.mkdir(parents=True, exist_ok=True)
            console.print(f"request → INVITE: {name} …")
            parts[name] = stats(run(part, args.requests))
        table = Table(title=f"request → INVITE, a channel free ({args.requests} requests each)",
                      title_justify="left")
        for column in ("from", "p50 (ms)", "p99 (ms)", "max (ms)", "target p99 < 100 ms"):
            table.add_column(column, justify="left" if column == "from" else "right")
        for name, label in (("warn", "run_dialer.py warn (another process)"),
                            ("in-process", "an in-process request (Center.warn)"),
                            ("worker", "reference: a bare worker told to dial")):
            p50, p99, top = parts[name]
            verdict = "" if name == "worker" else ("met" if p99 < 100 else "missed")
            table.add_row(label, f"{p50:.1f}", f"{p99:.1f}", f"{top:.1f}", verdict)
        console.print(table)

        if not args.campaign:
            return 0
        console.print(f"campaign: {args.campaign} requests at once, {args.channels} channels …")
        part = work / "campaign"
        part.mkdir(parents=True, exist_ok=True)
        figures = campaign(part, args.campaign, args.channels, args.workers)
        table = Table(title=f"{args.campaign} requests at once, phones busy at random (50 %), "
                            f"{args.channels} channels on {args.workers} workers",
                      title_justify="left")
        for column in ("figure", "result", "target"):
            table.add_column(column)
        u = figures["utilisation"]
        table.add_row("channel utilisation while work is due", f"{u:.0%} (peak {figures['busiest']:.0f} "
                      f"of {args.channels})", f"≥ 90 %: {'met' if u >= 0.9 else 'missed'}")
        rate = args.campaign / figures["minutes"]
        table.add_row("tasks finished per minute",
                      f"{rate:.0f} ({figures['done']} acknowledged, {figures['calls']} calls in "
                      f"{figures['minutes']:.1f} min)", "")
        table.add_row("reference: the ceiling of these channels with these calls",
                      f"{figures['ceiling']:.0f} a minute (achieved ×{rate / figures['ceiling']:.2f})",
                      "")
        console.print(table)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
