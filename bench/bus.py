"""MQTT bus benchmark against a real Mosquitto on loopback, the engine as ``run_dialer.py run``.

    python bench/bus.py [--requests 5000] [--steady 500] [--outage 5000] [--keep DIR]

1. **Requests accepted and stored.** ``--requests`` warning requests (distinct
   numbers, QoS 1) published as fast as a paho client can; the rate is the
   count over the time from the first publish to the last task committed in
   the task store (read by another connection). Reference, same run: the
   store's own batch commit (``submit_many`` of 500, in this process), the
   ceiling of any intake. Target ≥ 1,000/s.
2. **Event latency.** ``--steady`` requests at 50 a second; for each
   ``queued`` event, the time from the state change (its ``at``: the commit)
   to its arrival at a subscriber on the broker (same clock). p50 and p99.
3. **Outbox drain after an outage.** The broker stopped; ``--outage`` requests
   queued with ``warn --file`` (their ``queued`` events go to the outbox);
   the broker started again: events per second from the first to the last
   of them at the subscriber.

The engine dials nothing meanwhile (the trunk allows one call setup per
100 s). Every process started here is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from brokerctl import Broker, Watcher, mqtt_section
from dialerctl import cli, dialer_config, store_of
from enginectl import EngineProcess

from dialer import REQUIRED_TYPES, validate
from stores.sqlite import SqliteTaskStore

console = Console(width=None if sys.stdout.isatty() else 150)
REQUEST = "antifraud/warning/request"
EVENT = "antifraud/warning/event"


def numbers(count: int, base: int) -> list[str]:
    return [f"139{base + i:08d}" for i in range(count)]


def wait_count(store: Any, count: int, timeout: float) -> float:
    """When the store holds ``count`` tasks (time.time())."""
    deadline = time.monotonic() + timeout
    while True:
        n = store.db.execute("SELECT count(*) FROM tasks").fetchone()[0]
        if n >= count:
            return time.time()
        if time.monotonic() > deadline:
            raise SystemExit(f"only {n} of {count} tasks stored in {timeout} s")
        time.sleep(0.005)


def store_reference(directory: Path, count: int) -> float:
    store = SqliteTaskStore(directory / "reference.sqlite")
    requests = [validate(n, known_types=REQUIRED_TYPES) for n in numbers(count, 50_000_000)]
    started = time.perf_counter()
    now = time.time()
    for i in range(0, count, 500):
        store.submit_many([(r, now) for r in requests[i:i + 500]], now)
    seconds = time.perf_counter() - started
    store.close()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--steady", type=int, default=500)
    parser.add_argument("--outage", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="keep the working directory here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-bus-"))
    work.mkdir(parents=True, exist_ok=True)
    broker = Broker(work)
    config = dialer_config(work, "127.0.0.1:9", max_channels=1, max_cps=0.01)
    config.write_text(config.read_text() + mqtt_section(broker.url))
    watcher = Watcher(broker.port, (EVENT, "antifraud/engine/status"), client_id="bench-watcher",
                      clean=False)
    engine = EngineProcess(config)
    store = store_of(config)
    rows: list[tuple[str, str, str]] = []
    try:
        watcher.wait("antifraud/engine/status", lambda s: any(x.json["state"] == "up" for x in s))
        # 1. intake
        first = numbers(args.requests, 0)
        started = time.time()
        infos = [watcher.client.publish(REQUEST, json.dumps({"number": n, "task_id": f"r{i}"}),
                                        qos=1) for i, n in enumerate(first)]
        for info in infos:
            info.wait_for_publish(60)
        stored_at = wait_count(store, args.requests, 120)
        rate = args.requests / (stored_at - started)
        reference = store_reference(work, args.requests)
        rows.append(("requests accepted and stored", f"{rate:,.0f} /s",
                     (f"store batch commit {reference:,.0f} /s (ratio {rate / reference:.2f}); "
                     "target ≥ 1,000 /s")))
        watcher.wait(EVENT, lambda s: sum(x.json["event"] == "queued" for x in s)
                     >= args.requests, 120)
        # 2. latency at a steady pace
        steady = numbers(args.steady, 10_000_000)
        tick = time.monotonic()
        for i, n in enumerate(steady):
            watcher.publish(REQUEST, {"number": n, "task_id": f"s{i}"}, qos=1)
            tick += 0.02
            time.sleep(max(0.0, tick - time.monotonic()))
        want = {f"s{i}" for i in range(args.steady)}
        seen = watcher.wait(EVENT, lambda s: want <= {x.json["task_id"] for x in s
                                                       if x.json["event"] == "queued"}, 60)
        offset = time.time() - time.monotonic()  # Seen.at is monotonic
        latencies = [1000 * (x.at + offset - _epoch(x.json["at"])) for x in seen
                     if x.json["event"] == "queued" and x.json["task_id"] in want]
        p50, p99 = np.percentile(latencies, [50, 99])
        rows.append(("event latency, state change → broker → subscriber",
                     f"p50 {p50:.1f} ms, p99 {p99:.1f} ms", f"{len(latencies)} events at 50 /s"))
        # 3. outage
        broker.stop()
        csv = work / "outage.csv"
        csv.write_text("number\n" + "".join(f"{n}\n" for n in numbers(args.outage, 20_000_000)))
        cli(config, "warn", "--file", str(csv))
        wait_count(store, args.requests + args.steady + args.outage, 120)
        time.sleep(1.0)  # the engine has copied them to its outbox
        before = len(watcher.on(EVENT))
        broker.start()
        back = time.monotonic()
        drained = watcher.wait(EVENT, lambda s: len(s) - before >= args.outage, 180)[before:]
        span = drained[-1].at - drained[0].at
        rows.append(("outbox drain after an outage", f"{args.outage / span:,.0f} events/s",
                     (f"{args.outage:,} events queued while the broker was down; the last "
                     f"arrived {drained[-1].at - back:.1f} s after it came back (with the "
                     "engine's reconnect backoff)")))
    finally:
        store.close()
        engine.stop()
        watcher.close()
        broker.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table = Table(title="MQTT bus (Mosquitto on loopback)", title_justify="left")
    for column in ("figure", "result", "notes"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


if __name__ == "__main__":
    main()
