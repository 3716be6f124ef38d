"""What the network says on the worker's outbound calls: media clock → listener → events.

The speech port of a call that asked for it (``detect_progress``) puts each received
frame on its ``tap`` (on the media clock thread, a deque append); the main loop empties the
taps into each call's :class:`~audio.progress.EarlyMedia` and sends what it decides as
``progress`` events. The announcements library is loaded once per process and again only
when its directory changes. When a call that heard speech-like early media fails without a
verdict, the early media is kept as a clip (``early_media_kept``) for an operator to label.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from audio.announce import Library as References
from audio.library import Library, LibraryError, keep_heard
from audio.progress import EarlyMedia
from softphone import protocol as p
from softphone.legs import CallLeg

log = logging.getLogger(__name__)

MIN_VOICED_S = 1.0
"""Early media with less speech than this is not worth keeping as a clip."""


class Listening:
    def __init__(self, emit: Callable[[p.Event], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.emit = emit
        self.clock = clock
        self._libraries: dict[str, tuple[int, References]] = {}

    def references(self, directory: str) -> References | None:
        """The library in ``directory``, loaded again only when it changed."""
        if not directory:
            return None
        library = Library(Path(directory))
        version = library.version()
        cached = self._libraries.get(directory)
        if cached is not None and cached[0] == version:
            return cached[1]
        references = References()
        for entry, pcm in library.references():
            references.add(entry.id, entry.label, pcm)
        self._libraries[directory] = (version, references)
        log.info("announcements library %s: %d entries", directory, len(references))
        return references

    def start(self, leg: CallLeg, cmd: p.DetectProgress) -> None:
        try:
            references = self.references(cmd.library)
        except (OSError, LibraryError) as exc:
            log.warning("announcements library %s not loaded: %s", cmd.library, exc)
            references = None
        leg.early = EarlyMedia(cmd.tones, references, cmd.answered_s)
        leg.heard_dir = cmd.heard
        self.connect(leg)

    def connect(self, leg: CallLeg) -> None:
        """The call's media is up (early or not): its frames reach the listener."""
        early, speech = leg.early, leg.speech
        if early is not None and early.listening and speech is not None and speech.tap is None:
            speech.tap = collections.deque()

    def pump(self, legs: Iterable[CallLeg]) -> None:
        for leg in legs:
            if leg.early is not None and not leg.ended:
                self.listen(leg)

    def listen(self, leg: CallLeg) -> None:
        early, speech = leg.early, leg.speech
        if early is None or speech is None or speech.tap is None:
            return
        tap = speech.tap
        while tap:
            pcm, voiced = tap.popleft()
            heard = early.feed(pcm, voiced)
            if heard is not None:
                self.emit(p.Progress(leg.id, "tone" if heard.by == "tone" else "announcement",
                                     heard.what, heard.after_s, heard.announcement,
                                     heard.answered, heard.score))
        if not early.listening:
            speech.tap = None

    def answered(self, leg: CallLeg) -> None:
        """From the answer: announcements only, for the time asked (tones and the clip stop)."""
        if leg.early is None:
            return
        self.listen(leg)
        leg.early.answer()
        if leg.speech is not None:
            leg.speech.tap = collections.deque() if leg.early.listening else None

    def ended(self, leg: CallLeg, status: int) -> None:
        """An outbound call that was never answered ended with ``status``: the last frames are
        heard, and speech that matched nothing on a failed call is kept as a clip."""
        early = leg.early
        if early is None:
            return
        self.listen(leg)
        failed = 400 <= status < 600 and (not leg.outcome_sent or leg.rang_out)
        if (leg.connected or not failed or early.verdict is not None or not leg.heard_dir
                or early.voiced_s < MIN_VOICED_S):
            return
        status = 408 if leg.rang_out else status  # our ring timeout: the 487 is our own CANCEL's
        try:
            clip = keep_heard(Path(leg.heard_dir), early.clip(), status, early.voiced_s, leg.id,
                              self.clock())
        except OSError as exc:
            log.warning("early media of %s not kept: %s", leg.id, exc)
            return
        self.emit(p.EarlyMediaKept(leg.id, clip.id, str(Path(leg.heard_dir) / f"{clip.id}.wav"),
                                   clip.seconds, status))
