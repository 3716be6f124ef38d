"""What the network and the phones play, made for tests and benchmarks: tones, 彩铃 music,
speech (espeak-ng), G.711 and line noise. 8 kHz mono int16 throughout.

Levels are in dBm0 as G.711 has them: full scale is +3.17 dBm0, so a 0 dBm0 sine peaks at
32767·10^(−3.17/20) ≈ 22,767.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

RATE = 8000
FRAME = 160  # samples in 20 ms
ZERO_DBM0_PEAK = 32767 * 10 ** (-3.17 / 20)
CACHE = Path(tempfile.gettempdir()) / "antifraud-test-speech"

Steps = Sequence[tuple[tuple[float, ...], float]]
"""A cadence: (frequencies sounding together, seconds) steps; no frequency is silence."""

CN_BUSY: Steps = [((450.0,), 0.35), ((), 0.35)]
CN_RINGBACK: Steps = [((450.0,), 1.0), ((), 4.0)]
CN_CONGESTION: Steps = [((450.0,), 0.7), ((), 0.7)]
CN_VACANT: Steps = [((450.0,), 0.1), ((), 0.1)] * 3 + [((450.0,), 0.4), ((), 0.4)]
SIT_SHORT: Steps = [((913.8,), 0.274), ((1370.6,), 0.274), ((1776.7,), 0.274), ((), 1.0)]
SIT_LONG: Steps = [((913.8,), 0.380), ((1370.6,), 0.380), ((1776.7,), 0.380), ((), 1.0)]


def amplitude(dbm0: float) -> float:
    """The peak of a sine at ``dbm0``."""
    return ZERO_DBM0_PEAK * 10 ** (dbm0 / 20)


# ------------------------------------------------------------------ G.711


def ulaw_encode(x: np.ndarray) -> np.ndarray:
    """int16 → μ-law bytes (G.711, as the reference g711.c does it)."""
    s = x.astype(np.int32) >> 2  # 14 bits
    negative = s < 0
    magnitude = np.minimum(np.minimum(np.where(negative, -s, s), 8159) + 33, 8191)
    segment = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0, 7)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    return (np.where(negative, code ^ 0x7F, code ^ 0xFF) & 0xFF).astype(np.uint8)


def ulaw_decode(u: np.ndarray) -> np.ndarray:
    u = ~u.astype(np.int32) & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def alaw_round_trip(x: np.ndarray) -> np.ndarray:
    """int16 through G.711 A-law and back (as the reference g711.c does it)."""
    s = x.astype(np.int32) >> 3  # 13 bits
    negative = s < 0
    magnitude = np.minimum(np.where(negative, -s - 1, s), 4095)
    segment = np.clip(np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4, 0, 7)
    mantissa = np.where(segment == 0, magnitude >> 1, magnitude >> segment) & 0x0F
    decoded = np.where(segment == 0, (mantissa << 4) + 8,
                       ((mantissa << 4) + 0x108) << np.maximum(segment - 1, 0))
    return np.where(negative, -decoded, decoded).astype(np.int16)


def g711(x: np.ndarray, codec: str = "ulaw") -> np.ndarray:
    """What the far end hears of ``x`` through the codec."""
    if codec == "alaw":
        return alaw_round_trip(x)
    return ulaw_decode(ulaw_encode(x))


# ------------------------------------------------------------------ tones and line


def cadence(steps: Steps, dbm0: float, seconds: float, rng: np.random.Generator | None = None,
            jitter: float = 0.0, start_s: float | None = None,
            snr_db: float | None = None) -> np.ndarray:
    """``steps`` repeated for ``seconds``. With ``rng``: each step's length jittered by up to
    ``jitter`` (a fraction), each tone at a random phase, joined at a random point of the first
    cycle (unless ``start_s`` says where), and white noise ``snr_db`` under the tone."""
    period = sum(s for _, s in steps)
    peak = amplitude(dbm0)
    parts, total = [], 0.0
    while total < seconds + 2 * period:
        for hz, length in steps:
            stretch = 1 + (rng.uniform(-jitter, jitter) if rng is not None and jitter else 0.0)
            n = max(1, round(length * stretch * RATE))
            t = np.arange(n) / RATE
            phases = rng.uniform(0, 2 * np.pi, len(hz)) if rng is not None else np.zeros(len(hz))
            parts.append(sum((peak / len(hz) * np.sin(2 * np.pi * f * t + phase)
                              for f, phase in zip(hz, phases, strict=True)), np.zeros(n)))
            total += n / RATE
    if start_s is None:
        start_s = float(rng.uniform(0, period)) if rng is not None else 0.0
    start = round(start_s * RATE)
    x = np.concatenate(parts)[start:start + round(seconds * RATE)]
    if snr_db is not None:
        noise_rng = rng if rng is not None else np.random.default_rng(0)
        x = x + noise_rng.normal(0, peak / np.sqrt(2) * 10 ** (-snr_db / 20), x.size)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def ringback(seconds: float, dbm0: float = -12.0) -> np.ndarray:
    """The Chinese ringback tone: 450 Hz, 1 s on, 4 s off."""
    return cadence(CN_RINGBACK, dbm0, seconds)


def busy_tone(seconds: float, dbm0: float = -12.0) -> np.ndarray:
    return cadence(CN_BUSY, dbm0, seconds)


def noise_at_snr(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` below the power of ``x``'s sounding part, added."""
    sounding = x[np.abs(x) > 0] if np.any(x) else x
    power = float(np.mean(sounding.astype(float) ** 2)) if sounding.size else 1.0
    noisy = x + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), x.size)
    return np.clip(noisy, -32768, 32767).astype(np.int16)


