"""Answering-machine detection from per-frame voice activity: pure, no pjsua2.

In the spirit of Asterisk's ``AMD()`` application: count words (voiced runs
of at least ``min_word_s`` separated by at least ``between_words_silence_s``
of silence) and voiced time from the first word on. A long unbroken greeting,
too many words or one endless word is a machine; a short greeting followed by
``after_greeting_silence_s`` of silence is a person. One rule differs on
purpose: silence alone never makes a machine (Asterisk calls long initial
silence a machine), because a frightened person may well listen without a
word to a call from the police; that case is ``UNSURE`` and the warning goes on.

Frames arrive as booleans (voiced or not, e.g. from webrtcvad) of
``frame_s`` seconds each; :meth:`AmdDetector.feed` returns a verdict once,
then ``None`` for every further frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["AmdDetector", "AmdSettings", "AmdVerdict", "Verdict"]


class Verdict(enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"
    UNSURE = "unsure"


@dataclass(frozen=True)
class AmdSettings:
    """Thresholds in seconds; the defaults are Asterisk's ``amd.conf`` defaults."""

    initial_silence_s: float = 2.5
    greeting_s: float = 1.5
    after_greeting_silence_s: float = 0.8
    total_analysis_s: float = 5.0
    min_word_s: float = 0.1
    between_words_silence_s: float = 0.05
    max_words: int = 3
    max_word_s: float = 5.0


@dataclass(frozen=True)
class AmdVerdict:
    verdict: Verdict
    cause: str  # LONGGREETING, MAXWORDS, MAXWORDLENGTH, HUMAN, INITIALSILENCE, TOOLONG
    words: int
    voiced_s: float
    after_s: float  # seconds of audio analysed


class AmdDetector:
    def __init__(self, settings: AmdSettings = AmdSettings(), frame_s: float = 0.02) -> None:
        self.settings = settings
        self.frame_s = frame_s
        self.verdict: AmdVerdict | None = None
        self._total = 0.0
        self._silence = 0.0
        self._voice = 0.0  # voiced time since the start
        self._run = 0.0  # consecutive voiced time
        self._words = 0
        self._in_word = False
        self._in_greeting = False

    def feed(self, voiced: bool) -> AmdVerdict | None:
        """One frame in; the verdict the first time there is one, else ``None``."""
        if self.verdict is not None:
            return None
        s, f = self.settings, self.frame_s
        self._total += f
        if self._total >= s.total_analysis_s - 1e-9:
            return self._decide(Verdict.UNSURE, "TOOLONG")
        if not voiced:
            self._silence += f
            if self._silence >= s.between_words_silence_s - 1e-9:
                self._in_word = False
                self._run = 0.0
            if not self._in_greeting and self._silence >= s.initial_silence_s - 1e-9:
                return self._decide(Verdict.UNSURE, "INITIALSILENCE")
            if self._in_greeting and self._silence >= s.after_greeting_silence_s - 1e-9:
                return self._decide(Verdict.HUMAN, "HUMAN")
            return None
        self._run += f
        self._voice += f
        if self._run >= s.min_word_s - 1e-9 and not self._in_word:
            self._words += 1
            self._in_word = True
        if self._run >= s.max_word_s - 1e-9:
            return self._decide(Verdict.MACHINE, "MAXWORDLENGTH")
        if self._words >= s.max_words:
            return self._decide(Verdict.MACHINE, "MAXWORDS")
        if self._in_greeting and self._voice >= s.greeting_s - 1e-9:
            return self._decide(Verdict.MACHINE, "LONGGREETING")
        if self._voice >= s.min_word_s - 1e-9:
            self._silence = 0.0
        if self._run >= s.min_word_s - 1e-9:
            self._in_greeting = True
        return None

    def _decide(self, verdict: Verdict, cause: str) -> AmdVerdict:
        self.verdict = AmdVerdict(verdict, cause, self._words, round(self._voice, 3),
                                  round(self._total, 3))
        return self.verdict
