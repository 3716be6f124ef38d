"""A new configuration for the running engine (``run_dialer.py reload``, SIGHUP), against
SIPp callers: operator hours that begin now while a caller is in the voice menu, and broken
files refused while the engine keeps what it had."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dialerctl import cli, wait_tasks
from enginectl import EngineProcess, hours, read_events, write_config
from workerproc import ROOT, Sipp

from hotline.menus import DEFAULT_MENUS


def screened(config: Path) -> list[dict]:
    return [e for e in read_events(config) if e["event"] == "screened"]


def test_hours_that_begin_now_leave_the_caller_in_the_menu_be_and_queue_the_next(
        tmp_path: Path) -> None:
    operator = Sipp("uas_answer_until_bye.xml", tmp_path, timeout_s=40)
    outside, inside = hours(inside_now=False), hours(inside_now=True)
    config = write_config(tmp_path, operator_hours=outside,
                          operator=f"sip:duty@{operator.uri_host}")
    engine = EngineProcess(config)
    try:
        in_menu = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "6000",
                       remote=engine.target, timeout_s=20)
        deadline = time.monotonic() + 10
        while not screened(config):
            assert time.monotonic() < deadline, engine.log_text()
            time.sleep(0.05)
        config.write_text(config.read_text().replace(outside, inside))
        reloaded = cli(config, "reload")
        assert "hotline.operator_hours" in reloaded.stdout, reloaded
        assert in_menu.wait() == 0, in_menu.report() + engine.log_text()  # undisturbed
        caller = Sipp("uac_pcap_dtmf_1_5_then_audio.xml", tmp_path, "-s", "961108",
                      remote=engine.target, timeout_s=20)
        assert caller.wait() == 0, caller.report() + engine.log_text()
        assert operator.wait() == 0, operator.report() + engine.log_text()
        status = json.loads(cli(config, "status", "--json").stdout)
    finally:
        operator.kill()
        engine.stop()
    assert [e["route"] for e in screened(config)] == ["ivr", "operator"]
    ended = [e for e in read_events(config) if e["event"] == "ended"]
    assert ended[0]["by"] == "remote"  # the caller in the menu hung up when it chose to
    reload = status["engine"]["reload"]
    assert reload["result"] == "applied" and reload["by"].startswith("cli:")
    assert next(e for e in read_events(config) if e["event"] == "reload")["result"] == "applied"


BROKEN = [
    ("an unknown key", lambda text, d: text.replace("hotline:\n", "hotline:\n  opertor_hours: x\n"),
     "hotline.opertor_hours"),
    ("a menu naming a missing prompt", None, "there is no prompt 'cat_invest_longer'"),
    ("a bad value", lambda text, d: text.replace("ring_timeout_s: 10", "ring_timeout_s: soon"),
     "dialer.ring_timeout_s"),
]


@pytest.mark.parametrize(("what", "breaks", "says"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_file_is_refused_and_the_engine_keeps_its_configuration(
        tmp_path: Path, what: str, breaks: object, says: str) -> None:
    config = write_config(tmp_path, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        good = config.read_text()
        if breaks is None:
            menus = tmp_path / "menus.yaml"
            menus.write_text(DEFAULT_MENUS.read_text(encoding="utf-8").replace(
                "greeting_long: cat_invest_long", "greeting_long: cat_invest_longer"),
                encoding="utf-8")
            config.write_text(good.replace("hotline:\n", "hotline:\n  menus: menus.yaml\n"))
        else:
            config.write_text(breaks(good, tmp_path))  # type: ignore[operator]
        refused = cli(config, "reload", check=False)
        assert refused.returncode == 2, refused
        assert says in refused.stderr and "keeps its configuration" in refused.stderr, refused
        log = (config.parent / "engine.log").read_text()
        assert "reload refused" in log and says in log
        caller = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "500",
                      remote=engine.target, timeout_s=20)
        assert caller.wait() == 0, caller.report() + engine.log_text()
    finally:
        engine.stop()
    assert [e["route"] for e in screened(config)] == ["ivr"]  # as before the refusal


def test_drain_workers_replaces_every_worker_without_dropping_a_call(tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=3, operator_hours=hours(inside_now=False),
                          balancer="{flood_exempt: [127.0.0.1/32]}")
    engine = EngineProcess(config)
    try:
        calls = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                     "-d", "5000", "-l", "6", "-r", "6", remote=engine.target, calls=6,
                     timeout_s=60)
        deadline = time.monotonic() + 10
        while len(screened(config)) < 6:
            assert time.monotonic() < deadline, engine.log_text()
            time.sleep(0.05)
        before = {e["worker"] for e in screened(config)}
        assert before == {"w1", "w2", "w3"}  # two calls on each
        drain = subprocess.Popen([sys.executable, str(ROOT / "run_dialer.py"), "drain-workers",
                                  "-c", str(config)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        during = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                      "-d", "500", remote=engine.target, calls=1, timeout_s=20)
        assert during.wait() == 0, during.report() + engine.log_text()  # answered meanwhile
        out, err = drain.communicate(timeout=90)
        assert drain.returncode == 0, err
        assert calls.wait() == 0, calls.report() + engine.log_text()  # all six to their BYE
    finally:
        engine.stop()
    replaced = dict(line.split(": pid ") for line in out.splitlines() if ": pid " in line)
    assert sorted(replaced) == ["w1", "w2", "w3"]
    for pids in replaced.values():
        old, new = pids.split(" → ")
        assert old != new
    ended = [e for e in read_events(config) if e["event"] == "ended"]
    assert len(ended) == 7 and all(e["by"] == "remote" for e in ended)
    assert "exited" not in (config.parent / "engine.log").read_text()  # none was restarted


def test_a_graceful_stop_lets_calls_finish_and_keeps_what_was_due(tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=2, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        calls = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "4000",
                     "-l", "2", "-r", "2", remote=engine.target, calls=2, timeout_s=30)
        deadline = time.monotonic() + 10
        while len(screened(config)) < 2:
            assert time.monotonic() < deadline, engine.log_text()
            time.sleep(0.05)
        stopping = subprocess.Popen([sys.executable, str(ROOT / "run_dialer.py"), "stop",
                                     "--graceful", "-c", str(config)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while "draining" not in cli(config, "status").stdout:
            assert time.monotonic() < deadline, engine.log_text()
            time.sleep(0.1)
        task_id = cli(config, "warn", "13800137490").stdout.strip()  # due now, while draining
        stopped, err = stopping.communicate(timeout=60)
        assert stopping.returncode == 0 and "draining: " in err and "stopped" in stopped, err
        assert calls.wait() == 0, calls.report() + engine.log_text()  # both to their BYE
        assert engine.proc.wait(10) == 0
    finally:
        engine.stop()
    ended = [e for e in read_events(config) if e["event"] == "ended"]
    assert len(ended) == 2 and all(e["by"] == "remote" for e in ended)
    shown = json.loads(cli(config, "task", "show", task_id, "--json").stdout)
    assert shown["state"] == "queued" and shown["attempts"] == 0  # kept for the next start
    again = EngineProcess(config)
    try:
        wait_tasks(config, [task_id], done=lambda t: t.tries >= 1, timeout=15)  # called now
    finally:
        again.stop()
