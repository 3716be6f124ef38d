"""Speech start/end decisions from per-frame voice activity: pure, no pjsua2.

:class:`SpeechDetector` applies a hangover so a word does not flap: speech
starts after ``start_frames`` consecutive voiced frames and ends after
``end_silence_s`` of unvoiced frames. Time is counted in frames, so the
result does not depend on when the media clock thread happens to run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechStart:
    pass


@dataclass(frozen=True)
class SpeechEnd:
    duration_s: float
    """From the first voiced frame to the last voiced frame of the utterance."""


SpeechChange = SpeechStart | SpeechEnd


class SpeechDetector:
    def __init__(
        self, frame_s: float, start_frames: int = 3, end_silence_s: float = 0.5
    ) -> None:
        self.frame_s = frame_s
        self.start_frames = start_frames
        self.end_frames = max(1, round(end_silence_s / frame_s))
        self.speaking = False
        self._voiced_run = 0
        self._silent_run = 0
        self._utterance_frames = 0

    def feed(self, voiced: bool) -> SpeechChange | None:
        """One frame's verdict in; a change of state out, or None."""
        if not self.speaking:
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self.start_frames:
                self.speaking = True
                self._utterance_frames = self._voiced_run
                self._silent_run = 0
                return SpeechStart()
            return None
        self._utterance_frames += 1
        if voiced:
            self._silent_run = 0
            return None
        self._silent_run += 1
        if self._silent_run >= self.end_frames:
            return self._end()
        return None

    def flush(self) -> SpeechEnd | None:
        """End of media: close an utterance still open."""
        if not self.speaking:
            return None
        return self._end()

    def _end(self) -> SpeechEnd:
        voiced_frames = self._utterance_frames - self._silent_run
        self.speaking = False
        self._voiced_run = 0
        self._silent_run = 0
        self._utterance_frames = 0
        return SpeechEnd(round(voiced_frames * self.frame_s, 3))
