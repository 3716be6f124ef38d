"""Inbound calls from SIPp into a real worker process: caller, reject, refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from workerproc import Sipp, WorkerProcess

from softphone import protocol as p


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.0/8"])
    yield w
    w.kill()


@pytest.mark.parametrize(
    ("extra_header", "expected_caller"),
    [
        ("X-Case: none", "13800138000"),
        ("P-Asserted-Identity: <sip:+8613911112222@carrier.example;user=phone>",
         "+8613911112222"),
    ],
    ids=["from", "p-asserted-identity"],
)
def test_inbound_caller_then_reject_603(
    worker: WorkerProcess, tmp_path: Path, extra_header: str, expected_caller: str
) -> None:
    sipp = Sipp("uac_invite_expect_603.xml", tmp_path, "-s", "961108",
                "-key", "caller", "13800138000", "-key", "extra_header", extra_header,
                remote=f"127.0.0.1:{worker.sip_port}")
    try:
        incoming = worker.wait_for("incoming")
        assert incoming.caller == expected_caller
        assert incoming.callee == "961108"
        assert incoming.source.startswith("127.0.0.1:")
        assert incoming.call == "w1-in-1"
        assert incoming.call_id
        worker.send(p.Reject(incoming.call, 603))
        hung_up = worker.wait_for("hung_up", incoming.call)
        assert (hung_up.by, hung_up.status) == ("local", 603)
        assert sipp.wait() == 0, sipp.report()
    finally:
        sipp.kill()
    assert worker.shutdown() == 0
    kinds = [e.TYPE for e in worker.of_call(incoming.call)]
    assert kinds == ["incoming", "hung_up"]


def test_source_outside_allow_list_gets_403(tmp_path: Path) -> None:
    worker = WorkerProcess("w2", tmp_path, ["--allow", "10.0.0.0/8"])
    sipp = Sipp("uac_invite_expect_403.xml", tmp_path, "-s", "961108",
                "-key", "caller", "13800138000", remote=f"127.0.0.1:{worker.sip_port}")
    try:
        refused = worker.wait_for("refused")
        assert refused.caller == "13800138000"
        assert refused.source.startswith("127.0.0.1:")
        assert sipp.wait() == 0, sipp.report()
        assert worker.shutdown() == 0
        assert not [e for e in worker.events if e.TYPE == "incoming"]
    finally:
        sipp.kill()
        worker.kill()


def test_malformed_command_gets_error_and_worker_keeps_working(tmp_path: Path) -> None:
    worker = WorkerProcess("w3", tmp_path)
    try:
        worker.send("this is not json")
        assert "not JSON" in worker.wait_for("error").message
        worker.send('{"type": "dial", "call": 7}')
        assert "dial.call" in worker.wait_for("error").message
        worker.send('{"type": "launch_rockets"}')
        assert "unknown command" in worker.wait_for("error").message
        worker.send(p.Hangup("nope"))
        assert worker.wait_for("error").call == "nope"
        worker.send(p.Stats())
        assert worker.wait_for("stats").calls == 0
        assert worker.shutdown() == 0
    finally:
        worker.kill()


def test_sigterm_and_stdin_eof_exit_cleanly(tmp_path: Path) -> None:
    by_signal = WorkerProcess("w4", tmp_path)
    by_eof = WorkerProcess("w5", tmp_path)
    try:
        by_signal.proc.terminate()
        assert by_signal.proc.wait(8) == 0
        assert by_eof.proc.stdin is not None
        by_eof.proc.stdin.close()
        assert by_eof.proc.wait(8) == 0
    finally:
        by_signal.kill()
        by_eof.kill()
