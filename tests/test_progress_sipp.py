"""What a Chinese carrier says before (or just after) the answer, end to end: ``run`` and
``warn`` as operators use them, the announcements library built with ``announcements add``,
and SIPp on the trunk as the carrier: 183 Session Progress with early media (the carrier's
spoken announcement, the busy tone, a 彩铃), the final response only 30 s later."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dialerctl import attempts_of, cli, dialer_config, wait_tasks, warn
from enginectl import EngineProcess, read_events
from rtppcap import to_ulaw, write_pcap
from sounds import busy_tone_ulaw, music_ulaw, speech_wav
from workerproc import Sipp

from dialer import Outcome, Task, TaskState
from stores import open_stores

NUMBER = "13800137490"
BUSY = "您拨打的电话正在通话中，请稍后再拨。"
OFF = "您拨打的电话已关机。"
VACANT = "您拨打的号码是空号，请查证后再拨。"
GREETING = "您好，欢迎致电鑫源五金商行，我们的营业时间是早上八点到晚上九点，祝您生活愉快。"


@pytest.fixture()
def dtmf_1(tmp_path: Path) -> Path:
    return write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))


def looped(tmp_path: Path, name: str, text: str) -> Path:
    """The announcement as the carrier plays it: spoken, then 0.6 s of silence, looped."""
    raw = tmp_path / f"{name}.ulaw"
    raw.write_bytes(to_ulaw(speech_wav(tmp_path / f"{name}.wav", text)) + b"\xff" * 4800)
    return raw


def silence(tmp_path: Path) -> Path:
    path = tmp_path / "silence.ulaw"
    path.write_bytes(b"\xff" * 8000)
    return path


def learn(config: Path, tmp_path: Path, name: str, text: str, label: str) -> str:
    """The center adds its carrier's recording to the library (as an operator does)."""
    wav = speech_wav(tmp_path / f"{name}.wav", text)
    return cli(config, "announcements", "add", str(wav), "--as", label,
               "--carrier", "中国移动").stdout.strip()


def carrier(tmp_path: Path, early: Path, busy_calls: int, ring: Path, dtmf: Path,
            reason: str = "SIP;cause=480", calls: int = 10, timeout_s: int = 90) -> Sipp:
    return Sipp("uas_carrier_early_media.xml", tmp_path, "-key", "busy_calls", str(busy_calls),
                "-key", "early_stream", f"{early},-1,0", "-key", "ring_stream", f"{ring},-1,0",
                "-key", "reason", reason, "-key", "dtmf_pcap", str(dtmf), calls=calls,
                timeout_s=timeout_s)


def run_until(config: Path, done: Callable[[Task], bool] | None,
              timeout: float = 60) -> tuple[Task, str, str]:
    """The engine runs, one warning is requested, until its task is ``done`` (default: final);
    the task, its id and the engine's log."""
    engine = EngineProcess(config)
    try:
        task_id = warn(config, NUMBER)
        [task] = wait_tasks(config, [task_id], done=done, timeout=timeout)
        return task, task_id, engine.log_text()
    finally:
        engine.stop()


def test_a_spoken_busy_announcement_is_cancelled_at_once_then_the_person_is_reached(
        tmp_path: Path, dtmf_1: Path) -> None:
    """183 + the carrier's busy announcement, its 480 only after 30 s: CANCEL within 3 s,
    retried as busy, acknowledged once the line is free."""
    phone = carrier(tmp_path, looped(tmp_path, "busy-ann", BUSY), 2, silence(tmp_path), dtmf_1)
    config = dialer_config(tmp_path, phone.uri_host)
    try:
        learned = learn(config, tmp_path, "busy-ann", BUSY, "busy")
        task, task_id, log = run_until(config, None, 60)
    finally:
        phone.kill()
    assert task.state is TaskState.ACKNOWLEDGED, log
    history = attempts_of(config, task_id)
    assert [a.outcome for a in history] == [Outcome.BUSY, Outcome.BUSY, Outcome.ACKNOWLEDGED]
    for a in history[:2]:
        assert a.ended_at - a.started_at < 3.5, a  # not the carrier's 30 s
        assert a.how["by"] == "announcement" and a.how["announcement"] == learned
        assert a.how["class"] == "busy" and a.how["after_s"] <= 3.0
    assert history[2].how == {"by": "digit", "digit": "1"}
    shown = json.loads(cli(config, "task", "show", task_id, "--json").stdout)
    assert shown["history"][0]["known_by"].startswith(f"the carrier's announcement {learned}")
    said = [e for e in read_events(config) if e["event"] == "network_said"]
    assert [e["what"] for e in said] == ["busy", "busy"]


