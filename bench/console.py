"""Console benchmark: page loads over a big store, the live board's delay in a real browser,
the console's memory with 20 boards open, and what the console costs the calls.

    python bench/console.py [--tasks 10000] [--attempts 100000] [--threads 5000]
                            [--loads 60] [--changes 30] [--presses 30] [--requests 30]
                            [--keep DIR]

1. **Page loads.** A store filled here through the store interface (no SQL of its own):
   ``--tasks`` warnings over the last 30 days, called ``--attempts`` times in all (busy lines
   called again by the shipped retry policy until acknowledged, failed or still open),
   ``--threads`` SMS consultations. ``run_dialer.py console`` serves it alone; an officer
   signed in over HTTP loads the board, the first page of the task list, the open tasks, a
   task with its calls, and the hotline page ``--loads`` times each, one after another.
   Target: p95 < 200 ms.
2. **Store change → the board's DOM.** Headless Chromium (Selenium) holds the board open;
   a warning is requested through the center in this process; a ``MutationObserver`` in the
   page notes ``Date.now()`` when the new task's row is in the board. The delay is that
   time minus the commit's (``created_at``, same clock). Target p95 < 1 s.
3. **Memory with 20 boards open.** The console process's RSS (``/proc``) before any board,
   then with 20 live boards (20 sessions' Server-Sent Event streams, read here) while
   warnings keep coming.
4. **What it costs the calls.** ``bench/ivr.py``'s digit → next prompt and
   ``bench/dialer.py``'s request → INVITE, each measured with the engine as ``run`` starts
   it and no console, then with the console served by ``run`` over the big store, 20 boards
   open and a report for a varying 30-day period (figures and its four charts) rendered
   again and again — in one run. Target: within 10 %.

Every process started here is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import numpy as np
from rich.console import Console as Terminal
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from browser import Browser, available, wait_port

from demo.loopback import free_tcp_port
from dialer import REQUIRED_TYPES, Outcome, Policy, TaskState, history_of, validate
from sip_config.schema import DialerConfig
from stores import open_stores

terminal = Terminal(width=None if sys.stdout.isatty() else 150)
TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct horse battery"
DAY = 86_400.0


# ------------------------------------------------------------------ the store


def populate(data_dir: Path, tasks: int, attempts: int, threads: int, open_tasks: int,
             now: float) -> dict[str, int]:
    """A center's month: ``tasks`` warnings, ``attempts`` calls, ``threads`` SMS threads. The
    newest ``open_tasks`` warnings stay open (their last line was busy); the others end
    acknowledged (most), failed or cancelled, as the shipped policy decides."""
    rng = random.Random(20261206)
    stores = open_stores(data_dir)
    store = stores.tasks
    policy = Policy(DialerConfig(), TZ)
    types = sorted(REQUIRED_TYPES)
    created = sorted(now - rng.uniform(3600, 30 * DAY) for _ in range(tasks - open_tasks))
    created += sorted(now - rng.uniform(60, 3000) for _ in range(open_tasks))
    ids: list[tuple[str, float]] = []
    for i, at in enumerate(created):
        risk = "high" if rng.random() < 0.8 else "normal"
        request = validate(f"139{i:08d}", rng.choice(types), risk, f"A{i:06d}",
                           known_types=REQUIRED_TYPES, source="bench")
        ids.append((store.submit(request, at, at).task.id, at))
    left = attempts
    calls = 0
    for k, (task_id, at) in enumerate(ids):
        still = len(ids) - k
        share = max(1, round(left / still * rng.uniform(0.3, 1.7))) if left > 0 else 0
        stays_open = k >= len(ids) - open_tasks
        t = at + 1.0
        for j in range(share):
            task = store.task(task_id)
            if not task.state.open:
                break
            t = max(t, task.next_at or t)
            last = j == share - 1
            [claim] = store.claim(t, "bench", "w1", only=task_id) or [None]
            if claim is None:
                break
            n = claim.attempt.n
            if last and not stays_open:
                outcome = rng.choices([Outcome.ACKNOWLEDGED, Outcome.NO_ANSWER,
                                       Outcome.INVALID_NUMBER], [0.85, 0.1, 0.05])[0]
            else:
                outcome = Outcome.BUSY
            status, digits, end = 486, "", t + 2
            if outcome is Outcome.ACKNOWLEDGED:
                store.mark_answered(task_id, n, t + 8)
                store.mark_reached(task_id, n, "acknowledged", t + 30)
                status, digits, end = 200, "1", t + 35
            elif outcome is Outcome.NO_ANSWER:
                status, end = 480, t + 40
            elif outcome is Outcome.INVALID_NUMBER:
                status = 404
            plan = policy.after(history_of(store.task(task_id)), outcome, end, rng.random(),
                                started_at=t)
            store.end_attempt(task_id, n, outcome, status, digits, "", end, plan,
                              {"by": "sip", "status": status})
            calls += 1
            t = end
        if not stays_open and store.task(task_id).state.open:
            store.cancel(task_id, t + 60, "reached at home by the station", by="cli:bench")
        left = attempts - calls
    for i in range(threads):
        at = now - rng.uniform(60, 30 * DAY)
        number = f"137{i:08d}"
        stores.texts.receive(number, "有人让我下载一个会议软件，说是公安局的，是真的吗？", at,
                             thread_s=86_400, source="bench")
    counts = {s.value: n for s, n in store.count_by_state().items()}
    stores.close()
    return {"tasks": tasks, "attempts": calls, "threads": threads, **counts}


def write_config(directory: Path, port: int) -> Path:
    path = directory / "dialer.yaml"
    path.write_text(f"engine:\n  data_dir: var\n  timezone: Asia/Shanghai\n"
                    f"console:\n  port: {port}\n  language: zh\n")
    return path


def add_users(config: Path) -> None:
    for name, role in (("wang", "officer"), ("li", "supervisor")):
        subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), "console", "users", "add",
                        name, "--role", role, "-c", str(config)], input=PASSWORD + "\n",
                       text=True, check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def console_alone(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = (config.parent / "console.out").open("wb")
    process = subprocess.Popen([sys.executable, str(ROOT / "run_dialer.py"), "console", "-c",
                                str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, 30)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def signed_in(port: int, name: str = "wang") -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    answer = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/"})
    if answer.status_code != 303:
        raise RuntimeError(f"signing in as {name}: {answer.status_code} {answer.text[:200]}")
    return client


# ------------------------------------------------------------------ 1. page loads


def page_loads(port: int, loads: int, task_id: str) -> dict[str, list[float]]:
    client = signed_in(port)
    pages = {"board": "/", "tasks (first page)": "/tasks?state=&risk=&escalated=&fraud_type="
             "&since=&until=", "tasks (open)": "/tasks?state=open", "one task": f"/tasks/{task_id}",
             "hotline": "/hotline"}
    times: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(2):  # warm: templates compiled, the store's pages in the cache
        for path in pages.values():
            client.get(path).raise_for_status()
    for _ in range(loads):
        for name, path in pages.items():
            started = time.perf_counter()
            answer = client.get(path)
            times[name].append(time.perf_counter() - started)
            answer.raise_for_status()
    client.close()
    return times


# ------------------------------------------------------------------ 2. board delay in a browser

OBSERVER = """
window.seenAt = {};
const root = document.getElementById('board');
new MutationObserver(() => {
  for (const row of root.querySelectorAll('tr[data-task]')) {
    const id = row.dataset.task;
    if (!(id in window.seenAt)) window.seenAt[id] = Date.now();
  }
}).observe(root, {childList: true, subtree: true});
for (const row of root.querySelectorAll('tr[data-task]')) window.seenAt[row.dataset.task] = 0;
"""


def board_delays(config: Path, port: int, changes: int) -> list[float]:
    missing = available()
    if missing:
        raise RuntimeError(f"{missing}: tools/test.sh installs it")
    from center import Actor
    from settings import load_settings
    from stores import open_stores as stores_of

    settings = load_settings(config)
    stores = stores_of(settings.data_dir)
    browser = Browser()
    delays: list[float] = []
    try:
        browser.fresh(f"http://127.0.0.1:{port}")
        browser.sign_in("wang", PASSWORD)
        browser.wait(lambda d: browser.all("#board"), 20, "the board")
        browser.driver.execute_script(OBSERVER)
        from center import Center
        center = Center(settings.loaded, settings.catalog, stores)
        for i in range(changes):
            time.sleep(random.uniform(0.3, 1.2))
            request = validate(f"1360000{i:04d}", "investment", "high",
                               known_types=REQUIRED_TYPES, source="bench")
            task = center.warn(request, Actor("bench", "console")).task
            seen = browser.wait(lambda d, t=task.id: d.execute_script(
                f"return window.seenAt['{t}'] || null;"), 10, f"task {task.id} on the board")
            delays.append(seen / 1000 - task.created_at)
        browser.shot("bench-board")
    finally:
        browser.close()
        stores.close()
    return delays


# ------------------------------------------------------------------ 3. memory, 20 boards


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Boards:
    """``count`` live boards: each a signed-in session reading ``/live/board`` in a thread."""

    def __init__(self, port: int, count: int) -> None:
        self.clients = [signed_in(port) for _ in range(count)]
        self.events = [0] * count
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(i,), daemon=True)
                        for i in range(count)]
        for thread in self.threads:
            thread.start()

    def _read(self, i: int) -> None:
        with contextlib.suppress(httpx.HTTPError), \
                self.clients[i].stream("GET", "/live/board", timeout=None) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: board"):
                    self.events[i] += 1
                if self.stopping.is_set():
                    return

    def close(self) -> None:
        self.stopping.set()
        for client in self.clients:
            client.close()


def memory_with_boards(config: Path, port: int, process: subprocess.Popen[bytes],
                       boards: int) -> tuple[float, float, int]:
    from center import Actor, Center
    from settings import load_settings

    before = rss_mb(process.pid)
    settings = load_settings(config)
    stores = open_stores(settings.data_dir)
    center = Center(settings.loaded, settings.catalog, stores)
    live = Boards(port, boards)
    peak = before
    try:
        for i in range(20):
            request = validate(f"1350000{i:04d}", "loan", "high", known_types=REQUIRED_TYPES,
                               source="bench")
            center.warn(request, Actor("bench", "console"))
            time.sleep(0.5)
            peak = max(peak, rss_mb(process.pid))
        time.sleep(1.0)
        peak = max(peak, rss_mb(process.pid))
    finally:
        live.close()
        stores.close()
    return before, peak, min(live.events)


# ------------------------------------------------------------------ 4. the cost to the calls


class Load:
    """The console's load beside the engine: 20 boards and reports rendered in a loop."""

    def __init__(self, port: int, boards: int) -> None:
        self.boards = Boards(port, boards)
        self.reports = 0
        self.stopping = threading.Event()
        self.client = signed_in(port, "li")
        self.thread = threading.Thread(target=self._report, daemon=True)
        self.thread.start()

    def _report(self) -> None:
        rng = random.Random(1)
        today = date.today()
        while not self.stopping.is_set():
            since = today - timedelta(days=rng.randrange(28, 60))
            with contextlib.suppress(httpx.HTTPError):
                page = self.client.get(f"/reports?since={since}&until={today}")
                for chart in re.findall(r'src="(/reports/chart/[^"]+)"', page.text):
                    self.client.get(chart.replace("&amp;", "&"))
                self.reports += 1

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(60)
        self.client.close()
        self.boards.close()


