"""A real worker listening to early media: SIPp as the carrier (183 with SDP, RTP before any
answer), the worker told to ``dial``, ``detect_machine`` and ``detect_progress`` as the
engine tells it."""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path

from rtppcap import to_ulaw, write_pcap
from sounds import busy_tone_ulaw, speech_wav
from workerproc import Sipp, WorkerProcess

from audio.library import Library
from softphone import protocol as p

GREETING = "您好，欢迎致电鑫源五金商行，我们的营业时间是早上八点到晚上九点，祝您生活愉快。"
BUSY = "您拨打的电话正在通话中，请稍后再拨。"


def carrier(tmp_path: Path, early: Path, busy_calls: int) -> Sipp:
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    return Sipp("uas_carrier_early_media.xml", tmp_path, "-key", "busy_calls", str(busy_calls),
                "-key", "early_stream", f"{early},-1,0", "-key", "ring_stream", f"{early},-1,0",
                "-key", "reason", "SIP;cause=480", "-key", "dtmf_pcap", str(dtmf), calls=1,
                timeout_s=40)


def ulaw(tmp_path: Path, name: str, text: str) -> Path:
    raw = tmp_path / f"{name}.ulaw"
    raw.write_bytes(to_ulaw(speech_wav(tmp_path / f"{name}.wav", text)) + b"\xff" * 4800)
    return raw


def dial(worker: WorkerProcess, phone: Sipp, ring_s: float, library: Path, heard: Path) -> None:
    worker.send(p.Dial("c1", f"sip:13800137490@{phone.uri_host}", "96110", ring_s, {}))
    worker.send(p.DetectMachine("c1"))
    worker.send(p.DetectProgress("c1", "cn", str(library), 6.0, str(heard)))


def test_the_busy_tone_is_heard_and_the_call_cancelled_in_a_moment(tmp_path: Path) -> None:
    tone = tmp_path / "busy.ulaw"
    tone.write_bytes(busy_tone_ulaw(20.0))
    phone = carrier(tmp_path, tone, 1)
    worker = WorkerProcess("w1", tmp_path)
    try:
        dial(worker, phone, 20.0, tmp_path / "none", tmp_path / "heard")
        worker.wait_for("ringing", "c1", where=lambda e: e.status == 183)
        started = time.monotonic()
        heard = worker.wait_for("progress", "c1", timeout=5)
        assert (heard.by, heard.what) == ("tone", "busy") and heard.after_s <= 1.6
        worker.send(p.Hangup("c1"))
        ended = worker.wait_for("hung_up", "c1", timeout=5)
        assert ended.status == 487 and time.monotonic() - started < 2.5  # not the 30 s
        assert not [e for e in worker.of_call("c1") if e.TYPE in ("busy", "no_answer", "failed")]
    finally:
        worker.shutdown()
        phone.kill()


def test_a_learned_announcement_is_named_by_its_id_and_class(tmp_path: Path) -> None:
    library = Library(tmp_path / "announcements")
    entry = library.add(speech_wav(tmp_path / "busy.wav", BUSY), "busy", "", 0.0)
    phone = carrier(tmp_path, ulaw(tmp_path, "busy", BUSY), 1)
    worker = WorkerProcess("w1", tmp_path)
    try:
        dial(worker, phone, 20.0, library.directory, library.heard_dir)
        heard = worker.wait_for("progress", "c1", timeout=6)
        assert (heard.by, heard.what, heard.announcement) == ("announcement", "busy", entry.id)
        assert not heard.answered and heard.after_s <= 3.0 and heard.score < 0.2
        worker.send(p.Hangup("c1"))
        worker.wait_for("hung_up", "c1", timeout=5)
    finally:
        worker.shutdown()
        phone.kill()


def test_early_media_is_never_analysed_as_a_machine(tmp_path: Path) -> None:
    """A spoken 彩铃 for 6 s before the answer: the detector starts at the answer, so no verdict
    comes before it (and none says machine about the 彩铃)."""
    phone = carrier(tmp_path, ulaw(tmp_path, "greeting", GREETING), 0)
    worker = WorkerProcess("w1", tmp_path)
    try:
        dial(worker, phone, 20.0, tmp_path / "none", tmp_path / "heard")
        worker.wait_for("answered", "c1", timeout=12)
        worker.wait_for("amd", "c1", timeout=8)  # the greeting goes on after the answer
        kinds = [e.TYPE for e in worker.of_call("c1")]
        assert kinds.index("amd") > kinds.index("answered")
        assert "progress" not in kinds and "speech_started" in kinds  # heard, not a verdict
        worker.send(p.Hangup("c1"))
        worker.wait_for("hung_up", "c1", timeout=5)
    finally:
        worker.shutdown()
        phone.kill()


def test_unknown_speech_on_a_call_that_rang_out_is_kept_as_a_clip(tmp_path: Path) -> None:
    phone = carrier(tmp_path, ulaw(tmp_path, "greeting", GREETING), 1)
    worker = WorkerProcess("w1", tmp_path)
    heard_dir = tmp_path / "announcements" / "heard"
    try:
        dial(worker, phone, 4.0, tmp_path / "announcements", heard_dir)
        kept = worker.wait_for("early_media_kept", "c1", timeout=10)
        worker.wait_for("hung_up", "c1", timeout=5)
    finally:
        worker.shutdown()
        phone.kill()
    assert kept.status == 408 and 3.5 <= kept.seconds <= 4.5  # our ring timeout, its early media
    with wave.open(kept.file) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
        assert abs(w.getnframes() / 8000 - kept.seconds) < 0.05
    meta = json.loads((heard_dir / f"{kept.clip}.json").read_text())
    assert meta["call"] == "c1" and meta["status"] == 408 and meta["voiced_s"] >= 1.0
    assert [c.id for c in Library(tmp_path / "announcements").heard()] == [kept.clip]
