"""Cluster benchmark: several engine nodes on one PostgreSQL (Debian's, started here).

    python bench/cluster.py [--tasks 3000] [--requests 40] [--kills 10] [--idle-s 20]
                            [--steps claims,latency,takeover,idle] [--keep DIR]

1. **Claims per second** across 1, 2 and 3 nodes: ``--tasks`` due tasks in the shared store;
   each node is a process of its own with its own connection, taking one task at a time
   (``claim``) and ending its attempt acknowledged (``end_attempt``: the same two
   transactions a call costs the store), until none is left. Tasks per second for all nodes
   together, and the ratio to one node's, same run. (Two cores here: the nodes and the
   database share them.)
2. **Takeover**: three engines as ``run`` starts them (``engine.lease_s`` 10, the default),
   phones on the trunk that ring and never answer (SIPp); a warning in flight on one node,
   that node killed with SIGKILL; the time from the kill to the next INVITE for that person
   from another node (SIPp's trace), ``--kills`` times (the killed node started again each
   time). Expected: about the lease, plus up to one renewal period.
3. **Request → INVITE** with the engine as ``run`` on three nodes: ``warn`` on node 1 (its
   commit wakes every node by ``NOTIFY``), whichever node claims it; beside the same figure
   for one node on SQLite, same run. Target p99 < 100 ms.
4. **Idle**: one node on PostgreSQL as ``run`` starts it (one worker), no task and no call,
   then the same node on SQLite: CPU over ``--idle-s`` of the engine, its worker, and the
   PostgreSQL server's processes (the postmaster and everything below it: the node's
   connections' backends, the checkpointer, autovacuum). Target: the engine ≤ 1 % of a core.

Every process started here is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from capacity import sample_cpu, tree
from dialerctl import cli, dialer_config
from enginectl import EngineProcess
from pgctl import PASSWORD, Postgres
from sipptrace import calls_of
from workerproc import Sipp

from dialer import REQUIRED_TYPES, History, Outcome, Plan, Risk, TaskState, validate
from stores import Stores, open_stores

console = Console(width=None if sys.stdout.isatty() else 150)
ENV = "AFC_BENCH_DB_PASSWORD"
NO_RETRY = "{busy_s: 3600, busy_growth: 1.0, busy_cap_s: 3600, jitter: 0}"
STEPS = ("claims", "latency", "takeover", "idle")


def shared(url: str, node: str = "bench") -> Stores:
    return open_stores(Path(tempfile.gettempdir()), url=url, password=PASSWORD, node=node)


# ------------------------------------------------------------------ 1. claims per second


def _drain(url: str, node: str, start: multiprocessing.synchronize.Event,
           out: multiprocessing.Queue[int]) -> None:
    stores = shared(url, node)
    tasks = stores.tasks
    done = 0
    plan = Plan(TaskState.ACKNOWLEDGED, None, True, False, "bench",
                History(Risk.HIGH, time.time(), attempts=1, reached=1))
    start.wait()
    while True:
        now = time.time()
        claims = tasks.claim(now, node, "w1")
        if not claims:
            break
        c = claims[0]
        tasks.end_attempt(c.task.id, c.attempt.n, Outcome.ACKNOWLEDGED, 200, "1", "", now, plan)
        done += 1
    stores.close()
    out.put(done)


def claims_per_second(pg: Postgres, count: int, nodes: int) -> float:
    url = pg.fresh_database(f"claims_{nodes}_{os.getpid()}")
    stores = shared(url)
    now = time.time()
    requests = [(validate(f"1397{i:07d}", "investment", "high", known_types=REQUIRED_TYPES,
                          source="bench"), now) for i in range(count)]
    for start in range(0, count, 500):
        stores.tasks.submit_many(requests[start:start + 500], now)
    stores.close()
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    out: multiprocessing.Queue[int] = context.Queue()
    processes = [context.Process(target=_drain, args=(url, f"n{i}", go, out))
                 for i in range(nodes)]
    for process in processes:
        process.start()
    time.sleep(2.0)  # connected and migrated
    started = time.perf_counter()
    go.set()
    total = sum(out.get(timeout=600) for _ in processes)
    seconds = time.perf_counter() - started
    for process in processes:
        process.join(10)
    assert total == count, (total, count)
    return total / seconds


# ------------------------------------------------------------------ engines


def node_config(directory: Path, name: str, url: str, trunk: str, retries: str,
                workers: int = 1) -> Path:
    config = dialer_config(directory, trunk, workers=workers, max_channels=30, max_cps=50,
                           ring_timeout_s=60, retries=retries)
    config.write_text(config.read_text().replace(
        "engine:\n", f"engine:\n  store: {url}\n  store_password_env: {ENV}\n  node: {name}\n", 1))
    return config


def takeover(pg: Postgres, work: Path, kills: int) -> list[float]:
    url = pg.fresh_database(f"takeover_{os.getpid()}")
    phones = Sipp("uas_ring_until_cancel.xml", work, "-trace_msg", calls=100_000, timeout_s=3600)
    retries = "{rang_out_s: 1, no_answer_s: 1, busy_s: 1, busy_growth: 1.0, jitter: 0}"
    configs = [node_config(work / f"n{i}", f"n{i}", url, phones.uri_host, retries)
               for i in (1, 2, 3)]
    nodes = [EngineProcess(c) for c in configs]
    stores = shared(url)
    delays: list[float] = []
    try:
        for k in range(kills):
            number = f"1398{k:07d}"
            task_id = cli(configs[0], "warn", number).stdout.strip()
            deadline = time.monotonic() + 20
            while True:  # ringing, on some node
                attempts = stores.tasks.attempts(task_id)
                live = [a for a in attempts if a.ended_at is None]
                if live and time.time() - live[-1].started_at > 1.0:
                    break
                assert time.monotonic() < deadline, "the warning never rang"
                time.sleep(0.05)
            node = next(e.detail["node"] for e in stores.tasks.events(task_id)
                        if e.event == "attempt" and e.attempt == live[-1].n)
            index = int(str(node)[1:]) - 1
            killed = time.time()
            os.kill(nodes[index].proc.pid, signal.SIGKILL)
            nodes[index].proc.wait(5)
            deadline = time.monotonic() + 60
            while len(stores.tasks.attempts(task_id)) < live[-1].n + 1:
                assert time.monotonic() < deadline, "the warning was never taken over"
                time.sleep(0.05)
            time.sleep(0.5)
            stores.tasks.cancel(task_id, time.time(), "bench")
            calls = [c for c in calls_of(next(work.glob("uas_ring_until_cancel_*_messages.log")))
                     if c.number == number and c.start > killed]
            delays.append(min(c.start for c in calls) - killed)
            nodes[index].stop()
            nodes[index] = EngineProcess(configs[index])
    finally:
        for node in nodes:
            node.stop()
        phones.kill()
        stores.close()
    return delays


def request_to_invite(work: Path, count: int, url: str | None) -> list[float]:
    phones = Sipp("uas_busy_486.xml", work, "-trace_msg", calls=count, timeout_s=300)
    if url is None:
        configs = [dialer_config(work, phones.uri_host, retries=NO_RETRY)]
    else:
        configs = [node_config(work / f"n{i}", f"n{i}", url, phones.uri_host, NO_RETRY)
                   for i in (1, 2, 3)]
    nodes = [EngineProcess(c) for c in configs]
    ids: dict[str, str] = {}
    try:
        time.sleep(1.0)
        for i in range(count):
            number = f"1399{i:07d}"
            ids[number] = cli(configs[0], "warn", number).stdout.strip()
            time.sleep(0.15)
        time.sleep(2.0)
        phones.wait()
    finally:
        for node in nodes:
            node.stop()
        phones.kill()
    stores = shared(url) if url else open_stores(configs[0].parent / "var")
    accepted = {n: stores.tasks.task(t).created_at for n, t in ids.items()}
    stores.close()
    trace = next(work.glob("uas_busy_486_*_messages.log"))
    arrived = {c.number: c.start for c in calls_of(trace)}
    return [arrived[n] - accepted[n] for n in ids if n in arrived]


def idle(pg: Postgres, work: Path, url: str | None, seconds: float) -> dict[str, float]:
    """% of one core of the engine, its worker(s) and the database server, standing still."""
    config = (node_config(work / "pg", "n1", url, "127.0.0.1:9", NO_RETRY) if url
              else dialer_config(work / "sqlite", "127.0.0.1:9", retries=NO_RETRY))
    node = EngineProcess(config)
    try:
        time.sleep(5.0)  # the start is over: prompts built, workers ready, lists loaded
        engine = node.proc.pid
        ours = tree(engine)
        postmaster = pg.postmaster_pid() if url else None
        server = tree(postmaster) if postmaster is not None else []
        cpu = sample_cpu(ours + server, seconds)
    finally:
        node.stop()
    return {"engine": cpu.get(engine, 0.0),
            "workers": sum(cpu.get(p, 0.0) for p in ours if p != engine),
            "database": sum(cpu.get(p, 0.0) for p in server)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"which steps, comma-separated: {', '.join(STEPS)}")
    parser.add_argument("--keep", type=Path, help="keep the work files here")
    args = parser.parse_args()
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; the steps are {', '.join(STEPS)}")
    os.environ[ENV] = PASSWORD
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir=args.keep))
    pg = Postgres()
    try:
        if "claims" in steps:
            rates = {n: claims_per_second(pg, args.tasks, n) for n in (1, 2, 3)}
            table = Table(title=f"claims per second, {args.tasks} tasks (claim + end of attempt)")
            for column in ("nodes", "tasks/s", "× one node"):
                table.add_column(column)
            for n, rate in rates.items():
                table.add_row(str(n), f"{rate:,.0f}", f"×{rate / rates[1]:.2f}")
            console.print(table)

        if "latency" in steps:
            single_dir, cluster_dir = work / "single", work / "cluster"
            single_dir.mkdir()
            cluster_dir.mkdir()
            single = request_to_invite(single_dir, args.requests, None)
            across = request_to_invite(cluster_dir, args.requests,
                                       pg.fresh_database(f"latency_{os.getpid()}"))
            table = Table(title="request (warn) → INVITE at the phone, ms")
            for column in ("where", "n", "p50", "p99", "max"):
                table.add_column(column)
            for name, values in (("one node, SQLite", single),
                                 ("three nodes, PostgreSQL", across)):
                ms = np.array(values) * 1000
                table.add_row(name, str(len(values)), f"{np.percentile(ms, 50):.1f}",
                              f"{np.percentile(ms, 99):.1f}", f"{ms.max():.1f}")
            console.print(table)

        if "takeover" in steps:
            takeover_dir = work / "takeover"
            takeover_dir.mkdir()
            delays = takeover(pg, takeover_dir, args.kills)
            console.print(f"takeover (lease 10 s), kill -9 → the next INVITE from another "
                          f"node, {len(delays)} kills: p50 {np.percentile(delays, 50):.1f} s, "
                          f"max {max(delays):.1f} s")

        if "idle" in steps:
            idle_dir = work / "idle"
            idle_dir.mkdir()
            figures = {"one node on PostgreSQL": idle(pg, idle_dir, pg.fresh_database(
                           f"idle_{os.getpid()}"), args.idle_s),
                       "one node on SQLite (same run)": idle(pg, idle_dir, None, args.idle_s)}
            table = Table(title=f"idle: no task, no call; % of one core over {args.idle_s:g} s")
            for column in ("node", "engine", "its worker", "PostgreSQL server", "target"):
                table.add_column(column)
            for name, cpu in figures.items():
                database = f"{cpu['database']:.3f} %" if "PostgreSQL" in name else "—"
                table.add_row(name, f"{cpu['engine']:.3f} %", f"{cpu['workers']:.3f} %",
                              database, "engine ≤ 1 %: " + ("met" if cpu["engine"] <= 1
                                                           else "missed"))
            console.print(table)
    finally:
        pg.close()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
