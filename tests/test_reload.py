"""A new configuration for the running engine (``run_dialer.py reload``, SIGHUP), against
SIPp callers: operator hours that begin now while a caller is in the voice menu, and broken
files refused while the engine keeps what it had."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from brokerctl import Broker, Watcher, mqtt_section
from dialerctl import FAST_RETRIES, attempts_of, cli, dialer_config, wait_tasks, warn
from enginectl import EngineProcess, hours, read_events, wait_events, write_config
from rtppcap import write_pcap
from sounds import read_wav, ulaw_decode
from workerproc import ROOT, Sipp

from dialer import Outcome, TaskState
from hotline.menus import DEFAULT_MENUS

NUMBER = "13800137490"


def screened(config: Path) -> list[dict]:
    return [e for e in read_events(config) if e["event"] == "screened"]


def until_screened(config: Path, engine: EngineProcess, n: int, timeout: float = 10) -> None:
    found = wait_events(config, lambda e: e["event"] == "screened", timeout, count=n)
    assert len(found) >= n, engine.log_text()


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
        until_screened(config, engine, 1)
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
        until_screened(config, engine, 6)
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


def test_drain_workers_starts_and_stops_workers_when_engine_workers_changes(
        tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=2, operator_hours=hours(inside_now=False),
                          balancer="{flood_exempt: [127.0.0.1/32]}")
    engine = EngineProcess(config)
    try:
        config.write_text(config.read_text().replace("workers: 2", "workers: 3"))
        waits = cli(config, "reload").stdout
        assert "engine.workers: needs new worker processes" in waits, waits
        grown = cli(config, "drain-workers").stdout
        assert "w3: started" in grown and "w1: pid" in grown, grown
        spread = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                      "-d", "6000", "-l", "3", "-r", "10", remote=engine.target, calls=3,
                      timeout_s=30)
        until_screened(config, engine, 3)
        assert {e["worker"] for e in screened(config)} == {"w1", "w2", "w3"}  # the front knows w3
        config.write_text(config.read_text().replace("workers: 3", "workers: 1"))
        cli(config, "reload")
        shrunk = cli(config, "drain-workers").stdout  # while the three calls are up
        assert spread.wait() == 0, spread.report() + engine.log_text()  # none dropped
        assert "w2: stopped" in shrunk and "w3: stopped" in shrunk, shrunk
        after = Sipp("uac_call_hold_bye_through_balancer.xml", tmp_path, "-s", "961108",
                     "-d", "300", remote=engine.target, calls=1, timeout_s=20)
        assert after.wait() == 0, after.report() + engine.log_text()
        status = json.loads(cli(config, "status", "--json").stdout)
    finally:
        engine.stop()
    assert [w["name"] for w in status["engine"]["workers"]] == ["w1"]
    assert status["engine"]["reload"]["waiting"] == []
    assert screened(config)[-1]["worker"] == "w1"
    ended = [e for e in read_events(config) if e["event"] == "ended"]
    assert len(ended) == 4 and all(e["by"] == "remote" for e in ended)


def test_a_graceful_stop_lets_calls_finish_and_keeps_what_was_due(tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=2, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        calls = Sipp("uac_call_hold_bye.xml", tmp_path, "-s", "961108", "-d", "4000",
                     "-l", "2", "-r", "2", remote=engine.target, calls=2, timeout_s=30)
        until_screened(config, engine, 2)
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


# ------------------------------------------------------------------ a warning call during a reload


class Ear:
    """A phone's ear: every RTP packet sent to one UDP port, by SSRC, with when it came."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.streams: dict[int, list[tuple[float, bytes]]] = {}
        self._open = True
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while self._open:
            try:
                packet = self.sock.recv(2048)
            except TimeoutError:
                continue
            if len(packet) < 12 or packet[1] & 0x7F != 0:  # PCMU only (no telephone-event)
                continue
            ssrc = struct.unpack(">I", packet[8:12])[0]
            start = 12 + 4 * (packet[0] & 0x0F)
            self.streams.setdefault(ssrc, []).append((time.time(), packet[start:]))

    def close(self) -> None:
        self._open = False
        self._thread.join(2)
        self.sock.close()

    def calls(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each stream heard, in the order they began: (arrival time of each sample, audio)."""
        out = []
        for packets in sorted(self.streams.values(), key=lambda ps: ps[0][0]):
            pcm = ulaw_decode(np.frombuffer(b"".join(p for _, p in packets), np.uint8))
            times = np.concatenate([np.full(len(p), t) for t, p in packets])
            out.append((times, pcm.astype(np.float64)))
        return out


def loudest_part(wav: Path, seconds: float = 0.6) -> np.ndarray:
    """The loudest ``seconds`` in the middle half of a prompt: speech, never a pause."""
    x = read_wav(wav).astype(np.float64)
    n = int(seconds * 8000)
    energy = np.convolve(x ** 2, np.ones(n), "valid")
    lo, hi = len(x) // 4, 3 * len(x) // 4 - n
    start = lo + int(np.argmax(energy[lo:hi]))
    return x[start:start + n]


def heard_at(signal: np.ndarray, part: np.ndarray, threshold: float = 0.8) -> list[int]:
    """Where ``part`` is in ``signal`` (normalised cross-correlation above ``threshold``), one
    offset per occurrence."""
    if len(signal) < len(part):
        return []
    size = 1 << (len(signal) + len(part)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(part, size)), size)
    corr = corr[:len(signal) - len(part) + 1]
    energy = np.convolve(signal ** 2, np.ones(len(part)), "valid")
    score = corr / (np.sqrt(np.maximum(energy, 1e-9)) * np.linalg.norm(part))
    found: list[int] = []
    for at in np.flatnonzero(score > threshold):
        if not found or at - found[-1] > 8000:
            found.append(int(at))
    return found


OLD_WARNING = "请注意，您可能正在遭遇电信诈骗，请马上停止转账。"
NEW_WARNING = "紧急提醒，冒充公检法的电话都是骗局，不要汇款给任何人。"


def test_a_call_in_progress_keeps_its_warning_and_the_next_attempt_has_the_new_text_and_spacing(
        tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    watcher = Watcher(broker.port, topics=("antifraud/engine/event",))
    ear = Ear()
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    phone = Sipp("uas_listen_busy_then_dtmf.xml", tmp_path, "-key", "busy_call", "2",
                 "-key", "listen_port", str(ear.port), "-key", "dtmf_pcap", str(dtmf),
                 calls=3, timeout_s=120)
    config = dialer_config(tmp_path, phone.uri_host,
                           retries=FAST_RETRIES.replace("busy_s: 1,", "busy_s: 30,").replace(
                               "busy_cap_s: 1", "busy_cap_s: 60"))
    config.write_text(config.read_text().replace(  # the phone only listens: it sends no RTP
        "sip:\n", "sip:\n  media_timeout_s: 120\n") + mqtt_section(broker.url))
    catalog = tmp_path / "short-warnings.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace(
        "请注意，这是反诈测试。", OLD_WARNING), encoding="utf-8")
    prompt = tmp_path / "var" / "prompts" / "warn-general.wav"
    engine = EngineProcess(config)
    try:
        shutil.copy(prompt, tmp_path / "old.wav")
        task_id = warn(config, NUMBER, "--fraud-type", "general")
        wait_tasks(config, [task_id], done=lambda t: bool(
            attempts_of(config, t.id) and attempts_of(config, t.id)[0].answered_at), timeout=30)
        good = config.read_text()
        config.write_text(good.replace("dialer:\n", "dialer:\n  ring_timout_s: 3\n"))
        assert cli(config, "reload", check=False).returncode == 2
        catalog.write_text(catalog.read_text(encoding="utf-8").replace(OLD_WARNING, NEW_WARNING),
                           encoding="utf-8")
        config.write_text(good.replace("busy_s: 30,", "busy_s: 2,"))
        reloaded = cli(config, "reload")
        reloaded_at = time.time()
        assert "dialer.retry.busy_s" in reloaded.stdout, reloaded
        shutil.copy(prompt, tmp_path / "new.wav")
        [task] = wait_tasks(config, [task_id], timeout=90)
        assert phone.wait() == 0, phone.report() + engine.log_text()
        events = watcher.wait("antifraud/engine/event", lambda seen: len(seen) >= 2)
    finally:
        phone.kill()
        engine.stop()
        ear.close()
        watcher.close()
        broker.stop()
    assert task.state is TaskState.ACKNOWLEDGED
    first, busy, third = attempts_of(config, task_id)
    assert (first.outcome, busy.outcome) == (Outcome.UNACKNOWLEDGED, Outcome.BUSY)
    assert third.started_at - busy.started_at < 5  # the new busy_s (2 s), not the old 30 s
    old, new = loudest_part(tmp_path / "old.wav"), loudest_part(tmp_path / "new.wav")
    (times_1, call_1), (_, call_3) = ear.calls()
    said = heard_at(call_1, old)
    assert len(said) == 2 and heard_at(call_1, new) == [], (  # both repeats with the old words,
        len(call_1) / 8000, said, heard_at(call_1, new), heard_at(call_1, old, 0.5),
        heard_at(call_1, new, 0.5), (times_1[0] - reloaded_at))
    assert times_1[said[1]] > reloaded_at  # the second one after the reload
    assert heard_at(call_3, new) and heard_at(call_3, old) == []
    refused, applied = (e.json for e in events[:2])
    assert (refused["event"], refused["result"]) == ("reload", "refused")
    assert "dialer.ring_timout_s" in refused["problems"][0]
    assert (applied["result"], applied["by"]) == ("applied", refused["by"])
    assert applied["by"].startswith("cli:") and "dialer.retry.busy_s" in applied["applied"]
