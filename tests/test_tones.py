"""Call-progress tones, pure: synthesised audio in, verdicts out. Every signal goes through a
G.711 mu-law round trip, as early media does; tones are jittered, joined mid-cadence, at two
levels, with and without noise. Speech (espeak-ng) and music come from ``tests/sounds.py``."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sounds
from sounds import (
    CN_BUSY,
    CN_CONGESTION,
    CN_RINGBACK,
    CN_VACANT,
    MUSIC,
    RATE,
    SIT_LONG,
    SIT_SHORT,
    ZERO_DBM0_PEAK,
    Steps,
    amplitude,
    at_level,
    frames,
    g711,
    melody_with_harmonics,
    silence,
    speak,
    ulaw_encode,
    white_noise,
)

from audio.tones import (
    TONE_PLANS,
    Cadence,
    Tone,
    ToneDetector,
    TonePlan,
    ToneVerdict,
    off,
    on,
)

FINAL = {Tone.BUSY, Tone.CONGESTION, Tone.VACANT, Tone.SIT}


def test_the_test_codec_is_g711() -> None:
    x = np.linspace(-32000, 32000, 4001).astype(np.int16)
    error = np.abs(g711(x).astype(int) - x)
    assert np.all(error <= np.maximum(abs(x) / 16, 8))
    assert ulaw_encode(np.array([0, -1, 32767, -32768]))[0] == 0xFF
    assert list(ulaw_encode(np.array([32767, -32768]))) == [0x80, 0x00]
    assert ZERO_DBM0_PEAK == pytest.approx(amplitude(0.0))


def cadence(steps: Steps, dbm0: float, seconds: float, rng: np.random.Generator,
            snr_db: float | None = None, jitter: float = 0.10) -> np.ndarray:
    """``steps`` repeated, each on and off time jittered independently by up to ``jitter``,
    joined at a random point of the first cycle, then mu-law coded."""
    return g711(sounds.cadence(steps, dbm0, seconds, rng, jitter, snr_db=snr_db))


def verdicts(x: np.ndarray, plan: str | TonePlan = "cn") -> list[ToneVerdict]:
    detector = ToneDetector(plan)
    return [v for f in frames(x) if (v := detector.feed(f)) is not None]


def finals(x: np.ndarray) -> list[Tone]:
    return [v.tone for v in verdicts(x) if v.tone in FINAL]


CN = 450.0
CN_STEPS: dict[Tone, Steps] = {Tone.RINGBACK: CN_RINGBACK, Tone.BUSY: CN_BUSY,
                               Tone.CONGESTION: CN_CONGESTION, Tone.VACANT: CN_VACANT}
SEEDS = range(12)


# ------------------------------------------------------------------ recognised


@pytest.mark.parametrize("snr_db", [None, 30.0], ids=["clean", "snr30"])
@pytest.mark.parametrize("dbm0", [-25.0, 0.0])
@pytest.mark.parametrize(("tone", "steps", "within_s"), [
    (Tone.BUSY, CN_STEPS[Tone.BUSY], 1.5),  # two cycles
    (Tone.CONGESTION, CN_STEPS[Tone.CONGESTION], 3.0),  # two periods, and the edges
    (Tone.VACANT, CN_STEPS[Tone.VACANT], 2.8),  # two periods
    (Tone.SIT, SIT_SHORT, 2.6),  # at worst the next one, after 1 s of silence
    (Tone.SIT, SIT_LONG, 2.9),
], ids=["busy", "congestion", "vacant", "sit-short", "sit-long"])
def test_a_final_tone_is_recognised(tone: Tone, steps: Steps, within_s: float, dbm0: float,
                                    snr_db: float | None) -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        got = verdicts(cadence(steps, dbm0, 8.0, rng, snr_db))
        assert [v.tone for v in got] == [tone], seed
        assert got[0].after_s <= within_s, seed
        assert got[0].level_dbm0 == pytest.approx(dbm0, abs=1.0), seed


@pytest.mark.parametrize("snr_db", [None, 30.0], ids=["clean", "snr30"])
@pytest.mark.parametrize("dbm0", [-25.0, 0.0])
def test_ringback_is_reported_once_and_is_never_final(dbm0: float, snr_db: float | None) -> None:
    for seed in SEEDS:
        got = verdicts(cadence(CN_STEPS[Tone.RINGBACK], dbm0, 60.0,
                               np.random.default_rng(seed), snr_db))
        assert [v.tone for v in got] == [Tone.RINGBACK], seed
        assert got[0].after_s <= 7.5, seed  # one period and a half at worst
        assert got[0].level_dbm0 == pytest.approx(dbm0, abs=1.0), seed


def test_busy_after_ringing_is_still_recognised() -> None:
    rng = np.random.default_rng(1)
    ringing = cadence(CN_STEPS[Tone.RINGBACK], -20, 12.0, rng)
    busy = cadence(CN_STEPS[Tone.BUSY], -20, 4.0, rng)
    got = verdicts(np.concatenate((ringing, busy)))
    assert [v.tone for v in got] == [Tone.RINGBACK, Tone.BUSY]
    assert got[1].after_s - 12.0 <= 1.5


def test_a_final_verdict_is_the_last() -> None:
    detector = ToneDetector()
    x = cadence(CN_STEPS[Tone.BUSY], -10, 10.0, np.random.default_rng(0))
    got = [v for f in frames(x) if (v := detector.feed(f)) is not None]
    assert [v.tone for v in got] == [Tone.BUSY]
    assert detector.verdict == got[0]
    assert detector.feed(bytes(320)) is None


def test_bytes_and_arrays_are_the_same_frames() -> None:
    x = cadence(CN_STEPS[Tone.CONGESTION], -15, 4.0, np.random.default_rng(3))
    as_bytes, as_array = ToneDetector(), ToneDetector()
    for f in frames(x):
        assert as_bytes.feed(f.astype("<i2").tobytes()) == as_array.feed(f)
    assert as_bytes.verdict is not None and as_bytes.verdict.tone is Tone.CONGESTION
    with pytest.raises(ValueError):
        as_array.feed(bytes(318))


# ------------------------------------------------------------------ plans are data


def test_every_chinese_tone_is_450_hz_and_told_apart_by_cadence_only() -> None:
    plan = TONE_PLANS["cn"]
    by_tone = {c.tone: c for c in plan.cadences}
    assert set(by_tone) == set(Tone)
    for tone in set(Tone) - {Tone.SIT}:
        assert {seg.hz for seg in by_tone[tone].segments} == {(CN,), ()}
        assert [(seg.hz, seg.seconds) for seg in by_tone[tone].segments] == CN_STEPS[tone]
    assert [seg.hz for seg in by_tone[Tone.SIT].segments] == [(913.8,), (1370.6,), (1776.7,), ()]
    assert not by_tone[Tone.RINGBACK].final and by_tone[Tone.BUSY].q850_cause == 17


def test_a_plan_of_dual_frequency_tones_works_too() -> None:
    """North-American style (Asterisk [us]): busy 480+620 Hz 0.5/0.5, reorder 0.25/0.25."""
    us = TonePlan("us", (
        Cadence(Tone.RINGBACK, (on(2.0, 440, 480), off(4.0)), confirm_s=3.0, confirm_bursts=1,
                meaning="ringing", final=False),
        Cadence(Tone.BUSY, (on(0.5, 480, 620), off(0.5)), confirm_s=1.5, confirm_bursts=2,
                meaning="busy", q850_cause=17),
        Cadence(Tone.CONGESTION, (on(0.25, 480, 620), off(0.25)), confirm_s=1.0,
                confirm_bursts=2, meaning="reorder", q850_cause=34),
    ))
    rng = np.random.default_rng(5)
    for steps, tone in [([((480, 620), 0.5), ((), 0.5)], Tone.BUSY),
                        ([((480, 620), 0.25), ((), 0.25)], Tone.CONGESTION),
                        ([((440, 480), 2.0), ((), 4.0)], Tone.RINGBACK)]:
        x = cadence(steps, -15, 14.0, rng, 30.0)
        assert [v.tone for v in verdicts(x, us)] == [tone]
        assert verdicts(x) == []  # the Chinese plan hears none of them


# ------------------------------------------------------------------ never a false failure


def noise(dbm0: float, seconds: float, seed: int = 0) -> np.ndarray:
    return g711(white_noise(dbm0, seconds, seed))


def coded(x: np.ndarray, dbm0: float) -> np.ndarray:
    """``x`` at ``dbm0``, mu-law coded."""
    return g711(at_level(x, dbm0))


@pytest.mark.parametrize("dbm0", [-25.0, -10.0, 0.0])
@pytest.mark.parametrize("name", list(MUSIC))
def test_ring_back_music_is_never_a_final_tone(name: str, dbm0: float) -> None:
    for seed in range(3):
        assert finals(coded(MUSIC[name](np.random.default_rng(seed)), dbm0)) == [], seed


@pytest.mark.parametrize(("name", "x"), [
    ("digital silence", silence(30.0)),
    ("line noise at -60 dBm0", noise(-60, 30.0)),
    ("white noise at -40 dBm0", noise(-40, 30.0)),
    ("white noise at -20 dBm0", noise(-20, 30.0, 1)),
    ("white noise at -3 dBm0", noise(-3, 30.0, 2)),
    ("noise bursts 0.35 s on / 0.35 s off", np.concatenate(
        [np.concatenate((noise(-15, 0.35, i), silence(0.35))) for i in range(20)])),
    ("call waiting, 450 Hz 0.4 s / 4 s", cadence([((CN,), 0.4), ((), 4.0)], -15, 40.0,
                                                 np.random.default_rng(0), 30.0)),
    ("a 450 Hz tone that never stops", cadence([((CN,), 30.0)], -15, 29.0,
                                               np.random.default_rng(0))),
])
def test_silence_noise_and_a_steady_tone_are_never_a_final_tone(name: str, x: np.ndarray) -> None:
    assert finals(x) == []


def test_ringback_for_a_long_time_is_never_a_final_tone() -> None:
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        x = cadence(CN_STEPS[Tone.RINGBACK], rng.uniform(-30, 0), 120.0, rng, 30.0)
        assert [v.tone for v in verdicts(x)] == [Tone.RINGBACK]


# ------------------------------------------------------------------ speech (espeak-ng, sox)

ANNOUNCEMENTS = [
    "您好，您拨打的电话正在通话中，请稍后再拨。",
    "您拨打的电话已关机。",
    "对不起，您拨打的电话暂时无法接通，请稍后再拨。",
    "您拨打的号码是空号，请查证后再拨。",
    "您拨打的用户不在服务区。",
    "您拨打的电话已停机。",
]


@pytest.fixture(scope="session")
def speech() -> list[np.ndarray]:
    """The carriers' announcements, spoken by espeak-ng, at 8 kHz."""
    return [speak(text) for text in ANNOUNCEMENTS]


