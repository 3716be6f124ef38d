"""Test-side handle on real softphone worker processes and SIPp peers.

The test process never creates a pjsua2 Endpoint: each worker is a
subprocess speaking the JSON-lines protocol, and each SIPp run is another.
Everything waits with a bound.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # plain `pytest` without the project installed
    sys.path.insert(0, str(ROOT))

from demo.loopback import free_udp_port, free_udp_run
from softphone import protocol as p

SIPP_DIR = Path(__file__).resolve().parent / "sipp"
PCAP_DIR = Path("/usr/share/sip-tester")
PYTHON = sys.executable


free_port_run = free_udp_run


def free_rtp_base() -> int:
    """An even UDP port with the next 15 ports free right now (RTP+RTCP of 4 calls)."""
    return free_port_run(16, even=True)


class WorkerProcess:
    """``python -m softphone.worker`` in a subprocess; events collected by a thread."""

    def __init__(self, name: str, log_dir: Path, extra: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        args = [PYTHON, "-m", "softphone.worker", "--name", name, "--sip-host", "127.0.0.1",
                "--sip-port", "0", "--rtp-port", str(free_rtp_base()), *extra]
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env={**os.environ, **(env or {})},
        )
        self.events: list[Any] = []
        self._seen: set[int] = set()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self.wait_for("ready", timeout=10)
        self.sip_port: int = ready.sip_port

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            try:
                event: Any = p.decode_event(line)
            except p.ProtocolError as exc:
                event = ("garbage", line, str(exc))
            self._queue.put(event)
        self._queue.put(None)

    def send(self, command: p.Command | str) -> None:
        line = command if isinstance(command, str) else p.encode(command)
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def wait_for(self, kind: str, call: str | None = None, timeout: float = 10.0,
                 where: Callable[[Any], bool] | None = None) -> Any:
        """The first not yet seen event of type ``kind`` (for ``call``), or AssertionError."""
        deadline = time.monotonic() + timeout
        for event in self.events:
            if self._matches(event, kind, call, where) and id(event) not in self._seen:
                self._seen.add(id(event))
                return event
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {kind} for {call} in {timeout}s; "
                                     f"got {self.events}; log {self.log_path}")
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                raise AssertionError(f"{self.name}: exited waiting for {kind}; "
                                     f"got {self.events}; log {self.log_path}")
            if isinstance(event, tuple):
                raise AssertionError(f"{self.name}: garbage on protocol stdout: {event}")  # noqa: TRY004
            self.events.append(event)
            if self._matches(event, kind, call, where):
                self._seen.add(id(event))
                return event

    @staticmethod
    def _matches(event: Any, kind: str, call: str | None,
                 where: Callable[[Any], bool] | None) -> bool:
        return (getattr(event, "TYPE", None) == kind
                and (call is None or getattr(event, "call", None) == call)
                and (where is None or where(event)))

    def settle(self, seconds: float) -> list[Any]:
        """Collect events for ``seconds`` (no event expected); returns all events so far."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                break
            self.events.append(event)
        return self.events

    def of_call(self, call: str) -> list[Any]:
        return [e for e in self.events if getattr(e, "call", None) == call]

    def shutdown(self, timeout: float = 8.0) -> int:
        """Send ``shutdown`` and return the exit code (killing on timeout)."""
        if self.proc.poll() is None:
            try:
                self.send(p.Shutdown())
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"{self.name}: did not exit in {timeout}s; log {self.log_path}")
        finally:
            self._reader.join(2)
            self.settle(0.0)
            self._log.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        if not self._log.closed:
            self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class Sipp:
    """One SIPp run on 127.0.0.1 with a scenario from ``tests/sipp``."""

    def __init__(self, scenario: str, work_dir: Path, *args: str,
                 remote: str | None = None, calls: int = 1, timeout_s: int = 15,
                 port: int | None = None) -> None:
        self.port = port or free_udp_port()
        self.scenario = SIPP_DIR / scenario
        media = free_rtp_base()
        while media <= self.port < media + 16:  # the SIP port was free a moment ago too, and
            media = free_rtp_base()  # SIPp, binding it first, found its media port taken
        cmd = ["sipp", "-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.port),
               "-m", str(calls), "-nostdin", "-trace_err", "-timeout", f"{timeout_s}s",
               "-timeout_error", "-mp", str(media), *args]
        if remote:
            cmd.append(remote)
        self.out_path = work_dir / f"sipp-{self.scenario.stem}-{self.port}.out"
        self._out = open(self.out_path, "wb")  # noqa: SIM115 - lives as long as SIPp
        self.proc = subprocess.Popen(cmd, cwd=work_dir, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        self.work_dir = work_dir
        self.timeout_s = timeout_s

    @property
    def uri_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait(self) -> int:
        try:
            return self.proc.wait(self.timeout_s + 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
        finally:
            self._out.close()

    def report(self) -> str:
        errors = "".join(
            f.read_text(errors="replace")[-3000:] for f in self.work_dir.glob("*_errors.log")
        )
        return f"sipp exit {self.proc.returncode}\n{errors}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self._out.closed:
            self._out.close()


def thread_cpu(pid: int) -> list[tuple[int, str, int]]:
    """(thread id, name, CPU time in ns so far) of every thread of ``pid``, from
    ``/proc/PID/task/*/schedstat`` (ns: finer than ``/proc/PID/stat``'s 10 ms ticks); none
    for a process that is gone."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    out = []
    for task in tasks:
        try:
            ns = int((task / "schedstat").read_text().split()[0])
            name = (task / "comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
        out.append((int(task.name), name, ns))
    return out


def cpu_ms(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, in ms; 0 for a process that is gone."""
    return sum(ns for _, _, ns in thread_cpu(pid)) / 1e6


def make_tone(path: Path, seconds: float, freq: int = 440) -> Path:
    """An 8 kHz mono 16-bit WAV sine tone made with sox."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path),
                    "synth", str(seconds), "sine", str(freq), "vol", "0.5"],
                   check=True, timeout=20)
    return path


def wav_rms(path: Path) -> float:
    """Root mean square of a 16-bit mono WAV's samples (0 for an empty file)."""
    import wave

    import numpy as np

    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


class RtpSink:
    """A UDP socket standing in for a peer's RTP port; counts what arrives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])

    def count_packets(self, seconds: float) -> int:
        count = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            if len(data) >= 12 and data[0] >> 6 == 2:  # RTP version 2
                count += 1
        return count

    def close(self) -> None:
        self.sock.close()


def make_speech(path: Path, text: str, voice: str = "en") -> Path:
    """Speech WAV (8 kHz mono 16-bit) from espeak-ng, converted by sox."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text],
                   check=True, timeout=30)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)],
                   check=True, timeout=30)
    return path


