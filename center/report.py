"""The center's figures for a period: warnings requested, reached, acknowledged, escalated,
failed, how fast, by fraud type and by risk; screened calls by rule; the hotline's calls.

Pure: tasks, their attempts and the screening records in, a :class:`Report`
out; ``run_dialer.py report`` (:func:`commands.ops.report_command`) reads the stores
and prints or writes CSV.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from dialer import Attempt, Outcome, Task, TaskState

__all__ = ["Figures", "Report", "build_report", "figures", "text_figures", "to_csv"]


@dataclass(frozen=True)
class Figures:
    """One group of warning tasks (all of them, one fraud type, one risk)."""

    requested: int = 0
    reached: int = 0  # acknowledged or talked to the duty officer
    acknowledged: int = 0
    transferred: int = 0
    escalated: int = 0
    failed: int = 0
    cancelled: int = 0
    open: int = 0
    calls: int = 0  # attempts placed
    busy_first: int = 0  # tasks whose line was busy at some attempt before the answer
    to_ack_median_s: float | None = None  # request → acknowledgement (or the officer)
    to_ack_p90_s: float | None = None
    busy_to_answer_median_s: float | None = None  # the first busy → the call answered
    busy_to_answer_p90_s: float | None = None

    @property
    def reach_rate(self) -> float | None:
        closed = self.requested - self.open - self.cancelled
        return None if closed <= 0 else self.reached / closed


def _quantiles(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    median, p90 = np.percentile(np.asarray(values, dtype=float), [50, 90])
    return round(float(median), 1), round(float(p90), 1)


def busy_to_answer_s(attempts: Sequence[Attempt]) -> float | None:
    """From the end of the first busy attempt to the answer of the first call after it."""
    busy_at = None
    for attempt in attempts:
        if busy_at is None and attempt.outcome is Outcome.BUSY and attempt.ended_at is not None:
            busy_at = attempt.ended_at
        elif busy_at is not None and attempt.answered_at is not None:
            return attempt.answered_at - busy_at
    return None


def figures(tasks: Sequence[Task], attempts: Mapping[str, Sequence[Attempt]]) -> Figures:
    states = Counter(t.state for t in tasks)
    to_ack = [t.time_to_reach_s for t in tasks if t.time_to_reach_s is not None]
    busy = [b for t in tasks if (b := busy_to_answer_s(attempts.get(t.id, ()))) is not None]
    ack_median, ack_p90 = _quantiles(to_ack)
    busy_median, busy_p90 = _quantiles(busy)
    return Figures(
        requested=len(tasks),
        reached=states[TaskState.ACKNOWLEDGED] + states[TaskState.TRANSFERRED],
        acknowledged=states[TaskState.ACKNOWLEDGED], transferred=states[TaskState.TRANSFERRED],
        escalated=sum(t.escalated_at is not None for t in tasks), failed=states[TaskState.FAILED],
        cancelled=states[TaskState.CANCELLED], open=sum(states[s] for s in TaskState if s.open),
        calls=sum(len(attempts.get(t.id, ())) for t in tasks), busy_first=len(busy),
        to_ack_median_s=ack_median, to_ack_p90_s=ack_p90,
        busy_to_answer_median_s=busy_median, busy_to_answer_p90_s=busy_p90)


@dataclass(frozen=True)
class Report:
    since: float
    until: float
    total: Figures
    by_type: dict[str, Figures]
    by_risk: dict[str, Figures]
    screened: dict[tuple[str, str], int]  # (rule, action) → calls
    routes: dict[str, int] = field(default_factory=dict)  # inbound calls by route
    messages_left: int = 0
    texts: dict[str, Any] = field(default_factory=dict)  # the SMS line and warning texts


def text_figures(threads: Sequence[Any], sent: Sequence[Any], until: float) -> dict[str, Any]:
    """The SMS line's figures: texts, threads, how fast operators replied, and warning texts.
    ``threads``: :class:`texts.Thread` opened in the period; ``sent``: the period's
    outgoing :class:`texts.Message` rows."""
    waits = [t.waited_s(until) for t in threads if t.replied_at is not None]
    median, p90 = _quantiles(waits)
    warnings = [m for m in sent if m.kind == "warning"]
    return {
        "texts_received": sum(len(t.texts) for t in threads), "threads": len(threads),
        "replied": len(waits), "waiting": sum(t.state == "waiting" for t in threads),
        "blocked": sum(t.state == "blocked" for t in threads),
        "reply_median_s": median, "reply_p90_s": p90,
        "auto_replies": sum(m.kind == "auto_reply" for m in sent),
        "warning_texts": len(warnings),
        "warning_texts_delivered": sum(m.state == "sent" for m in warnings),
        "warning_texts_refused": sum(m.state == "failed" for m in warnings),
    }


def build_report(since: float, until: float, tasks: Sequence[Task],
                 attempts: Mapping[str, Sequence[Attempt]], screened: Iterable[Mapping[str, Any]],
                 messages_left: int = 0, texts: dict[str, Any] | None = None) -> Report:
    """``screened``: the engine's ``screened`` records of the period."""
    by_type: dict[str, list[Task]] = {}
    by_risk: dict[str, list[Task]] = {}
    for task in tasks:
        by_type.setdefault(task.fraud_type, []).append(task)
        by_risk.setdefault(task.risk.value, []).append(task)
    rules: Counter[tuple[str, str]] = Counter()
    routes: Counter[str] = Counter()
    for record in screened:
        rules[(str(record.get("rule", "")), str(record.get("action", "")))] += 1
        routes[str(record.get("route", ""))] += 1
    return Report(
        since, until, figures(tasks, attempts),
        {k: figures(v, attempts) for k, v in sorted(by_type.items(), key=lambda kv: -len(kv[1]))},
        {k: figures(v, attempts) for k, v in sorted(by_risk.items())},
        dict(rules.most_common()), dict(routes.most_common()), messages_left, texts or {})


def to_csv(report: Report) -> str:
    """One row per group: ``section,group,<every figure>`` (warnings), then
    ``screened,<rule>,…,calls`` and ``route,<route>,…,calls`` rows."""
    names = [f.name for f in fields(Figures)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "group", *names, "reach_rate", "calls_screened"])

    def row(section: str, group: str, fig: Figures) -> None:
        rate = fig.reach_rate
        writer.writerow([section, group, *("" if getattr(fig, n) is None else getattr(fig, n)
                                           for n in names),
                         "" if rate is None else round(rate, 4), ""])

    row("warnings", "all", report.total)
    for name, fig in report.by_type.items():
        row("fraud_type", name, fig)
    for name, fig in report.by_risk.items():
        row("risk", name, fig)
    blank = [""] * (len(names) + 1)
    for (rule, action), calls in report.screened.items():
        writer.writerow(["screened", f"{rule} {action}", *blank, calls])
    for route, calls in report.routes.items():
        writer.writerow(["route", route, *blank, calls])
    for name, value in report.texts.items():
        writer.writerow(["texts", name, *blank, "" if value is None else value])
    return out.getvalue()
