"""Time to reach a person who is on the phone with a scammer: the retry policy in simulated time.

    python bench/reach.py [--victims 10000] [--seed 7]

Each victim's line is busy (on the scammer's call) for a random 1-30 minutes
from the moment the warning request arrives. A call to a busy line ends with
486 after ``--busy-pdd`` seconds; a call to a free line rings and the person
picks up after 2-8 s. The figure is the time from the line becoming free to
the warning call being answered, and the calls placed per victim per hour.

Three ways of calling, each in the same simulation with the same victims:

- the engine's default policy (``dialer.Policy`` with the defaults of
  ``sip_config.schema.DialerConfig``, jitter included, no sleeping);
- a fixed 5-minute cadence (the public warning robots);
- an officer redialling by hand every 2 minutes.

Targets (issue 6): median < 15 s and p95 < 40 s with the defaults.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialer import History, Outcome, Policy, Risk, TaskState
from sip_config.schema import DialerConfig


@dataclass
class Result:
    name: str
    reach_s: np.ndarray  # line free → answered, per victim
    calls_per_hour: np.ndarray  # calls placed while the line was busy, per busy hour


def simulate(name: str, next_wait: Callable[[History, float, random.Random], tuple[float, History]],
             busy_s: np.ndarray, pickup_s: np.ndarray, pdd_s: float, seed: int) -> Result:
    rng = random.Random(seed)
    reach = np.empty(len(busy_s))
    rate = np.empty(len(busy_s))
    for i, (busy_for, pickup) in enumerate(zip(busy_s, pickup_s, strict=True)):
        t, calls, history = 0.0, 0, History(Risk.HIGH)
        while True:
            calls += 1
            if t >= busy_for:  # the line is free: it rings, the person picks up
                reach[i] = t + pickup - busy_for
                break
            t += pdd_s  # 486 comes back
            wait, history = next_wait(history, t, rng)
            t += wait
        rate[i] = (calls - 1) / (busy_for / 3600)
    return Result(name, reach, rate)


def engine_policy(config: DialerConfig) -> Callable[[History, float, random.Random], tuple[float, History]]:
    policy = Policy(config, ZoneInfo("Asia/Shanghai"))
    t0 = 1_800_000_000.0

    def wait(history: History, t: float, rng: random.Random) -> tuple[float, History]:
        plan = policy.after(history, Outcome.BUSY, t0 + t, rng.random())
        if plan.state is not TaskState.WAITING or plan.next_at is None:
            raise RuntimeError(f"the policy gave up a busy line after {t:.0f} s: {plan.reason}")
        return plan.next_at - (t0 + t), plan.history

    return wait


def fixed(every_s: float) -> Callable[[History, float, random.Random], tuple[float, History]]:
    def wait(history: History, t: float, rng: random.Random) -> tuple[float, History]:
        return every_s, history

    return wait


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--victims", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--busy-pdd", type=float, default=1.0,
                        help="seconds from INVITE to 486 on a busy line")
    args = parser.parse_args()
    data = np.random.default_rng(args.seed)
    busy_s = data.uniform(60, 1800, args.victims)
    pickup_s = data.uniform(2, 8, args.victims)
    defaults = DialerConfig()
    runs = [
        simulate("engine defaults", engine_policy(defaults), busy_s, pickup_s, args.busy_pdd, args.seed),
        simulate("fixed 5-minute cadence (robots)", fixed(300), busy_s, pickup_s, args.busy_pdd,
                 args.seed),
        simulate("redialling by hand every 2 min", fixed(120), busy_s, pickup_s, args.busy_pdd,
                 args.seed),
    ]
    r = defaults.retry
    table = Table(title=f"time to reach, {args.victims:,} victims busy 1-30 min "
                        f"(defaults: busy_s {r.busy_s:g}, ×{r.busy_growth:g} to {r.busy_cap_s:g} s, "
                        f"jitter {r.jitter:g})", title_justify="left")
    for column in ("how calls are placed", "median (s)", "p95 (s)", "p99 (s)", "calls/victim/hour",
                   "vs the engine (median)"):
        table.add_column(column, justify="left" if column.startswith("how") else "right")
    base = float(np.median(runs[0].reach_s))
    for run in runs:
        median = float(np.median(run.reach_s))
        table.add_row(run.name, f"{median:.1f}", f"{np.percentile(run.reach_s, 95):.1f}",
                      f"{np.percentile(run.reach_s, 99):.1f}", f"{np.mean(run.calls_per_hour):.0f}",
                      f"×{median / base:.1f}")
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(table)
    median, p95 = float(np.median(runs[0].reach_s)), float(np.percentile(runs[0].reach_s, 95))
    console.print(f"target median < 15 s: {'met' if median < 15 else 'missed'} ({median:.1f}); "
                  f"p95 < 40 s: {'met' if p95 < 40 else 'missed'} ({p95:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
