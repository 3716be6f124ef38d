"""Test-side handles on a whole engine: its config, its process, its event file.

The engine runs either as ``run_dialer.py run`` in a subprocess
(:class:`EngineProcess`) or in the test's own asyncio loop (``engine.Engine``);
in both cases every pjsua2 Endpoint lives in a worker subprocess.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from workerproc import ROOT, free_port_run

TZ = "Asia/Shanghai"


def hours(inside_now: bool) -> str:
    """An operator-hours window that holds the present moment, or one that does not."""
    now = datetime.now(ZoneInfo(TZ))
    start = now - timedelta(hours=1) if inside_now else now + timedelta(hours=1)
    end = now + timedelta(hours=1) if inside_now else now + timedelta(hours=2)
    return f"{start:%H:%M}-{end:%H:%M}"


def write_config(directory: Path, *, workers: int = 1, operator_hours: str = "08:00-22:00",
                 trunk: str = "sip:127.0.0.1:5070", operator: str = "sip:operator@127.0.0.1:5090",
                 blocked: tuple[str, ...] = ("13900001111",), allowed_sources: str = "127.0.0.1/32",
                 max_channels: int = 30, max_cps: float = 50, extra: str = "",
                 balancer: str | None = None, sip_extra: str = "", hotline_extra: str = "") -> Path:
    """``balancer``: the ``sip.balancer`` mapping in YAML flow style (e.g. ``"{}"``); the engine
    then starts the Kamailio front on ``sip.listen.port`` and the workers move to the next
    ports. ``sip_extra``: more ``sip:`` keys, YAML lines indented by two spaces."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "blocked.txt").write_text("".join(f"{n}\n" for n in blocked))
    sip_port = free_port_run(workers + (1 if balancer is not None else 0))
    rtp_port = free_port_run(workers * 2, step=50, even=True)
    path = directory / "dialer.yaml"
    path.write_text(f"""\
engine:
  data_dir: var
  timezone: {TZ}
  workers: {workers}
  log_level: info
sip:
  listen: {{host: 127.0.0.1, port: {sip_port}, rtp_port: {rtp_port}}}
  allowed_sources: [{allowed_sources}]
{f"  balancer: {balancer}" if balancer is not None else ""}
{sip_extra}  trunk: {{uri: "{trunk}", caller_id: "96110", max_channels: {max_channels}, max_cps: {max_cps}}}
screening:
  lists:
    - {{name: fraud, file: blocked.txt, action: reject, status: 603}}
dialer:
  ring_timeout_s: 10
hotline:
  number: "961108"
  operator_hours: "{operator_hours}"
  operator_uri: "{operator}"
{hotline_extra}{extra}""")
    return path


def engine_port(config: Path) -> int:
    import yaml

    return int(yaml.safe_load(config.read_text())["sip"]["listen"]["port"])


def read_events(config: Path) -> list[dict[str, Any]]:
    path = config.parent / "var" / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_events(config: Path, predicate: Any, timeout: float = 10.0,
                count: int = 1) -> list[dict[str, Any]]:
    """The events ``predicate`` accepts, once there are ``count`` of them (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in read_events(config) if predicate(e)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class EngineProcess:
    """``run_dialer.py run -c CONFIG`` in a subprocess, stopped with SIGTERM."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = engine_port(config)
        self.log_path = config.parent / "engine.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the engine
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "run_dialer.py"), "run", "-c", str(config)],
                                     cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not wait_events(config, lambda e: e["event"] == "engine_started", timeout=0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"engine did not start:\n{self.log_text()}")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode
