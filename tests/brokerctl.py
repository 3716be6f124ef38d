"""Test-side handles on a real Mosquitto broker on loopback, and a client that watches it.

:class:`Broker` runs ``mosquitto`` with a config of its own (a free port,
persistence in the test's directory, optionally a password file);
:class:`Watcher` is a paho client in its own thread that records every
message on the topics it is given and publishes requests.
"""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    key, pem = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(pem), "-days", "2", "-subj", f"/CN=test {name}"],
                   check=True, capture_output=True)
    return key, pem


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A server key and certificate for IP 127.0.0.1, signed by ``ca.pem`` (made here)."""
    ca_key, ca = make_ca(directory)
    key, csr, cert = (directory / n for n in ("server.key", "server.csr", "server.pem"))
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey",
                    str(ca_key), "-CAcreateserial", "-out", str(cert), "-days", "2",
                    "-extfile", str(ext)], check=True, capture_output=True)
    return key, cert


class Broker:
    def __init__(self, directory: Path, *, users: dict[str, str] | None = None,
                 port: int | None = None, tls: bool = False) -> None:
        """``tls``: a second listener on :attr:`tls_port` with a certificate for 127.0.0.1
        signed by a CA of the test's own (:attr:`ca_file`)."""
        self.directory = directory / "mosquitto"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_tcp_port()
        # as root, mosquitto would become the mosquitto user and lose the test's 0700 directory
        lines = [f"user {getpass.getuser()}", f"listener {self.port} 127.0.0.1", "persistence true",
                 f"persistence_location {self.directory}/", "max_queued_messages 100000",
                 f"log_dest file {self.directory}/mosquitto.log", "log_type all",
                 "set_tcp_nodelay true"]
        if users:
            passwords = self.directory / "passwords"
            passwords.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.tls_port = 0
        self.ca_file = self.directory / "ca.pem"
        if tls:
            self.tls_port = free_tcp_port()
            key, cert = make_certificate(self.directory)
            # the options that follow a listener belong to it; the plain one came first
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {self.ca_file}",
                      f"certfile {cert}", f"keyfile {key}"]
        self.conf = self.directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"mosquitto did not start: {self.log()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file (sessions, queued messages) first."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """Subscribes to ``topics`` (QoS 1) and keeps everything it receives, in order."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("antifraud/#",),
                 client_id: str = "", clean: bool = True, username: str | None = None,
                 password: str | None = None) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean)
        if username:
            self.client.username_pw_set(username, password)
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = self._on_connect
        self.topics = topics
        self.client.reconnect_delay_set(0.1, 1)  # back before the engine after a broker restart
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise AssertionError("the watcher could not subscribe")

    def _on_connect(self, client: Any, *args: Any) -> None:
        sock = client.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seen.append(Seen(message.topic, bytes(message.payload), bool(message.retain),
                                  time.monotonic()))

    def on(self, topic: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.topic == topic]

    def wait(self, topic: str, predicate: Callable[[list[Seen]], bool],
             timeout: float = 20.0) -> list[Seen]:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.on(topic)
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: not there in {timeout} s; seen: "
                                     f"{[s.payload[:200] for s in seen][-10:]}")
            time.sleep(0.05)

    def publish(self, topic: str, payload: Any, qos: int = 1) -> None:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        info = self.client.publish(topic, data, qos=qos)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def mqtt_section(url: str, extra: str = "") -> str:
    """The ``mqtt:`` section to append to a test config."""
    return f"mqtt:\n  url: {url}\n  client_id: engine-under-test\n{extra}"
