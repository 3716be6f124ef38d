"""Every change through the one way in: each operation asked from the command line and from
MQTT (a real Mosquitto, the engine as ``run`` starts it) gives the same stored result and the
same events, with who asked recorded; ``warning/cancel`` and ``hotline/callback_done`` end to
end, and what they refuse answered on ``error``."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from brokerctl import Broker, Watcher
from dialerctl import cli, store_of, wait_tasks
from test_bus_broker import bus_config, start_engine

from dialer import TaskState
from stores import open_stores

PREFIX = "antifraud/"
ME = f"cli:{getpass.getuser()}"
SENDER = "case-platform"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    yield broker
    broker.stop()


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Watcher]:
    watcher = Watcher(broker.port, client_id="test-center", clean=False)
    yield watcher
    watcher.close()


def quiet_config(tmp_path: Path, broker: Broker) -> Path:
    """Normal-risk tasks wait out quiet hours that last all day: nothing is dialled, every
    change is the operators'."""
    config = bus_config(tmp_path, broker)
    config.write_text(config.read_text().replace("  repeats: 2\n",
                                                 '  repeats: 2\n  quiet_hours: "00:00-23:59"\n'))
    return config


def events_of(config: Path, task_id: str) -> list[Any]:
    store = store_of(config)
    try:
        return store.events(task_id)
    finally:
        store.close()


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_each_change_from_the_command_line_and_from_mqtt_is_the_same(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    config = quiet_config(tmp_path, broker)
    data = config.parent / "var"
    engine = start_engine(config, watcher)
    try:
        # a warning request
        by_cli = cli(config, "warn", "13900011111", "--risk", "normal", "--case-id", "C-1",
                     "--fraud-type", "loan").stdout.strip()
        watcher.publish(PREFIX + "warning/request", {"number": "13900022222", "risk": "normal",
                                                     "case_id": "C-1", "fraud_type": "loan",
                                                     "by": SENDER})
        [by_mqtt] = until(lambda: [t.id for t in store_of(config).tasks()
                                   if t.number.endswith("13900022222")])
        tasks = wait_tasks(config, [by_cli, by_mqtt], done=lambda t: t.state is TaskState.QUEUED)
        assert {(t.risk, t.fraud_type, t.case_ids, t.state) for t in tasks} == {
            (tasks[0].risk, "loan", ("C-1",), TaskState.QUEUED)}
        queued = [events_of(config, t)[0] for t in (by_cli, by_mqtt)]
        assert [e.event for e in queued] == ["queued", "queued"]
        assert [e.detail["by"] for e in queued] == [ME, f"mqtt:{SENDER}"]
        assert queued[0].detail["risk"] == queued[1].detail["risk"] == "normal"

        # call again now, and cancel: the command line; cancel: MQTT
        cli(config, "warn", "cancel", by_cli, "--reason", "reached at home")
        watcher.publish(PREFIX + "warning/cancel", {"task_id": by_mqtt,
                                                    "reason": "reached at home", "by": SENDER})
        cancelled = wait_tasks(config, [by_cli, by_mqtt])
        assert [(t.state, t.reason) for t in cancelled] == [
            (TaskState.CANCELLED, "reached at home")] * 2
        last = [events_of(config, t)[-1] for t in (by_cli, by_mqtt)]
        assert [(e.event, e.detail["reason"], e.detail["by"]) for e in last] == [
            ("cancelled", "reached at home", ME), ("cancelled", "reached at home", f"mqtt:{SENDER}")]
        out = watcher.wait(PREFIX + "warning/event",
                           lambda s: sum(x.json["event"] == "cancelled" for x in s) == 2, 10)
        assert {x.json["task_id"] for x in out if x.json["event"] == "cancelled"} == {
            by_cli, by_mqtt}

        # a reply to a text, and a callback message answered
        stores = open_stores(data)
        threads = [stores.texts.receive(n, "有人让我转账", time.time(), thread_s=600)[0].thread_id
                   for n in ("13800011111", "13800022222")]
        calls = [stores.callbacks.add(n, time.time(), "/m.wav", 5.0, "main>message").id
                 for n in ("13800011111", "13800022222")]
        cli(config, "sms", "reply", threads[0] or "", "请不要转账")
        watcher.publish(PREFIX + "sms/reply", {"id": threads[1], "text": "请不要转账",
                                               "by": SENDER})
        cli(config, "callbacks", "done", calls[0], "--note", "called back")
        watcher.publish(PREFIX + "hotline/callback_done", {"id": calls[1], "note": "called back",
                                                          "by": SENDER})
        until(lambda: all(stores.texts.thread(t or "").state == "replied" for t in threads)
              and all(stores.callbacks.get(c).state == "done" for c in calls))
        replies = [[m for m in stores.texts.of_thread(t or "") if m.kind == "reply"]
                   for t in threads]
        assert [[m.body for m in r] for r in replies] == [["请不要转账"], ["请不要转账"]]
        done = [stores.callbacks.get(c) for c in calls]
        assert [(c.state, c.note, c.done_by) for c in done] == [
            ("done", "called back", ME), ("done", "called back", f"mqtt:{SENDER}")]
        assert stores.texts.db.execute(  # type: ignore[attr-defined]
            "SELECT by FROM messages WHERE kind = 'reply' ORDER BY id").fetchall() == [
            (ME,), (f"mqtt:{SENDER}",)]

        # a list edited
        cli(config, "blocklist", "add", "17000000001")
        watcher.publish(PREFIX + "blocklist/update", {"op": "add", "numbers": ["17000000002"],
                                                      "by": SENDER})
        watcher.wait(PREFIX + "blocklist/result", lambda s: bool(s), 10)
        decisions = [json.loads(cli(config, "screen", n, "--json").stdout)
                     for n in ("17000000001", "17000000002")]
        assert [(d["action"], d["rule"]) for d in decisions] == [("reject", "list:fraud")] * 2
        stores.close()
    finally:
        engine.stop()


def test_what_the_center_refuses_is_answered_on_error(tmp_path: Path, broker: Broker,
                                                      watcher: Watcher) -> None:
    config = quiet_config(tmp_path, broker)
    engine = start_engine(config, watcher)
    try:
        task = cli(config, "warn", "13900011111", "--risk", "normal").stdout.strip()
        callback = open_stores(config.parent / "var").callbacks.add(
            "13800011111", time.time(), "/m.wav", 5.0, "main").id
        cli(config, "callbacks", "done", callback)
        cli(config, "warn", "cancel", task)
        for topic, payload in [
            ("warning/cancel", {"task_id": task}),  # already cancelled
            ("warning/cancel", {"task_id": "t-none"}),
            ("warning/cancel", {"reason": "x"}),
            ("warning/cancel", {"task_id": 7}),
            ("hotline/callback_done", {"id": callback}),  # already answered
            ("hotline/callback_done", {"id": "m-none", "note": "x"}),
            ("hotline/callback_done", {"id": "m1", "by": 3}),
            ("sms/reply", {"id": "s-none", "text": "回答"}),
            ("sms/reply", {"id": "s-none", "text": "  "}),
        ]:
            watcher.publish(PREFIX + topic, payload)
        errors = watcher.wait(PREFIX + "error", lambda s: len(s) >= 9, 15)
    finally:
        engine.stop()
    said = [e.json["error"] for e in errors]
    assert said[0] == f"task {task} is already cancelled; nothing to cancel"
    assert said[1] == "there is no task t-none"
    assert said[2] == "a cancel needs task_id, the task's id"
    assert said[3] == "task_id must be a string, not a number"
    assert said[4] == f"message {callback} was already marked answered"
    assert said[5] == "there is no message m-none"
    assert said[6] == "by must be a string naming the sender, not a number"
    assert said[7] == "there is no thread s-none (see `sms list`)"
    assert "empty" in said[8]
    assert [e.json["topic"] for e in errors][:2] == [PREFIX + "warning/cancel"] * 2
