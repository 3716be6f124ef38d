"""Texts (SIP MESSAGE) through a real worker process: in, out, and bodies no phone would send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textpeer import TextPeer
from workerproc import WorkerProcess

from softphone import protocol as p


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.0/8"])
    yield w
    w.kill()


@pytest.fixture
def peer() -> Iterator[TextPeer]:
    peer = TextPeer()
    yield peer
    peer.close()


def test_a_text_arrives_whole_in_utf8(worker: WorkerProcess, peer: TextPeer) -> None:
    body = "我接到一个电话，说我涉嫌洗钱，要把钱转到安全账户。是真的吗？"
    status = peer.send(("127.0.0.1", worker.sip_port), "121100130", "13812347490", body)
    assert status == 200  # pjsua answers before anyone has looked at the text
    text = worker.wait_for("text_received")
    assert (text.sender, text.to, text.body, text.problem) == ("13812347490", "121100130", body, "")
    assert text.content_type.startswith("text/plain")
    assert text.source == f"127.0.0.1:{peer.port}"
    assert text.text == "w1-txt-1"


def test_a_body_that_is_not_utf8_is_reported_not_passed_on(worker: WorkerProcess,
                                                           peer: TextPeer) -> None:
    peer.send(("127.0.0.1", worker.sip_port), "121100130", "13812347490",
              "安全账户".encode("gbk"), "text/plain;charset=GBK")
    text = worker.wait_for("text_received")
    assert (text.body, text.problem) == ("", "the body is not valid UTF-8")


def test_a_text_goes_out_and_its_answer_comes_back(worker: WorkerProcess, peer: TextPeer) -> None:
    body = "您的咨询已收到。如果已经转账，请马上拨打110报警。"
    worker.send(p.SendText("r1", f"sip:13812347490@127.0.0.1:{peer.port}", body, "121100130"))
    got = peer.next_text()
    assert (got.to_user, got.from_user, got.text) == ("13812347490", "121100130", body)
    assert got.headers["content-type"].startswith("text/plain")
    status = worker.wait_for("text_status", where=lambda e: e.text == "r1")
    assert status.status == 200


def test_a_refused_text_reports_the_far_end_status(worker: WorkerProcess) -> None:
    peer = TextPeer(status=480)
    try:
        for n in (1, 2):  # the same body twice: each answer goes to its own text
            worker.send(p.SendText(f"r{n}", f"sip:13812347490@127.0.0.1:{peer.port}", "同一条",
                                   "121100130"))
        statuses = {worker.wait_for("text_status").text, worker.wait_for("text_status").text}
        assert statuses == {"r1", "r2"}
        assert all(e.status == 480 for e in worker.events if e.TYPE == "text_status")
    finally:
        peer.close()


def test_a_text_from_outside_the_allowed_sources_is_refused(tmp_path: Path, peer: TextPeer) -> None:
    w = WorkerProcess("w2", tmp_path, ["--allow", "10.0.0.0/8"])
    try:
        peer.send(("127.0.0.1", w.sip_port), "121100130", "13812347490", "你好")
        refused = w.wait_for("refused")
        assert refused.caller == "13812347490"
        assert not [e for e in w.settle(0.3) if e.TYPE == "text_received"]
    finally:
        w.kill()


def test_texts_past_pjsuas_buddy_limit_do_not_abort_the_worker(worker: WorkerProcess,
                                                               peer: TextPeer) -> None:
    """pjsua holds at most 256 buddies and aborts past them; every text needs one."""
    for n in range(300):
        worker.send(p.SendText(f"r{n}", f"sip:1380000{n:04d}@127.0.0.1:{peer.port}", "警告",
                               "121100130"))
    answered = {worker.wait_for("text_status", timeout=20).text for _ in range(300)}
    assert len(answered) == 300
    assert worker.proc.poll() is None
