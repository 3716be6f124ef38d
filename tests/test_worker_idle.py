"""A worker with nothing to do sleeps: no media thread, no media clock, one wake-up a second;
a packet or a command wakes it at once, and the next call has audio both ways."""

from __future__ import annotations

import time
from pathlib import Path

from dialerctl import warn
from enginectl import EngineProcess, hours, read_events, write_config
from workerproc import Sipp, WorkerProcess, cpu_ms, make_speech, make_tone, wav_rms

from softphone import protocol as p

IDLE_CPU_MS = 5.0  # in 2 s: the bound (about 0.2 ms measured)


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def idle_cpu_ms(worker: WorkerProcess, seconds: float = 2.0) -> float:
    before = cpu_ms(worker.proc.pid)
    time.sleep(seconds)
    return cpu_ms(worker.proc.pid) - before


def asleep(worker: WorkerProcess, idle_threads: int, timeout: float = 4.0) -> None:
    """Until the media clock's thread is gone again (pjsua closes the null sound device a
    second after the last call's media leaves the bridge)."""
    deadline = time.monotonic() + timeout
    while threads(worker.proc.pid) > idle_threads:
        assert time.monotonic() < deadline, (
            f"{threads(worker.proc.pid)} threads, {idle_threads} when idle: the media clock "
            "still runs")
        time.sleep(0.1)


def test_an_idle_worker_sleeps_then_answers_plays_and_takes_a_digit_at_once(
        tmp_path: Path) -> None:
    worker = WorkerProcess("w1", tmp_path, ["--allow", "127.0.0.1/32"])
    try:
        time.sleep(1.5)  # the media clock pjsua opens at its start closes after a second
        spent = idle_cpu_ms(worker)
        assert spent < IDLE_CPU_MS, f"an idle worker used {spent:.1f} ms of CPU in 2 s"
        prompt = make_tone(tmp_path / "prompt.wav", 4.0)
        sent = time.monotonic()
        sipp = Sipp("uac_pcap_dtmf_1_5_then_audio.xml", tmp_path, "-s", "961108",
                    remote=f"127.0.0.1:{worker.sip_port}")
        try:
            call = worker.wait_for("incoming", timeout=5).call
            woke = time.monotonic() - sent
            worker.send(p.Answer(call))
            asked = time.monotonic()
            worker.wait_for("answered", call)
            answered = time.monotonic() - asked
            worker.send(p.Play(call, str(prompt), interrupt_on_digit=True))
            worker.send(p.Collect(call, max_digits=2, timeout_s=5))
            assert worker.wait_for("dtmf", call).digit == "1"
            heard = time.monotonic()
            assert worker.wait_for("playback_ended", call).reason == "interrupted"
            interrupted = time.monotonic() - heard
            assert worker.wait_for("digits", call) == p.Digits(call, "15", "max")
            assert worker.wait_for("hung_up", call, timeout=10).by == "remote"
            assert sipp.wait() == 0, sipp.report()
        finally:
            sipp.kill()
        assert worker.shutdown() == 0
    finally:
        worker.kill()
    # SIPp's own start is in the first figure; the idle poll (1 s) would show as ~0.5 s more
    assert woke < 1.0 and answered < 0.3 and interrupted < 0.15, (woke, answered, interrupted)


def test_after_its_last_call_a_worker_sleeps_again_and_the_next_call_has_audio_both_ways(
        tmp_path: Path) -> None:
    speech = make_speech(tmp_path / "speech.wav",
                         "This is the anti fraud center. Do not transfer any money.")
    caller = WorkerProcess("wa", tmp_path)
    callee = WorkerProcess("wb", tmp_path, ["--allow", "127.0.0.1/32"])
    try:
        time.sleep(1.5)
        idle_threads = threads(callee.proc.pid)
        for n in (1, 2):
            caller.send(p.Dial(f"a{n}", f"sip:961108@127.0.0.1:{callee.sip_port}",
                               caller_id="13800138000", ring_timeout_s=5))
            call = callee.wait_for("incoming").call
            callee.send(p.Answer(call))
            caller.wait_for("answered", f"a{n}")
            callee.wait_for("answered", call)
            assert threads(callee.proc.pid) > idle_threads  # the media clock runs
            heard_there, heard_here = tmp_path / f"callee-{n}.wav", tmp_path / f"caller-{n}.wav"
            callee.send(p.Record(call, str(heard_there)))
            caller.send(p.Record(f"a{n}", str(heard_here)))
            caller.send(p.Play(f"a{n}", str(speech)))
            callee.send(p.Play(call, str(speech)))
            caller.wait_for("playback_ended", f"a{n}", timeout=10)
            callee.wait_for("playback_ended", call, timeout=10)
            callee.send(p.StopRecording(call))
            caller.send(p.StopRecording(f"a{n}"))
            callee.wait_for("recording_saved", call, timeout=5)
            caller.wait_for("recording_saved", f"a{n}", timeout=5)
            caller.send(p.Hangup(f"a{n}"))
            callee.wait_for("hung_up", call)
            assert wav_rms(heard_there) > 100 and wav_rms(heard_here) > 100, f"call {n}: silent"
            asleep(callee, idle_threads)
            spent = idle_cpu_ms(callee)
            assert spent < IDLE_CPU_MS, f"after call {n}: {spent:.1f} ms of CPU in 2 s"
        assert caller.shutdown() == 0 and callee.shutdown() == 0
    finally:
        caller.kill()
        callee.kill()


def test_an_idle_engine_costs_almost_nothing(tmp_path: Path) -> None:
    """Nothing due, no call: the engine's loop sleeps until a store file is written (a
    request from another process), a packet or a timer; it neither polls its stores every
    20 ms nor claims in a loop (an empty claim woke the dialer that made it, for ever)."""
    config = write_config(tmp_path, workers=2, operator_hours=hours(inside_now=False))
    engine = EngineProcess(config)
    try:
        time.sleep(2.0)  # the start's own work is over
        before = cpu_ms(engine.proc.pid)
        time.sleep(2.0)
        spent = cpu_ms(engine.proc.pid) - before
        assert spent < 20.0, f"an idle engine used {spent:.1f} ms of CPU in 2 s"
        task_id = warn(config, "13800137490")  # another process writes the store: heard at
        stored = time.monotonic()               # once, not at the next look a second later
        while not any(e["event"] == "task" and e.get("task_id") == task_id
                      and e.get("task_event") == "attempt" for e in read_events(config)):
            assert time.monotonic() - stored < 0.5, engine.log_text()
            time.sleep(0.01)
    finally:
        engine.stop()
