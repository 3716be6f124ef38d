"""What one outbound call hears from the network before (and just after) the answer: pure.

:class:`EarlyMedia` takes the call's received frames (20 ms of 8 kHz 16-bit PCM and the
speech detector's verdict for each) and says what the network said, once:

- before the answer, the national tones (:mod:`audio.tones`) and the carrier's spoken
  announcements of the library (:mod:`audio.announce`), from the first frame;
- after an answer, the announcements only, for ``answered_s`` (a carrier that answers and
  then announces), from a fresh start;
- anything else (a 彩铃, silence, the ringback tone) says nothing: it rings. The ringback
  tone is reported once, as information.

It also keeps the first ``keep_s`` of early media and counts its voiced time, so that a
call that fails after speech that matched nothing can leave a clip for an operator to
label (:func:`audio.library.keep_heard`). Time is counted in frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .announce import Library, Matcher
from .tones import Tone, ToneDetector

__all__ = ["EarlyMedia", "Heard"]

FRAME_S = 0.02
FRAME_BYTES = 320


@dataclass(frozen=True)
class Heard:
    by: str  # "tone" or "announcement"
    what: str  # the tone's name, or the announcement's class
    after_s: float  # seconds of media heard when decided (since early media, or the answer)
    announcement: str = ""
    score: float = 0.0
    answered: bool = False

    @property
    def final(self) -> bool:
        """It ends the call (anything but the ringback tone)."""
        return not (self.by == "tone" and self.what == Tone.RINGBACK.value)


class EarlyMedia:
    def __init__(self, tones: str, library: Library | None, answered_s: float = 0.0,
                 keep_s: float = 15.0) -> None:
        self.library = library if library is not None and len(library) else None
        self.answered_s = answered_s
        self._tones: ToneDetector | None = ToneDetector(tones)
        self._matcher = Matcher(self.library) if self.library is not None else None
        self._frames = 0  # since early media started, or since the answer
        self._answered = False
        self._keep = max(0, round(keep_s / FRAME_S))
        self._clip: list[bytes] = []
        self.voiced_s = 0.0  # voiced early media (before the answer)
        self.verdict: Heard | None = None  # the final one, once said
        self.ringback = False

    @property
    def listening(self) -> bool:
        if self.verdict is not None:
            return False
        if not self._answered:
            return True
        return self._matcher is not None and self._frames * FRAME_S < self.answered_s

    def answer(self) -> None:
        """The call was answered: from now on, announcements only, for ``answered_s``."""
        self._answered = True
        self._tones = None
        self._frames = 0
        self._matcher = Matcher(self.library) if self.library is not None else None

    def feed(self, pcm: bytes, voiced: bool) -> Heard | None:
        """One received frame; what the network said, when it is decided (once, and the
        ringback tone once beside it)."""
        if not self.listening or len(pcm) != FRAME_BYTES:
            return None
        self._frames += 1
        if not self._answered:
            if voiced:
                self.voiced_s += FRAME_S
            if len(self._clip) < self._keep:
                self._clip.append(pcm)
        after = round(self._frames * FRAME_S, 2)
        if self._tones is not None:
            tone = self._tones.feed(pcm)
            if tone is not None:
                heard = Heard("tone", tone.tone.value, after)
                if tone.tone is Tone.RINGBACK:
                    if self.ringback:
                        return None
                    self.ringback = True
                    return heard
                self.verdict = heard
                return heard
        if self._matcher is not None:
            match = self._matcher.feed(pcm)
            if match is not None:
                self.verdict = Heard("announcement", match.label, after, match.id,
                                     round(match.score, 3), self._answered)
                return self.verdict
        return None

    def clip(self) -> np.ndarray:
        """The early media kept so far (at most ``keep_s``)."""
        if not self._clip:
            return np.zeros(0, dtype=np.int16)
        return np.frombuffer(b"".join(self._clip), dtype="<i2").copy()
