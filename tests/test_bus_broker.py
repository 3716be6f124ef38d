"""The MQTT bus against a real Mosquitto on loopback: requests in, events out in order, bad
messages answered, the broker and the engine going down, list updates, status, passwords."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from brokerctl import Broker, Seen, Watcher, free_tcp_port, make_ca, mqtt_section
from dialerctl import cli, dialer_config, store_of, wait_tasks
from enginectl import EngineProcess
from rtppcap import write_pcap
from test_dialer_crash import answering_phones
from textpeer import TextPeer
from workerproc import Sipp

from dialer import TaskState
from stores import open_stores

REQUEST = "antifraud/warning/request"
UPDATE = "antifraud/blocklist/update"
EVENT = "antifraud/warning/event"
ERROR = "antifraud/error"
STATUS = "antifraud/engine/status"
SMS_EVENT = "antifraud/sms/event"
SMS_REPLY = "antifraud/sms/reply"


def bus_config(tmp_path: Path, broker: Broker, trunk: str = "127.0.0.1:5070", *,
               mqtt_extra: str = "  reconnect_max_s: 2\n", **kwargs: object) -> Path:
    config = dialer_config(tmp_path, trunk, **kwargs)  # type: ignore[arg-type]
    config.write_text(config.read_text() + mqtt_section(broker.url, mqtt_extra))
    return config


def wait_up(watcher: Watcher, since: float, timeout: float = 20.0) -> Seen:
    """The engine's ``up`` status published after ``since`` (time.monotonic())."""
    seen = watcher.wait(STATUS, lambda s: any(x.at >= since and x.json["state"] == "up"
                                              for x in s), timeout)
    return next(x for x in seen if x.at >= since and x.json["state"] == "up")


def start_engine(config: Path, watcher: Watcher) -> EngineProcess:
    since = time.monotonic()
    engine = EngineProcess(config)
    try:
        wait_up(watcher, since)
    except BaseException:
        engine.stop()
        raise
    return engine


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    yield broker
    broker.stop()


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Watcher]:
    watcher = Watcher(broker.port, client_id="test-watcher", clean=False)
    yield watcher
    watcher.close()


def events_by_task(seen: list[Seen]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in seen:
        out.setdefault(s.json["task_id"], []).append(s.json)
    return out


def test_a_request_in_gives_the_event_stream_out_through_acknowledged(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    phones = answering_phones(tmp_path, calls=1, timeout_s=60)
    config = bus_config(tmp_path, broker, phones.uri_host)
    port = free_tcp_port()
    config.write_text(config.read_text().replace("  log_level: info\n",
                                                 f"  log_level: info\n  metrics_port: {port}\n"))
    engine = start_engine(config, watcher)
    try:
        watcher.publish(REQUEST, {"number": "13900011234", "fraud_type": "investment",
                                  "risk": "high", "case_id": "C-2026-1", "task_id": "case-1"})
        seen = watcher.wait(EVENT, lambda s: any(x.json["event"] == "completed" for x in s), 40)
        time.sleep(2.5)  # one round of the status file and the gauges
        status = cli(config, "status").stdout
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    finally:
        engine.stop()
        phones.kill()
    assert "engine      running" in status and "1 of 1 ready" in status, status
    assert "mqtt        connected" in status and "1 requests taken" in status, status
    assert "0 due now" in status and "1 acknowledged" in status, status
    stopped = cli(config, "status", check=False)
    assert stopped.returncode == 3 and "NOT RUNNING" in stopped.stdout
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in metrics.decode().splitlines() if line and not line.startswith("#")}
    assert samples['antifraud_calls_total{outcome="acknowledged",route="warning"}'] == 1
    assert samples["antifraud_warning_attempts_total"] == 1
    assert samples["antifraud_time_to_acknowledgement_seconds_count"] == 1
    assert samples['antifraud_time_to_acknowledgement_seconds_bucket{le="30.0"}'] == 1
    assert samples['antifraud_tasks{state="acknowledged"}'] == 1
    assert samples["antifraud_workers_alive"] == 1 and samples["antifraud_mqtt_connected"] == 1
    assert samples["antifraud_mqtt_outbox_depth"] == 0
    events = [s.json for s in seen]
    names = [e["event"] for e in events]
    assert names == ["queued", "attempt", "answered", "acknowledged", "attempt_ended",
                     "completed"], names
    assert all(e["task_id"] == "case-1" and e["number"] == "139****1234" for e in events)
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})
    assert events[3]["outcome"] == "acknowledged" and events[1]["attempt"] == 1
    assert "13900011234" not in "".join(s.payload.decode() for s in watcher.seen
                                        if s.topic != REQUEST)
    tasks = [json.loads(line) for line in cli(config, "tasks", "--json").stdout.splitlines()]
    assert [(t["task_id"], t["state"], t["case_ids"]) for t in tasks] == [
        ("case-1", "acknowledged", ["C-2026-1"])]


