"""Texts (SIP MESSAGE, RFC 3428) through the Kamailio front: what passes, what it refuses.

Real peers on loopback: Debian's Kamailio from the generated config, in front of
a SIPp UAS playing the worker (it answers the dispatcher's OPTIONS pings and
every MESSAGE 200, and traces what it receives; two of them, one answering 503,
for failover), and a small UDP client sending raw MESSAGE requests. pjsua answers every MESSAGE 200 before the engine
sees it, so the refusals (404, 400, 415, 413) must come from the front, and a
refused text must never reach the worker: each refused text is followed by a
good one, and once the good one is at the worker the refused one is not.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kamailioctl import Kamailio, banned, options_status
from workerproc import Sipp, free_port_run

from front import BalancerSetup, render_cfg, render_dispatcher_list, setup_from_config
from sip_config.schema import Config

SMS = "121100130"
HOTLINE, AREA = "961108", "0591"
CARRIER = "127.0.0.1"  # allowed, never banned for its rate: the tests' default source
SCANNED = "127.0.0.3"  # allowed, not exempt: banned when it floods
STRANGER = "127.0.0.2"  # not in sip.allowed_sources

WORKER_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A worker behind the front: 200 to the dispatcher's OPTIONS pings, STATUS to every text. -->
<scenario name="worker answering texts STATUS">
  <recv request="OPTIONS" optional="true" next="ping"/>
  <recv request="MESSAGE"/>
  <send next="done">
    <![CDATA[
      SIP/2.0 STATUS
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="ping"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="done"/>
</scenario>
"""


@dataclass(frozen=True)
class Reply:
    status: int | None
    """None: no reply within the wait."""
    text: str = ""

    def header(self, name: str) -> str | None:
        return header_of(self.text, name)


def header_of(text: str, name: str) -> str | None:
    """The value of the first ``name`` header in a SIP message's text."""
    found = re.search(rf"^{re.escape(name)}:\s*(.*?)\r?$", text, re.MULTILINE | re.IGNORECASE)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Received:
    """A MESSAGE as the worker got it."""

    call_id: str
    headers: str
    body: bytes