def test_the_national_busy_tone_is_cancelled_at_once(tmp_path: Path, dtmf_1: Path) -> None:
    tone = tmp_path / "busy-tone.ulaw"
    tone.write_bytes(busy_tone_ulaw(20.0))
    phone = carrier(tmp_path, tone, 1, silence(tmp_path), dtmf_1)
    config = dialer_config(tmp_path, phone.uri_host)
    try:
        task, task_id, log = run_until(config, None, 60)
    finally:
        phone.kill()
    assert task.state is TaskState.ACKNOWLEDGED, log
    busy, acked = attempts_of(config, task_id)
    assert (busy.outcome, acked.outcome) == (Outcome.BUSY, Outcome.ACKNOWLEDGED)
    assert busy.how["by"] == "tone" and busy.how["tone"] == "busy"
    assert busy.ended_at - busy.started_at < 2.5


@pytest.mark.parametrize("ringing", ["music", "greeting"])
def test_a_caling_is_ringing_the_person_answers_and_is_never_cancelled(
        tmp_path: Path, dtmf_1: Path, ringing: str) -> None:
    """183 + ring-back music, or a spoken greeting in no library (a 彩铃), for 6 s, then 200."""
    if ringing == "music":
        early = tmp_path / "caling.ulaw"
        early.write_bytes(music_ulaw(12.0))
    else:
        early = looped(tmp_path, "greeting", GREETING)
    phone = carrier(tmp_path, early, 0, early, dtmf_1)
    config = dialer_config(tmp_path, phone.uri_host)
    try:
        learn(config, tmp_path, "busy-ann", BUSY, "busy")
        learn(config, tmp_path, "off-ann", OFF, "off")
        learn(config, tmp_path, "vacant-ann", VACANT, "invalid")
        task, task_id, log = run_until(config, None, 60)
    finally:
        phone.kill()
    assert task.state is TaskState.ACKNOWLEDGED, log
    [attempt] = attempts_of(config, task_id)
    assert attempt.answered_at - attempt.started_at >= 5.5  # the 彩铃 played its 6 s
    assert not [e for e in read_events(config) if e["event"] == "network_said"]


def test_no_such_number_fails_after_one_attempt(tmp_path: Path, dtmf_1: Path) -> None:
    phone = carrier(tmp_path, looped(tmp_path, "vacant", VACANT), 1000, silence(tmp_path), dtmf_1)
    config = dialer_config(tmp_path, phone.uri_host)
    try:
        learned = learn(config, tmp_path, "vacant", VACANT, "invalid")
        task, task_id, log = run_until(config, None, 30)
    finally:
        phone.kill()
    assert task.state is TaskState.FAILED and task.tries == 1, log
    [attempt] = attempts_of(config, task_id)
    assert attempt.outcome is Outcome.INVALID_NUMBER
    assert attempt.ended_at - attempt.started_at < 3.5
    assert task.reason == (f"the number does not exist (the carrier's announcement {learned} "
                           f"(invalid, {attempt.how['after_s']:g} s))")