def line(pcm: np.ndarray, rng: np.random.Generator, codec: str = "ulaw", gain_db: float = 0.0,
         snr_db: float = 30.0, reference: np.ndarray | None = None) -> np.ndarray:
    """``pcm`` as it comes over the line: at another level, with white noise ``snr_db`` under
    the power of ``reference`` (default ``pcm`` itself), through G.711 ``codec``."""
    power = float(np.mean((pcm if reference is None else reference).astype(np.float64) ** 2))
    scale = 10 ** (gain_db / 20)
    noisy = pcm * scale + rng.normal(0, np.sqrt(power * scale**2 / 10 ** (snr_db / 10)), pcm.size)
    return g711(np.clip(noisy, -32768, 32767).astype(np.int16), codec)


def white_noise(dbm0: float, seconds: float, seed: int = 0) -> np.ndarray:
    """White noise with the power of a ``dbm0`` sine."""
    noise = np.random.default_rng(seed).normal(0, amplitude(dbm0) / np.sqrt(2),
                                               round(seconds * RATE))
    return np.clip(noise, -32768, 32767).astype(np.int16)


def at_level(x: np.ndarray, dbm0: float) -> np.ndarray:
    """``x`` with the power of a ``dbm0`` sine (louder peaks clip)."""
    scaled = x / np.sqrt(np.mean(x.astype(float) ** 2)) * amplitude(dbm0) / np.sqrt(2)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return np.clip(x.astype(float) * 10 ** (db / 20), -32768, 32767).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def frames(x: np.ndarray) -> Iterator[np.ndarray]:
    """Whole 20 ms frames of ``x``."""
    for i in range(0, x.size - FRAME + 1, FRAME):
        yield x[i:i + FRAME]


# ------------------------------------------------------------------ 彩铃 music


def note(hz: float, seconds: float, harmonics: Sequence[float] = (1.0, 0.6, 0.4, 0.25),
         attack_s: float = 0.02, decay_per_s: float = 0.0, vibrato: float = 0.0) -> np.ndarray:
    """An instrument's note: harmonics, an attack, an exponential decay, a 5 Hz vibrato."""
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * hz * (t + vibrato / (2 * np.pi * 5) * np.sin(2 * np.pi * 5 * t))
    x = sum((a * np.sin(k * phase) for k, a in enumerate(harmonics, 1)), np.zeros(len(t)))
    envelope = np.minimum(t / attack_s, 1) * np.exp(-decay_per_s * t)
    release = np.minimum((t[-1] - t) / 0.02, 1)  # no click at the end
    return np.asarray(x * envelope * release / sum(harmonics))


def chord(hzs: tuple[float, ...], seconds: float) -> np.ndarray:
    return sum((note(hz, seconds) for hz in hzs), np.zeros(round(seconds * RATE)))