def send_text(port: int, to: str, body: bytes, content_type: str | None = "text/plain",
              *, source: str = CARRIER, timeout: float = 3.0, call_id: str = "",
              to_tag: str = "") -> Reply:
    """One MESSAGE to ``sip:TO@127.0.0.1:PORT`` from ``source`` (inside a dialog with
    ``to_tag``); its final reply."""
    call_id = call_id or f"{uuid.uuid4().hex}@{source}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        local = f"{source}:{s.getsockname()[1]}"
        user = f"{to}@" if to else ""
        head = (
            f"MESSAGE sip:{user}127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:13800138000@{local}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{user}127.0.0.1:{port}>{f';tag={to_tag}' if to_tag else ''}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\n"
            + (f"Content-Type: {content_type}\r\n" if content_type is not None else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        s.sendto(head.encode() + body, ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                text = s.recv(65535).decode(errors="replace")
            except TimeoutError:
                break
            status = int(text.split(" ", 2)[1])
            if status >= 200:
                return Reply(status, text)
    return Reply(None)


class TextFront:
    """Kamailio from the generated config in front of SIPp workers, one per ``answers``
    (what it answers texts: ``200 OK``, ``503 Service Unavailable``; pings get it too)."""

    def __init__(self, work_dir: Path, sms: dict[str, Any] | None,
                 answers: tuple[str, ...] = ("200 OK",), **balancer: Any) -> None:
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port_run(1 + len(answers))  # the front, then its workers
        config = Config.model_validate({
            "engine": {"workers": len(answers)},
            "hotline": {"number": HOTLINE, "area_code": AREA},
            **({"sms": sms} if sms is not None else {}),
            "sip": {"listen": {"port": self.port},
                    "allowed_sources": [f"{CARRIER}/32", f"{SCANNED}/32"],
                    "balancer": {"flood_exempt": [f"{CARRIER}/32"], **balancer}},
        })
        self.setup: BalancerSetup = setup_from_config(config, work_dir / "kamailio",
                                                      ping_interval_s=1, fr_timer_ms=1000)
        self.workers: list[Sipp] = []
        self.front: Kamailio | None = None
        try:
            for worker, answer in zip(self.setup.workers, answers, strict=True):
                scenario = work_dir / f"uas_{worker.name}_texts.xml"
                scenario.write_text(WORKER_UAS.replace("STATUS", answer), encoding="ascii")
                self.workers.append(Sipp(str(scenario), work_dir, "-trace_msg",
                                         calls=1_000_000, timeout_s=300, port=worker.port))
            for worker in self.setup.workers:  # each answers before the front sends it texts
                deadline = time.monotonic() + 10
                while options_status(worker.port, timeout=0.2) != 200:
                    assert time.monotonic() < deadline, f"SIPp worker {worker.name} never answered"
            self.front = Kamailio(self.write_files(), self.port, self.setup.control_socket)
        except BaseException:
            self.stop()
            raise

    def write_files(self) -> Path:
        folder = self.setup.list_file.parent
        folder.mkdir(parents=True, exist_ok=True)
        self.setup.list_file.write_text(render_dispatcher_list(self.setup), encoding="utf-8")
        cfg = folder / "kamailio.cfg"
        cfg.write_text(render_cfg(self.setup), encoding="utf-8")
        return cfg

    def send(self, to: str, body: bytes, content_type: str | None = "text/plain",
             **kwargs: Any) -> Reply:
        return send_text(self.port, to, body, content_type, **kwargs)

    def received(self, worker: str = "*") -> dict[str, Received]:
        """The MESSAGEs the workers (or one: ``w1``) have got so far (SIPp's -trace_msg),
        by Call-ID."""
        found: dict[str, Received] = {}
        for path in self.work_dir.glob(f"uas_{worker}_texts_*_messages.log"):
            data = path.read_bytes()
            for block in re.split(rb"\n-{20,}[^\n]*\n", data):
                start = block.find(b"MESSAGE sip:")
                if start < 0:
                    continue
                head, _, body = block[start:].partition(b"\r\n\r\n")
                text = head.decode(errors="replace")
                call_id, length = header_of(text, "Call-ID"), header_of(text, "Content-Length")
                assert call_id and length, text
                found[call_id] = Received(call_id, text, body[:int(length)])
        return found

    def wait_received(self, call_id: str, timeout: float = 5.0) -> Received | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (got := self.received().get(call_id)) is not None:
                return got
            time.sleep(0.05)
        return None

    def log(self) -> str:
        return self.front.log()[-4000:] if self.front is not None else ""

    def stop(self) -> None:
        for worker in self.workers:
            worker.kill()
        if self.front is not None:
            self.front.stop()


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TextFront]:
    front = TextFront(tmp_path_factory.mktemp("texts"), sms={"number": SMS})
    try:
        yield front
    finally:
        front.stop()


# ------------------------------------------------------------ what passes

CHINESE = "你好，我接到一个自称公安局的电话，让我把钱转到安全账户。"  # 29 characters, 3 bytes each

PASSES = [
    # (to, Content-Type, body)
    pytest.param(SMS, "text/plain;charset=UTF-8", CHINESE.encode(), id="sms-line-chinese"),
    pytest.param(AREA + HOTLINE, "text/plain", CHINESE.encode(), id="hotline-with-area-code"),
    pytest.param(HOTLINE, "text/plain", b"hello", id="hotline-short"),
    pytest.param("+86591" + HOTLINE, "text/plain", b"hello", id="hotline-international"),
    pytest.param(AREA + SMS, "Text/Plain ; Charset=utf-8", b"hello", id="sms-area-code-type-case"),
    pytest.param(SMS, "text/plain", ("中" * 1000).encode(), id="1000-chinese-characters"),
    pytest.param(SMS, "text/plain", b"a" * 1000, id="1000-ascii-characters"),
    pytest.param(SMS, "text/plain", ("😀" * 1000).encode(), id="1000-four-byte-characters"),
    pytest.param(SMS, "text/plain", ("第一行\r\n" * 200).encode(), id="1000-with-line-ends"),
    # not UTF-8 (GBK): not the front's to refuse; the engine drops it
    pytest.param(SMS, "text/plain", ("你好" * 600).encode("gbk"), id="not-utf-8-left-to-engine"),
]


@pytest.mark.parametrize(("to", "content_type", "body"), PASSES)
def test_a_text_to_our_lines_reaches_the_worker(to: str, content_type: str, body: bytes,
                                                texts: TextFront) -> None:
    reply = texts.send(to, body, content_type)
    assert reply.status == 200, texts.log()
    got = texts.wait_received(reply_call_id(reply))
    assert got is not None, texts.log()
    assert got.body == body  # byte for byte
    # the worker learns the sender's address from the front; no Record-Route (no dialog)
    source = header_of(got.headers, "X-Source-Address")
    assert source is not None and source.startswith(f"{CARRIER}:"), got.headers
    assert "Record-Route" not in got.headers


def reply_call_id(reply: Reply) -> str:
    call_id = reply.header("Call-ID")
    assert call_id, reply.text
    return call_id


# ------------------------------------------------------- what it refuses

REFUSED = [
    # (to, Content-Type, body, status, reason phrase part)
    pytest.param("13800138000", "text/plain", b"hello", 404, "Not Found", id="unknown-number"),
    pytest.param("", "text/plain", b"hello", 404, "Not Found", id="no-user-part"),
    pytest.param(HOTLINE + "1", "text/plain", b"hello", 404, "Not Found", id="hotline-plus-digit"),
    pytest.param(SMS, "application/json", b'{"text": "hello"}', 415, "Unsupported", id="json"),
    pytest.param(SMS, "text/html", b"<p>hello</p>", 415, "Unsupported", id="html"),
    pytest.param(SMS, "text/plainer", b"hello", 415, "Unsupported", id="text-plainer"),
    pytest.param(SMS, None, b"hello", 415, "Unsupported", id="no-content-type"),
    pytest.param(SMS, "text/plain", b"", 400, "Empty text", id="empty"),
    pytest.param(SMS, "text/plain", ("中" * 1001).encode(), 413, "over 1000", id="1001-chinese"),
    pytest.param(SMS, "text/plain", b"a" * 1001, 413, "over 1000", id="1001-ascii"),
    pytest.param(SMS, "text/plain", ("😀" * 1001).encode(), 413, "over 1000", id="1001-four-byte"),
    pytest.param(SMS, "text/plain", ("第一行\r\n" * 200 + "x").encode(), 413, "over 1000",
                 id="1001-with-line-ends"),
    # longer than Kamailio's 8 KiB pv buffer: pcre_match could not even see it
    pytest.param(SMS, "text/plain", ("中" * 3000).encode(), 413, "over 1000", id="9000-bytes"),
]


@pytest.mark.parametrize(("to", "content_type", "body", "status", "reason"), REFUSED)
def test_the_front_refuses_and_the_worker_never_sees_it(
        to: str, content_type: str | None, body: bytes, status: int, reason: str,
        texts: TextFront) -> None:
    refused = texts.send(to, body, content_type)
    assert refused.status == status, refused.text + texts.log()
    assert reason in refused.text.split("\r\n", 1)[0], refused.text
    if status == 415:
        assert refused.header("Accept") == "text/plain", refused.text
    # a good text after it reaches the worker; the refused one never did
    good = texts.send(SMS, b"after a refusal")
    assert good.status == 200 and texts.wait_received(reply_call_id(good)) is not None
    assert reply_call_id(refused) not in texts.received()


def test_a_text_inside_a_dialog_is_checked_too(texts: TextFront) -> None:
    refused = texts.send(SMS, b'{"text": "hello"}', "application/json", to_tag="abc")
    assert refused.status == 415 and refused.header("Accept") == "text/plain", refused.text
    # a good one is routed by its Route set, like any in-dialog request: it has none
    assert texts.send(SMS, b"hello", to_tag="abc").status == 404
    assert reply_call_id(refused) not in texts.received()


def test_other_methods_get_405_naming_message(texts: TextFront) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((CARRIER, 0))
        s.settimeout(3)
        local = f"{CARRIER}:{s.getsockname()[1]}"
        s.sendto((f"SUBSCRIBE sip:{SMS}@127.0.0.1:{texts.port} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                  f"Max-Forwards: 70\r\nFrom: <sip:x@{local}>;tag=1\r\n"
                  f"To: <sip:{SMS}@127.0.0.1>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
                  f"CSeq: 1 SUBSCRIBE\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n").encode(),
                 ("127.0.0.1", texts.port))
        reply = s.recv(65535).decode()
    assert reply.startswith("SIP/2.0 405 "), reply
    assert header_of(reply, "Allow") == "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE"


def test_a_stranger_gets_403_and_reaches_no_worker(texts: TextFront) -> None:
    refused = texts.send(SMS, b"hello", source=STRANGER)
    assert refused.status == 403
    good = texts.send(SMS, b"after the stranger")
    assert good.status == 200 and texts.wait_received(reply_call_id(good)) is not None
    assert reply_call_id(refused) not in texts.received()


# -------------------------------------------------- floods, on their own front


@pytest.fixture()
def fresh(tmp_path: Path) -> Iterator[TextFront]:
    front = TextFront(tmp_path, sms={"number": SMS, "max_chars": 70}, ban_s=60)
    try:
        yield front
    finally:
        front.stop()


def test_a_text_flood_is_banned_like_a_call_flood(fresh: TextFront) -> None:
    replies: list[int | None] = []
    while len(replies) < 60 and replies[-5:] != [None] * 5:  # 5 unanswered: banned
        replies.append(fresh.send(SMS, b"spam", source=SCANNED, timeout=0.3).status)
    first_silence = replies.index(None)
    assert 16 <= first_silence <= 48, replies  # pike: between x and 3x
    assert set(replies[:first_silence]) <= {200, 503}, replies  # 503: the worker's guard
    assert all(r is None for r in replies[first_silence:]), replies
    assert banned(fresh.front.control_socket) == {SCANNED}  # type: ignore[union-attr]
    assert "flood from 127.0.0.3" in fresh.log()


def test_the_worker_guard_sheds_texts_over_its_rate(fresh: TextFront) -> None:
    """From the carrier (never banned): past 25 new calls and texts a second the only
    worker is full and the sender is asked to come back in 1 s."""
    start = time.monotonic()
    replies = [fresh.send(SMS, b"busy", timeout=1.0) for _ in range(60)]
    assert time.monotonic() - start < 1.0, "too slow to exceed the rate"
    statuses = [r.status for r in replies]
    assert set(statuses) == {200, 503}, statuses
    assert 25 <= statuses.count(200) <= 52, statuses  # 25 in each of at most two 1 s windows
    shed = next(r for r in replies if r.status == 503)
    assert shed.header("Retry-After") == "1" and "Too many new texts" in shed.text


def test_max_chars_comes_from_sms_config(fresh: TextFront) -> None:
    assert fresh.send(SMS, ("中" * 70).encode()).status == 200
    too_long = fresh.send(SMS, ("中" * 71).encode())
    assert too_long.status == 413 and "over 70 characters" in too_long.text


def test_the_largest_max_chars_is_counted_too(tmp_path: Path) -> None:
    """sms.max_chars up to 10000: 30000 bytes of Chinese, past Kamailio's default 8 KiB pv
    buffer (pv_buffer_size is raised to fit)."""
    front = TextFront(tmp_path, sms={"number": SMS, "max_chars": 10000})
    try:
        assert front.send(SMS, ("中" * 10000).encode()).status == 200, front.log()
        assert front.send(SMS, ("中" * 10001).encode()).status == 413, front.log()
        assert "ERROR" not in front.log()
    finally:
        front.stop()


def test_a_worker_answering_503_hands_the_text_to_the_next(tmp_path: Path) -> None:
    front = TextFront(tmp_path, sms={"number": SMS},
                      answers=("503 Service Unavailable", "200 OK"))
    try:
        replies = [front.send(SMS, CHINESE.encode()) for _ in range(4)]
        assert [r.status for r in replies] == [200] * 4, front.log()
        call_ids = {reply_call_id(r) for r in replies}
        assert call_ids <= set(front.received("w2")), front.log()
        assert call_ids & set(front.received("w1")), "round-robin never tried w1"
        assert "answered 503 to text" in front.log() and "fails over to" in front.log()
    finally:
        front.stop()


def test_texts_go_round_robin_with_call_load_too(tmp_path: Path) -> None:
    """Call-load counts calls: a text is not one (no load kept for its Call-ID)."""
    front = TextFront(tmp_path, sms={"number": SMS}, answers=("200 OK", "200 OK"),
                      algorithm="call-load")
    try:
        replies = [front.send(SMS, CHINESE.encode()) for _ in range(4)]
        assert [r.status for r in replies] == [200] * 4, front.log()
        assert len(front.received("w1")) == len(front.received("w2")) == 2
        assert "ERROR" not in front.log()
    finally:
        front.stop()


def test_without_an_sms_line_only_the_hotline_takes_texts(tmp_path: Path) -> None:
    front = TextFront(tmp_path, sms=None)
    try:
        assert front.send(AREA + HOTLINE, CHINESE.encode()).status == 200
        assert front.send(SMS, CHINESE.encode()).status == 404
        assert front.send(HOTLINE, ("中" * 1001).encode()).status == 413  # the default limit
    finally:
        front.stop()
