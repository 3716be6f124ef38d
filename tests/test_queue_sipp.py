"""The operators' queue by day, with SIPp as the operators' phones and as the callers."""

from __future__ import annotations

import time
from pathlib import Path

from enginectl import EngineProcess, hours, read_events, wait_events, write_config
from workerproc import Sipp


def by_call(config: Path, call: str) -> list[str]:
    return [e["event"] for e in read_events(config) if e.get("call") == call]


def test_one_operator_busy_the_caller_reaches_the_free_one(tmp_path: Path) -> None:
    busy = Sipp("uas_busy_486.xml", tmp_path, calls=1, timeout_s=30)
    free = Sipp("uas_answer_until_bye.xml", tmp_path, calls=1, timeout_s=30)
    config = write_config(tmp_path, operator_hours=hours(inside_now=True), hotline_extra=(
        f'  operators: ["sip:desk1@{busy.uri_host}", "sip:desk2@{free.uri_host}"]\n'
        "  ring: round_robin\n"))
    engine = EngineProcess(config)
    try:
        caller = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "2000",
                      remote=engine.target, timeout_s=20)
        assert caller.wait() == 0, caller.report() + engine.log_text()
        assert busy.wait() == 0, busy.report()
        assert free.wait() == 0, free.report()
    finally:
        for sipp in (busy, free):
            sipp.kill()
        engine.stop()
    events = read_events(config)
    [unreachable] = [e for e in events if e["event"] == "operator_unreachable"]
    [answered] = [e for e in events if e["event"] == "operator_answered"]
    assert unreachable["operator"].startswith("sip:desk1@") and unreachable["status"] == 486
    assert answered["operator"].startswith("sip:desk2@")
    assert "ivr" not in [e["event"] for e in events]


def test_every_operator_talking_the_caller_hears_the_queue_then_the_voice_menu(tmp_path: Path) -> None:
    desks = [Sipp("uas_answer_until_bye.xml", tmp_path, calls=1, timeout_s=50) for _ in range(2)]
    # two workers: the first holds both talking callers and both operator legs (4 calls)
    config = write_config(tmp_path, workers=2, operator_hours=hours(inside_now=True), hotline_extra=(
        f'  operators: ["sip:desk1@{desks[0].uri_host}", "sip:desk2@{desks[1].uri_host}"]\n'
        "  max_wait_s: 3\n  queue_announce_s: 2\n"),
        sip_extra="  media_timeout_s: 60\n")  # the SIPp desks and callers send no RTP
    engine = EngineProcess(config)
    try:
        talking = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "18000", "-l", "2",
                       "-r", "5", remote=engine.target, calls=2, timeout_s=40)
        assert len(wait_events(config, lambda e: e["event"] == "operator_answered", timeout=10)) >= 1
        deadline = time.monotonic() + 10
        while sum(e["event"] == "operator_answered" for e in read_events(config)) < 2 \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        third = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "13000",
                     remote=f"127.0.0.1:{engine.port + 1}", timeout_s=20)
        assert third.wait() == 0, third.report() + engine.log_text()  # waited, then the menu
        assert talking.wait() == 0, talking.report()
    finally:
        for sipp in desks:
            sipp.kill()
        engine.stop()
    events = read_events(config)
    [queued] = [e for e in events if e["event"] == "queued"]
    assert queued["ahead"] == 0
    steps = by_call(config, queued["call"])
    assert steps.index("queued") < steps.index("queue_gave_up") < steps.index("ivr")
    plays = [e["prompt"] for e in events if e["event"] == "ivr_prompt" and e["call"] == queued["call"]]
    assert plays[:1] == ["welcome"]
    [gave_up] = [e for e in events if e["event"] == "queue_gave_up"]
    assert gave_up["why"] == "waited too long" and 2.5 <= gave_up["waited_s"] <= 5
