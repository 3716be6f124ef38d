"""Warning texts beside the warning calls, end to end: ``run`` and ``warn``, SIPp victims on
the trunk that take texts as well as calls."""

from __future__ import annotations

import json
import time
from pathlib import Path

from dialerctl import cli, dialer_config, store_of, wait_tasks, warn
from enginectl import EngineProcess
from rtppcap import write_pcap
from workerproc import Sipp

from dialer import Outcome, TaskState
from stores import open_stores

NUMBER = "13800137490"


def victim(tmp_path: Path, busy_calls: int, calls: int) -> Sipp:
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    return Sipp("uas_busy_n_then_answer_with_texts.xml", tmp_path, "-key", "busy_calls",
                str(busy_calls), "-key", "dtmf_pcap", str(dtmf), "-trace_msg", calls=calls,
                timeout_s=90)


def texts_of(config: Path, task_id: str) -> list:
    store = open_stores(config.parent / "var").texts
    try:
        return store.of_task(task_id)
    finally:
        store.close()


def test_a_line_that_stays_busy_gets_spaced_texts_up_to_the_cap(tmp_path: Path) -> None:
    phone = victim(tmp_path, busy_calls=1000, calls=1000)
    config = dialer_config(tmp_path, phone.uri_host, max_attempts=50, short_prompts=False,
                           texts="{every_s: 4, max_per_task: 2}")
    engine = EngineProcess(config)
    try:
        task_id = warn(config, NUMBER, "--fraud-type", "police_impersonation")
        time.sleep(13)
        cli(config, "warn", "cancel", task_id)
        time.sleep(1)
    finally:
        engine.stop()
        phone.kill()
    store = store_of(config)
    attempts = store.attempts(task_id)
    store.close()
    assert len(attempts) >= 6 and all(a.outcome is Outcome.BUSY for a in attempts)
    texts = texts_of(config, task_id)
    assert [(m.kind, m.state, m.status) for m in texts] == [("warning", "sent", 200)] * 2
    assert texts[0].at - attempts[0].ended_at < 1.0  # right after the first busy attempt
    assert texts[1].at - texts[0].at >= 4.0
    trace = next(tmp_path.glob("uas_busy_n_then_answer_with_texts_*_messages.log")).read_text(
        encoding="utf-8", errors="replace")
    assert trace.count(f"MESSAGE sip:{NUMBER}@") == 2
    assert "安全账户" in trace and "96110" in trace and "110报警" in trace  # scam, caller id, 110
    shown = json.loads(cli(config, "task", "show", task_id, "--json").stdout)
    kinds = [h["kind"] for h in shown["history"]]
    assert kinds.count("text") == 2 and kinds.count("call") == len(attempts)
    assert shown["attempts"] == sum(a.counted for a in attempts)  # texts are not attempts


def test_no_text_after_the_person_acknowledged(tmp_path: Path) -> None:
    phone = victim(tmp_path, busy_calls=3, calls=1000)
    config = dialer_config(tmp_path, phone.uri_host, texts="{every_s: 2, max_per_task: 10}")
    engine = EngineProcess(config)
    try:
        task_id = warn(config, NUMBER)
        [task] = wait_tasks(config, [task_id], timeout=40)
        time.sleep(4)  # more than every_s: a text now would be one too many
    finally:
        engine.stop()
        phone.kill()
    assert task.state is TaskState.ACKNOWLEDGED
    texts = texts_of(config, task_id)
    assert 1 <= len(texts) <= 3
    assert all(m.at <= task.reached_at for m in texts)
