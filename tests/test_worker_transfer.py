"""Sending a call elsewhere: 302 redirect before answer, REFER after answer."""

from __future__ import annotations

from pathlib import Path

from workerproc import RtpSink, Sipp, WorkerProcess

from softphone import protocol as p


def test_redirect_answers_302_with_contact(tmp_path: Path) -> None:
    worker = WorkerProcess("w1", tmp_path)
    sipp = Sipp("uac_invite_expect_302.xml", tmp_path, "-s", "961108",
                "-key", "caller", "13800138000", "-key", "extra_header", "X-Case: none",
                remote=f"127.0.0.1:{worker.sip_port}")
    try:
        call = worker.wait_for("incoming").call
        worker.send(p.Redirect(call, "sip:110@127.0.0.1:5999"))
        hung_up = worker.wait_for("hung_up", call)
        assert (hung_up.by, hung_up.status) == ("local", 302)
        assert sipp.wait() == 0, sipp.report()
        assert worker.shutdown() == 0
    finally:
        sipp.kill()
        worker.kill()


def test_transfer_reports_final_notify_status(tmp_path: Path) -> None:
    worker = WorkerProcess("w1", tmp_path)
    sink = RtpSink()
    sipp = Sipp("uas_answer_accept_refer.xml", tmp_path, "-key", "sink", str(sink.port))
    try:
        worker.send(p.Dial("c1", f"sip:13800138000@{sipp.uri_host}", ring_timeout_s=5))
        worker.wait_for("answered", "c1")
        worker.send(p.Transfer("c1", "sip:110@127.0.0.1:5999"))
        assert worker.wait_for("transferred", "c1").status == 200
        worker.send(p.Hangup("c1"))
        assert worker.wait_for("hung_up", "c1").by == "local"
        assert sipp.wait() == 0, sipp.report()
        assert worker.shutdown() == 0
    finally:
        sipp.kill()
        sink.close()
        worker.kill()
