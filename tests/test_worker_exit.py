"""A worker that cannot start says why: its own exit code and the last line of its log, not a
kill by the engine that hid both (a worker whose output ended was killed before it could
exit, and every restart was reported as ``code -9``)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from demo.loopback import free_udp_port
from engine.workers import Inbox, Worker, WorkerSpec


def test_a_worker_that_cannot_bind_its_port_says_so(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    port = free_udp_port()
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", port))
    log_file = tmp_path / "w1.log"
    said: list[str] = []

    async def run() -> None:
        inbox: Inbox = asyncio.Queue()
        worker = Worker(WorkerSpec("w1", "127.0.0.1", port, free_udp_port(),
                                   ("127.0.0.1/32",), log_file=log_file), inbox)
        worker.start()
        try:
            _, event = await asyncio.wait_for(inbox.get(), 30)
            said.append(getattr(event, "message", ""))
            deadline = asyncio.get_running_loop().time() + 30
            while worker.restarts == 0 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()

    try:
        with caplog.at_level(logging.ERROR, logger="engine.workers"):
            asyncio.run(run())
    finally:
        taken.close()
    assert said and said[0].startswith("cannot start SIP endpoint")
    exits = [r.getMessage() for r in caplog.records if "exited" in r.getMessage()]
    assert exits, "the restart was not logged"
    assert exits[0].startswith("worker w1 exited (code 2)"), exits[0]
