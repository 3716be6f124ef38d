"""Answering-machine detection, pure: frames in, a verdict out. Tables, then real speech made
here with espeak-ng and sox, judged frame by frame through webrtcvad as the worker does."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest
import webrtcvad
from workerproc import make_speech

from audio.amd import AmdDetector, AmdSettings, Verdict

FRAME_S = 0.02


DEFAULTS = AmdSettings()


def judge(frames: str, settings: AmdSettings = DEFAULTS) -> tuple[Verdict | None, str, float]:
    """``frames``: one character per 20 ms frame, ``#`` voiced, ``.`` silent."""
    detector = AmdDetector(settings, FRAME_S)
    for i, frame in enumerate(frames):
        verdict = detector.feed(frame == "#")
        if verdict is not None:
            return verdict.verdict, verdict.cause, round((i + 1) * FRAME_S, 2)
    return None, "", 0.0


def seconds(s: float, voiced: bool) -> str:
    return ("#" if voiced else ".") * round(s / FRAME_S)


V, S = (lambda s: seconds(s, True)), (lambda s: seconds(s, False))


@pytest.mark.parametrize(("name", "frames", "verdict", "cause"), [
    ("a short hello, then silence", S(0.4) + V(0.4) + S(2.0), Verdict.HUMAN, "HUMAN"),
    ("two short words, then silence", V(0.3) + S(0.2) + V(0.3) + S(2.0), Verdict.HUMAN, "HUMAN"),
    ("a long unbroken greeting", S(0.3) + V(3.0), Verdict.MACHINE, "LONGGREETING"),
    ("many short words", (V(0.15) + S(0.1)) * 6, Verdict.MACHINE, "MAXWORDS"),
    ("silence alone is never a machine", S(6.0), Verdict.UNSURE, "INITIALSILENCE"),
    ("noise blips shorter than a word are not words", ("#" + "...") * 70, Verdict.UNSURE,
     "TOOLONG"),
])
def test_table(name: str, frames: str, verdict: Verdict, cause: str) -> None:
    got, why, _ = judge(frames)
    assert (got, why) == (verdict, cause)


def test_a_person_is_known_after_the_silence_that_follows_the_greeting() -> None:
    _, _, at = judge(S(0.4) + V(0.4) + S(2.0))
    assert at == pytest.approx(0.4 + 0.4 + 0.8)


def test_nothing_decided_after_the_total_analysis_time() -> None:
    settings = AmdSettings(initial_silence_s=10, total_analysis_s=2.0)
    assert judge(S(5), settings)[:2] == (Verdict.UNSURE, "TOOLONG")


def test_one_verdict_only() -> None:
    detector = AmdDetector()
    verdicts = [detector.feed(True) for _ in range(200)]
    assert sum(v is not None for v in verdicts) == 1


# ---------------------------------------------------------------- real speech


def vad_frames(path: Path, aggressiveness: int = 2) -> str:
    """The worker's view of a WAV: webrtcvad on each 20 ms frame at 8 kHz."""
    vad = webrtcvad.Vad(aggressiveness)
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        pcm = w.readframes(w.getnframes())
    size = 160 * 2
    return "".join("#" if vad.is_speech(pcm[i:i + size], 8000) else "."
                   for i in range(0, len(pcm) - size + 1, size))


def padded(speech: Path, before_s: float, after_s: float) -> Path:
    out = speech.with_name(speech.stem + "-padded.wav")
    subprocess.run(["sox", str(speech), str(out), "pad", str(before_s), str(after_s)], check=True,
                   timeout=30)
    return out


GREETING = "您好，我现在不方便接听电话。请在提示音后留言，我会尽快给您回电，谢谢。"


def test_an_espeak_voicemail_greeting_is_a_machine(tmp_path: Path) -> None:
    greeting = padded(make_speech(tmp_path / "greeting.wav", GREETING, voice="cmn"), 0.5, 1.0)
    verdict, cause, at = judge(vad_frames(greeting))
    assert verdict is Verdict.MACHINE, cause
    assert at < 5.0  # within the analysis time, while the warning already plays


def test_an_espeak_short_hello_is_a_person(tmp_path: Path) -> None:
    hello = padded(make_speech(tmp_path / "hello.wav", "喂？", voice="cmn"), 0.6, 3.0)
    verdict, cause, at = judge(vad_frames(hello))
    assert (verdict, cause) == (Verdict.HUMAN, "HUMAN")
    assert at < 2.5


def test_the_thresholds_are_the_same_in_the_config_the_protocol_and_the_detector() -> None:
    from dataclasses import fields

    from sip_config.schema import AmdConfig
    from softphone import protocol as p

    names = [f.name for f in fields(AmdSettings)]
    assert [f.name for f in fields(p.DetectMachine)] == ["call", *names]
    assert set(AmdConfig.model_fields) - {"enabled", "greeting_wait_s"} == set(names)
    assert AmdConfig().model_dump(exclude={"enabled", "greeting_wait_s"}) == DEFAULTS.__dict__