def drum(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A kick (a falling sine) under a snare (a noise burst), both fading fast."""
    t = np.arange(round(seconds * RATE)) / RATE
    kick = np.sin(2 * np.pi * (50 * t + 100 * (1 - np.exp(-t / 0.03)) * 0.03)) * np.exp(-t / 0.1)
    snare = rng.normal(0, 0.4, len(t)) * np.exp(-t / 0.05)
    return kick + snare


def tom(hz: float, seconds: float) -> np.ndarray:
    """A tuned drum: a pure sine that dies away."""
    t = np.arange(round(seconds * RATE)) / RATE
    return np.sin(2 * np.pi * hz * t) * np.exp(-t / 0.08)


def piece(parts: list[np.ndarray]) -> np.ndarray:
    """Joined, at an RMS of 1."""
    x = np.concatenate(parts)
    return np.asarray(x / np.sqrt(np.mean(x ** 2)))


def melody_with_harmonics(rng: np.random.Generator) -> np.ndarray:
    """Legato, 0.35 s notes; 440 and 450 Hz alternate with other notes."""
    tune = [440, 587, 450, 523, 440, 659, 450, 494, 450, 392, 440, 523] * 3
    return piece([note(hz, 0.35 * rng.uniform(0.95, 1.05)) for hz in tune])


def pure_flute(rng: np.random.Generator) -> np.ndarray:
    """Almost sine notes with vibrato, 450 Hz every other note, no gaps."""
    tune = [450, 600, 450, 675, 450, 500, 450, 563] * 4
    return piece([note(hz, 0.35, harmonics=(1.0, 0.1), vibrato=0.01) for hz in tune])


def chords(rng: np.random.Generator) -> np.ndarray:
    """Triads on 450 and 440 Hz and others, 0.35 and 0.7 s, with a bass line."""
    progression = [(450, 567, 675), (300, 378, 450), (440, 554, 659), (338, 450, 563)] * 3
    parts = []
    for i, triad in enumerate(progression):
        s = 0.7 if i % 3 == 0 else 0.35
        parts.append(chord(triad, s) + 0.5 * note(triad[0] / 2, s))
    return piece(parts)


def pauses_between_notes(rng: np.random.Generator) -> np.ndarray:
    """Plucked notes (harmonics, decaying) of about 0.35 s with 0.35 s of silence between."""
    tune = [450, 523, 450, 587, 440, 450, 659, 450, 494, 450] * 2
    parts = []
    for hz in tune:
        parts += [note(hz, 0.35 * rng.uniform(0.9, 1.1), decay_per_s=4.0), np.zeros(
            round(0.35 * rng.uniform(0.9, 1.1) * RATE))]
    return piece(parts)


def flute_with_pauses(rng: np.random.Generator) -> np.ndarray:
    """Steady, almost pure notes of 0.35 s and 0.35 s pauses; 450 Hz never twice running."""
    tune = [450, 600, 450, 675, 440, 500, 450, 563, 450, 400] * 2
    parts = []
    for hz in tune:
        parts += [note(hz, 0.35, harmonics=(1.0, 0.1)), np.zeros(round(0.35 * RATE))]
    return piece(parts)


def drum_beat(rng: np.random.Generator) -> np.ndarray:
    """A beat every 0.35 s, a 450 Hz tom on every other one, a melody over half of it."""
    beat = [drum(0.35, rng) + (tom(450, 0.35) if i % 2 else 0) for i in range(24)]
    x = np.concatenate(beat)
    tune = np.concatenate([note(hz, 0.7) for hz in [450, 600, 533, 450, 400, 450] * 2])
    x[: len(tune) // 2] += 0.5 * tune[: len(tune) // 2]
    return piece([x])


def pop_song(rng: np.random.Generator) -> np.ndarray:
    """A 彩铃 pop tune: chords, a melody with a 450 Hz hook, a beat, all at once."""
    pad = np.concatenate([chord(c, 1.4) for c in [(225, 281, 338), (200, 250, 300)] * 4])
    hook = np.concatenate([note(hz, 0.35) if hz else np.zeros(round(0.35 * RATE))
                           for hz in [450, 0, 450, 506, 450, 0, 400, 450] * 4])
    beat = np.concatenate([drum(0.35, rng) for _ in range(32)])
    n = min(map(len, (pad, hook, beat)))
    return piece([0.6 * pad[:n] + hook[:n] + 0.5 * beat[:n]])


MUSIC: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    f.__name__: f for f in (melody_with_harmonics, pure_flute, chords, pauses_between_notes,
                            flute_with_pauses, drum_beat, pop_song)
}
"""Pieces written to look like the Chinese tones on purpose: notes at 440 and 450 Hz of the
busy tone's 0.35 s, pauses of its off time, a 450 Hz tom."""


def music(rng: np.random.Generator, seconds: float = 10.0) -> np.ndarray:
    """Ring-back music at random: a pentatonic melody with harmonics, chords, often kicks and
    hats, at a random level."""
    n = int(seconds * RATE)
    y = np.zeros(n)
    base, beat, at = int(rng.integers(55, 67)), rng.uniform(0.25, 0.6), 0
    while at < n:
        t = np.arange(min(int(RATE * beat * rng.choice([0.5, 1, 1, 2])), n - at)) / RATE
        envelope = np.minimum(1, t / 0.02) * np.exp(-t * rng.uniform(1, 5))
        root = base + 12 * int(rng.integers(0, 2)) + int(rng.choice([0, 2, 4, 7, 9]))
        for key in [root, root - 8, root - 5] if rng.random() < 0.5 else [root]:
            hz = 440.0 * 2 ** ((key - 69) / 12)
            for harmonic, level in enumerate([1.0, 0.5, 0.3, 0.2, 0.1], start=1):
                if hz * harmonic < 3800:
                    y[at:at + len(t)] += level * envelope * np.sin(2 * np.pi * hz * harmonic * t)
        at += len(t)
    if rng.random() < 0.7:
        step = int(RATE * beat)
        for k, at in enumerate(range(0, n, step)):
            t = np.arange(min(1600, n - at)) / RATE
            if k % 2 == 0:
                y[at:at + len(t)] += 1.5 * np.sin(2 * np.pi * (60 + 90 * np.exp(-t * 30)) * t) \
                    * np.exp(-t * 12)
            else:
                y[at:at + len(t)] += 0.6 * rng.normal(0, 1, len(t)) * np.exp(-t * 40)
    return (y / np.abs(y).max() * rng.uniform(6000, 20000)).astype(np.int16)


# ------------------------------------------------------------------ speech


def speech_wav(path: Path, text: str, voice: str = "cmn", speed: int = 170,
               pitch: int = 50) -> Path:
    """``text`` spoken by espeak-ng as an 8 kHz mono 16-bit WAV at ``path`` (made once per
    text and voice, then copied from a cache)."""
    key = hashlib.sha256(f"{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()[:20]
    cached = CACHE / f"{key}.wav"
    if not cached.exists():  # made under names of this process's own: tests run in parallel
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            raw, tmp = Path(work) / "raw.wav", Path(work) / "8k.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w",
                            str(raw), text], check=True, timeout=60, capture_output=True)
            subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(tmp)],
                           check=True, timeout=60, capture_output=True)
            tmp.replace(cached)
    if path != cached:
        path.write_bytes(cached.read_bytes())
    return path


def speak(text: str, voice: str = "cmn", speed: int = 170, pitch: int = 50) -> np.ndarray:
    """``text`` spoken by espeak-ng, as samples."""
    key = hashlib.sha256(f"{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()[:20]
    return read_wav(speech_wav(CACHE / f"{key}.wav", text, voice, speed, pitch))


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


# ------------------------------------------------------------------ for SIPp's rtp_stream


def busy_tone_ulaw(seconds: float, dbm0: float = -10.0) -> bytes:
    """The Chinese busy tone as raw μ-law (SIPp ``rtp_stream``)."""
    return ulaw_encode(busy_tone(seconds, dbm0)).tobytes()


def music_ulaw(seconds: float, seed: int = 3) -> bytes:
    """A 彩铃 as raw μ-law: one of the pieces of :data:`MUSIC`, looped."""
    pieces = list(MUSIC.values())
    rng = np.random.default_rng(seed)
    tune = at_level(pieces[seed % len(pieces)](rng), -12.0)
    return ulaw_encode(np.tile(tune, int(seconds * RATE / tune.size) + 1)[:round(seconds * RATE)]
                       ).tobytes()
