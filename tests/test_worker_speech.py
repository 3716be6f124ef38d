"""Two real worker processes calling each other: speech detection on received audio."""

from __future__ import annotations

from pathlib import Path

from workerproc import WorkerProcess, make_speech

from softphone import protocol as p


def test_worker_to_worker_speech_is_detected(tmp_path: Path) -> None:
    speech = make_speech(tmp_path / "warning.wav",
                         "This is the anti fraud center. Do not transfer any money.")
    caller = WorkerProcess("wa", tmp_path)
    callee = WorkerProcess("wb", tmp_path, ["--allow", "127.0.0.1/32"])
    try:
        caller.send(p.Dial("a1", f"sip:961108@127.0.0.1:{callee.sip_port}",
                           caller_id="13800138000", ring_timeout_s=5))
        incoming = callee.wait_for("incoming")
        assert (incoming.caller, incoming.callee) == ("13800138000", "961108")
        callee.send(p.Ring(incoming.call))
        assert caller.wait_for("ringing", "a1").status == 180
        callee.send(p.Answer(incoming.call))
        caller.wait_for("answered", "a1")
        callee.wait_for("answered", incoming.call)
        assert not any(e.TYPE == "speech_started" for e in callee.settle(0.5))

        caller.send(p.Play("a1", str(speech)))
        callee.wait_for("speech_started", incoming.call, timeout=3)
        caller.wait_for("playback_ended", "a1", timeout=10)
        ended = callee.wait_for("speech_ended", incoming.call, timeout=3)
        spoken = [e.duration_s for e in callee.of_call(incoming.call)
                  if e.TYPE == "speech_ended"]
        assert ended.duration_s > 0.3
        assert 1.5 < sum(spoken) < 6, spoken

        caller.send(p.Hangup("a1"))
        assert caller.wait_for("hung_up", "a1").by == "local"
        assert callee.wait_for("hung_up", incoming.call).by == "remote"
        assert caller.shutdown() == 0
        assert callee.shutdown() == 0
    finally:
        caller.kill()
        callee.kill()
    kinds = [e.TYPE for e in callee.of_call(incoming.call)]
    assert kinds[-1] == "hung_up"
    starts, ends = kinds.count("speech_started"), kinds.count("speech_ended")
    assert starts == ends >= 1
