"""The warning dialer end to end: ``run_dialer.py run`` and ``warn`` as operators use them,
SIPp as the victims' phones behind the trunk."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import pytest
from dialerctl import attempts_of, cli, dialer_config, wait_tasks, warn
from enginectl import EngineProcess, read_events
from rtppcap import to_ulaw, write_pcap
from workerproc import Sipp, make_speech

from dialer import Outcome, Task, TaskState

NUMBER = "13800137490"


@pytest.fixture()
def dtmf_1(tmp_path: Path) -> Path:
    return write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))


def warned(config: Path, phone: Sipp, *warn_args: str, done: Any = None,
           timeout: float = 60) -> tuple[Task, str]:
    """The engine runs, one warning is requested, until the task is done and the phone's
    scenario has passed; then everything stops."""
    engine = EngineProcess(config)
    try:
        task_id = warn(config, NUMBER, *warn_args)
        [task] = wait_tasks(config, [task_id], done=done, timeout=timeout)
        assert phone.wait() == 0, phone.report() + engine.log_text()
        return task, task_id
    finally:
        phone.kill()
        engine.stop()


def test_busy_twice_then_rfc2833_ack_after_exactly_three_attempts(tmp_path: Path, dtmf_1: Path) -> None:
    phone = Sipp("uas_busy_n_then_answer_dtmf.xml", tmp_path, "-key", "busy_calls", "2",
                 "-key", "dtmf_pcap", str(dtmf_1), calls=3, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host)
    task, task_id = warned(config, phone, "--fraud-type", "police_impersonation", "--case-id", "FZ-1")
    assert task.state is TaskState.ACKNOWLEDGED, task
    history = attempts_of(config, task_id)
    assert [a.outcome for a in history] == [Outcome.BUSY, Outcome.BUSY, Outcome.ACKNOWLEDGED]
    assert [a.status for a in history][:2] == [486, 486]
    assert history[2].digits == "1" and history[2].answered_at is not None
    kinds = [e["task_event"] for e in read_events(config) if e["event"] == "task"]
    assert kinds[0] == "queued" and kinds[-1] == "completed" and kinds.count("attempt") == 3
    assert NUMBER not in (config.parent / "engine.log").read_text()  # masked


def test_busy_twice_then_sip_info_ack(tmp_path: Path) -> None:
    phone = Sipp("uas_busy_n_then_answer_info.xml", tmp_path, "-key", "busy_calls", "2",
                 calls=3, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host)
    task, task_id = warned(config, phone)
    assert task.state is TaskState.ACKNOWLEDGED and task.tries == 3
    assert attempts_of(config, task_id)[-1].digits == "1"


def test_a_phone_that_rings_out_is_escalated_and_called_past_max_attempts(tmp_path: Path) -> None:
    """Rings, nobody picks up (call waiting while the scammer talks, or a phone in a bag): a
    line in use, as when busy. Escalated after 2, still called after max_attempts (2)."""
    phone = Sipp("uas_ring_no_answer.xml", tmp_path, calls=3, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host, ring_timeout_s=2, max_attempts=2,
                           escalate_after=2)
    task, task_id = warned(config, phone, "--case-id", "FZ-77",
                           done=lambda t: t.tries == 3 and t.state is TaskState.WAITING)
    assert task.attempts == 3 and task.reached == 0, task
    assert [a.outcome for a in attempts_of(config, task_id)] == [Outcome.RANG_OUT] * 3
    [escalated] = [e for e in read_events(config) if e.get("task_event") == "escalated"]
    assert escalated["attempt"] == 2 and escalated["detail"]["case_ids"] == ["FZ-77"]


def test_not_found_fails_after_one_attempt(tmp_path: Path) -> None:
    phone = Sipp("uas_not_found_404.xml", tmp_path, calls=1, timeout_s=30)
    config = dialer_config(tmp_path, phone.uri_host)
    task, task_id = warned(config, phone, timeout=30)
    assert task.state is TaskState.FAILED and task.tries == 1
    assert attempts_of(config, task_id)[0].outcome is Outcome.INVALID_NUMBER


GREETING = "您好，您拨打的用户暂时无法接听。请在提示音后留言，我会尽快给您回电，谢谢。"


def test_an_answering_machine_is_left_a_short_message(tmp_path: Path) -> None:
    greeting = tmp_path / "greeting.ulaw"
    greeting.write_bytes(to_ulaw(make_speech(tmp_path / "greeting.wav", GREETING, voice="cmn")))
    silence = tmp_path / "silence.ulaw"
    silence.write_bytes(b"\xff" * 8000)
    machine = Sipp("uas_answer_play_greeting.xml", tmp_path,
                   "-key", "greeting_stream", f"{greeting},1,0",
                   "-key", "silence_stream", f"{silence},-1,0", calls=1, timeout_s=60)
    config = dialer_config(tmp_path, machine.uri_host)
    task, task_id = warned(config, machine,
                           done=lambda t: t.tries == 1 and t.state is TaskState.WAITING)
    [attempt] = attempts_of(config, task_id)
    assert (attempt.outcome, attempt.amd) == (Outcome.MACHINE, "machine")
    played = [e for e in read_events(config) if e["event"] == "amd"]
    assert played and played[0]["verdict"] == "machine"
    assert task.state is TaskState.WAITING  # the task stays open


def test_a_short_hello_then_the_digit_is_a_person(tmp_path: Path) -> None:
    hello = to_ulaw(make_speech(tmp_path / "hello.wav", "喂？", voice="cmn"))
    pcap = write_pcap(tmp_path / "hello-then-1.pcap", hello, digits=(("1", 3000),))
    phone = Sipp("uas_answer_hello_then_dtmf.xml", tmp_path, "-key", "hello_dtmf_pcap", str(pcap),
                 calls=1, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host)
    task, task_id = warned(config, phone)
    assert task.state is TaskState.ACKNOWLEDGED, task
    [attempt] = attempts_of(config, task_id)
    assert attempt.amd == "human" and attempt.digits == "1"


def test_a_recorded_warning_call_is_kept_as_evidence_and_listed(tmp_path: Path,
                                                                dtmf_1: Path) -> None:
    phone = Sipp("uas_busy_n_then_answer_dtmf.xml", tmp_path, "-key", "busy_calls", "0",
                 "-key", "dtmf_pcap", str(dtmf_1), calls=1, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host, extra="  record: true\n")
    task, task_id = warned(config, phone)
    assert task.state is TaskState.ACKNOWLEDGED
    [attempt] = attempts_of(config, task_id)
    recording = Path(attempt.recording)
    assert recording.is_file() and recording.parent.name == "recordings"
    with wave.open(str(recording)) as w:
        assert w.getnframes() / w.getframerate() >= 1.5  # the call from answer to the digit
    shown = json.loads(cli(config, "task", "show", task_id, "--json").stdout)
    assert shown["history"][0]["recording"] == str(recording)