def test_a_phone_switched_off_is_unreachable_and_gets_a_text_at_once(tmp_path: Path,
                                                                     dtmf_1: Path) -> None:
    phone = carrier(tmp_path, looped(tmp_path, "off", OFF), 1000, silence(tmp_path), dtmf_1)
    config = dialer_config(tmp_path, phone.uri_host,
                           texts="{every_s: 300, max_per_task: 3}")
    engine = None
    try:
        learn(config, tmp_path, "off", OFF, "off")
        engine = EngineProcess(config)
        task_id = warn(config, NUMBER)
        wait_tasks(config, [task_id], done=lambda t: t.tries >= 1 and t.state is TaskState.WAITING,
                   timeout=20)
        time.sleep(1.0)
        cli(config, "warn", "cancel", task_id)
    finally:
        if engine is not None:
            engine.stop()
        phone.kill()
    first = attempts_of(config, task_id)[0]
    assert first.outcome is Outcome.UNREACHABLE and first.counted
    assert first.how["class"] == "off"
    store = open_stores(config.parent / "var").texts
    texts = store.of_task(task_id)
    store.close()
    assert texts and texts[0].kind == "warning"
    assert texts[0].at - first.ended_at < 1.0  # at once, not after the usual spacing


def test_a_carrier_that_answers_then_announces_busy_is_busy_not_a_machine(tmp_path: Path) -> None:
    announcement = tmp_path / "busy-answered.ulaw"
    announcement.write_bytes(to_ulaw(speech_wav(tmp_path / "busy-ann.wav", BUSY)))
    phone = Sipp("uas_answer_play_greeting.xml", tmp_path,
                 "-key", "greeting_stream", f"{announcement},1,0",
                 "-key", "silence_stream", f"{silence(tmp_path)},-1,0", calls=1, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host)
    try:
        learn(config, tmp_path, "busy-ann", BUSY, "busy")
        _, task_id, log = run_until(config, lambda t: t.last_outcome is not None, 30)
    finally:
        phone.kill()  # it hears our BYE in the middle of its announcement, which SIPp calls an error
    attempt = attempts_of(config, task_id)[0]  # SIPp answers one call: the next ones time out
    assert attempt.outcome is Outcome.BUSY, (attempt, log)
    assert attempt.how["by"] == "announcement" and attempt.how["answered"] is True
    assert attempt.ended_at - attempt.answered_at < 4.0


def test_a_480_whose_reason_says_user_busy_is_busy(tmp_path: Path, dtmf_1: Path) -> None:
    phone = Sipp("uas_480_reason_n_then_answer_dtmf.xml", tmp_path, "-key", "busy_calls", "1",
                 "-key", "reason", 'Q.850;cause=17;text="User busy"', "-key", "dtmf_pcap",
                 str(dtmf_1), calls=2, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host)
    try:
        task, task_id, log = run_until(config, None, 40)
        assert phone.wait() == 0, phone.report()
    finally:
        phone.kill()
    assert task.state is TaskState.ACKNOWLEDGED, log
    busy, _ = attempts_of(config, task_id)
    assert (busy.outcome, busy.status) == (Outcome.BUSY, 480)
    assert busy.how == {"by": "q850", "status": 480, "q850": 17}


def test_unknown_speech_that_rang_out_is_kept_for_an_operator(tmp_path: Path,
                                                              dtmf_1: Path) -> None:
    greeting = looped(tmp_path, "greeting", GREETING)
    phone = carrier(tmp_path, greeting, 1000, silence(tmp_path), dtmf_1)
    config = dialer_config(tmp_path, phone.uri_host, ring_timeout_s=5)
    try:
        _, task_id, log = run_until(config, lambda t: t.tries >= 1 and t.state.open
                                    and t.last_outcome is not None, 30)
    finally:
        phone.kill()
    heard = [json.loads(line) for line in
             cli(config, "announcements", "heard", "--json").stdout.splitlines()]
    assert heard, log
    assert heard[0]["status"] == 408 and heard[0]["call"] == f"{task_id}-1"
    assert 4.0 <= heard[0]["seconds"] <= 6.0 and heard[0]["voiced_s"] >= 1.0
    added = cli(config, "announcements", "add", "--from-heard", heard[0]["id"], "--as", "busy")
    listed = json.loads(cli(config, "announcements", "list", "--json").stdout.splitlines()[0])
    assert listed["id"] == added.stdout.strip()
    assert listed["source"] == f"heard:{heard[0]['id']}" and listed["class"] == "busy"
