"""The worker's INVITE guard: refusals before pjsua opens a call's media (no front needed)."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

from workerproc import WorkerProcess

from softphone import protocol as p
from softphone.guard import RateBucket


def invite(port: int, caller: str = "13800138000",
           prefix: bytes = b"") -> tuple[socket.socket, bytes]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    local = sock.getsockname()[1]
    call_id = uuid.uuid4().hex
    sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {local + 1} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    uri = f"sip:961108@127.0.0.1:{port}"
    message = "\r\n".join([
        f"INVITE {uri} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id[:12]}",
        f"From: <sip:{caller}@127.0.0.1:{local}>;tag={call_id[:8]}", f"To: <{uri}>",
        f"Call-ID: {call_id}", "CSeq: 1 INVITE", f"Contact: <sip:{caller}@127.0.0.1:{local}>",
        "Max-Forwards: 70", "Content-Type: application/sdp", f"Content-Length: {len(sdp)}", "",
        sdp])
    sock.sendto(prefix + message.encode(), ("127.0.0.1", port))
    return sock, call_id.encode()


def statuses(sock: socket.socket, until_final: bool = True) -> list[int]:
    got = []
    while True:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return got
        if data.startswith(b"SIP/2.0 "):
            got.append(int(data.split()[1]))
            if until_final and got[-1] >= 200:
                return got


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
