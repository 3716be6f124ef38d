"""The worker's INVITE guard: refusals before pjsua opens a call's media (no front needed)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from workerproc import WorkerProcess, invite, sip_request, statuses

from softphone import protocol as p
from softphone.guard import RateBucket


def test_a_source_outside_the_allow_list_is_refused_before_pjsua_sees_it(tmp_path: Path) -> None:
    worker = WorkerProcess("w1", tmp_path, ["--allow", "10.0.0.0/8"])
    try:
        sock, _ = invite(worker.sip_port)
        assert statuses(sock) == [403]  # no 100 Trying: pjsua never took the INVITE up
        refused = worker.wait_for("refused")
        assert (refused.caller, refused.status) == ("13800138000", 403)
        assert not [e for e in worker.settle(0.3) if e.TYPE == "incoming"]
    finally:
        worker.kill()


def test_new_invites_over_the_rate_get_503_and_the_calls_in_progress_go_on(tmp_path: Path) -> None:
    worker = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.0/8", "--invite-rate", "5"])
    try:
        caller, _ = invite(worker.sip_port)
        live = worker.wait_for("incoming")  # a call that stays up through the flood
        worker.send(p.Answer(live.call))
        socks = [invite(worker.sip_port, f"1390000{n:04d}")[0] for n in range(60)]
        for sock in socks:
            sock.settimeout(0.05)
        time.sleep(0.5)
        finals = [statuses(sock) for sock in socks]
        refused = [e for e in worker.settle(0.5) if e.TYPE == "refused"]
        taken = [e for e in worker.events if e.TYPE == "incoming" and e.call != live.call]
        for call in taken:
            worker.send(p.Reject(call.call, 603))
        assert len(taken) <= 6 and len(refused) >= 54 and {e.status for e in refused} == {503}
        assert sum(f == [503] for f in finals) == len(refused)  # stateless: no 100 Trying
        assert worker.proc.poll() is None
        hung_up = [e for e in worker.settle(0.5) if e.TYPE == "hung_up" and e.call == live.call]
        assert not hung_up  # the call in progress lasted through it
        assert 200 in statuses(caller, until_final=False)
    finally:
        worker.kill()


def test_the_rate_bucket() -> None:
    now = [0.0]
    bucket = RateBucket(5, lambda: now[0])
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    now[0] = 0.2
    assert [bucket.take() for _ in range(2)] == [True, False]  # one more token in 0.2 s
    assert all(RateBucket(0).take() for _ in range(100))


def test_a_request_line_after_blank_lines_does_not_turn_the_guard_off(tmp_path: Path) -> None:
    """pjsip skips CR/LF before a request line (RFC 3261 7.5); the guard must read the same."""
    worker = WorkerProcess("w1", tmp_path, ["--allow", "10.0.0.0/8"])
    try:
        sock, _ = invite(worker.sip_port, prefix=b"\r\n\r\n")
        assert statuses(sock) == [403]
        again, _ = invite(worker.sip_port)
        assert statuses(again) == [403]  # still on
        assert "INVITE guard cannot read" not in worker.log_path.read_text()
    finally:
        worker.kill()


def test_a_burst_of_calls_ended_at_once_never_takes_the_last_place_of_pjsuas_io_queue(
        tmp_path: Path) -> None:
    """A call's two media sockets keep their places in pjsua's I/O queue (64) for 500 ms
    after it ends, and pjlib aborts the process when a socket finds none. INVITEs as fast
    as they come (no rate limit), each rejected at once as the engine rejects a blocked
    number: the worker gives 503 to the INVITEs that would find no place, lives, keeps its
    call in progress, and takes calls again once the places are back."""
    worker = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.0/8"])  # no --invite-rate
    try:
        caller, _ = invite(worker.sip_port)
        live = worker.wait_for("incoming")
        worker.send(p.Answer(live.call))
        socks, seen, rejected = [], len(worker.events), 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and worker.proc.poll() is None:
            socks.append(invite(worker.sip_port, f"1390000{len(socks):04d}")[0])
            events = worker.settle(0.003)
            for event in events[seen:]:
                if event.TYPE == "incoming":
                    worker.send(p.Reject(event.call, 603))
                    rejected += 1
            seen = len(events)
        assert worker.proc.poll() is None, worker.log_text()[-2000:]
        shed = [e for e in worker.settle(0.3) if e.TYPE == "refused" and e.status == 503]
        assert rejected >= 30 and shed, (rejected, len(shed), len(socks))
        assert not [e for e in worker.events if e.TYPE == "hung_up" and e.call == live.call]
        time.sleep(0.8)  # every place is back
        again, _ = invite(worker.sip_port, "13700000001")
        worker.send(p.Reject(worker.wait_for("incoming", timeout=3,
                                             where=lambda e: e.caller == "13700000001").call, 603))
        assert statuses(again)[-1] == 603
        assert 200 in statuses(caller, until_final=False)
    finally:
        worker.kill()


def test_an_invite_offering_many_audio_lines_holds_a_place_for_each(tmp_path: Path) -> None:
    """pjsua opens RTP and RTCP for every audio line of an offer, up to 16: two such INVITEs
    within half a second would take 64 sockets and abort the worker. The second gets 503,
    and the first call, answered, lives on."""
    worker = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.0/8"])
    try:
        first, _ = invite(worker.sip_port, "13700000001", lines=16)
        call = worker.wait_for("incoming").call
        worker.send(p.Answer(call))
        assert 200 in statuses(first, until_final=False)
        second, _ = invite(worker.sip_port, "13700000002", lines=16)
        assert statuses(second) == [503]
        refused = worker.wait_for("refused")
        assert (refused.caller, refused.status) == ("13700000002", 503)
        third, _ = invite(worker.sip_port, "13700000003", lines=14)  # 30 units in all: fits
        worker.send(p.Reject(worker.wait_for("incoming").call, 603))
        assert statuses(third)[-1] == 603
        assert worker.proc.poll() is None
        assert not [e for e in worker.settle(0.3) if e.TYPE == "hung_up" and e.call == call]
    finally:
        worker.kill()


def test_a_reoffer_with_more_audio_lines_and_an_invite_with_replaces_are_refused(
        tmp_path: Path) -> None:
    worker = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.0/8"])
    try:
        sock, raw_call_id = invite(worker.sip_port)
        call_id = raw_call_id.decode()
        call = worker.wait_for("incoming").call
        worker.send(p.Answer(call))
        ok = b""
        while b" 200 " not in ok.split(b"\r\n", 1)[0]:
            ok = sock.recv(65535)
        to_tag = re.search(rb"\r\nTo:[^\r]*;tag=([^;\r]+)", ok).group(1).decode()  # type: ignore[union-attr]
        port = worker.sip_port
        sock.sendto(sip_request(sock, port, "ACK", call_id, to_tag=to_tag, lines=0),
                    ("127.0.0.1", port))
        sock.sendto(sip_request(sock, port, "INVITE", call_id, cseq=2, to_tag=to_tag, lines=3),
                    ("127.0.0.1", port))
        assert statuses(sock) == [488]  # more lines than the call holds: no new sockets
        sock.sendto(sip_request(sock, port, "INVITE", call_id, cseq=3, to_tag=to_tag),
                    ("127.0.0.1", port))
        assert statuses(sock)[-1] == 200  # a re-offer of its one line goes on to pjsua
        replacing, _ = invite(port, "13700000004", headers=[
            f"Replaces: {call_id};to-tag={to_tag};from-tag={call_id[:8]}"])
        assert statuses(replacing) == [420]
        assert [e.status for e in worker.settle(0.3) if e.TYPE == "refused"] == [488, 420]
        assert not [e for e in worker.events if e.TYPE == "hung_up"]  # the call is up still
    finally:
        worker.kill()
