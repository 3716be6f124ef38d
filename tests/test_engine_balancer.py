"""The whole product behind its front: ``run_dialer.py run`` with ``sip.balancer``
starts Kamailio on ``sip.listen.port`` itself, in front of three workers."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from enginectl import EngineProcess, hours, read_events, write_config
from workerproc import Sipp


@dataclass
class Front:
    config: Path
    engine: EngineProcess

    @property
    def target(self) -> str:
        return self.engine.target  # sip.listen: the front

    def balancer_log(self) -> str:
        path = self.config.parent / "var" / "logs" / "kamailio.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def report(self, sipp: Sipp) -> str:
        return sipp.report() + self.balancer_log()[-3000:] + self.engine.log_text()


@pytest.fixture()
def front(tmp_path: Path) -> Iterator[Front]:
    # 127.0.0.1 plays the carrier (every SIPp caller here): exempt from the per-source
    # flood ban, so what is tested is the per-worker guard
    config = write_config(tmp_path, workers=3, operator_hours=hours(inside_now=False),
                          balancer="{flood_exempt: [127.0.0.1/32]}")
    engine = EngineProcess(config)
    try:
        yield Front(config, engine)
    finally:
        engine.stop()


def test_twelve_callers_through_kamailio_are_answered_by_three_workers(front: Front,
                                                                        tmp_path: Path) -> None:
    callers = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                   "-l", "12", "-r", "12", "-d", "2000", remote=front.target, calls=12, timeout_s=30)
    assert callers.wait() == 0, front.report(callers)
    deadline = time.monotonic() + 5  # SIPp has its 200 to the BYE before the engine's record
    while sum(e["event"] == "ended" for e in read_events(front.config)) < 12 \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    events = read_events(front.config)
    screened = [e for e in events if e["event"] == "screened"]
    assert len(screened) == 12 and all(e["route"] == "ivr" for e in screened)
    assert Counter(e["worker"] for e in screened) == {"w1": 4, "w2": 4, "w3": 4}
    ended = [e for e in events if e["event"] == "ended"]
    assert len(ended) == 12 and all(e["by"] == "remote" for e in ended)


@pytest.mark.xdist_group("heavy")  # 100 INVITEs a second: not beside several engines
def test_a_flood_is_spread_over_the_workers_and_none_dies(front: Front, tmp_path: Path) -> None:
    """100 INVITEs a second from a blocked number through the carrier (flood_exempt, so not
    banned), more than the workers take: Kamailio spreads them and sheds the rest with 503;
    no worker dies, and a good caller gets in."""
    flood = Sipp("uac_invite_expect_603_or_503.xml", tmp_path, "-s", "961108", "-key", "caller", "13900001111",
                 "-key", "extra_header", "X-Test: flood", "-r", "100", "-l", "30",
                 remote=front.target, calls=600, timeout_s=40)
    assert flood.wait() == 0, front.report(flood)
    screened = [e for e in read_events(front.config) if e["event"] == "screened"]
    assert len(screened) >= 300 and all(e["status"] == 603 for e in screened)
    assert len(Counter(e["worker"] for e in screened)) == 3
    assert "exited" not in front.engine.log_path.read_text()  # no worker was restarted
    assert "banned" not in front.balancer_log()  # the carrier is never banned
    time.sleep(1.1)  # the flood's last second is over: its new calls a second no longer count
    good = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108", "-d", "500",
                remote=front.target, calls=1, timeout_s=20)
    assert good.wait() == 0, front.report(good)
