"""Outbound calls from a real worker to SIPp UAS scenarios."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from workerproc import RtpSink, Sipp, WorkerProcess, make_tone

from softphone import protocol as p


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess("w1", tmp_path)
    yield w
    w.kill()


def dial(worker: WorkerProcess, call: str, sipp: Sipp, ring_timeout_s: float = 10) -> None:
    worker.send(p.Dial(call, f"sip:13800138000@{sipp.uri_host}", caller_id="96110",
                       ring_timeout_s=ring_timeout_s, headers={"X-Task-Id": f"task-{call}"}))


@pytest.mark.parametrize(
    ("scenario", "outcome", "status"),
    [("uas_busy_486.xml", "busy", 486), ("uas_not_found_404.xml", "failed", 404)],
)
def test_final_response_is_reported(
    worker: WorkerProcess, tmp_path: Path, scenario: str, outcome: str, status: int
) -> None:
    sipp = Sipp(scenario, tmp_path)
    try:
        dial(worker, "c1", sipp)
        assert worker.wait_for(outcome, "c1").status == status
        hung_up = worker.wait_for("hung_up", "c1")
        assert (hung_up.by, hung_up.status, hung_up.duration_s) == ("remote", status, 0.0)
        assert sipp.wait() == 0, sipp.report()
    finally:
        sipp.kill()
    assert worker.shutdown() == 0
    assert [e.TYPE for e in worker.of_call("c1")] == [outcome, "hung_up"]


def test_ring_timeout_cancels_and_reports_no_answer(worker: WorkerProcess, tmp_path: Path) -> None:
    sipp = Sipp("uas_ring_until_cancel.xml", tmp_path)
    try:
        dial(worker, "c1", sipp, ring_timeout_s=1)
        assert worker.wait_for("ringing", "c1").status == 180
        assert worker.wait_for("no_answer", "c1", timeout=5).status == 408
        assert worker.wait_for("hung_up", "c1").by == "local"
        assert sipp.wait() == 0, sipp.report()
    finally:
        sipp.kill()
    assert worker.shutdown() == 0


def test_answered_call_sends_rtp_and_local_hangup(worker: WorkerProcess, tmp_path: Path) -> None:
    sink = RtpSink()
    tone = make_tone(tmp_path / "warning.wav", 1.0)
    sipp = Sipp("uas_ring_answer_until_bye.xml", tmp_path, "-key", "sink", str(sink.port))
    try:
        dial(worker, "c1", sipp)
        assert worker.wait_for("ringing", "c1").status == 180
        worker.wait_for("answered", "c1")
        worker.send(p.Play("c1", str(tone), loop=True))
        assert sink.count_packets(1.0) >= 25  # 20 ms packets: ~50 per second
        worker.send(p.Hangup("c1"))
        hung_up = worker.wait_for("hung_up", "c1")
        assert hung_up.by == "local" and hung_up.duration_s >= 1.0
        assert sipp.wait() == 0, sipp.report()
    finally:
        sipp.kill()
        sink.close()
    assert worker.shutdown() == 0
    assert [e.TYPE for e in worker.of_call("c1")] == ["ringing", "answered", "hung_up"]


def test_four_concurrent_calls_then_worker_full(worker: WorkerProcess, tmp_path: Path) -> None:
    sink = RtpSink()
    sipp = Sipp("uas_ring_answer_until_bye.xml", tmp_path, "-key", "sink", str(sink.port),
                calls=4)
    calls = [f"c{i}" for i in range(1, 5)]
    try:
        for call in calls:
            dial(worker, call, sipp)
        for call in calls:
            worker.wait_for("answered", call)
        dial(worker, "c5", sipp)
        assert worker.wait_for("failed", "c5") == p.Failed("c5", 503, "worker full")
        assert worker.wait_for("hung_up", "c5").status == 503
        for call in calls:
            worker.send(p.Hangup(call))
        for call in calls:
            assert worker.wait_for("hung_up", call).by == "local"
        assert sipp.wait() == 0, sipp.report()
        worker.send(p.Stats())
        assert worker.wait_for("stats").calls == 0
    finally:
        sipp.kill()
        sink.close()
    assert worker.shutdown() == 0
    assert "Assertion" not in worker.log_text()


def test_shutdown_hangs_up_live_calls(worker: WorkerProcess, tmp_path: Path) -> None:
    sink = RtpSink()
    sipp = Sipp("uas_ring_answer_until_bye.xml", tmp_path, "-key", "sink", str(sink.port))
    try:
        dial(worker, "c1", sipp)
        worker.wait_for("answered", "c1")
        assert worker.shutdown() == 0
        assert worker.wait_for("hung_up", "c1", timeout=0.1).by == "local"
        assert sipp.wait() == 0, sipp.report()
    finally:
        sipp.kill()
        sink.close()
