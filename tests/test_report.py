"""The center's report from a real task store and event file: figures by hand, then the
command's text, JSON and CSV."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dialerctl import cli, store_of
from enginectl import write_config

from center.report import busy_to_answer_s, figures
from dialer import Outcome, Policy, history_of, validate
from dialer.catalog import REQUIRED_TYPES
from sip_config.schema import DialerConfig
from stores import TaskStore, open_stores

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 23, 0, tzinfo=TZ).timestamp()
POLICY = Policy(DialerConfig(), tz=TZ)


def attempt(store: TaskStore, task: str, start: float, outcome: Outcome, status: int | None,
            answered: float | None = None, acked: float | None = None) -> None:
    [claim] = store.claim(start, "n1", "w1", only=task)
    n = claim.attempt.n
    if answered is not None:
        store.mark_answered(task, n, answered)
    if acked is not None:
        store.mark_reached(task, n, "acknowledged", acked)
    end = (acked or answered or start) + 2
    plan = POLICY.after(history_of(store.task(task)), outcome, end)
    store.end_attempt(task, n, outcome, status, "1" if acked else "", "", end, plan)


def campaign(store: TaskStore) -> dict[str, str]:
    def new(number: str, fraud_type: str, risk: str, at: float) -> str:
        request = validate(number, fraud_type, risk, known_types=REQUIRED_TYPES)
        return store.submit(request, at, at).task.id

    ids = {
        "a": new("13900000001", "investment", "high", T0),
        "b": new("13900000002", "investment", "normal", T0),
        "c": new("13900000003", "loan", "high", T0),
        "d": new("13900000004", "loan", "high", T0),
        "e": new("13900000005", "general", "high", T0),
    }
    attempt(store, ids["a"], T0 + 1, Outcome.BUSY, 486)  # ends T0 + 3
    attempt(store, ids["a"], T0 + 20, Outcome.ACKNOWLEDGED, 200, answered=T0 + 31, acked=T0 + 55)
    attempt(store, ids["b"], T0 + 1, Outcome.INVALID_NUMBER, 404)
    attempt(store, ids["c"], T0 + 1, Outcome.ACKNOWLEDGED, 200, answered=T0 + 8, acked=T0 + 20)
    store.cancel(ids["d"], T0 + 5, "reached by the case officer")
    new("13900000006", "investment", "high", T0 - 40 * 86_400)  # outside the period
    return ids


def test_figures_by_hand(tmp_path: Path) -> None:
    store = open_stores(tmp_path).tasks
    ids = campaign(store)
    tasks = store.created_between(T0 - 1, T0 + 1)
    attempts = store.attempts_of([t.id for t in tasks])
    assert busy_to_answer_s(attempts[ids["a"]]) == 28.0  # busy ended T0+3, answered T0+31
    assert busy_to_answer_s(attempts[ids["c"]]) is None  # never busy
    f = figures(tasks, attempts)
    assert (f.requested, f.reached, f.acknowledged, f.failed, f.cancelled, f.open, f.calls) == (
        5, 2, 2, 1, 1, 1, 4)
    assert (f.to_ack_median_s, f.to_ack_p90_s) == (37.5, 51.5)  # of 55 s and 20 s
    assert (f.busy_first, f.busy_to_answer_median_s) == (1, 28.0)
    assert f.reach_rate == 2 / 3  # of the three finished (open and cancelled left out)
    assert figures([], {}).reach_rate is None


def test_the_report_command_text_json_and_csv(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    store = store_of(config)
    campaign(store)
    store.close()
    events = config.parent / "var" / "events.jsonl"
    at = datetime.fromtimestamp(T0 + 60, TZ).isoformat()
    old = datetime.fromtimestamp(T0 - 40 * 86_400, TZ).isoformat()
    events.write_text("".join(json.dumps(r) + "\n" for r in [
        {"at": at, "event": "screened", "rule": "list:fraud", "action": "reject", "route": "reject"},
        {"at": at, "event": "screened", "rule": "list:fraud", "action": "reject", "route": "reject"},
        {"at": at, "event": "screened", "rule": "none", "action": "allow", "route": "ivr"},
        {"at": old, "event": "screened", "rule": "list:fraud", "action": "reject", "route": "reject"},
        {"at": at, "event": "dtmf", "digit": "1"},
    ]) + "not json\n")
    out = cli(config, "report", "--since", "2026-11-01", "--until", "2026-11-30", "--csv",
              str(tmp_path / "r.csv")).stdout
    assert "Warnings requested 2026-11-01 to 2026-11-30" in out
    assert "requested               5" in out
    assert "2 (66.7 % of those finished): 2 acknowledged" in out
    assert "median 38 s, 90 % within 52 s" in out
    report = json.loads(cli(config, "report", "--since", "2026-11-01", "--until", "2026-11-30",
                            "--json").stdout)
    assert report["warnings"]["requested"] == 5
    assert report["by_fraud_type"]["investment"]["requested"] == 2
    assert report["by_risk"]["high"]["reached"] == 2
    assert report["screened"] == [{"rule": "list:fraud", "action": "reject", "calls": 2},
                                  {"rule": "none", "action": "allow", "calls": 1}]
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    [total] = [r for r in rows if r["section"] == "warnings"]
    assert (total["requested"], total["reached"], total["busy_to_answer_median_s"]) == (
        "5", "2", "28.0")
    assert [(r["group"], r["calls_screened"]) for r in rows if r["section"] == "screened"] == [
        ("list:fraud reject", "2"), ("none allow", "1")]
    bad = cli(config, "report", "--since", "November", check=False)
    assert bad.returncode == 1 and "is not a date" in bad.stderr and "Traceback" not in bad.stderr
