"""pjsua2 media objects of one call: prompt player and speech detector port, and how
long they outlive the call (:class:`RetiredMedia`).

Both have callbacks that pjsua2 may run outside the main thread (the media
clock thread): they only compute and hand a notice to ``notify``, which puts
it on the worker's thread-safe inbox. Nothing here creates or destroys pjsua2
objects from a callback.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pjsua2 as pj
import webrtcvad

from audio.amd import AmdDetector, AmdSettings, AmdVerdict
from softphone import clockthread
from softphone.frames import vector_bytes
from softphone.speech import SpeechChange, SpeechDetector

log = logging.getLogger(__name__)

VAD_CLOCK_RATE = 8000
VAD_FRAME_MS = 20
PORT_FRAME_MS = 100  # five VAD frames a callback (see SpeechPort)
VAD_AGGRESSIVENESS = 2
RETIRE_S = 2.0  # how long media objects outlive their call (see RetiredMedia)


@dataclass(frozen=True)
class PromptEnded:
    call: str
    prompt: Prompt


@dataclass(frozen=True)
class SpeechNotice:
    call: str
    change: SpeechChange


@dataclass(frozen=True)
class MachineNotice:
    call: str
    verdict: AmdVerdict


class Prompt(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A WAV file played to the peer; reports end of file once."""

    def __init__(
        self, call: str, file: str, loop: bool, interrupt_on_digit: bool,
        notify: Callable[[PromptEnded], None],
    ) -> None:
        super().__init__()
        self.call = call
        self.file = file
        self.loop = loop
        self.interrupt_on_digit = interrupt_on_digit
        self._notify = notify
        self._ended = False
        self.createPlayer(file, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)

    def onEof2(self) -> None:
        try:
            if not self.loop and not self._ended:
                self._ended = True
                self._notify(PromptEnded(self.call, self))
        except Exception:
            log.exception("onEof2 of %s", self.call)


class SpeechPort(pj.AudioMediaPort):  # type: ignore[misc]
    """Receives the peer's audio, runs webrtcvad per 20 ms frame, reports changes.

    ``onFrameReceived`` runs on the media clock shared by every call of the
    process, and every call of it from there costs far more than its work: the
    GIL taken from a thread Python does not know (a thread state made and freed
    each time) and SWIG's wrapping of the frame, about 50 us against the 5 us
    of copying and webrtcvad. So the port's frame is :data:`PORT_FRAME_MS` long:
    the conference bridge gathers five 20 ms frames of the call and hands them
    over at once, and the callback runs 10 times a second, not 50
    (``bench/capacity.py``). Each 20 ms frame still gets its own verdict, and
    the detectors count frames, so their decisions are the same; they are only
    told up to 80 ms later.

    A port is never destroyed while the worker runs: pjsua 2.15 removes
    conference ports on a later clock tick and keeps feeding a registered port
    frames, so a destroyed ``AudioMediaPort`` was called half torn down
    (SIGSEGV at call teardown, about one call in 500 under load). The worker
    keeps a pool (:class:`SpeechPorts`) and hands a port from call to call.
    """

    def __init__(self, name: str, notify: Callable[[SpeechNotice | MachineNotice], None]) -> None:
        super().__init__()
        self.call = ""  # "" while the port waits in the pool
        self.amd: AmdDetector | None = None  # answering-machine detection, when asked for
        self.tap: collections.deque[tuple[bytes, bool]] | None = None
        """Each 20 ms frame and its speech verdict, for the main thread's progress listener (a
        deque: appended here on the media clock, emptied there)."""
        self._notify = notify
        self._vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
        self._frame_bytes = VAD_CLOCK_RATE * VAD_FRAME_MS // 1000 * 2
        self._port_bytes = VAD_CLOCK_RATE * PORT_FRAME_MS // 1000 * 2
        self.detector = SpeechDetector(frame_s=VAD_FRAME_MS / 1000)
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.init(pj.PJMEDIA_FORMAT_PCM, VAD_CLOCK_RATE, 1, PORT_FRAME_MS * 1000, 16)
        self.createPort(name, fmt)

    def assign(self, call: str) -> None:
        self.detector = SpeechDetector(frame_s=VAD_FRAME_MS / 1000)
        self.amd = None
        self.tap = None
        self.call = call

    def detect_machine(self, settings: AmdSettings) -> None:
        self.amd = AmdDetector(settings, frame_s=VAD_FRAME_MS / 1000)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            clockthread.keep()
            if (not self.call or frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO
                    or frame.size != self._port_bytes):
                return
            block = vector_bytes(frame.buf)
            step = self._frame_bytes
            for start in range(0, len(block), step):
                self._heard(block[start:start + step])
        except Exception:
            log.exception("onFrameReceived of %s", self.call)

    def _heard(self, pcm: bytes) -> None:
        """One 20 ms frame: its verdict to the tap and the detectors."""
        voiced = self._vad.is_speech(pcm, VAD_CLOCK_RATE)
        tap = self.tap
        if tap is not None:
            tap.append((pcm, voiced))
        change = self.detector.feed(voiced)
        if change is not None:
            self._notify(SpeechNotice(self.call, change))
        amd = self.amd
        if amd is not None:
            verdict = amd.feed(voiced)
            if verdict is not None:
                self.amd = None
                self._notify(MachineNotice(self.call, verdict))

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        try:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
        except Exception:
            log.exception("onFrameRequested of %s", self.call)


class SpeechPorts:
    """The worker's speech ports: made when first needed, then lent call to call."""

    def __init__(self, notify: Callable[[SpeechNotice | MachineNotice], None]) -> None:
        self._notify = notify
        self._free: list[SpeechPort] = []
        self._made = 0

    def lend(self, call: str) -> SpeechPort:
        if self._free:
            port = self._free.pop()
        else:
            self._made += 1
            port = SpeechPort(f"vad-{self._made}", self._notify)
        port.assign(call)
        return port

    def give_back(self, port: SpeechPort) -> None:
        port.call = ""
        port.amd = None
        port.tap = None
        self._free.append(port)


class RetiredMedia:
    """Keeps media objects alive a while after they leave a call.

    pjsua 2.15 applies conference changes on the next media clock tick, on
    the media thread, which may be inside a port's callback right now
    (a player's ``getFrame``). Players and recorders are pjsua's own ports,
    whose removal pjsua orders itself; keeping them a little longer costs
    nothing and keeps a late frame off a freed object. Speech ports are
    never destroyed at all (see :class:`SpeechPort`). :meth:`let_go`, from
    the worker's timers, drops retired objects after :data:`RETIRE_S`.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._kept: collections.deque[tuple[float, object]] = collections.deque()

    def keep(self, *media: object) -> None:
        """Retire ``media`` now (``None`` items are skipped)."""
        now = self.clock()
        self._kept.extend((now, item) for item in media if item is not None)

    @property
    def pending(self) -> bool:
        """Media kept that is still to be let go."""
        return bool(self._kept)

    def let_go(self, now: float) -> None:
        while self._kept and now - self._kept[0][0] > RETIRE_S:
            self._kept.popleft()

    def clear(self) -> None:
        self._kept.clear()
