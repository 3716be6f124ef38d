"""Call-progress tones in early media, recognised by cadence: pure, frames in, verdicts out.

Each 20 ms frame of 8 kHz PCM gives two analysis windows (20 ms long, 10 ms apart). In each,
single-bin DFTs at a plan's frequencies tell what share of the window's energy each tone holds
(its purity). A window is *on* for a tone when that share and the level are high enough, *off*
when the total energy has dropped to silence, and *other* otherwise: speech and music are
almost always *other*, and a cadence only ever runs through *on* and *off*. Runs shorter than
30 ms are glitches and go to the run before them. Runs are then matched against each cadence of
the plan with the plan's tolerance plus the quantisation of the edges; a tone is reported once
``confirm_s`` seconds and ``confirm_bursts`` bursts of its cadence have been seen and no other
tone of the plan still fits.

Time is counted in frames: there is no clock. Call waiting (heard by the called party only) is
not in the plans.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TONE_PLANS",
    "Cadence",
    "Segment",
    "Tone",
    "ToneDetector",
    "TonePlan",
    "ToneVerdict",
    "off",
    "on",
]

ZERO_DBM0_PEAK = 32767 * 10 ** (-3.17 / 20)  # G.711: full scale is +3.17 dBm0
_ZERO_DBM0_POWER = ZERO_DBM0_PEAK ** 2 / 2
_OFF, _OTHER = -1, -2  # run states besides the plan's frequency sets (0, 1, ...)
_FOREVER = 10 ** 9  # hops


class Tone(enum.Enum):
    RINGBACK = "ringback"
    BUSY = "busy"
    CONGESTION = "congestion"
    VACANT = "vacant"
    SIT = "sit"


@dataclass(frozen=True)
class Segment:
    """One step of a cadence: the frequencies ``hz`` sounding together (none: silence) for
    ``seconds``, or for anything from ``seconds`` to ``longest_s``."""

    hz: tuple[float, ...]
    seconds: float
    longest_s: float | None = None


def on(seconds: float, *hz: float, longest_s: float | None = None) -> Segment:
    return Segment(tuple(hz), seconds, longest_s)


def off(seconds: float, longest_s: float | None = None) -> Segment:
    return Segment((), seconds, longest_s)


@dataclass(frozen=True)
class Cadence:
    """How one tone sounds and what it means."""

    tone: Tone
    segments: tuple[Segment, ...]  # repeating, in order
    confirm_s: float  # seconds of the cadence to see before reporting it,
    confirm_bursts: int  # and how many separate sounds (tone bursts) among them
    meaning: str
    final: bool = True  # False: informational, reported once and detection goes on
    q850_cause: int | None = None  # the cause a final response would have carried


@dataclass(frozen=True)
class TonePlan:
    """A country's call-progress tones."""

    country: str
    cadences: tuple[Cadence, ...]
    tolerance: float = 0.10  # relative, on every segment's duration


def _cn() -> TonePlan:
    f = 450.0
    return TonePlan("cn", (
        Cadence(Tone.RINGBACK, (on(1.0, f), off(4.0)), 2.0, 1,
                "回铃音: the called phone is ringing", final=False),
        Cadence(Tone.BUSY, (on(0.35, f), off(0.35)), 1.15, 2, "忙音: the called line is busy",
                q850_cause=17),
        Cadence(Tone.CONGESTION, (on(0.7, f), off(0.7)), 2.0, 2,
                "拥塞音: no circuit or route to the called party", q850_cause=34),
        Cadence(Tone.VACANT, (*(on(0.1, f), off(0.1)) * 3, on(0.4, f), off(0.4)), 1.6, 4,
                "空号音: the number is not allocated", q850_cause=1),
        Cadence(Tone.SIT, (on(0.274, 913.8, longest_s=0.38), on(0.274, 1370.6, longest_s=0.38),
                           on(0.274, 1776.7, longest_s=0.38), off(0.05, longest_s=math.inf)),
                0.7, 3, "special information tone (ITU-T E.180): an announcement follows"),
    ))


TONE_PLANS: dict[str, TonePlan] = {"cn": _cn()}  # GB/T 3380; Asterisk indications.conf [cn]


@dataclass(frozen=True)
class ToneVerdict:
    """A tone recognised."""

    tone: Tone
    after_s: float  # seconds of audio fed (frames x frame length) when the verdict was made
    level_dbm0: float  # measured level of the tone's on-segments


@dataclass
class _Run:
    state: int
    hops: int
    levels: list[float]  # per-window dBm0 while on (not of glitches absorbed)
    last: float  # the latest window, dBm0
    loud: list[float]  # the three loudest windows before it, dBm0, loudest first


def _note_loud(run: _Run, level: float) -> None:
    if len(run.loud) < 3 or run.last > run.loud[-1]:
        run.loud = sorted([*run.loud, run.last], reverse=True)[:3]
    run.last = level


@dataclass(frozen=True)
class _Due:
    """After the current run began: report ``cadence`` while it is ``first``..``last`` hops."""

    cadence: Cadence
    first: int
    last: int
    runs: int  # closed runs of the cadence before the current one


