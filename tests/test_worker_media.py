"""Answered inbound calls with real RTP from SIPp: DTMF, playback, recording."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from workerproc import Sipp, WorkerProcess, make_tone, wav_rms

from softphone import protocol as p


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.1/32"])
    yield w
    w.kill()


def test_rfc2833_digits_interrupt_prompt_and_are_collected(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    long_tone = make_tone(tmp_path / "long.wav", 4.0)
    short_tone = make_tone(tmp_path / "short.wav", 0.3, 660)
    recording = tmp_path / "heard.wav"
    sipp = Sipp("uac_pcap_dtmf_1_5_then_audio.xml", tmp_path, "-s", "961108",
                remote=f"127.0.0.1:{worker.sip_port}")
    try:
        call = worker.wait_for("incoming").call
        worker.send(p.Record(call, str(recording)))
        worker.send(p.Ring(call))
        worker.send(p.Answer(call))
        worker.wait_for("answered", call)
        worker.send(p.Play(call, str(long_tone), interrupt_on_digit=True))
        worker.send(p.Collect(call, max_digits=2, timeout_s=5))
        first = worker.wait_for("dtmf", call)
        assert (first.digit, first.method) == ("1", "rfc2833")
        ended = worker.wait_for("playback_ended", call)
        assert (ended.reason, ended.file) == ("interrupted", str(long_tone))
        assert worker.wait_for("digits", call) == p.Digits(call, "15", "max")
        worker.send(p.Play(call, str(short_tone)))
        assert worker.wait_for("playback_ended", call).reason == "done"
        hung_up = worker.wait_for("hung_up", call, timeout=10)
        assert hung_up.by == "remote" and hung_up.duration_s > 3
        assert sipp.wait() == 0, sipp.report()
    finally:
        sipp.kill()
    assert worker.shutdown() == 0
    digits = [(e.digit, e.method) for e in worker.of_call(call) if e.TYPE == "dtmf"]
    assert digits == [("1", "rfc2833"), ("5", "rfc2833")]
    assert wav_rms(recording) > 100, "the recording of the caller's audio is silent"


def test_sip_info_dtmf_relay_digit(worker: WorkerProcess, tmp_path: Path) -> None:
    sipp = Sipp("uac_info_dtmf_5.xml", tmp_path, "-s", "961108",
                remote=f"127.0.0.1:{worker.sip_port}")
    try:
        call = worker.wait_for("incoming").call
        worker.send(p.Answer(call))
        assert worker.wait_for("dtmf", call) == p.Dtmf(call, "5", "info")
        worker.wait_for("hung_up", call)
        assert sipp.wait() == 0, sipp.report()
    finally:
        sipp.kill()
    assert worker.shutdown() == 0
    assert len([e for e in worker.of_call(call) if e.TYPE == "dtmf"]) == 1