MALFORMED: list[tuple[str, bytes, str]] = [
    (REQUEST, b'{"number": "13900011234",', "not valid JSON"),
    (REQUEST, b'["13900011234"]', "must be a JSON object"),
    (REQUEST, b'{"number": 13900011234}', "number must be a string"),
    (REQUEST, b'{"number": "13900011234", "fraud_type": "lottery"}', "not a fraud type"),
    (REQUEST, b'{"number": "13900011234", "risk": "urgent"}', "risk must be high or normal"),
    (REQUEST, b'{"number": "12345"}', "short service number"),
    (REQUEST, json.dumps({"number": "13900011234", "note": "x" * (1 << 20)}).encode(),
     "more than the"),
    (REQUEST, b"\xff\xfe\x00", "not UTF-8"),
    (UPDATE, b'{"op": "drop", "numbers": ["13900001111"]}', 'op must be "add" or "remove"'),
    (UPDATE, b'{"op": "add", "numbers": ["13900001111"], "list": "nosuch"}', "no list named"),
    (UPDATE, b'{"op": "add", "numbers": "13900001111"}', "non-empty list"),
    (REQUEST, b'{"number": "13900011234", "note": "\\ud800"}', "not valid Unicode"),
]


def test_malformed_messages_get_one_error_each_and_change_nothing(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    config = bus_config(tmp_path, broker)
    engine = start_engine(config, watcher)
    try:
        for topic, payload, _ in MALFORMED:
            watcher.publish(topic, payload)
        errors = watcher.wait(ERROR, lambda s: len(s) >= len(MALFORMED))
        time.sleep(0.5)
        assert engine.proc.poll() is None
        store = store_of(config)
        assert store.tasks() == []
        assert cli(config, "screen", "13900001111").stdout.startswith("reject")  # as it was
        watcher.publish(REQUEST, {"number": "13900011234"})  # and the engine goes on
        watcher.wait(EVENT, lambda s: any(x.json["event"] == "queued" for x in s))
        store.close()
    finally:
        engine.stop()
    assert len(watcher.on(ERROR)) == len(MALFORMED)
    for error, (topic, _, says) in zip(errors, MALFORMED, strict=True):
        assert error.json["topic"] == topic and says in error.json["error"], error.json
        assert "\n" not in error.json["error"]


def test_the_broker_down_for_10_s_mid_campaign_loses_no_event_and_no_request(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    phones = Sipp("uas_busy_n_then_answer_dtmf.xml", tmp_path, "-key", "busy_calls", "8",
                  "-key", "dtmf_pcap", str(dtmf), calls=100, timeout_s=120)
    config = bus_config(tmp_path, broker, phones.uri_host, max_channels=4)
    engine = start_engine(config, watcher)
    numbers = [f"1390002{1000 + i}" for i in range(8)]
    try:
        for i, number in enumerate(numbers):
            watcher.publish(REQUEST, {"number": number, "task_id": f"camp-{i}"})
        watcher.wait(EVENT, lambda s: sum(x.json["event"] == "attempt_ended" for x in s) >= 3)
        broker.stop()
        stopped = time.monotonic()
        time.sleep(10)
        broker.start()
        wait_tasks(config, [f"camp-{i}" for i in range(8)], timeout=90)
        store = store_of(config)
        stored = [e for t in range(8) for e in store.events(f"camp-{t}")]
        watcher.wait(EVENT, lambda s: {x.json["id"] for x in s} >= {e.seq for e in stored}, 30)
        # requests while the engine is down wait in its persistent session on the broker
        engine.stop()
        late = [f"1390003{1000 + i}" for i in range(20)]
        for i, number in enumerate(late):
            watcher.publish(REQUEST, {"number": number, "task_id": f"late-{i}"})
        engine = start_engine(config, watcher)
        deadline = time.monotonic() + 20
        while len([t for t in store.tasks() if t.id.startswith("late-")]) < 20:
            assert time.monotonic() < deadline, [t.id for t in store.tasks()]
            time.sleep(0.1)
        store.close()
    finally:
        engine.stop()
        phones.kill()
    seen = watcher.on(EVENT)
    assert any(s.at > stopped + 10 for s in seen)  # some came out of the outbox afterwards
    got = events_by_task([s for s in seen if s.json["task_id"].startswith("camp-")])
    for task in range(8):
        want = [e.seq for e in stored if e.task_id == f"camp-{task}"]
        ids = [e["id"] for e in got[f"camp-{task}"]]
        firsts = list(dict.fromkeys(ids))  # at least once: a repeat may follow a reconnect
        assert firsts == want, (task, ids, want)
        assert got[f"camp-{task}"][-1]["event"] == "completed"


def test_a_kill_9_between_receipt_and_storage_means_redelivery_and_one_task(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    config = bus_config(tmp_path, broker)
    engine = start_engine(config, watcher)
    tasks = config.parent / "var" / "tasks.sqlite"
    lock = sqlite3.connect(tasks, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # the engine's next write waits here...
        watcher.publish(REQUEST, {"number": "13900011234", "task_id": "kill-1"})
        deadline = time.monotonic() + 10
        while "Sending PUBLISH to engine-under-test" not in broker.log():
            assert time.monotonic() < deadline, broker.log()
            time.sleep(0.05)
        time.sleep(0.5)  # ...with the message in hand, not acknowledged
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        engine.stop()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    store = store_of(config)
    assert store.tasks() == []
    engine = start_engine(config, watcher)
    try:
        deadline = time.monotonic() + 10
        while not store.tasks():
            assert time.monotonic() < deadline, engine.log_text()
            time.sleep(0.05)
        engine.stop()
        engine = start_engine(config, watcher)  # acknowledged this time: not sent again
        time.sleep(1.0)
    finally:
        engine.stop()
    assert [t.id for t in store.tasks()] == ["kill-1"]
    assert [e.event for e in store.events("kill-1")][:1] == ["queued"]
    assert "merged" not in [e.event for e in store.events("kill-1")]
    store.close()


def test_a_list_update_blocks_the_next_call_on_a_worker_that_did_not_see_it(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    config = bus_config(tmp_path, broker, workers=2)
    engine = start_engine(config, watcher)
    try:
        watcher.publish(UPDATE, {"op": "add", "numbers": ["13900005555", "+8613900006666",
                                                          "not-a-number"], "id": "upd-1"})
        [result] = watcher.wait("antifraud/blocklist/result", lambda s: len(s) == 1)
        assert result.json["id"] == "upd-1" and result.json["applied"] == 2
        assert result.json["refused"] == [{"entry": "not-a-number", "reason": "not a phone number"}]
        caller = Sipp("uac_invite_expect_603.xml", tmp_path, "-s", "961108", "-key",
                      "extra_header", "X-Test: bus", "-key", "caller", "13900005555",
                      remote=f"127.0.0.1:{engine.port + 1}")  # the second worker
        assert caller.wait() == 0, caller.report() + engine.log_text()
        assert cli(config, "screen", "13900006666").stdout.startswith("reject")  # other processes
        watcher.publish(UPDATE, {"op": "remove", "numbers": ["13900006666"]})
        watcher.wait("antifraud/blocklist/result", lambda s: len(s) == 2)
        assert cli(config, "screen", "13900006666").stdout.startswith("allow")
        screened = watcher.wait("antifraud/screening/event", lambda s: len(s) >= 1)
    finally:
        engine.stop()
    event = screened[0].json
    assert (event["action"], event["status"], event["rule"], event["number"], event["worker"]) == (
        "reject", 603, "list:fraud", "139****5555", "w2")


def test_the_retained_status_turns_down_when_the_engine_is_killed(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    config = bus_config(tmp_path, broker, workers=2)
    engine = start_engine(config, watcher)
    try:
        late = Watcher(broker.port, (STATUS,))  # subscribes after the fact: gets the retained one
        [status] = late.wait(STATUS, lambda s: len(s) >= 1)[:1]
        assert status.retain and status.json["state"] == "up"
        assert (status.json["workers_alive"], status.json["workers"], status.json["calls"],
                status.json["tasks_due"]) == (2, 2, 0, 0)
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        down = late.wait(STATUS, lambda s: s[-1].json["state"] == "down", 10)[-1]
        assert down.json == {"state": "down", "reason": "lost"}
        late.close()
        again = Watcher(broker.port, (STATUS,))
        assert again.wait(STATUS, lambda s: len(s) >= 1)[0].json["state"] == "down"  # retained
        again.close()
    finally:
        engine.stop()


def test_a_clean_stop_says_down_stopped(tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    config = bus_config(tmp_path, broker)
    engine = start_engine(config, watcher)
    engine.stop()
    last = watcher.wait(STATUS, lambda s: s[-1].json["state"] == "down")[-1]
    assert last.json["reason"] == "stopped"


def test_a_wrong_password_is_said_clearly_and_retried_with_backoff(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = Broker(tmp_path, users={"engine": "right-horse-battery"})
    config = bus_config(tmp_path, broker, mqtt_extra="  username: engine\n"
                        "  password_env: TEST_MQTT_PASSWORD\n  reconnect_max_s: 2\n")
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "wrong")
    engine = EngineProcess(config)
    try:
        time.sleep(6)
        assert engine.proc.poll() is None
        warned = cli(config, "warn", "13900011234")  # the engine dials without its broker
        assert warned.returncode == 0
        log = engine.log_text()
    finally:
        engine.stop()
    refused = [line for line in log.splitlines() if "refused the connection" in line]
    assert len(refused) == 1, log  # said once, not at every retry
    assert "Not authorized" in refused[0] and "TEST_MQTT_PASSWORD" in refused[0]
    assert "wrong" not in log and "Traceback" not in log
    assert broker.log().count("not authorised") >= 3, broker.log()  # 0.5 s, 1 s, 2 s, 2 s...
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "right-horse-battery")
    watcher = Watcher(broker.port, username="engine", password="right-horse-battery")
    engine = start_engine(config, watcher)
    engine.stop()
    watcher.close()
    broker.stop()


def test_no_broker_at_all_is_said_once_and_the_engine_dials(tmp_path: Path) -> None:
    class Absent:
        url = f"mqtt://127.0.0.1:{free_tcp_port()}"

    config = bus_config(tmp_path, Absent())  # type: ignore[arg-type]
    engine = EngineProcess(config)
    try:
        time.sleep(4)
        task = cli(config, "warn", "13900011234").stdout.strip()
        wait_tasks(config, [task], done=lambda t: t.state is not TaskState.QUEUED, timeout=10)
        log = engine.log_text()
    finally:
        engine.stop()
    waiting = [line for line in log.splitlines() if "waiting for the MQTT broker" in line]
    assert len(waiting) == 1 and "warning calls go on" in waiting[0], log
    outbox = open_stores(config.parent / "var").outbox
    assert outbox.depth() >= 2  # queued and attempt wait for a broker
    outbox.close()


def test_a_blocked_call_to_a_person_becomes_a_warning_for_that_person(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    config = bus_config(tmp_path, broker)
    config.write_text(config.read_text().replace(
        "screening:\n", "screening:\n  warn_callee_on_block: true\n"))
    engine = start_engine(config, watcher)
    try:
        for callee in ("13800138000", "13800138000", "961108"):  # twice: one warning; the hotline
            caller = Sipp("uac_invite_expect_603.xml", tmp_path, "-s", callee, "-key",
                          "extra_header", "X-Test: bus", "-key", "caller", "13900001111",
                          remote=engine.target)
            assert caller.wait() == 0, caller.report() + engine.log_text()
        [queued] = watcher.wait(EVENT, lambda s: any(x.json["event"] == "queued" for x in s))[:1]
        time.sleep(0.5)
    finally:
        engine.stop()
    store = store_of(config)
    [task] = store.tasks()
    assert (task.dial, task.risk.value, task.fraud_type) == ("13800138000", "high", "general")
    assert [(e.event, e.detail.get("source")) for e in store.events(task.id)][:1] == [
        ("queued", "screening")]
    assert "139****1111" in task.note and "13900001111" not in task.note
    assert queued.json["number"] == "138****8000" and queued.json["task_id"] == task.id
    store.close()


def test_tls_with_the_centers_ca_and_a_clear_error_with_another(tmp_path: Path) -> None:
    broker = Broker(tmp_path, tls=True)
    watcher = Watcher(broker.port)  # the plain listener of the same broker
    try:
        config = bus_config(tmp_path, broker, mqtt_extra=f"  ca_file: {broker.ca_file}\n"
                                                         "  reconnect_max_s: 2\n")
        config.write_text(config.read_text().replace(broker.url,
                                                     f"mqtts://127.0.0.1:{broker.tls_port}"))
        assert cli(config, "check-config").returncode == 0
        engine = start_engine(config, watcher)  # "up" arrived: over TLS, the CA checked
        engine.stop()
        _, other = make_ca(tmp_path, "other-ca")
        config.write_text(config.read_text().replace(str(broker.ca_file), str(other)))
        engine = EngineProcess(config)
        time.sleep(3)
        log = engine.log_text()
        engine.stop()
    finally:
        watcher.close()
        broker.stop()
    [waiting] = [line for line in log.splitlines() if "waiting for the MQTT broker" in line]
    assert "certificate verify failed" in waiting, waiting


def test_texts_on_the_bus_events_out_and_operators_replies_in(
        tmp_path: Path, broker: Broker, watcher: Watcher) -> None:
    gateway = TextPeer()
    config = bus_config(tmp_path, broker, f"127.0.0.1:{gateway.port}")
    config.write_text(config.read_text() + 'sms:\n  number: "121100130"\n')
    engine = start_engine(config, watcher)
    try:
        assert gateway.send(("127.0.0.1", engine.port), "121100130", "13812347490",
                            "网上认识的人让我投资虚拟币") == 200
        gateway.next_text()  # the automatic reply
        seen = watcher.wait(SMS_EVENT, lambda s: len(s) >= 2)
        thread = seen[0].json["thread"]
        for _ in range(2):  # the case platform sends it twice: one text
            watcher.publish(SMS_REPLY, {"id": thread, "text": "这是网络交友诈骗，请不要投资。",
                                        "reply_id": "case-7-reply-1"})
        watcher.publish(SMS_REPLY, {"id": "s00000000", "text": "x"})
        answer = gateway.next_text()
        assert gateway.quiet(1.0) == []
        seen = watcher.wait(SMS_EVENT, lambda s: len(s) >= 3)
        errors = watcher.wait(ERROR, lambda s: len(s) >= 1)
    finally:
        engine.stop()
        gateway.close()
    assert answer.text == "这是网络交友诈骗，请不要投资。"
    events = [s.json for s in seen]
    assert [e["event"] for e in events] == ["received", "auto_replied", "replied"]
    assert all(e["number"] == "138****7490" and e["thread"] == thread for e in events)
    assert events[0]["fraud_type"] == "investment" and events[1]["status"] == 200
    assert "no thread s00000000" in errors[0].json["error"]
    assert errors[0].json["topic"] == SMS_REPLY


def test_full_numbers_only_for_a_trusted_broker(tmp_path: Path, broker: Broker,
                                                watcher: Watcher) -> None:
    config = bus_config(tmp_path, broker, mqtt_extra="  reconnect_max_s: 2\n  full_numbers: true\n")
    engine = start_engine(config, watcher)
    try:
        watcher.publish(REQUEST, {"number": "13900011234", "task_id": "full-1"})
        [queued] = watcher.wait(EVENT, lambda s: any(x.json["event"] == "queued" for x in s))[:1]
    finally:
        engine.stop()
    assert queued.json["number"] == "13900011234"
    assert "13900011234" not in (tmp_path / "engine.log").read_text()  # people's log stays masked
