"""Recording a call's received audio to a WAV, and saying when the file is complete.

pjsua writes a WAV's header only when the recorder's port is destroyed, on a
media clock tick after the last reference goes. So a stopped recorder is
closed in steps (:meth:`Recordings.close_due`, from the worker's timers):
held :data:`RECORDER_CLOSE_S` while the media clock lets go of it, dropped,
then watched until the header shows its length, and only then reported
(``recording_saved``). Runs on the main thread.
"""

from __future__ import annotations

import collections
import os
import wave
from collections.abc import Callable

import pjsua2 as pj

from softphone import protocol as p
from softphone.legs import CallLeg

__all__ = ["RECORDER_CLOSE_S", "Recordings", "wav_data_seconds", "wav_has_data", "wav_seconds"]

RECORDER_CLOSE_S = 0.2  # a stopped recorder is closed this long after (ten media clock ticks)
WAV_HEADER_BYTES = 44


class Recordings:
    """The recorders of one worker's calls, from ``record`` to ``recording_saved``."""

    def __init__(self, emit: Callable[[p.Event], None], clock: Callable[[], float]) -> None:
        self.emit = emit
        self.clock = clock
        self.closing: collections.deque[tuple[float, str, object, str]] = collections.deque()
        """(when to let go, call, recorder, file) of stopped recorders, oldest first."""
        self.saving: list[tuple[float, float, str, str]] = []
        """(when to look, when to give up on the header, call, file) of recorders let go."""

    def start(self, leg: CallLeg, file: str, retire: Callable[..., None]) -> None:
        """Record ``leg`` into ``file``; a recording already running is dropped (``retire``
        keeps it alive a while) and finalised when it goes."""
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(file)
        if leg.recorder is not None and leg.audio is not None:
            try:
                leg.audio.stopTransmit(leg.recorder)
            except pj.Error:
                pass
        retire(leg.recorder)  # the previous recording is finalised when it goes
        leg.recorder = recorder
        leg.record_file = file
        if leg.audio is not None:
            leg.audio.startTransmit(recorder)

    def stop(self, leg: CallLeg) -> None:
        """Stop ``leg``'s recording (it has one); ``recording_saved`` follows once on disk."""
        recorder, leg.recorder = leg.recorder, None
        if leg.audio is not None:
            try:
                leg.audio.stopTransmit(recorder)
            except pj.Error:
                pass
        # closed (and the WAV header written) once the media clock has let go of it
        self.closing.append((self.clock() + RECORDER_CLOSE_S, leg.id, recorder, leg.record_file))

    def close_due(self, now: float) -> None:
        """Two steps: let go of the recorder (pjsua destroys its port on a later media clock
        tick, and the WAV header is written then), then wait for the header to show it."""
        while self.closing and self.closing[0][0] <= now:
            _, call, recorder, file = self.closing.popleft()
            del recorder
            self.saving.append((now + RECORDER_CLOSE_S, now + RECORDER_CLOSE_S * 10, call, file))
        waiting = []
        for due, give_up, call, file in self.saving:
            if due > now:
                waiting.append((due, give_up, call, file))
                continue
            seconds = wav_seconds(file)
            if seconds == 0.0 and now < give_up and wav_has_data(file):
                waiting.append((now + RECORDER_CLOSE_S, give_up, call, file))  # not written yet
                continue
            self.emit(p.RecordingSaved(call, file, seconds or wav_data_seconds(file)))
        self.saving = waiting


def wav_seconds(path: str) -> float:
    """The length of a WAV the worker wrote (0 if it cannot be read)."""
    try:
        with wave.open(path, "rb") as w:
            return round(w.getnframes() / w.getframerate(), 3)
    except (OSError, EOFError, wave.Error):
        return 0.0


def wav_has_data(path: str) -> bool:
    """More than a header on disk."""
    try:
        return os.path.getsize(path) > WAV_HEADER_BYTES
    except OSError:
        return False


def wav_data_seconds(path: str) -> float:
    """From the size, for a header that was never completed (8 kHz, 16-bit mono)."""
    try:
        return round(max(0, os.path.getsize(path) - WAV_HEADER_BYTES) / 16000, 3)
    except OSError:
        return 0.0
