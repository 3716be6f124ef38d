"""The after-hours voice menu as callers meet it: ``run_dialer.py run`` at night (operator
hours set around the present moment so that it is outside them), SIPp callers on loopback."""

from __future__ import annotations

import wave
from pathlib import Path

from brokerctl import Broker, Watcher, mqtt_section
from enginectl import EngineProcess, hours, read_events, write_config
from rtppcap import to_ulaw, write_pcap
from workerproc import PCAP_DIR, RtpSink, Sipp, make_speech

from stores import open_stores

TYPE_PATH = "main>1>categories>4>cat_invest>1"  # fraud types, investment, the first type


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def night(work: Path, workers: int = 1, extra: str = "") -> Path:
    return write_config(work, workers=workers, operator_hours=hours(inside_now=False), extra=extra)


def chosen(config: Path) -> list[dict]:
    return [e for e in read_events(config) if e["event"] == "ivr_prompt" and e.get("fraud_type")]


def test_rfc2833_digits_reach_the_fraud_type_chosen(tmp_path: Path) -> None:
    config = night(tmp_path)
    engine = EngineProcess(config)
    sink = RtpSink()
    try:
        caller = Sipp("uac_ivr_rfc2833_digits.xml", tmp_path, "-s", "961108",
                      "-key", "sink_port", str(sink.port),
                      "-key", "digit_1", str(PCAP_DIR / "dtmf_2833_1.pcap"),
                      "-key", "digit_2", str(PCAP_DIR / "dtmf_2833_4.pcap"),
                      "-key", "digit_3", str(PCAP_DIR / "dtmf_2833_1.pcap"),
                      remote=engine.target, timeout_s=30)
        heard = sink.count_packets(1.8)  # the welcome, before the caller's own RTP
        assert caller.wait() == 0, caller.report() + engine.log_text()
    finally:
        sink.close()
        engine.stop()
    assert heard >= 60, f"only {heard} RTP packets of the welcome in 1.8 s"
    [asked] = chosen(config)
    assert (asked["prompt"], asked["fraud_type"], asked["path"]) == (
        "type_investment", "investment", TYPE_PATH)
    menus = [e["menu"] for e in read_events(config) if e["event"] == "ivr_menu"]
    assert menus == ["main", "categories", "cat_invest"]
    [ended] = [e for e in read_events(config) if e["event"] == "ivr_ended"]
    assert (ended["path"], ended["by"]) == (TYPE_PATH, "remote")


def test_sip_info_digits_take_the_same_path(tmp_path: Path) -> None:
    config = night(tmp_path)
    engine = EngineProcess(config)
    try:
        caller = Sipp("uac_ivr_info_digits.xml", tmp_path, "-s", "961108", "-key", "d1", "1",
                      "-key", "d2", "4", "-key", "d3", "1", remote=engine.target, timeout_s=30)
        assert caller.wait() == 0, caller.report() + engine.log_text()
    finally:
        engine.stop()
    [asked] = chosen(config)
    assert asked["path"] == TYPE_PATH
    assert {e["method"] for e in read_events(config) if e["event"] == "dtmf"} == {"info"}


def test_a_caller_speaking_leaves_a_message_for_the_morning(tmp_path: Path) -> None:
    speech = make_speech(tmp_path / "speech.wav", "我叫张三，有人冒充警察，请回电话。", voice="cmn")
    with wave.open(str(speech)) as w:
        spoken_s = w.getnframes() / w.getframerate()
    broker = Broker(tmp_path)
    watcher = Watcher(broker.port, ("antifraud/hotline/callback",))
    config = night(tmp_path, extra=mqtt_section(broker.url))
    engine = EngineProcess(config)
    try:
        prompts = config.parent / "var" / "prompts"
        wait_s = sum(_seconds(prompts / f"{n}.wav") for n in ("ivr-message-intro", "ivr-beep"))
        # one RTP stream: the digit 3 (a message) during the welcome, silence while the
        # introduction and the beep play, then the speech, then silence
        pcap = write_pcap(tmp_path / "message.pcap",
                          b"\xff" * int(8000 * (wait_s + 1.0)) + to_ulaw(speech),
                          first=(("3", 500),), tail_ms=6000, event_pt=101)
        caller = Sipp("uac_ivr_message.xml", tmp_path, "-s", "961108", "-key", "message", str(pcap),
                      remote=engine.target, timeout_s=90)
        assert caller.wait() == 0, caller.report() + engine.log_text()
    finally:
        engine.stop()
    store = open_stores(config.parent / "var").callbacks
    [callback] = store.list()
    store.close()
    assert callback.caller == "13800138000" and callback.state == "waiting"
    with wave.open(callback.file) as w:
        recorded_s = w.getnframes() / w.getframerate()
    # the speech, then 3 s of silence end it (the speech detector keeps 0.5 s of it)
    assert abs(recorded_s - (spoken_s + 3.0)) <= 1.0, (recorded_s, spoken_s)
    assert abs(callback.duration_s - recorded_s) < 0.1
    [left] = [e for e in read_events(config) if e["event"] == "message_left"]
    assert left["stored"] and left["caller"] == "138****8000"
    try:  # published before the engine stopped, or from the outbox when it starts again
        [message] = watcher.wait("antifraud/hotline/callback", lambda s: len(s) >= 1)
    finally:
        watcher.close()
        broker.stop()
    assert message.json["id"] == callback.id and message.json["number"] == "138****8000"
    assert message.json["event"] == "message_left" and message.json["menu_path"] == callback.path
    assert abs(message.json["duration_s"] - callback.duration_s) < 0.1


def test_eight_callers_at_once_across_two_workers_are_all_served(tmp_path: Path) -> None:
    config = night(tmp_path, workers=2)
    engine = EngineProcess(config)
    try:
        callers = [Sipp("uac_ivr_info_digits.xml", tmp_path, "-s", "961108", "-key", "d1", "1",
                        "-key", "d2", "4", "-key", "d3", "1", "-l", "4", "-r", "8",
                        remote=f"127.0.0.1:{engine.port + i}", calls=4, timeout_s=40)
                   for i in range(2)]
        for caller in callers:
            assert caller.wait() == 0, caller.report() + engine.log_text()
    finally:
        engine.stop()
    asked = chosen(config)
    assert len(asked) == 8 and {e["path"] for e in asked} == {TYPE_PATH}
    workers = {e["worker"] for e in read_events(config) if e["event"] == "screened"}
    assert workers == {"w1", "w2"}