class ToneDetector:
    """Feed 20 ms frames; returns a :class:`ToneVerdict` when a tone of the plan is recognised.

    A final tone (busy, congestion, vacant, SIT) is reported once, then ``feed`` returns
    ``None`` for ever; an informational one (ringback) is reported once and detection goes on.
    """

    PURITY = 0.8  # share of a window's energy the tone must hold to be on
    ON_DBM0 = -35.0  # and its lowest level
    SILENCE_DBM0 = -50.0  # off: below this, or
    DROP_DB = 15.0  # this far below the last on window
    STEADY_DB = 3.0  # an on run's level may wander this much (edges apart)
    GLITCH_HOPS = 3  # a run shorter than this belongs to the run before it
    EDGE_S = 0.03  # each segment's duration may be off this much more, for edge quantisation
    WINDOW_S, HOP_S = 0.020, 0.010

    def __init__(self, plan: str | TonePlan = "cn", rate: int = 8000, frame_ms: int = 20) -> None:
        self.plan = TONE_PLANS[plan] if isinstance(plan, str) else plan
        self.frame_s = frame_ms / 1000
        self._n = round(rate * frame_ms / 1000)
        win, hop = round(rate * self.WINDOW_S), round(rate * self.HOP_S)
        if self._n % hop:
            raise ValueError(f"frame_ms={frame_ms} is not a multiple of 10 ms")
        self._freqs = sorted({seg.hz for c in self.plan.cadences for seg in c.segments if seg.hz})
        bins = [hz for group in self._freqs for hz in group]
        self._starts = np.cumsum([0] + [len(g) for g in self._freqs[:-1]])
        t = np.arange(win) / rate
        w = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(win) + 0.5) / win)  # Hann
        phase = 2 * np.pi * np.outer(bins, t)
        self._basis = np.vstack((w * np.cos(phase), w * np.sin(phase)))
        self._w2 = w * w
        self._purity_gain = 2 * self._w2.sum() / w.sum() ** 2  # a pure sine at a bin: 1.0
        self._power_gain = 1 / (self._w2.sum() * _ZERO_DBM0_POWER)
        self._buf = np.zeros(win - hop + self._n)
        step = self._buf.strides[0]
        self._windows = np.lib.stride_tricks.as_strided(
            self._buf, shape=(self._n // hop, win), strides=(hop * step, step), writeable=False)
        self._steps = {c: [(self._state_of(seg), *self._hop_range(seg)) for seg in c.segments]
                       for c in self.plan.cadences}  # (state, fewest hops, most hops)
        self._frames = 0
        self._before = (win - hop) // hop  # windows that would reach back before the stream
        self._ref_dbm0 = -math.inf  # level of the loudest window of the latest on stretch
        self._previous = _OTHER  # the state of the previous window
        self._runs: deque[_Run] = deque(maxlen=32)  # closed runs, oldest first
        self._run: _Run | None = None  # the current (open) run
        self._pending: _Run | None = None  # a new run, not yet GLITCH_HOPS long
        self._due: list[_Due] = []
        self._reported: set[Cadence] = set()
        self.verdict: ToneVerdict | None = None  # the final one, once made

    def feed(self, frame: bytes | np.ndarray) -> ToneVerdict | None:
        """One 20 ms frame of 16-bit signed little-endian mono PCM at 8 kHz (160 samples, bytes
        of length 320, or an int16 array). Returns a verdict when one is made."""
        raw = isinstance(frame, bytes | bytearray)
        if len(frame) != (2 * self._n if raw else self._n):
            raise ValueError(f"a frame is {self._n} samples ({2 * self._n} bytes), not "
                             f"{len(frame)} {'bytes' if raw else 'samples'}")
        if self.verdict is not None:
            return None
        x = np.frombuffer(frame, "<i2") if raw else frame
        self._frames += 1
        keep = len(self._buf) - self._n
        self._buf[:keep] = self._buf[self._n:]
        self._buf[keep:] = x
        windows = self._windows
        energy = (windows * windows) @ self._w2  # per window
        y = self._basis @ windows.T
        nb = len(y) // 2
        power = y[:nb] ** 2 + y[nb:] ** 2  # bins x windows
        shares = np.add.reduceat(power, self._starts, axis=0)
        shares *= self._purity_gain / np.maximum(energy, 1e-9)
        levels = 10 * np.log10(energy * self._power_gain + 1e-12)
        found = None
        for share, level in zip(shares.T.tolist(), levels.tolist(), strict=True):
            if self._before:
                self._before -= 1
                continue
            best = max(range(len(share)), key=share.__getitem__)
            if share[best] >= self.PURITY and level >= self.ON_DBM0:
                state = best
            elif level < self.SILENCE_DBM0 or level < self._ref_dbm0 - self.DROP_DB:
                state = _OFF
            else:
                state = _OTHER
            found = self._step(state, level) or found
            if self.verdict is not None:
                break
        return found

    def _step(self, state: int, level: float) -> ToneVerdict | None:
        """One analysis window, classified."""
        if state >= 0:
            self._ref_dbm0 = max(self._ref_dbm0, level) if state == self._previous else level
        self._previous = state
        run, pending = self._run, self._pending
        if run is None:
            self._run = _Run(state, 1, [level] if state >= 0 else [], level, [])
            return None
        if state == run.state:
            if pending:
                run.hops += pending.hops  # a glitch inside the run
                self._pending = None
            run.hops += 1
            _note_loud(run, level)
            if state >= 0:
                run.levels.append(level)
        elif pending is not None and pending.state == state:
            pending.hops += 1
            _note_loud(pending, level)
            if state >= 0:
                pending.levels.append(level)
            if pending.hops >= self.GLITCH_HOPS:
                quiet = run.loud[2] if len(run.loud) > 2 else -math.inf  # edges apart
                if run.state == _OTHER and state >= 0 and quiet < level - self.DROP_DB:
                    run.state = _OFF  # quiet before a tone, and no tone before to compare
                self._close(run)
                self._run, self._pending = pending, None
                self._plan_due()
        else:
            if pending:
                run.hops += pending.hops
            self._pending = _Run(state, 1, [level] if state >= 0 else [], level, [])
        return self._check()

    def _close(self, run: _Run) -> None:
        """File a finished run; an on run whose level wandered becomes *other*."""
        inner = run.levels[2:-2] if len(run.levels) > 6 else run.levels
        if run.state >= 0 and (not inner or max(inner) - min(inner) > self.STEADY_DB):
            run.state = _OTHER
        self._runs.append(run)

    def _check(self) -> ToneVerdict | None:
        assert self._run is not None
        hops = self._run.hops
        for due in self._due:
            if due.first <= hops <= due.last:
                return self._report(due)
        return None

    def _report(self, due: _Due) -> ToneVerdict:
        assert self._run is not None
        level = self._level([*list(self._runs)[-due.runs:], self._run])
        verdict = ToneVerdict(due.cadence.tone, round(self._frames * self.frame_s, 3), level)
        self._reported.add(due.cadence)
        self._due = [d for d in self._due if d.cadence not in self._reported]
        if due.cadence.final:
            self.verdict = verdict
        return verdict

    def _plan_due(self) -> None:
        """A run just began: work out, for each tone, how long it must last to be reported."""
        assert self._run is not None
        state, runs = self._run.state, list(self._runs)
        self._due = []
        for cadence in self.plan.cadences:
            if cadence in self._reported:
                continue
            need = round(cadence.confirm_s / self.HOP_S)
            bursts = cadence.confirm_bursts - int(state >= 0)
            for at in self._alignments(cadence, state):
                n, seen, heard = self._fit_back(cadence, at, runs, need, bursts)
                _, lo, last = self._steps[cadence][at]
                if n == 0 or heard < bursts or need - seen > (lo if last == _FOREVER else last):
                    continue  # an open-ended segment counts for no more than its shortest
                first = max(need - seen, 1)
                for other in self.plan.cadences:  # wait until no other tone fits any more
                    if other.tone != cadence.tone:
                        for b in self._alignments(other, state):
                            if self._fit_back(other, b, runs[-n:], _FOREVER, 0)[0] == n:
                                first = max(first, self._steps[other][b][2] + 1)
                if first <= last:
                    self._due.append(_Due(cadence, first, last, n))

    def _alignments(self, cadence: Cadence, state: int) -> list[int]:
        """Where in ``cadence`` a run of ``state`` may be."""
        return [i for i, step in enumerate(self._steps[cadence]) if step[0] == state]

    def _fit_back(self, cadence: Cadence, at: int, runs: list[_Run], need: int,
                  bursts: int) -> tuple[int, int, int]:
        """How many closed runs, newest back, fit ``cadence`` before its segment ``at``, their
        hops and how many of them sound; stops once ``need`` hops and ``bursts`` are reached."""
        steps = self._steps[cadence]
        n = seen = heard = 0
        for run in reversed(runs):
            if seen >= need and heard >= bursts:
                break
            state, lo, hi = steps[(at - n - 1) % len(steps)]
            if run.state != state or not lo <= run.hops <= hi:
                break
            n, seen, heard = n + 1, seen + run.hops, heard + (run.state >= 0)
        return n, seen, heard

    def _state_of(self, seg: Segment) -> int:
        return self._freqs.index(seg.hz) if seg.hz else _OFF

    def _hop_range(self, seg: Segment) -> tuple[int, int]:
        tol, longest = self.plan.tolerance, seg.longest_s or seg.seconds
        lo = math.floor((seg.seconds * (1 - tol) - self.EDGE_S) / self.HOP_S + 1e-9)
        if math.isinf(longest):
            return lo, _FOREVER
        return lo, math.ceil((longest * (1 + tol) + self.EDGE_S) / self.HOP_S - 1e-9)

    @staticmethod
    def _level(runs: list[_Run]) -> float:
        """Mean power of the on windows of ``runs`` (edges apart), in dBm0."""
        levels = [v for r in runs if r.state >= 0 for v in (r.levels[2:-2] or r.levels)]
        if not levels:
            return -math.inf
        return round(10 * math.log10(sum(10 ** (v / 10) for v in levels) / len(levels)), 1)
