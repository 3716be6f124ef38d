"""The Kamailio front that ``run`` starts itself (``sip.balancer``, :mod:`front`).

Tiers: the config (errors with file, line and key; the port rule); Kamailio
from the generated config on loopback, without workers, for the flood defence
(pike ban, its expiry, exempt sources, scanners); the engine as ``run_dialer.py
run`` with its front: a missing binary is one sentence, a front killed with
``kill -9`` is restarted, and a stopped or killed engine leaves no Kamailio.
The flood with live calls is ``test_front_flood.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from enginectl import EngineProcess, hours, read_events, write_config
from kamailioctl import Kamailio, banned, options_status
from workerproc import ROOT, Sipp, free_port_run

from commands.main import main
from engine import worker_specs
from front import behind_front, render_cfg, render_dispatcher_list, setup_from_config, supervisor
from sip_config import ConfigError, load_config
from sip_config.schema import Config

THROUGH = "uac_call_hold_bye_through_balancer.xml"


def config_file(tmp_path: Path, sip: str, workers: int = 2) -> Path:
    path = tmp_path / "dialer.yaml"
    path.write_text(f"engine:\n  data_dir: var\n  workers: {workers}\nsip:\n{sip}",
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------- config

CONFIG_ERRORS = [
    # (sip: section, line, key path, a phrase of the message)
    ("  listen: {port: 5071}\n  balancer:\n    port: 5060\n",
     7, "sip.balancer.port", "Kamailio now listens on sip.listen.host and sip.listen.port"),
    ("  balancer:\n    host: 127.0.0.1\n", 6, "sip.balancer.host", "remove this key"),
    ("  balancer:\n    flood_exempt: [10.0.0.0/8, 10.0.0.300]\n",
     6, "sip.balancer.flood_exempt[1]", "'10.0.0.300' is not an address or network"),
    ("  balancer:\n    ban_s: 0\n", 6, "sip.balancer.ban_s", "greater than or equal to 1"),
    ("  balancer:\n    flood_window_s: 1.5\n", 6, "sip.balancer.flood_window_s", "integer"),
    ("  balancer:\n    scanner_agents: ['evil\"; exit; \"']\n",
     6, "sip.balancer.scanner_agents[0]", "pattern"),
]


@pytest.mark.parametrize(("sip", "line", "key", "phrase"), CONFIG_ERRORS)
def test_config_errors_name_file_line_and_key(sip: str, line: int, key: str, phrase: str,
                                              tmp_path: Path) -> None:
    path = config_file(tmp_path, sip)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = [p for p in caught.value.problems if p.path == key]
    assert problems, caught.value.problems
    assert problems[0].line == line and phrase in problems[0].message, problems[0]
    assert str(problems[0]).startswith(f"{path}:{line}: {key}: ")


def test_the_example_turns_the_front_on() -> None:
    loaded = load_config(ROOT / "sip_config" / "dialer.yaml")
    balancer = loaded.config.sip.balancer
    assert balancer is not None and balancer.algorithm == "round-robin"
    assert (balancer.flood_requests, balancer.flood_window_s) == (16, 2)  # pike's stock example


def test_workers_move_behind_the_front_and_allow_it(tmp_path: Path) -> None:
    sip = "  listen: {host: 127.0.0.1, port: 5060, rtp_port: 40000}\n" \
          "  allowed_sources: [10.0.0.0/8]\n  balancer: {}\n"
    loaded = load_config(config_file(tmp_path, sip, workers=3))
    specs = behind_front(worker_specs(loaded), loaded)
    assert [(s.name, s.host, s.sip_port, s.rtp_port) for s in specs] == [
        ("w1", "127.0.0.1", 5061, 40000), ("w2", "127.0.0.1", 5062, 40100),
        ("w3", "127.0.0.1", 5063, 40200)]
    # every call and text reaches a worker from the front's address, and nothing else may
    # aim at a worker's port (the front checks sip.allowed_sources, after its flood defence)
    assert all(s.allow == ("127.0.0.1/32",) for s in specs)


def test_workers_also_take_calls_from_the_other_nodes_fronts(tmp_path: Path) -> None:
    sip = ("  listen: {host: 10.0.0.1, port: 5060, rtp_port: 40000}\n"
           "  balancer: {nodes: [{name: n2, host: 10.0.0.2, port: 5060, workers: 2},"
           " {name: n3, host: 10.0.0.3, port: 5070}]}\n")
    loaded = load_config(config_file(tmp_path, sip, workers=2))
    specs = behind_front(worker_specs(loaded), loaded)
    assert all(s.allow == ("10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32") for s in specs)


# ------------------------------------------------------- Kamailio's defences


def start_front(tmp_path: Path, **balancer: Any) -> tuple[Kamailio, int]:
    """Kamailio from the generated config on a free port (no workers behind it)."""
    port = free_port_run(2)
    config = Config.model_validate({"engine": {"workers": 1}, "sip": {
        "listen": {"port": port}, "allowed_sources": ["127.0.0.0/8"], "balancer": balancer}})
    setup = setup_from_config(config, tmp_path / "kamailio")
    setup.list_file.parent.mkdir(parents=True)
    setup.list_file.write_text(render_dispatcher_list(setup), encoding="utf-8")
    cfg = setup.list_file.parent / "kamailio.cfg"
    cfg.write_text(render_cfg(setup), encoding="utf-8")
    return Kamailio(cfg, port, setup.control_socket), port


def test_a_flooding_source_is_banned_for_ban_s_and_others_are_not(tmp_path: Path) -> None:
    front, port = start_front(tmp_path, ban_s=2, flood_exempt=["127.0.0.5/32"])
    try:
        replies = [options_status(port, source="127.0.0.3", timeout=0.2) for _ in range(60)]
        first_silence = replies.index(None)
        assert 16 <= first_silence <= 48, replies  # pike: between x and 3x
        assert set(replies[:first_silence]) == {200}
        assert banned(front.control_socket) == {"127.0.0.3"}
        assert options_status(port, source="127.0.0.4") == 200  # another source is not banned
        # an exempt source (the carrier) is never banned
        assert all(options_status(port, source="127.0.0.5", timeout=0.5) == 200 for _ in range(60))
        assert "127.0.0.5" not in banned(front.control_socket)
        # the ban expires (and pike has forgotten the burst)
        time.sleep(2.5)
        assert options_status(port, source="127.0.0.3") == 200
        assert "flood from 127.0.0.3: over 16 requests in 2 s" in front.log()
    finally:
        front.stop()


@pytest.mark.parametrize("agent", ["friendly-scanner", "Friendly-Scanner 1.0", "sipvicious",
                                   "sipcli/v1.8", "VaxSIPUserAgent/3.1"])
def test_scanners_get_no_reply(agent: str, tmp_path: Path) -> None:
    front, port = start_front(tmp_path)
    try:
        assert options_status(port, user_agent=agent, timeout=0.5) is None
        assert options_status(port, user_agent="Linphone/5.2") == 200
        assert "dropped OPTIONS from scanner" in front.log()
    finally:
        front.stop()


# ------------------------------------------------------- the engine's front


def test_run_without_kamailio_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(supervisor, "KAMAILIO", "kamailio-not-installed")
    config = write_config(tmp_path, balancer="{}")
    assert main(["run", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: kamailio-not-installed is not installed: sip.balancer in ")
    assert "apt-get install kamailio" in err and len(err.strip().splitlines()) == 1


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def fronts(config: Path) -> list[dict[str, Any]]:
    return [e for e in read_events(config) if e["event"] in ("front_started", "front_exited")]


def test_a_killed_front_is_restarted_and_stops_with_the_engine(tmp_path: Path) -> None:
    config = write_config(tmp_path, operator_hours=hours(inside_now=False), balancer="{}")
    proc = EngineProcess(config)
    try:
        [started] = fronts(config)
        assert started["address"] == f"udp:{proc.target}" and started["restarts"] == 0
        os.kill(started["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while len(fronts(config)) < 3:
            assert time.monotonic() < deadline, (fronts(config), proc.log_text())
            time.sleep(0.05)
        exited, again = fronts(config)[1:]
        assert exited["event"] == "front_exited" and exited["code"] == -signal.SIGKILL
        assert again["event"] == "front_started" and again["restarts"] == 1
        assert again["pid"] != started["pid"]
        assert "kamailio (the SIP front) exited with code -9; restarting in" in proc.log_text()
        caller = Sipp(THROUGH, tmp_path, "-s", "961108", "-d", "500", remote=proc.target,
                      calls=1, timeout_s=15)
        assert caller.wait() == 0, caller.report() + proc.log_text()
    finally:
        assert proc.stop() == 0
    assert wait_gone(again["pid"], 5), "the engine left its Kamailio running"


def test_a_killed_engine_takes_its_front_along(tmp_path: Path) -> None:
    config = write_config(tmp_path, balancer="{}")
    proc = EngineProcess(config)
    [started] = fronts(config)
    proc.proc.kill()  # no clean stop: PR_SET_PDEATHSIG tells Kamailio
    proc.stop()
    assert wait_gone(started["pid"], 8), "kamailio outlived a killed engine"
    # the port is free again: a new engine starts its own front there
    again = EngineProcess(config)  # (its wait for engine_started sees the first engine's)
    try:
        deadline = time.monotonic() + 20
        while len(fronts(config)) < 2:
            assert time.monotonic() < deadline, again.log_text()
            time.sleep(0.05)
        assert fronts(config)[-1]["pid"] != started["pid"]
    finally:
        again.stop()


def test_kamailio_config_and_run_write_the_same_files(tmp_path: Path) -> None:
    config = write_config(tmp_path, balancer="{}")
    out = tmp_path / "by-hand"
    subprocess.run([sys.executable, str(ROOT / "run_dialer.py"),
                    "kamailio-config", "-c", str(config), "-o", str(out)],
                   check=True, capture_output=True, timeout=30)
    proc = EngineProcess(config)
    try:
        mine = tmp_path / "var" / "kamailio"
        for name in ("kamailio.cfg", "dispatcher.list"):
            ours = (mine / name).read_text().replace(str(mine), "DIR")
            by_hand = (out / name).read_text().replace(str(out), "DIR")
            assert ours == by_hand, name
    finally:
        proc.stop()