def invite(port: int, caller: str = "13800138000", prefix: bytes = b"", *,
           lines: int = 1, headers: Sequence[str] = ()) -> tuple[socket.socket, bytes]:
    """A new INVITE from a socket of its own (its replies come back there), offering
    ``lines`` audio lines."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    call_id = uuid.uuid4().hex
    sock.sendto(prefix + sip_request(sock, port, "INVITE", call_id, caller, lines=lines,
                                     headers=headers), ("127.0.0.1", port))
    return sock, call_id.encode()


def sip_request(sock: socket.socket, port: int, method: str, call_id: str,
                caller: str = "13800138000", *, cseq: int = 1, to_tag: str = "",
                lines: int = 1, headers: Sequence[str] = ()) -> bytes:
    """``method`` from ``sock`` to the worker on ``port`` (its From tag: the Call-ID's
    first 8 characters); an SDP offer of ``lines`` audio lines when ``lines``."""
    local = sock.getsockname()[1]
    sdp = (f"v=0\r\no=- 1 {cseq} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           + "".join(f"m=audio {local + 1 + 2 * n} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                     for n in range(lines)))
    body = sdp if lines else ""
    uri = f"sip:961108@127.0.0.1:{port}"
    message = "\r\n".join([
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex[:12]}",
        f"From: <sip:{caller}@127.0.0.1:{local}>;tag={call_id[:8]}",
        f"To: <{uri}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}", f"CSeq: {cseq} {method}",
        f"Contact: <sip:{caller}@127.0.0.1:{local}>", "Max-Forwards: 70", *headers,
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body)}", "", body])
    return message.encode()


def statuses(sock: socket.socket, until_final: bool = True) -> list[int]:
    """Status codes received on ``sock`` up to the final one (or 2 s of silence)."""
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
