"""The dialer under faults and load, against SIPp phones: the engine killed with SIGKILL in the
middle of a campaign, a worker killed mid-call, the trunk's limits, calls spread over workers."""

from __future__ import annotations

import itertools
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

from dialerctl import cli, dialer_config, store_of, wait_tasks, warn
from enginectl import EngineProcess
from rtppcap import write_pcap
from sipptrace import calls_of, max_concurrent, overlaps
from workerproc import Sipp

from dialer import Outcome, TaskState


def answering_phones(tmp_path: Path, calls: int = 1000, timeout_s: int = 120) -> Sipp:
    """Phones that answer and press 1 two seconds later, every one of them."""
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    return Sipp("uas_busy_n_then_answer_dtmf.xml", tmp_path, "-key", "busy_calls", "0",
                "-key", "dtmf_pcap", str(dtmf), "-trace_msg", calls=calls, timeout_s=timeout_s)


def trace_of(tmp_path: Path) -> Path:
    [trace] = tmp_path.glob("uas_busy_n_then_answer_dtmf_*_messages.log")
    return trace


def test_kill_9_mid_campaign_then_restart(tmp_path: Path) -> None:
    phones = answering_phones(tmp_path)
    config = dialer_config(tmp_path, phones.uri_host, workers=2, max_channels=6)
    numbers = [f"1390000{1000 + i}" for i in range(20)]
    requests = tmp_path / "campaign.csv"
    requests.write_text("number,fraud_type,case_id\n" + "".join(
        f"{n},investment,C-{i}\n" for i, n in enumerate(numbers)))
    assert cli(config, "warn", "--file", str(requests)).returncode == 0
    engine = EngineProcess(config)
    store = store_of(config)
    try:
        deadline = time.monotonic() + 30
        while sum(not t.state.open for t in store.tasks()) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # calls in flight now, in every state
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        engine.stop()
        in_flight = [t.id for t in store.tasks() if t.state is TaskState.CALLING]
        engine = EngineProcess(config)
        ids = [t.id for t in store.tasks()]
        tasks = wait_tasks(config, ids, timeout=120)
    finally:
        engine.stop()
        phones.kill()
    assert len(tasks) == 20 and all(t.state is TaskState.ACKNOWLEDGED for t in tasks), tasks
    assert in_flight, "the kill came when no call was in flight"
    calls = calls_of(trace_of(tmp_path))
    assert not overlaps(calls), overlaps(calls)
    invites = Counter(c.number for c in calls)
    for task in tasks:
        history = store.attempts(task.id)
        interrupted = sum(a.outcome is Outcome.INTERRUPTED for a in history)
        assert invites[task.dial] <= task.tries <= invites[task.dial] + interrupted, (task, history)
        assert task.attempts == 0  # an interrupted call is not the person's doing
    assert {t for t in in_flight} <= {t.id for t in tasks
                                      if any(a.outcome is Outcome.INTERRUPTED
                                             for a in store.attempts(t.id))}
    store.close()


def test_a_worker_killed_mid_call_is_lost_and_retried(tmp_path: Path) -> None:
    phones = answering_phones(tmp_path, calls=2, timeout_s=60)
    config = dialer_config(tmp_path, phones.uri_host)
    engine = EngineProcess(config)
    try:
        task_id = warn(config, "13800137490")
        wait_tasks(config, [task_id], done=lambda t: t.state is TaskState.CALLING, timeout=20)
        store = store_of(config)
        deadline = time.monotonic() + 20
        while store.attempts(task_id)[0].answered_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(re.findall(r"worker w1 ready on SIP port \d+ \(pid (\d+)\)", engine.log_text())[-1])
        os.kill(pid, signal.SIGKILL)
        [task] = wait_tasks(config, [task_id], timeout=60)
    finally:
        engine.stop()
        phones.kill()
    history = store.attempts(task_id)
    assert [a.outcome for a in history] == [Outcome.LOST, Outcome.ACKNOWLEDGED]
    assert task.state is TaskState.ACKNOWLEDGED and task.attempts == 0
    store.close()


def test_trunk_channels_and_calls_per_second(tmp_path: Path) -> None:
    phones = answering_phones(tmp_path, calls=5, timeout_s=60)
    config = dialer_config(tmp_path, phones.uri_host, workers=2, max_channels=2, max_cps=4)
    engine = EngineProcess(config)
    try:
        ids = [warn(config, f"1390000{2000 + i}") for i in range(5)]
        tasks = wait_tasks(config, ids, timeout=90)
        assert phones.wait() == 0, phones.report()
    finally:
        engine.stop()
        phones.kill()
    assert all(t.state is TaskState.ACKNOWLEDGED for t in tasks)
    calls = calls_of(trace_of(tmp_path))
    assert len(calls) == 5 and max_concurrent(calls) == 2
    starts = [c.start for c in calls]
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.24  # 4 a second at most


def test_twelve_calls_at_once_across_three_workers(tmp_path: Path) -> None:
    phones = answering_phones(tmp_path, calls=12, timeout_s=60)
    config = dialer_config(tmp_path, phones.uri_host, workers=3, max_channels=12)
    requests = tmp_path / "twelve.csv"
    requests.write_text("".join(f"1390000{3000 + i}\n" for i in range(12)))
    cli(config, "warn", "--file", str(requests))  # all due at once when the engine starts
    engine = EngineProcess(config)
    try:
        store = store_of(config)
        ids = [t.id for t in store.tasks()]
        store.close()
        tasks = wait_tasks(config, ids, timeout=90)
        assert phones.wait() == 0, phones.report()
    finally:
        engine.stop()
        phones.kill()
    assert all(t.state is TaskState.ACKNOWLEDGED and t.tries == 1 for t in tasks)
    store = store_of(config)
    spread = Counter(store.attempts(t)[0].worker for t in ids)
    store.close()
    assert sorted(spread.values()) == [4, 4, 4]
    assert max_concurrent(calls_of(trace_of(tmp_path))) == 12


def test_a_second_engine_on_the_same_data_is_refused(tmp_path: Path) -> None:
    config = dialer_config(tmp_path, "127.0.0.1:5999")
    engine = EngineProcess(config)
    try:
        second = cli(config, "run", check=False)
    finally:
        engine.stop()
    assert second.returncode == 1
    assert f"another engine (pid {engine.proc.pid}) is running on" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
