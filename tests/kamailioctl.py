"""Test-side handle on Debian's Kamailio: started in the foreground, probed, stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

KAMAILIO = "kamailio"


def options_status(port: int, source: str = "127.0.0.1", timeout: float = 1.0,
                   user_agent: str | None = None) -> int | None:
    """Status code of the reply to one OPTIONS sent from ``source`` to the balancer
    (None: no reply within ``timeout``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        local = f"{source}:{s.getsockname()[1]}"
        tag = uuid.uuid4().hex
        request = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{tag}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag={tag[:8]}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\nCall-ID: {tag}@{source}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            + (f"User-Agent: {user_agent}\r\n" if user_agent else "")
            + "Content-Length: 0\r\n\r\n"
        )
        s.sendto(request.encode(), ("127.0.0.1", port))
        try:
            reply = s.recv(4096).decode(errors="replace")
        except TimeoutError:
            return None
    return int(reply.split(" ", 2)[1])


def kamcmd(control_socket: Path, *command: str) -> str:
    """``kamcmd -s unix:SOCKET COMMAND…``: its output (raises on failure)."""
    done = subprocess.run(["kamcmd", "-s", f"unix:{control_socket}", *command],
                          capture_output=True, text=True, timeout=10, check=True)
    return done.stdout


def control_socket_of(cfg: Path) -> Path:
    """The ``ctl`` module's Unix socket named in a generated ``kamailio.cfg``."""
    found = re.search(r'modparam\("ctl", "binrpc", "unix:([^"]+)"\)', cfg.read_text())
    assert found, f"no ctl socket in {cfg}"
    return Path(found.group(1))


def banned(control_socket: Path) -> set[str]:
    """Source addresses in the front's ban list (``htable.dump ipban``)."""
    return set(re.findall(r"name: (\S+)", kamcmd(control_socket, "htable.dump", "ipban")))


class Kamailio:
    """Debian's kamailio in the foreground (-DD -E) with a private runtime dir."""

    def __init__(self, cfg: Path, port: int, control_socket: Path) -> None:
        self.log_path = cfg.parent / "kamailio.log"
        self.control_socket = control_socket
        run_dir = cfg.parent / "run"
        run_dir.mkdir(exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as kamailio
        self.proc = subprocess.Popen(
            [KAMAILIO, "-DD", "-E", "-f", str(cfg), "-Y", str(run_dir)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while options_status(port, timeout=0.2) != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"kamailio did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def states(self) -> dict[str, str]:
        """Worker URI → dispatcher FLAGS (``AP``, ``IP``...) from ``kamcmd dispatcher.list``."""
        out = kamcmd(self.control_socket, "dispatcher.list")
        pairs = re.findall(r"URI: (\S+)\s+FLAGS: (\w+)", out)
        return dict(pairs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only its children
                self.proc.wait(5)
        self._log.close()
