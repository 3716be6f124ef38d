"""A SIP peer for texts on loopback: sends MESSAGE requests and answers the ones it gets.

It speaks plain SIP over UDP (RFC 3428 MESSAGE, no dialogs, no retransmission
needed on loopback), so a test can send bodies no softphone would (bytes that
are not UTF-8, an empty body, any content type) and play the carrier's SMS
gateway that receives replies and warning texts, answering each with a chosen
status.
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class Received:
    """A MESSAGE that reached the peer."""

    request_uri: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def to_user(self) -> str:
        return self.request_uri.split(":", 1)[1].split("@", 1)[0]

    @property
    def from_user(self) -> str:
        value = self.headers.get("from", "")
        return value.split("sip:", 1)[1].split("@", 1)[0] if "sip:" in value else ""


@dataclass
class TextPeer:
    status: int = 200
    """What the peer answers to a MESSAGE (e.g. 200, 480, 503)."""
    sock: socket.socket = field(init=False)
    received: queue.Queue[Received] = field(init=False, default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._answers: dict[str, queue.Queue[int]] = {}
        self._cseq = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    def send(self, target: tuple[str, int], to: str, sender: str, body: bytes | str,
             content_type: str = "text/plain;charset=UTF-8", timeout: float = 3.0,
             extra: str = "") -> int | None:
        """Send one MESSAGE; returns the final status, or None when none came."""
        data = body.encode() if isinstance(body, str) else body
        call_id = uuid.uuid4().hex
        answers: queue.Queue[int] = queue.Queue()
        self._answers[call_id] = answers
        host, port = target
        head = (f"MESSAGE sip:{to}@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]}\r\n"
                f"From: <sip:{sender}@127.0.0.1:{self.port}>;tag={uuid.uuid4().hex[:8]}\r\n"
                f"To: <sip:{to}@{host}:{port}>\r\n"
                f"Call-ID: {call_id}\r\n"
                f"CSeq: {next(self._cseq)} MESSAGE\r\n"
                "Max-Forwards: 70\r\n"
                + (f"Content-Type: {content_type}\r\n" if content_type else "")
                + extra
                + f"Content-Length: {len(data)}\r\n\r\n")
        self.sock.sendto(head.encode() + data, target)
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    status = answers.get(timeout=left)
                except queue.Empty:
                    return None
                if status >= 200:
                    return status
            return None
        finally:
            self._answers.pop(call_id, None)

    def next_text(self, timeout: float = 5.0) -> Received:
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no MESSAGE reached the peer on port {self.port} "
                                 f"in {timeout} s") from None

    def quiet(self, seconds: float) -> list[Received]:
        """Every MESSAGE that arrives within ``seconds`` (a test that expects none)."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.received.get(timeout=left))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        self._stop.set()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(65535)
            except OSError:
                return
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("utf-8", "replace").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers.setdefault(name.strip().lower(), value.strip())
            first = lines[0].split()
            if first and first[0] == "SIP/2.0":
                answers = self._answers.get(headers.get("call-id", ""))
                if answers is not None:
                    answers.put(int(first[1]))
                continue
            if len(first) < 2:
                continue
            if first[0] == "MESSAGE":
                self.received.put(Received(first[1], headers, body, time.monotonic()))
            status = self.status if first[0] == "MESSAGE" else 200
            reply = (f"SIP/2.0 {status} {'OK' if status == 200 else 'Refused'}\r\n"
                     + "".join(f"{n}: {headers[n.lower()]}\r\n"
                               for n in ("Via", "From", "To", "Call-ID", "CSeq")
                               if n.lower() in headers)
                     + "Content-Length: 0\r\n\r\n")
            if first[0] != "ACK":
                self.sock.sendto(reply.encode(), address)
