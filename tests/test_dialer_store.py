"""The task store on a real SQLite file: accepted means on disk, crashes lose nothing.
(What every backend must do is ``tests/test_store_contract.py``; this is SQLite's own.)"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dialer import Outcome, Policy, Risk, TaskState, history_of, validate
from dialer.catalog import REQUIRED_TYPES
from sip_config.schema import DialerConfig
from stores import StoreError
from stores.sqlite import SqliteTaskStore
from stores.sqlite.tasks import MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)

T0 = 1_800_000_000.0
POLICY = Policy(DialerConfig(), tz=__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))


def request(number: str = "13800137490", **fields: object):  # type: ignore[no-untyped-def]
    return validate(number, known_types=REQUIRED_TYPES, **fields)


@pytest.fixture()
def path(tmp_path: Path) -> Path:
    return tmp_path / "tasks.sqlite"


def test_an_accepted_request_is_seen_by_another_process(path: Path) -> None:
    store = SqliteTaskStore(path)
    task = store.submit(request(case_id="C-1"), T0, T0).task
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r}); "
            f"from stores.sqlite import SqliteTaskStore; "
            f"s = SqliteTaskStore(__import__('pathlib').Path({str(path)!r})); "
            f"t = s.task({task.id!r}); print(t.state.value, t.case_ids[0], t.number)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         check=True).stdout.split()
    assert out == ["queued", "C-1", "8613800137490"]


def test_a_commit_by_another_connection_is_noticed(path: Path) -> None:
    engine_side = SqliteTaskStore(path)
    assert not engine_side.watch.changed()
    SqliteTaskStore(path).submit(request(), T0, T0)
    assert engine_side.watch.changed()
    assert not engine_side.watch.changed()
    engine_side.submit(request("13900001111"), T0, T0)  # its own commits are news at once
    assert engine_side.watch.changed()
    assert not engine_side.watch.changed()


def test_an_attempt_in_flight_at_a_crash_is_interrupted_and_the_task_due_again(path: Path) -> None:
    store = SqliteTaskStore(path)
    task = store.submit(request(), T0, T0).task
    store.claim(T0 + 1, "n1", "w1")
    store.db.close()  # as kill -9 leaves it: no end recorded

    again = SqliteTaskStore(path)
    [interrupted] = again.recover("n1", T0 + 30)
    assert (interrupted.n, interrupted.outcome, interrupted.counted) == (1, Outcome.INTERRUPTED, False)
    task = again.task(task.id)
    assert task.state is TaskState.WAITING and task.next_at == T0 + 30
    assert task.tries == 1 and task.attempts == 0  # not counted against the person
    [second] = again.claim(T0 + 31, "n1", "w1", limit=10)
    assert (second.task.id, second.attempt.n) == (task.id, 2)


def test_end_of_attempt_applies_the_plan_with_its_events(path: Path) -> None:
    store = SqliteTaskStore(path)
    task = store.submit(request(case_id="K-9"), T0, T0).task
    for n in (1, 2, 3):
        store.claim(T0 + n, "n1", "w1")
        current = store.task(task.id)
        plan = POLICY.after(history_of(current), Outcome.BUSY, T0 + n)
        store.end_attempt(task.id, n, Outcome.BUSY, 486, "", "", T0 + n, plan)
        store.db.execute("UPDATE tasks SET next_at = ? WHERE id = ?", (T0, task.id))
    task = store.task(task.id)
    assert (task.attempts, task.busy_run, task.state) == (3, 3, TaskState.WAITING)
    assert task.escalated_at == T0 + 3
    [escalated] = [e for e in store.events(task.id) if e.event == "escalated"]
    assert escalated.detail["case_ids"] == ["K-9"] and escalated.attempt == 3


def test_one_open_task_per_number_is_enforced_by_the_file_itself(path: Path) -> None:
    store = SqliteTaskStore(path)
    task = store.submit(request(), T0, T0).task
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("INSERT INTO tasks (id, number, dial, fraud_type, risk, state, created_at, "
                         "updated_at) VALUES ('x', ?, 'd', 'general', 'high', 'queued', 0, 0)",
                         (task.number,))
    store.cancel(task.id, T0 + 1)
    assert not store.submit(request(), T0 + 2, T0 + 2).merged  # a closed task does not merge


def test_merge_keeps_cases_and_the_higher_risk(path: Path) -> None:
    store = SqliteTaskStore(path)
    first = store.submit(request(risk="normal", case_id="A"), T0, T0 + 36000).task
    merged = store.submit(request(risk="high", case_id="B", note="called from a bank"), T0 + 5, T0 + 5)
    assert merged.merged and merged.task.id == first.id
    assert merged.task.risk is Risk.HIGH and merged.task.case_ids == ("A", "B")
    assert merged.task.next_at == T0 + 5  # no longer waiting for the morning
    assert "merged into task" in merged.sentence()


def test_a_repeated_request_id_is_not_a_second_task(path: Path) -> None:
    store = SqliteTaskStore(path)
    first = store.submit(request(request_id="case-platform-77"), T0, T0)
    assert first.task.id == "case-platform-77"  # the requester's id names the task
    store.cancel(first.task.id, T0 + 1)
    again = store.submit(request(request_id="case-platform-77"), T0 + 2, T0 + 2)
    assert again.duplicate and again.task.state is TaskState.CANCELLED
    assert len(store.tasks()) == 1


def test_cancel_of_a_finished_task_says_so(path: Path) -> None:
    store = SqliteTaskStore(path)
    task = store.submit(request(), T0, T0).task
    store.cancel(task.id, T0)
    with pytest.raises(StoreError, match="already cancelled"):
        store.cancel(task.id, T0)
    with pytest.raises(StoreError, match="there is no task nope"):
        store.task("nope")


def test_schema_version_and_migration(path: Path) -> None:
    SqliteTaskStore(path).db.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this program"):
        SqliteTaskStore(path)


def test_a_file_that_is_not_a_store_is_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        SqliteTaskStore(bad)


def test_due_orders_high_risk_then_oldest(path: Path) -> None:
    store = SqliteTaskStore(path)
    a = store.submit(request("13900001001", risk="normal"), T0, T0).task
    b = store.submit(request("13900001002", risk="normal"), T0 + 1, T0 + 1).task
    c = store.submit(request("13900001003", risk="high"), T0 + 2, T0 + 2).task
    store.submit(request("13900001004", risk="high"), T0 + 3, T0 + 900)  # not due yet
    assert store.next_due_at() == T0
    assert [claim.task.id for claim in store.claim(T0 + 10, "n1", "w1", 10)] == [c.id, a.id, b.id]
