"""The read models every reader shares: pages that stay put while tasks arrive, escalated and
still open, a task's calls and texts in the order they happened, the engine's snapshot typed."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from center import Invalid, Views, read_events
from dialer import History, Outcome, Plan, Risk, TaskState, validate
from dialer.catalog import REQUIRED_TYPES
from stores import Stores, open_stores

T0 = 1_800_000_000.0
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture()
def stores(tmp_path: Path) -> Stores:
    opened = open_stores(tmp_path)
    yield opened  # type: ignore[misc]
    opened.close()


def submit(stores: Stores, number: str, at: float, **fields: object) -> str:
    request = validate(number, known_types=REQUIRED_TYPES, **fields)  # type: ignore[arg-type]
    return stores.tasks.submit(request, at, at).task.id


def end(stores: Stores, task_id: str, n: int, outcome: Outcome, at: float,
        escalate: bool = False) -> None:
    plan = Plan(TaskState.WAITING, at + 60, True, escalate, "", History(Risk.HIGH, T0, 1, 0))
    stores.tasks.end_attempt(task_id, n, outcome, 486, "", "", at, plan)


def test_pages_stay_put_while_tasks_arrive(stores: Stores, tmp_path: Path) -> None:
    views = Views(stores, tmp_path)
    ids = [submit(stores, f"1380013{i:04d}", T0 + i) for i in range(7)]
    first = views.tasks(limit=3)
    assert [t.id for t in first.items] == ids[6:3:-1] and first.next is not None
    newer = [submit(stores, f"1390013{i:04d}", T0 + 100 + i) for i in range(4)]
    second = views.tasks(limit=3, after=first.next)
    assert [t.id for t in second.items] == ids[3:0:-1]
    third = views.tasks(limit=3, after=second.next)
    assert [t.id for t in third.items] == ids[:1] and third.next is None
    assert [t.id for t in views.tasks(limit=20).items] == newer[::-1] + ids[::-1]
    with pytest.raises(Invalid, match="not a page cursor"):
        views.tasks(after="yesterday")


def test_filters_escalated_and_open_fraud_type_risk_period(stores: Stores, tmp_path: Path) -> None:
    views = Views(stores, tmp_path)
    loan = submit(stores, "13800137490", T0, fraud_type="loan")
    other = submit(stores, "13900139002", T0 + 10, risk="normal")
    stores.tasks.claim(T0 + 20, "n", "w1", limit=2)
    end(stores, loan, 1, Outcome.BUSY, T0 + 21, escalate=True)
    end(stores, other, 1, Outcome.BUSY, T0 + 21)
    assert [t.id for t in views.tasks(escalated_open=True).items] == [loan]
    assert [t.id for t in views.tasks(fraud_type="loan").items] == [loan]
    assert [t.id for t in views.tasks(risk=Risk.NORMAL).items] == [other]
    assert [t.id for t in views.tasks(since=T0 + 5, until=T0 + 11).items] == [other]
    assert [t.id for t in views.tasks(states=[TaskState.WAITING]).items] == [other, loan]
    stores.tasks.cancel(loan, T0 + 30)
    assert views.tasks(escalated_open=True).items == []


def test_a_tasks_calls_and_texts_come_in_the_order_they_happened(stores: Stores,
                                                                  tmp_path: Path) -> None:
    task_id = submit(stores, "13800137490", T0)
    stores.tasks.claim(T0 + 1, "n", "w1")
    end(stores, task_id, 1, Outcome.BUSY, T0 + 2)
    stores.texts.queue("warning", "13800137490", "请注意", T0 + 2, task_id=task_id)
    stores.tasks.claim(T0 + 62, "n", "w1", only=task_id)
    end(stores, task_id, 2, Outcome.BUSY, T0 + 63)
    stores.texts.queue("warning", "13800137490", "请注意", T0 + 63.5, task_id=task_id)
    detail = Views(stores, tmp_path).task(task_id)
    assert [(h.kind, h.number) for h in detail.history] == [("call", 1), ("text", 1),
                                                            ("call", 2), ("text", 2)]
    record = detail.record(TZ)
    assert [h["kind"] for h in record["history"]] == ["call", "text", "call", "text"]
    assert record["task_id"] == task_id and record["number"] == "138****7490"


def test_a_task_says_who_asked_for_each_change(stores: Stores, tmp_path: Path) -> None:
    request = validate("13800137490", known_types=REQUIRED_TYPES, risk="normal")
    task_id = stores.tasks.submit(request, T0, T0, by="mqtt:case-system").task.id
    stores.tasks.claim(T0 + 1, "n", "w1")
    end(stores, task_id, 1, Outcome.BUSY, T0 + 2)  # the engine's own: no one asked
    stores.tasks.raise_risk(task_id, T0 + 3, by="cli:duty")
    stores.tasks.cancel(task_id, T0 + 4, "reached at home", by="console:wang")
    detail = Views(stores, tmp_path).task(task_id)
    assert [(c.by, c.at) for c in detail.changes] == [
        ("mqtt:case-system", T0), ("cli:duty", T0 + 3), ("console:wang", T0 + 4)]
    assert detail.changes[-1].event == "cancelled"
    assert detail.record(TZ)["changes"][0]["by"] == "mqtt:case-system"


def test_threads_and_callbacks_page_newest_first(stores: Stores, tmp_path: Path) -> None:
    views = Views(stores, tmp_path)
    assert views.threads().items == []  # no text store yet: nothing, and nothing created
    for i in range(5):
        stores.texts.receive(f"1380013{i:04d}", "你好", T0 + i, thread_s=600)
        stores.callbacks.add(f"1390013{i:04d}", T0 + i, f"/m{i}.wav", 5.0, "main")
    page = views.threads(limit=2)
    rest = views.threads(limit=10, after=page.next)
    assert [t.opened_at for t in page.items + rest.items] == [T0 + i for i in range(4, -1, -1)]
    calls = views.callbacks(limit=4)
    assert len(calls.items) == 4 and calls.next is not None
    assert [c.at for c in views.callbacks(after=calls.next).items] == [T0]


def test_the_engines_snapshot_is_read_into_typed_fields(stores: Stores, tmp_path: Path) -> None:
    now = datetime.now(TZ)
    raw = {"running": True, "pid": os.getpid(), "started_at": now.isoformat(),
           "updated_at": now.isoformat(), "calls": 2,
           "workers": [{"name": "w1", "ready": True, "calls": 2, "sip_port": 5061}],
           "trunk": {"in_use": 1, "max_channels": 30}, "lists_unreadable": {"fraud": "gone"},
           "front": {"running": True, "restarts": 1},
           "mqtt": {"url": "mqtt://x", "connected": False, "outbox": 3, "received": 4,
                    "stored": 4, "refused": 0, "published": 9, "dropped": 0,
                    "last_error": "refused"},
           "last_errors": [{"at": now.isoformat(), "level": "error", "message": "m"}]}
    (tmp_path / "status.json").write_text(json.dumps(raw))
    view = Views(stores, tmp_path).status(now.timestamp(), 2.0, TZ)
    snapshot = view.engine
    assert view.running and snapshot is not None
    assert (snapshot.workers[0].name, snapshot.trunk_in_use, snapshot.front_restarts) == (
        "w1", 1, 1)
    assert snapshot.mqtt is not None and snapshot.mqtt.outbox == 3
    assert snapshot.lists_unreadable == {"fraud": "gone"} and snapshot.last_errors[0].level == "error"
    assert view.tasks[TaskState.QUEUED] == 0 and view.texts_waiting is None
    (tmp_path / "status.json").write_text("{broken")
    assert Views(stores, tmp_path).status(now.timestamp(), 2.0, TZ).engine is None


def test_one_reader_of_the_event_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [{"at": "2026-12-01T10:00:00+08:00", "event": "screened", "call": "a"},
             {"at": "2026-12-01T11:00:00+08:00", "event": "ended", "call": "a"},
             {"at": "2026-12-02T10:00:00+08:00", "event": "screened", "call": "b"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n{}\n")
    since = datetime(2026, 12, 1, 10, 30, tzinfo=TZ).timestamp()
    assert [e["call"] for e in read_events(path, since)] == ["a", "b"]
    assert [e["event"] for e in read_events(path, kinds=("screened",))] == ["screened"] * 2
    until = datetime(2026, 12, 2, tzinfo=TZ).timestamp()
    assert read_events(path, None, until, ("screened",))[0]["call"] == "a"
    assert read_events(tmp_path / "none.jsonl") == []
