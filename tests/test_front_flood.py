"""Issue 7: a flood at the public port does not reach the worker, so its live calls last.

Measured before the front: two calls in progress on the single worker of the
example configuration, 300 INVITEs at 60/s from a blocklisted number killed the
worker and both calls. Here ``run_dialer.py run`` starts the Kamailio front
itself (``sip.balancer``), two calls are in progress from 127.0.0.2, and
127.0.0.1 sends 100 INVITEs a second for 10 s at ``sip.listen.port``: pike bans
127.0.0.1 within its first requests, everything it sends afterwards is dropped
without a reply, the worker never restarts, both calls last to their BYE, and
127.0.0.2 gets in during and after the flood.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from enginectl import EngineProcess, hours, read_events, write_config
from kamailioctl import banned, control_socket_of
from workerproc import Sipp

FLOODER = "127.0.0.1"  # SIPp's default source in workerproc.Sipp
GOOD = "127.0.0.2"
BLOCKED = "13900001111"  # on the config's fraud list: every INVITE that reaches the worker gets 603
THROUGH = "uac_call_hold_bye_through_balancer.xml"
FLOOD = "uac_invite_flood_answered_or_not.xml"
HOLD_MS = 14_000  # the live calls span the whole flood (10 s) and its 2 s tail


def wait_for(config: Path, predicate: Any, count: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in read_events(config) if predicate(e)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def flood_outcomes(work_dir: Path) -> dict[str, list[int]]:
    """Call numbers of the flood's calls by outcome, from the scenario's log lines."""
    outcomes: dict[str, list[int]] = {"answered": [], "unanswered": []}
    for path in work_dir.glob(f"{Path(FLOOD).stem}_*_logs.log"):
        text = path.read_text()
        for word, number in re.findall(r"^(answered|unanswered) (\d+)$", text, re.MULTILINE):
            outcomes[word].append(int(number))
    return outcomes


def test_flood_at_the_front_is_banned_and_live_calls_last(tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=1, operator_hours=hours(inside_now=False),
                          allowed_sources=f"{FLOODER}/32, {GOOD}/32", balancer="{}",
                          sip_extra="  media_timeout_s: 60\n")  # the SIPp callers send no RTP
    engine = EngineProcess(config)
    control = control_socket_of(config.parent / "var" / "kamailio" / "kamailio.cfg")
    kamailio_log = config.parent / "var" / "logs" / "kamailio.log"
    sipps: list[Sipp] = []

    def report(*runs: Sipp) -> str:
        tail = kamailio_log.read_text(errors="replace")[-3000:] if kamailio_log.exists() else ""
        return "\n".join([*(s.report() for s in runs), tail, engine.log_text()])

    try:
        live = Sipp(THROUGH, tmp_path, "-i", GOOD, "-s", "961108", "-l", "2", "-r", "10",
                    "-d", str(HOLD_MS), remote=engine.target, calls=2, timeout_s=40)
        sipps.append(live)
        answered = wait_for(config, lambda e: e["event"] == "screened" and e["route"] == "ivr",
                            2, timeout=10)
        assert len(answered) == 2, report(live)
        time.sleep(0.5)  # both calls answered and talking

        flood = Sipp(FLOOD, tmp_path, "-s", "961108", "-key", "caller", BLOCKED, "-r", "100",
                     "-l", "400", "-trace_logs", remote=engine.target, calls=1000, timeout_s=40)
        sipps.append(flood)
        time.sleep(3)
        assert FLOODER in banned(control), report(flood)
        assert GOOD not in banned(control)
        during = Sipp(THROUGH, tmp_path, "-i", GOOD, "-s", "961108", "-d", "1000",
                      remote=engine.target, calls=1, timeout_s=15)
        sipps.append(during)
        assert during.wait() == 0, report(during)
        assert flood.proc.poll() is None  # the flood was still going on

        assert flood.wait() == 0, report(flood)  # every INVITE got 603/503/486, or nothing
        outcomes = flood_outcomes(tmp_path)
        assert len(outcomes["answered"]) + len(outcomes["unanswered"]) == 1000, outcomes
        # pike blocks between 16 and 48 requests (ACKs count too); then nothing is answered
        assert 1 <= len(outcomes["answered"]) <= 60, outcomes["answered"]
        assert max(outcomes["answered"]) <= 150, outcomes["answered"]  # the first 1.5 s
        assert live.wait() == 0, report(live)  # both calls lasted to their BYE

        after = Sipp(THROUGH, tmp_path, "-i", GOOD, "-s", "961108", "-d", "500",
                     remote=engine.target, calls=1, timeout_s=15)
        sipps.append(after)
        assert after.wait() == 0, report(after)
        assert FLOODER in banned(control)  # ban_s is 300 s

        events = read_events(config)
        flooded = [e for e in events if e["event"] == "screened" and e["status"] == 603]
        assert 1 <= len(flooded) <= 60, len(flooded)  # what reached the worker before the ban
        # the records name the callers' own addresses, not the front's
        assert all(e["source"].startswith(f"{FLOODER}:") for e in flooded)
        assert {e["source"].split(":")[0] for e in events if e["event"] == "screened"
                and e["route"] == "ivr"} == {GOOD}
        good = [e for e in events if e["event"] == "ended" and e["by"] == "remote"]
        assert len(good) == 4, good  # 2 live calls, one during and one after the flood
        log = engine.log_path.read_text()
        assert "exited" not in log and "lost" not in log, report()  # no worker restarted
        assert log.count("worker w1 ready") == 1
        fronts = [e for e in events if e["event"] in ("front_started", "front_exited")]
        assert [(e["event"], e["restarts"]) for e in fronts] == [("front_started", 0)], fronts
        assert f"flood from {FLOODER}" in kamailio_log.read_text()
    finally:
        for sipp in sipps:
            sipp.kill()
        engine.stop()


def test_without_the_front_the_worker_sheds_a_flood_before_pjsua_and_live_calls_last(
        tmp_path: Path) -> None:
    """The measured fault itself (no front): the worker's INVITE guard answers 503 to new
    INVITEs over sip.new_calls_per_worker_s before pjsua opens their media sockets."""
    config = write_config(tmp_path, workers=1, operator_hours=hours(inside_now=False),
                          allowed_sources=f"{FLOODER}/32, {GOOD}/32",
                          sip_extra="  media_timeout_s: 60\n")
    engine = EngineProcess(config)
    sipps: list[Sipp] = []
    try:
        live = Sipp("uac_call_hold_bye.xml", tmp_path, "-i", GOOD, "-s", "961108", "-l", "2",
                    "-r", "10", "-d", "8000", remote=engine.target, calls=2, timeout_s=30)
        sipps.append(live)
        answered = wait_for(config, lambda e: e["event"] == "screened" and e["route"] == "ivr",
                            2, timeout=10)
        assert len(answered) == 2, live.report() + engine.log_text()
        flood = Sipp(FLOOD, tmp_path, "-s", "961108", "-key", "caller", BLOCKED, "-r", "100",
                     "-l", "400", "-trace_logs", remote=engine.target, calls=400, timeout_s=30)
        sipps.append(flood)
        assert flood.wait() == 0, flood.report() + engine.log_text()
        assert live.wait() == 0, live.report() + engine.log_text()  # both lasted to their BYE
        after = Sipp("uac_call_hold_bye.xml", tmp_path, "-i", GOOD, "-s", "961108", "-d", "500",
                     remote=engine.target, calls=1, timeout_s=15)
        sipps.append(after)
        assert after.wait() == 0, after.report() + engine.log_text()
    finally:
        for sipp in sipps:
            sipp.kill()
        engine.stop()
    log = (tmp_path / "engine.log").read_text()
    assert "exited" not in log and "lost" not in log  # the worker never restarted
    events = read_events(config)
    shed = [e for e in events if e["event"] == "refused" and e["status"] == 503]
    rejected = [e for e in events if e["event"] == "screened" and e["action"] == "reject"]
    assert len(shed) + len(rejected) == 400, (len(shed), len(rejected))
    assert len(rejected) <= 20 + 4 * 20  # 20 at once, then about 20 a second
