"""The engine tried as an attacker and a careless operator would, against real peers: a list
corrupted while the engine runs, peers that vanish mid-call, media that never comes, the
engine killed with SIGKILL while calls are up."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest
from enginectl import EngineProcess, engine_port, hours, read_events, wait_events, write_config
from workerproc import Sipp

BLOCKED = "13900001111"


def test_a_list_corrupted_while_the_engine_runs_still_gets_callers_an_answer(tmp_path: Path) -> None:
    config = write_config(tmp_path, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        (tmp_path / "var" / "lists" / "fraud" / "meta.json").write_text("{ broken")
        caller = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "500",
                      remote=engine.target, timeout_s=10)
        assert caller.wait() == 0, caller.report() + engine.log_text()
        blocked = Sipp("uac_invite_expect_603.xml", tmp_path, "-s", "961108", "-key", "extra_header",
                       "X-Test: corrupt", "-key", "caller", BLOCKED, remote=engine.target, timeout_s=10)
        assert blocked.wait() == 0, blocked.report() + engine.log_text()  # the last good copy
    finally:
        engine.stop()
    screened = [e for e in read_events(config) if e["event"] == "screened"]
    assert [e["route"] for e in screened] == ["ivr", "reject"]
    unreadable = [e for e in read_events(config) if e["event"] == "list_unreadable"]
    assert len(unreadable) == 1 and unreadable[0]["list"] == "fraud"
    log = engine.log_text()
    assert "Traceback" not in log and "list fraud cannot be read" in log


def never_acking_invites(port: int, count: int) -> socket.socket:
    """A peer that sends INVITEs and then vanishes: no ACK, no RTP, no reply to BYE."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    local = f"127.0.0.1:{sock.getsockname()[1]}"
    for i in range(count):
        tag = uuid.uuid4().hex
        sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        request = (f"INVITE sip:961108@127.0.0.1:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{tag}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:1380013{7400 + i}@{local}>;tag={tag[:8]}\r\n"
                   f"To: <sip:961108@127.0.0.1:{port}>\r\nCall-ID: {tag}@vanished\r\n"
                   f"CSeq: 1 INVITE\r\nContact: <sip:vanished@{local}>\r\n"
                   f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        sock.sendto(request.encode(), ("127.0.0.1", port))
    return sock


def test_peers_that_vanish_after_the_invite_free_their_channels(tmp_path: Path) -> None:
    config = write_config(tmp_path, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        sent_at = time.time()
        vanished = never_acking_invites(engine_port(config), 4)
        answered = wait_events(config, lambda e: e["event"] == "ivr", timeout=5)
        deadline = time.monotonic() + 5
        while len(answered) < 4 and time.monotonic() < deadline:
            answered = wait_events(config, lambda e: e["event"] == "ivr", timeout=1)
        assert len(answered) == 4, engine.log_text()  # all four channels taken
        time.sleep(max(0.0, sent_at + 13.0 - time.time()))
        good = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "500",
                    remote=engine.target, timeout_s=10)
        assert good.wait() == 0, good.report() + engine.log_text()
        got_in_after = time.time() - sent_at
        vanished.close()
    finally:
        engine.stop()
    ended = [e for e in read_events(config) if e["event"] == "ended"][:4]
    assert len(ended) == 4 and got_in_after <= 15.0


@pytest.mark.parametrize(("setting", "reason"), [
    ("media_timeout_s: 3", "media_timeout"),  # a caller whose RTP never comes
    ("max_call_s: 3", "max_call"),  # no call lasts longer (before the 10 s media timeout)
])
def test_a_call_is_ended_by_the_worker(tmp_path: Path, setting: str, reason: str) -> None:
    config = write_config(tmp_path, operator_hours=hours(inside_now=False))
    config.write_text(config.read_text().replace("sip:\n", f"sip:\n  {setting}\n", 1))
    engine = EngineProcess(config)
    try:
        started = time.monotonic()
        caller = Sipp("uac_answered_silent_until_bye.xml", tmp_path, "-s", "961108",
                      remote=engine.target, timeout_s=30)
        assert caller.wait() == 0, caller.report() + engine.log_text()
        lasted = time.monotonic() - started
    finally:
        engine.stop()
    [ended] = [e for e in read_events(config) if e["event"] == "ended"]
    assert (ended["by"], ended["reason"]) == ("local", reason)
    assert 3.0 <= lasted <= 7.0


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_kill_9_with_calls_up_then_a_restart_finds_its_ports_free(tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=2, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    callers = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "20000", "-l", "2",
                   remote=engine.target, calls=2, timeout_s=40)
    try:
        assert len(wait_events(config, lambda e: e["event"] == "ivr", timeout=10)) >= 1
        pids = [int(p) for p in re.findall(r"ready on SIP port \d+ \(pid (\d+)\)", engine.log_text())]
        assert len(pids) == 2
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(5)
        engine.stop()
        deadline = time.monotonic() + 5
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids), "workers outlived their engine"
        restarted = time.monotonic()
        engine = EngineProcess(config)
        ready_s = time.monotonic() - restarted
        good = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "500",
                    remote=engine.target, timeout_s=10)
        assert good.wait() == 0, good.report() + engine.log_text()
    finally:
        engine.stop()
        callers.kill()
    assert "exited (code" not in engine.log_text()  # no worker had to be restarted
    assert ready_s < 10
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}/cmdline") or not alive(pid)


def test_the_short_transaction_timeout_does_not_cut_a_long_ring(tmp_path: Path) -> None:
    from dialerctl import dialer_config, store_of, wait_tasks, warn

    from dialer import Outcome

    phone = Sipp("uas_ring_no_answer.xml", tmp_path, calls=1, timeout_s=30)
    config = dialer_config(tmp_path, phone.uri_host, ring_timeout_s=9, max_attempts=1,
                           escalate_after=1)
    engine = EngineProcess(config)
    try:
        task_id = warn(config, "13800137490")
        wait_tasks(config, [task_id], timeout=30, done=lambda t: t.last_outcome is not None)
        assert phone.wait() == 0, phone.report()
    finally:
        phone.kill()
        engine.stop()
    store = store_of(config)
    [attempt] = store.attempts(task_id)
    store.close()
    assert attempt.outcome is Outcome.RANG_OUT  # rang the full 9 s (a 6 s timer B would say 408)
    assert attempt.ended_at - attempt.started_at >= 8.5


def test_a_stop_while_a_warning_rings_writes_nothing_to_a_stopping_worker(tmp_path: Path) -> None:
    """A worker told to stop closes its input; commands for its calls must not be written to
    it after that (asyncio only logs such writes, by the thousand: it once did)."""
    from dialerctl import store_of, warn
    from workerproc import free_udp_port

    # a trunk that never answers: the INVITE is still being sent again when the stop comes
    config = write_config(tmp_path, trunk=f"sip:127.0.0.1:{free_udp_port()}")
    task_id = warn(config, "13800137490")
    engine = EngineProcess(config)
    try:
        time.sleep(2.0)
    finally:
        engine.stop()
    log = (config.parent / "engine.log").read_text()
    assert "pipe closed" not in log, log[-2000:]
    store = store_of(config)
    [attempt] = store.attempts(task_id)
    store.close()
    assert attempt.ended_at is not None  # its end is stored before the engine exits
