"""The engine as operators run it (``run_dialer.py run``), called by SIPp over loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from enginectl import EngineProcess, hours, read_events, wait_events, write_config
from workerproc import RtpSink, Sipp

BLOCKED = "13900001111"


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    return tmp_path


def screened(config: Path) -> list[dict]:
    return [e for e in read_events(config) if e["event"] == "screened"]


def test_blocklisted_caller_gets_603_and_no_media(work: Path) -> None:
    config = write_config(work, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        sipp = Sipp("uac_invite_expect_603.xml", work, "-s", "961108", "-key", "extra_header", "X-Test: engine", "-key", "caller", f"+86{BLOCKED}",
                    remote=engine.target)
        assert sipp.wait() == 0, sipp.report() + engine.log_text()
    finally:
        engine.stop()
    [event] = screened(config)
    assert (event["action"], event["status"], event["rule"], event["route"]) == (
        "reject", 603, "list:fraud", "reject")
    assert event["number"] == "139****1111"
    assert BLOCKED not in (config.parent / "engine.log").read_text()  # masked in the log


def test_ivr_answers_outside_operator_hours_with_rtp_and_digits(work: Path) -> None:
    config = write_config(work, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    sink = RtpSink()
    try:
        sipp = Sipp("uac_pcap_dtmf_media_to_sink.xml", work, "-s", "961108",
                    "-key", "sink_port", str(sink.port), remote=engine.target, timeout_s=20)
        received = sink.count_packets(2.0)  # the prompt, before SIPp's own RTP starts
        assert sipp.wait() == 0, sipp.report() + engine.log_text()
    finally:
        sink.close()
        engine.stop()
    assert received >= 70, f"only {received} RTP packets from the engine in 2 s (50 a second expected)"
    events = read_events(config)
    [event] = screened(config)
    assert (event["action"], event["route"]) == ("allow", "ivr")
    digits = [(e["digit"], e["method"]) for e in events if e["event"] == "dtmf"]
    assert digits == [("1", "rfc2833"), ("5", "rfc2833")]
    [ended] = [e for e in events if e["event"] == "ended"]
    assert (ended["by"], ended["digits"]) == ("remote", "15")


def test_operator_hours_call_reaches_the_operator(work: Path) -> None:
    operator = Sipp("uas_answer_until_bye.xml", work, timeout_s=20)
    config = write_config(work, operator_hours=hours(inside_now=True),
                          operator=f"sip:duty@{operator.uri_host}")
    engine = EngineProcess(config)
    try:
        caller = Sipp("uac_pcap_dtmf_1_5_then_audio.xml", work, "-s", "961108", remote=engine.target,
                      timeout_s=20)
        assert caller.wait() == 0, caller.report() + engine.log_text()
        assert operator.wait() == 0, operator.report() + engine.log_text()
    finally:
        operator.kill()
        engine.stop()
    kinds = [e["event"] for e in read_events(config)]
    assert kinds.index("operator_dialled") < kinds.index("operator_answered") < kinds.index("ended")
    assert screened(config)[0]["route"] == "operator"


def test_source_outside_the_allowlist_gets_403(work: Path) -> None:
    config = write_config(work, allowed_sources="10.1.0.0/16")
    engine = EngineProcess(config)
    try:
        sipp = Sipp("uac_invite_expect_403.xml", work, "-s", "961108", "-key", "caller", "13800001234",
                    remote=engine.target)
        assert sipp.wait() == 0, sipp.report() + engine.log_text()
    finally:
        engine.stop()
    assert wait_events(config, lambda e: e["event"] == "refused")
    assert not screened(config)


def test_flood_from_a_blocked_number_then_a_good_caller(work: Path) -> None:
    config = write_config(work, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        flood = Sipp("uac_invite_expect_603_or_503.xml", work, "-s", "961108", "-key",
                     "extra_header", "X-Test: engine", "-key", "caller", BLOCKED,
                     "-r", "40", "-l", "8", remote=engine.target, calls=200, timeout_s=30)
        assert flood.wait() == 0, flood.report() + engine.log_text()
        good = Sipp("uac_pcap_dtmf_1_5_then_audio.xml", work, "-s", "961108", remote=engine.target,
                    timeout_s=20)
        assert good.wait() == 0, good.report() + engine.log_text()
    finally:
        engine.stop()
    decisions = screened(config)
    rejected = [e for e in decisions if e["action"] == "reject"]
    shed = [e for e in read_events(config) if e["event"] == "refused" and e["status"] == 503]
    # over sip.new_calls_per_worker_s (20) the worker's guard sheds INVITEs with 503
    assert len(rejected) + len(shed) == 200 and all(e["status"] == 603 for e in rejected)
    assert shed and decisions[-1]["route"] == "ivr"


def test_the_hotline_is_reached_with_its_area_code_in_every_form(work: Path) -> None:
    config = write_config(work, operator_hours=hours(inside_now=False),
                          hotline_extra='  area_code: "0591"\n')
    engine = EngineProcess(config)
    sink = RtpSink()
    try:
        for dialed in ("0591961108", "+86591961108"):
            sipp = Sipp("uac_pcap_dtmf_media_to_sink.xml", work, "-s", dialed,
                        "-key", "sink_port", str(sink.port), remote=engine.target, timeout_s=20)
            assert sipp.wait() == 0, sipp.report() + engine.log_text()
        stranger = Sipp("uac_invite_expect_603.xml", work, "-s", "0592961108",
                        "-key", "extra_header", "X-Test: engine", "-key", "caller", "13800001234",
                        remote=engine.target)
        stranger.wait()
    finally:
        sink.close()
        engine.stop()
    routes = [(e["callee"], e["route"]) for e in screened(config)]  # callees masked in records
    assert routes == [("059***1108", "ivr"), ("+865****1108", "ivr"), ("059***1108", "not_found")]
