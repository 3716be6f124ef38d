"""Several engine nodes on one PostgreSQL (Debian's, started by the test as the postgres user),
against SIPp phones on the trunk: a campaign shared by three nodes with one of them killed
with SIGKILL in the middle and started again, the database stopped for 10 s under a
campaign, one node speaking for all on the MQTT bus and another taking over when it dies."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from brokerctl import Broker, Watcher, mqtt_section
from dialerctl import cli, dialer_config
from enginectl import EngineProcess, engine_port, hours, read_events, write_config
from pgctl import PASSWORD, Postgres, available, postgres
from rtppcap import write_pcap
from sipptrace import calls_of, max_concurrent, overlaps
from test_dialer_crash import answering_phones
from workerproc import Sipp

from dialer import Outcome, TaskState
from stores import Stores, open_stores

pytestmark = pytest.mark.xdist_group("heavy")  # several engines at once: one at a time

ENV = "AFC_TEST_DB_PASSWORD"
LEASE_S = 4.0
REQUEST = "antifraud/warning/request"
EVENT = "antifraud/warning/event"
STATUS = "antifraud/engine/status"
RETRIES = ("{busy_s: 1, busy_growth: 1.0, busy_cap_s: 1, rang_out_s: 1, no_answer_s: 1, "
           "unacknowledged_s: 2, trunk_s: 1, trunk_cap_s: 2, jitter: 0.2}")


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    missing = available()
    if missing:
        pytest.fail(f"{missing}: tools/test.sh installs it")
    with postgres() as pg:
        yield pg


@pytest.fixture()
def database(server: Postgres, request: pytest.FixtureRequest,
             monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, PASSWORD)
    return server.fresh_database(f"cluster_{request.node.name[:40].lower()}")


def node_config(directory: Path, name: str, url: str, trunk: str, *, workers: int = 2,
                max_channels: int = 10, max_cps: float = 20) -> Path:
    config = dialer_config(directory, trunk, workers=workers, max_channels=max_channels,
                           max_cps=max_cps, max_attempts=50, retries=RETRIES)
    text = config.read_text().replace(
        "engine:\n", f"engine:\n  store: {url}\n  store_password_env: {ENV}\n"
                     f"  node: {name}\n  lease_s: {LEASE_S}\n", 1)
    config.write_text(text)
    return config


def shared(url: str) -> Stores:
    return open_stores(Path("/nonexistent"), url=url, password=PASSWORD, node="test")


def wait_all(stores: Stores, timeout: float, done: object = None) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        tasks = stores.tasks.tasks()
        if all(not t.state.open for t in tasks):
            return tasks
        if time.monotonic() > deadline:
            counts = Counter(t.state.value for t in tasks)
            raise AssertionError(f"not finished in {timeout} s: {dict(counts)}")
        time.sleep(0.5)


def test_three_nodes_share_a_campaign_and_one_killed_loses_nothing(tmp_path: Path,
                                                                   database: str) -> None:
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    phones = Sipp("uas_random_busy_then_dtmf.xml", tmp_path, "-key", "busy_percent", "50",
                  "-key", "dtmf_pcap", str(dtmf), "-trace_msg", calls=100_000, timeout_s=600)
    configs = [node_config(tmp_path / f"n{i}", f"n{i}", database, phones.uri_host)
               for i in (1, 2, 3)]
    requests = tmp_path / "campaign.csv"
    numbers = [f"1390{5000 + i:07d}" for i in range(200)]
    requests.write_text("number,fraud_type\n" + "".join(f"{n},investment\n" for n in numbers))
    cli(configs[0], "warn", "--file", str(requests))  # into the shared store, before any node
    stores = shared(database)
    nodes: list[EngineProcess] = []
    try:
        nodes = [EngineProcess(c) for c in configs]
        # the middle of the campaign: node 2 has calls up; kill it and its engine only
        deadline = time.monotonic() + 60
        while not [a for t in stores.tasks.tasks([TaskState.CALLING])
                   for a in stores.tasks.attempts(t.id) if a.ended_at is None and
                   a.worker.startswith("w") and _node_of(stores, t.id, a.n) == "n2"]:
            assert time.monotonic() < deadline, "node 2 never had a call up"
            time.sleep(0.1)
        killed_at = time.time()
        os.kill(nodes[1].proc.pid, signal.SIGKILL)
        nodes[1].proc.wait(5)
        held = [(t.id, a.n) for t in stores.tasks.tasks() for a in stores.tasks.attempts(t.id)
                if a.ended_at is None and _node_of(stores, t.id, a.n) == "n2"]
        time.sleep(LEASE_S + 3)
        nodes[1] = EngineProcess(configs[1])  # it comes back and joins again
        tasks = wait_all(stores, 420)
    finally:
        for node in nodes:
            node.stop()
        phones.kill()
    calls = calls_of(next(tmp_path.glob("uas_random_busy_then_dtmf_*_messages.log")))
    assert [t.state for t in tasks] == [TaskState.ACKNOWLEDGED] * 200
    assert overlaps(calls) == []  # no number ever rang twice at once, as the phones saw it
    assert max_concurrent(calls) <= 10  # the trunk's channels, all nodes together
    by_number = Counter(c.number for c in calls)
    attempts = stores.tasks.attempts_of([t.id for t in tasks])
    for task in tasks:
        made = attempts[task.id]
        assert len(made) == by_number[task.dial], (task, made)  # every INVITE an attempt
        assert task.attempts == sum(a.counted for a in made)
        assert sum(a.outcome is Outcome.ACKNOWLEDGED for a in made) == 1
    interrupted = {(a.task_id, a.n) for made in attempts.values() for a in made
                   if a.outcome is Outcome.INTERRUPTED}
    assert set(held) <= interrupted and held, (held, interrupted)
    for task_id, n in held:  # called again by the others within the lease and 2 s
        again = next(a for a in attempts[task_id] if a.n == n + 1)
        assert again.started_at - killed_at < LEASE_S + 2 + 1.5, (task_id, again, killed_at)
    who = Counter(_node_of(stores, a.task_id, a.n) for made in attempts.values() for a in made)
    assert set(who) == {"n1", "n2", "n3"}, who
    stores.close()


def _node_of(stores: Stores, task_id: str, n: int) -> str:
    for event in stores.tasks.events(task_id):
        if event.event == "attempt" and event.attempt == n:
            return str(event.detail.get("node", ""))
    return ""


def test_the_database_stopped_for_ten_seconds_mid_campaign(tmp_path: Path, server: Postgres,
                                                           database: str) -> None:
    """Calls in progress finish; what they learned is written when the database is back;
    ``warn`` is refused meanwhile; MQTT requests sent meanwhile are acknowledged only once
    stored, and every one becomes a task; nothing needs a restart."""
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    phones = Sipp("uas_random_busy_then_dtmf.xml", tmp_path, "-key", "busy_percent", "50",
                  "-key", "dtmf_pcap", str(dtmf), "-trace_msg", calls=100_000, timeout_s=300)
    broker = Broker(tmp_path)
    watcher = Watcher(broker.port, client_id="test-watcher", clean=False)
    configs = []
    for i in (1, 2):
        config = node_config(tmp_path / f"n{i}", f"n{i}", database, phones.uri_host, workers=1)
        config.write_text(config.read_text() + mqtt_section(broker.url, "  reconnect_max_s: 2\n"))
        configs.append(config)
    requests = tmp_path / "campaign.csv"
    numbers = [f"1391{6000 + i:07d}" for i in range(30)]
    requests.write_text("number,fraud_type\n" + "".join(f"{n},investment\n" for n in numbers))
    cli(configs[0], "warn", "--file", str(requests))
    nodes: list[EngineProcess] = []
    try:
        nodes = [EngineProcess(c) for c in configs]
        time.sleep(4)  # calls up on both
        server.stop("fast")
        refused = cli(configs[0], "warn", "13800138000", check=False)
        for i in range(5):  # requests while the database is away
            watcher.publish(REQUEST, {"number": f"1393{8000 + i:07d}", "fraud_type": "loan",
                                      "task_id": f"away-{i}"})
        time.sleep(10)
        server.start()
        stores = shared(database)
        deadline = time.monotonic() + 60
        while len(stores.tasks.tasks()) < 35:
            assert time.monotonic() < deadline, "the requests sent while it was away are lost"
            time.sleep(0.2)
        tasks = wait_all(stores, 240)
    finally:
        for node in nodes:
            node.stop()
        phones.kill()
        watcher.close()
        broker.stop()
    assert refused.returncode != 0 and "database" in refused.stderr, refused.stderr
    assert len(tasks) == 35 and {t.state for t in tasks} == {TaskState.ACKNOWLEDGED}
    assert sorted(t.id for t in tasks if t.id.startswith("away-")) == [
        f"away-{i}" for i in range(5)]
    assert all(n.proc.returncode == 0 for n in nodes)  # no restart needed
    calls = calls_of(next(tmp_path.glob("uas_random_busy_then_dtmf_*_messages.log")))
    assert overlaps(calls) == []
    for config in configs:
        log = (config.parent / "engine.log").read_text()
        assert log.count("the store is unreachable") == 1, log[-3000:]
        assert "the store answers again" in log
    assert not [e for c in configs for e in read_events(c) if e.get("event") == "flow_failed"]
    stores.close()


def test_one_node_speaks_for_the_cluster_on_mqtt_and_another_takes_over(
        tmp_path: Path, database: str) -> None:
    broker = Broker(tmp_path)
    watcher = Watcher(broker.port, client_id="test-watcher", clean=False)
    phones = answering_phones(tmp_path, calls=10, timeout_s=120)
    configs = []
    for i in (1, 2):
        config = node_config(tmp_path / f"n{i}", f"n{i}", database, phones.uri_host, workers=1)
        config.write_text(config.read_text() + mqtt_section(broker.url, "  reconnect_max_s: 2\n"))
        configs.append(config)
    nodes: list[EngineProcess] = []
    try:
        since = time.monotonic()
        nodes = [EngineProcess(c) for c in configs]
        watcher.wait(STATUS, lambda s: any(x.at >= since and x.json["state"] == "up" for x in s))
        for i in range(6):
            watcher.publish(REQUEST, {"number": f"1392{7000 + i:07d}", "fraud_type": "loan",
                                      "task_id": f"mq-{i}"})
        watcher.wait(EVENT, lambda s: sum(x.json["event"] == "completed" for x in s) == 6, 60)
        holder = next(i for i, c in enumerate(configs)
                      if "speaks for the cluster" in (c.parent / "engine.log").read_text())
        time.sleep(1.0)  # everything published and marked sent
        os.kill(nodes[holder].proc.pid, signal.SIGKILL)
        nodes[holder].proc.wait(5)
        killed = time.monotonic()
        watcher.wait(STATUS, lambda s: any(x.at >= killed and x.json["state"] == "up"
                                           for x in s), LEASE_S * 3)
        for i in range(6, 10):
            watcher.publish(REQUEST, {"number": f"1392{7000 + i:07d}", "fraud_type": "loan",
                                      "task_id": f"mq-{i}"})
        seen = watcher.wait(EVENT, lambda s: sum(x.json["event"] == "completed"
                                                 for x in s) == 10, 60)
    finally:
        for node in nodes:
            node.stop()
        phones.kill()
        watcher.close()
        broker.stop()
    other = configs[1 - holder]
    assert "speaks for the cluster" in (other.parent / "engine.log").read_text()
    events = [s.json for s in seen]
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))  # each event once for the whole cluster
    by_task: dict[str, list[int]] = {}
    for e in events:
        by_task.setdefault(e["task_id"], []).append(e["id"])
    assert sorted(by_task) == [f"mq-{i}" for i in range(10)]
    for task_id, order in by_task.items():
        assert order == sorted(order), (task_id, order)  # in order per task
        names = [e["event"] for e in events if e["task_id"] == task_id]
        assert names[0] == "queued" and names[-1] == "completed", names


def test_a_list_edit_on_one_node_blocks_a_call_on_another_within_a_second(
        tmp_path: Path, database: str) -> None:
    configs = [node_config(tmp_path / f"n{i}", f"n{i}", database, "127.0.0.1:5070", workers=1)
               for i in (1, 2, 3)]
    nodes: list[EngineProcess] = []
    try:
        nodes = [EngineProcess(c) for c in configs]
        time.sleep(1.0)  # every node has caught up with the journal and listens
        edited = cli(configs[0], "blocklist", "add", "13900005555")
        done_at = time.time()
        assert "added" in edited.stdout + edited.stderr, edited
        caller = Sipp("uac_invite_expect_603.xml", tmp_path, "-s", "961108", "-key",
                      "extra_header", "X-Test: cluster", "-key", "caller", "13900005555",
                      remote=f"127.0.0.1:{nodes[2].port}")
        assert caller.wait() == 0, caller.report() + nodes[2].log_text()
        screened = [e for e in read_events(configs[2]) if e.get("event") == "screened"]
        assert screened and screened[-1]["action"] == "reject" and screened[-1]["status"] == 603
        assert screened[-1]["rule"] == "list:fraud"
        applied = [line for line in (configs[2].parent / "engine.log").read_text().splitlines()
                   if "changes from the cluster applied" in line]
        assert applied, nodes[2].log_text()
        # the change reached node 3 within a second of the command's commit
        stamp = time.mktime(time.strptime(applied[-1][:19], "%Y-%m-%d %H:%M:%S")) + \
            int(applied[-1][20:23]) / 1000
        assert stamp - done_at < 1.0
        # and node 2's own copy has it (what its command line reads)
        assert cli(configs[1], "screen", "13900005555").stdout.startswith("reject")
        # node 1's report counts the call node 3 screened (the cluster's, not its own)
        deadline = time.monotonic() + 10
        while True:
            report = json.loads(cli(configs[0], "report", "--json").stdout)
            if {"rule": "list:fraud", "action": "reject", "calls": 1} in report["screened"]:
                break
            assert time.monotonic() < deadline, report["screened"]
            time.sleep(0.5)
    finally:
        for node in nodes:
            node.stop()


def test_the_front_spreads_calls_over_every_nodes_workers_and_skips_a_dead_node(
        tmp_path: Path, database: str) -> None:
    exempt = "flood_exempt: [127.0.0.1/32]"
    configs = []
    for i in (1, 2):
        config = write_config(tmp_path / f"n{i}", workers=1, operator_hours=hours(False),
                              balancer="{" + exempt + "}")
        config.write_text(config.read_text().replace(
            "engine:\n", f"engine:\n  store: {database}\n  store_password_env: {ENV}\n"
                         f"  node: n{i}\n  lease_s: {LEASE_S}\n", 1))
        configs.append(config)
    ports = [engine_port(c) for c in configs]
    for i, config in enumerate(configs):  # each node lists the other
        other = 1 - i
        config.write_text(config.read_text().replace(
            "{" + exempt + "}", "{" + exempt + f", nodes: [{{name: n{other + 1}, host: "
            f"127.0.0.1, port: {ports[other]}, workers: 1}}]}}"))
    cli(configs[0], "kamailio-config")
    dispatchers = (configs[0].parent / "var" / "kamailio" / "dispatcher.list").read_text()
    assert f"sip:127.0.0.1:{ports[1] + 1} 8 0 duid=n2-w1" in dispatchers, dispatchers
    nodes: list[EngineProcess] = []
    try:
        nodes = [EngineProcess(c) for c in configs]
        time.sleep(1.0)
        callers = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                       "-l", "8", "-r", "8", "-d", "1000", remote=f"127.0.0.1:{ports[0]}",
                       calls=8, timeout_s=30)
        assert callers.wait() == 0, callers.report() + nodes[0].log_text()
        answered = [sum(e["event"] == "screened" for e in read_events(c)) for c in configs]
        assert answered[0] > 0 and answered[1] > 0 and sum(answered) == 8, answered
        os.kill(nodes[1].proc.pid, signal.SIGKILL)  # its workers and front follow it
        nodes[1].proc.wait(5)
        time.sleep(2.0)
        callers = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                       "-l", "2", "-r", "2", "-d", "500", remote=f"127.0.0.1:{ports[0]}",
                       calls=6, timeout_s=40)
        assert callers.wait() == 0, callers.report() + nodes[0].log_text()
        assert sum(e["event"] == "screened" for e in read_events(configs[0])) == answered[0] + 6
    finally:
        for node in nodes:
            node.stop()


def test_the_store_health_is_said_once_each_way(caplog: pytest.LogCaptureFixture) -> None:
    """A part of the engine still holding the error of a moment ago, just after the store
    answered again, is not a second outage."""
    from engine.membership import StoreHealth
    from stores import StoreUnavailable

    health = StoreHealth()
    with caplog.at_level("WARNING", logger="engine.cluster"):
        health.failed(StoreUnavailable("the database went away"))
        health.failed(StoreUnavailable("the database went away"))
        health.answered()
        health.failed(StoreUnavailable("cannot be reached (a second ago)"))
        health.answered()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "unreachable" in said[0] and "answers again" in said[1]
    assert health.up