@pytest.mark.parametrize("dbm0", [-25.0, -10.0, 0.0])
def test_spoken_announcements_are_never_a_final_tone(speech: list[np.ndarray],
                                                     dbm0: float) -> None:
    gap = silence(0.35)
    x = np.concatenate([part for s in speech for part in (s, gap, s, silence(1.0))])
    assert finals(coded(x, dbm0)) == []


def test_a_busy_tone_after_an_announcement_is_recognised(speech: list[np.ndarray]) -> None:
    rng = np.random.default_rng(9)
    x = np.concatenate((speech[0], silence(0.5), cadence(CN_STEPS[Tone.BUSY], -12, 4.0, rng)))
    got = verdicts(x)
    assert [v.tone for v in got] == [Tone.BUSY]
    assert got[0].after_s - (len(speech[0]) / RATE + 0.5) <= 1.5


# ------------------------------------------------------------------ cost


def test_cost_per_frame() -> None:
    """Prints microseconds per 20 ms frame (run with -s); asserts nothing about time."""
    x = np.concatenate([coded(melody_with_harmonics(np.random.default_rng(0)), -12),
                        cadence(CN_STEPS[Tone.RINGBACK], -20, 30.0, np.random.default_rng(0))])
    chunks = [f.tobytes() for f in frames(x)]
    detector = ToneDetector()
    start = time.perf_counter()
    for chunk in chunks:
        detector.feed(chunk)
    per_frame = (time.perf_counter() - start) / len(chunks) * 1e6
    print(f"\ntone detector: {per_frame:.1f} us per 20 ms frame ({len(chunks)} frames)")