def with_console(config: Path, big: Path) -> int:
    """The engine's ``config`` with the console on, over a copy of the big store."""
    data = config.parent / "var"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("tasks.sqlite", "texts.sqlite"):
        shutil.copy(big / name, data / name)
    stores = open_stores(data)  # nothing left for this engine to call
    for task in stores.tasks.tasks([TaskState.QUEUED, TaskState.WAITING]):
        stores.tasks.cancel(task.id, time.time(), "bench: the engine here calls its own")
    stores.close()
    port = free_tcp_port()
    config.write_text(config.read_text() + f"console:\n  port: {port}\n  language: zh\n")
    add_users(config)
    return port


@contextlib.contextmanager
def loaded(port: int, boards: int) -> Iterator[dict[str, int]]:
    wait_port(port, 40)
    load = Load(port, boards)
    counts = {"reports": 0}
    try:
        yield counts
    finally:
        load.close()
        counts["reports"] = load.reports


def bench_module(name: str) -> ModuleType:
    """``bench/NAME.py`` as a module (``bench/dialer.py`` would hide the ``dialer`` package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def calls_cost(work: Path, big: Path, presses: int, requests: int, boards: int
               ) -> dict[str, tuple[list[float], list[float], int]]:
    """Each figure without the console, then with it: (without, with, reports rendered)."""
    ivr, dialing = bench_module("ivr"), bench_module("dialer")
    out: dict[str, tuple[list[float], list[float], int]] = {}
    for name, measure, count in (("digit → next prompt", ivr.digit_to_prompt, presses),
                                 ("request → INVITE", dialing.latency_warn, requests)):
        key = name.split()[0]
        for where in ("alone", "console"):
            (work / f"{key}-{where}").mkdir(parents=True, exist_ok=True)
        alone = measure(work / f"{key}-alone", count)
        counts: dict[str, int] = {}

        def beside(config: Path, counts: dict[str, int] = counts) -> Any:
            port = with_console(config, big)

            @contextlib.contextmanager
            def running() -> Iterator[None]:
                with loaded(port, boards) as done:
                    yield
                counts.update(done)
            return running()

        with_load = measure(work / f"{key}-console", count, beside=beside)
        out[name] = (alone, with_load, counts.get("reports", 0))
    return out


# ------------------------------------------------------------------ main


def stats(values: list[float]) -> tuple[float, float, float]:
    ms = np.array(values) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(np.percentile(ms, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=5_000)
    parser.add_argument("--open", type=int, default=150, help="warnings left open")
    parser.add_argument("--loads", type=int, default=60)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--boards", type=int, default=20)
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--skip-calls", action="store_true", help="leave part 4 out")
    parser.add_argument("--keep", type=Path, help="keep the work files here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-console-", dir=args.keep))
    try:
        port = free_tcp_port()
        data = work / "big" / "var"
        data.mkdir(parents=True)
        config = write_config(work / "big", port)
        started = time.perf_counter()
        filled = populate(data, args.tasks, args.attempts, args.threads, args.open, time.time())
        terminal.print(f"store filled in {time.perf_counter() - started:.0f} s: {filled}")
        add_users(config)
        stores = open_stores(data)
        some_task = stores.tasks.tasks([TaskState.ACKNOWLEDGED])[0].id
        stores.close()
        with console_alone(config, port) as process:
            loads = page_loads(port, args.loads, some_task)
            delays = board_delays(config, port, args.changes)
            before, peak, fewest = memory_with_boards(config, port, process, args.boards)
        table = Table(title=f"console over {filled['tasks']:,} tasks, {filled['attempts']:,} "
                            f"attempts, {filled['threads']:,} text threads")
        for column in ("what", "n", "p50 ms", "p95 ms", "target"):
            table.add_column(column)
        for name, values in loads.items():
            p50, p95, _ = stats(values)
            table.add_row(f"page load: {name}", str(len(values)), f"{p50:.1f}", f"{p95:.1f}",
                          "p95 < 200")
        p50, p95, _ = stats(delays)
        table.add_row("store change → board DOM (browser)", str(len(delays)), f"{p50:.0f}",
                      f"{p95:.0f}", "p95 < 1000")
        terminal.print(table)
        terminal.print(f"console RSS: {before:.0f} MB before any board, {peak:.0f} MB with "
                       f"{args.boards} boards open (each got ≥ {fewest} updates)")
        if not args.skip_calls:
            costs = calls_cost(work, data, args.presses, args.requests, args.boards)
            table = Table(title=f"what the console costs the calls ({args.boards} boards open, "
                                "reports rendered in a loop)")
            for column in ("figure", "n", "without p50/p95/p99 ms", "with p50/p95/p99 ms",
                           "p95 ratio", "p99 ratio", "reports rendered"):
                table.add_column(column)
            for name, (alone, loaded, reports) in costs.items():
                a, b = stats(alone), stats(loaded)
                table.add_row(name, f"{len(alone)}/{len(loaded)}",
                              "/".join(f"{v:.1f}" for v in a), "/".join(f"{v:.1f}" for v in b),
                              f"×{b[1] / a[1]:.2f}", f"×{b[2] / a[2]:.2f}", str(reports))
            terminal.print(table)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
