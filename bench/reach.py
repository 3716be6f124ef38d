"""Time to reach a person who is on the phone with a scammer: the retry policy in simulated time.

    python bench/reach.py [--victims 10000] [--seed 7]

Each victim's line is busy (on the scammer's call) for a random 1-30 minutes from the moment
the warning request arrives; once it is free, the person picks up 2-8 s after the phone starts
ringing. The figure is the time from the line becoming free to the warning call being
answered, with the calls placed per victim per hour while the line was busy and the
channel-seconds a call to the busy line held the trunk.

How the network answers a call to a busy line (the carrier models):

- ``486 at once``: 486 Busy Here after 1 s (the tests' SIPp phones; few real carriers);
- ``183 + spoken busy announcement, 480 after 30 s``: what Chinese carriers do: early media
  says 您拨打的电话正在通话中, the final response is a 480 that names no reason, 30 s on;
- ``183 + the busy tone, 486 after 10 s``: the national busy tone as early media;
- ``call waiting``: the INVITE rings (180) as a waiting call the person does not switch to; it
  rings until the ring timeout, or is picked up 2-8 s after the scammer's call ends.

Each model is run with the engine's policy (``dialer.Policy``, the defaults of
``sip_config.schema.DialerConfig``, jitter included) as the engine places the calls: with the
early-media listener (the verdict comes after the 183 and the time ``bench/progress.py``
measures for it; the call is cancelled then) and without it (only the final response counts:
what an engine without it, or a dialer without one, does); and, for reference, the public
warning robots' fixed 5-minute cadence and an officer redialling by hand every 2 minutes.

Targets (issue 15): with the listener, median < 15 s and p95 < 40 s on every model.
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

PDD_S = 1.0  # INVITE → the network's first answer (a 183, a 486)
HEARD_S = (1.2, 2.5)  # the 183 → the listener's verdict (bench/progress.py: p50 1.8, p95 2.1 s)
PICKUP_S = (2.0, 8.0)

Wait = Callable[[History, Outcome, float, float, random.Random], tuple[float | None, History]]
"""How long to wait before the next call (None: the task failed, the person is never reached)."""


@dataclass(frozen=True)
class Carrier:
    name: str
    busy_final_s: float | None  # the final response to a call on a busy line, after the INVITE
    busy_outcome: Outcome  # what that final response means
    early: bool  # early media says busy (an announcement or the tone) after the 183
    waiting: bool = False  # call waiting: the call rings on the busy line


CARRIERS = [
    Carrier("486 at once", PDD_S, Outcome.BUSY, early=False),
    Carrier("183 + spoken busy announcement, 480 after 30 s", 30.0, Outcome.NO_ANSWER, early=True),
    Carrier("183 + the busy tone, 486 after 10 s", 10.0, Outcome.BUSY, early=True),
    Carrier("call waiting (rings until the ring timeout)", None, Outcome.RANG_OUT, early=False,
            waiting=True),
]


@dataclass
class Result:
    name: str
    reach_s: np.ndarray  # line free → answered, per victim
    calls_per_hour: np.ndarray  # calls placed while the line was busy, per busy hour
    busy_channel_s: float  # mean seconds a call to the busy line held a channel


def simulate(name: str, carrier: Carrier, listening: bool, wait: Wait, ring_timeout_s: float,
             busy_s: np.ndarray, seed: int) -> Result:
    rng = random.Random(seed)
    reach = np.empty(len(busy_s))
    rate = np.empty(len(busy_s))
    held: list[float] = []
    for i, busy_for in enumerate(busy_s):
        t, calls, history = 0.0, 0, History(Risk.HIGH)
        while True:
            calls += 1
            pickup = rng.uniform(*PICKUP_S)
            if t >= busy_for:  # the line is free: it rings, the person picks up
                reach[i] = t + PDD_S + pickup - busy_for
                break
            if carrier.waiting:  # rings as a waiting call until it times out or the line frees
                rings_until = t + PDD_S + ring_timeout_s
                if busy_for + pickup < rings_until:
                    reach[i] = pickup
                    break
                hold, outcome = PDD_S + ring_timeout_s, Outcome.RANG_OUT
            elif listening and carrier.early:
                hold, outcome = PDD_S + rng.uniform(*HEARD_S), Outcome.BUSY
            else:
                hold, outcome = carrier.busy_final_s or PDD_S, carrier.busy_outcome
            held.append(hold)
            started, t = t, t + hold
            pause, history = wait(history, outcome, t, started, rng)
            if pause is None:
                reach[i] = np.inf
                break
            t += pause
        rate[i] = (calls - 1) / (busy_for / 3600)
    return Result(name, reach, rate, float(np.mean(held)) if held else 0.0)


def engine_policy(config: DialerConfig) -> Wait:
    policy = Policy(config, ZoneInfo("Asia/Shanghai"))
    t0 = 1_800_000_000.0

    def wait(history: History, outcome: Outcome, t: float, started: float, rng: random.Random
             ) -> tuple[float | None, History]:
        plan = policy.after(history, outcome, t0 + t, rng.random(), started_at=t0 + started)
        if plan.state is not TaskState.WAITING or plan.next_at is None:
            return None, plan.history  # failed: no acknowledgement after max_attempts
        return plan.next_at - (t0 + t), plan.history

    return wait


def fixed(every_s: float) -> Wait:
    def wait(history: History, outcome: Outcome, t: float, started: float, rng: random.Random
             ) -> tuple[float | None, History]:
        return every_s, history

    return wait


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--victims", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = np.random.default_rng(args.seed)
    busy_s = data.uniform(60, 1800, args.victims)
    defaults = DialerConfig()
    engine = engine_policy(defaults)
    ring = defaults.ring_timeout_s
    console = Console(width=None if sys.stdout.isatty() else 170)
    r = defaults.retry
    table = Table(title=f"time to reach, {args.victims:,} victims busy 1-30 min (defaults: busy_s "
                        f"{r.busy_s:g}, ×{r.busy_growth:g} to {r.busy_cap_s:g} s, rang_out_s "
                        f"{r.rang_out_s:g}, ring_timeout_s {ring:g}, jitter {r.jitter:g})",
                  title_justify="left")
    for column in ("carrier", "how calls are placed", "reached", "median (s)", "p95 (s)",
                   "p99 (s)", "calls/victim/hour", "channel-s per busy call", "target"):
        table.add_column(column, justify="left" if column in ("carrier", "how calls are placed")
                         else "right")
    verdicts = []
    for carrier in CARRIERS:
        runs = [("the engine", True, engine)]
        if carrier.early:
            runs.append(("the engine without listening", False, engine))
        if carrier is CARRIERS[0]:
            runs += [("fixed 5-minute cadence (robots)", False, fixed(300)),
                     ("redialling by hand every 2 min", False, fixed(120))]
        for how, listening, wait in runs:
            result = simulate(how, carrier, listening, wait, ring, busy_s, args.seed)
            reached = np.isfinite(result.reach_s)
            median = float(np.median(result.reach_s))  # the unreached count as never
            p95 = float(np.percentile(result.reach_s, 95, method="higher"))
            target = ""
            if how == "the engine":
                met = median < 15 and p95 < 40
                verdicts.append(met)
                target = "met" if met else "missed"
            table.add_row(carrier.name if how == runs[0][0] else "", how,
                          f"{reached.mean():.1%}", _s(median), _s(p95),
                          _s(float(np.percentile(result.reach_s, 99, method="higher"))),
                          f"{np.mean(result.calls_per_hour):.0f}", f"{result.busy_channel_s:.1f}",
                          target)
        table.add_section()
    console.print(table)
    console.print(f"targets median < 15 s and p95 < 40 s with the engine on every carrier model: "
                  f"{'met' if all(verdicts) else 'missed'}")
    return 0


def _s(seconds: float) -> str:
    return f"{seconds:.1f}" if np.isfinite(seconds) else "never"


if __name__ == "__main__":
    sys.exit(main())
