"""The whole product behind its balancer: Kamailio configured by ``kamailio-config``
in front of an engine with three workers, twelve callers at once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from enginectl import EngineProcess, hours, read_events, write_config
from kamailioctl import Kamailio
from workerproc import ROOT, Sipp, free_port_run


def test_twelve_callers_through_kamailio_are_answered_by_three_workers(tmp_path: Path) -> None:
    port = free_port_run(1)
    config = write_config(tmp_path, workers=3, operator_hours=hours(inside_now=False),
                          balancer_port=port)
    out = tmp_path / "kamailio"
    subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), "kamailio-config", "-c", str(config),
                    "-o", str(out)], check=True, capture_output=True, timeout=30)
    engine = EngineProcess(config)
    balancer = Kamailio(out / "kamailio.cfg", port, out / "kamailio_ctl")
    try:
        callers = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                       "-l", "12", "-r", "12", "-d", "2000", remote=f"127.0.0.1:{port}", calls=12,
                       timeout_s=30)
        assert callers.wait() == 0, callers.report() + balancer.log()[-3000:] + engine.log_text()
    finally:
        balancer.stop()
        engine.stop()
    events = read_events(config)
    screened = [e for e in events if e["event"] == "screened"]
    assert len(screened) == 12 and all(e["route"] == "ivr" for e in screened)
    assert Counter(e["worker"] for e in screened) == {"w1": 4, "w2": 4, "w3": 4}
    ended = [e for e in events if e["event"] == "ended"]
    assert len(ended) == 12 and all(e["by"] == "remote" for e in ended)
