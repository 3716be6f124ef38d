"""A softphone worker's events to the engine: one frozen dataclass each.

``TYPE`` is the event's name on the wire (the ``type`` field of its JSON
line); :data:`Event` is every one of them. ``ringing`` names both the
:class:`Ringing` event and the :class:`~softphone.protocol.Ring`
command: :mod:`softphone.protocol.codec` decodes each direction on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from softphone.protocol.commands import DtmfMethod

__all__ = [
    "Answered",
    "Busy",
    "Digits",
    "DigitsReason",
    "Dtmf",
    "EarlyMediaKept",
    "Error",
    "Event",
    "Failed",
    "HangupSide",
    "HungUp",
    "Incoming",
    "MachineDetection",
    "MachineVerdictName",
    "NoAnswer",
    "PlaybackEndReason",
    "PlaybackEnded",
    "Progress",
    "ProgressSource",
    "Ready",
    "RecordingSaved",
    "Refused",
    "Registration",
    "Ringing",
    "SpeechEnded",
    "SpeechStarted",
    "TextReceived",
    "TextStatus",
    "Transferred",
    "WorkerStats",
]


@dataclass(frozen=True)
class Ready:
    TYPE: ClassVar[str] = "ready"
    name: str
    sip_port: int
    max_calls: int


@dataclass(frozen=True)
class Incoming:
    """An INVITE from an allowed source; ``call`` is ``<worker>-in-<n>``."""

    TYPE: ClassVar[str] = "incoming"
    call: str
    caller: str
    """User part of P-Asserted-Identity if present, else of From."""
    callee: str
    """User part of the request URI."""
    source: str
    """``ip:port`` the INVITE came from."""
    call_id: str
    display: str = ""


@dataclass(frozen=True)
class Ringing:
    TYPE: ClassVar[str] = "ringing"
    call: str
    status: int


@dataclass(frozen=True)
class Answered:
    """The call is confirmed (either direction)."""

    TYPE: ClassVar[str] = "answered"
    call: str


@dataclass(frozen=True)
class Busy:
    """Outbound call ended busy: 486 or 600, or a ``Reason: Q.850;cause=17`` (see
    :func:`softphone.outcome.ending_of`)."""

    TYPE: ClassVar[str] = "busy"
    call: str
    status: int
    cause: int | None = None
    """The Q.850 cause of the final response's ``Reason`` header, if any."""


@dataclass(frozen=True)
class NoAnswer:
    """Ring timeout (status 408, worker cancelled), or a final status (or Q.850 cause) that
    means no answer: 480, 487, 408 after ringing, causes 18 and 19."""

    TYPE: ClassVar[str] = "no_answer"
    call: str
    status: int
    cause: int | None = None


@dataclass(frozen=True)
class Failed:
    """Any other final non-2xx for an outbound call (404, 484, 603, 604, 503...)."""

    TYPE: ClassVar[str] = "failed"
    call: str
    status: int
    reason: str = ""
    cause: int | None = None


@dataclass(frozen=True)
class Dtmf:
    TYPE: ClassVar[str] = "dtmf"
    call: str
    digit: str
    method: DtmfMethod


PlaybackEndReason = Literal["done", "interrupted", "stopped"]


@dataclass(frozen=True)
class PlaybackEnded:
    TYPE: ClassVar[str] = "playback_ended"
    call: str
    reason: PlaybackEndReason
    file: str = ""


DigitsReason = Literal["max", "terminator", "timeout"]


@dataclass(frozen=True)
class Digits:
    """Result of a :class:`~softphone.protocol.Collect`; the terminator is not part of
    ``digits``."""

    TYPE: ClassVar[str] = "digits"
    call: str
    digits: str
    reason: DigitsReason


MachineVerdictName = Literal["human", "machine", "unsure"]


@dataclass(frozen=True)
class MachineDetection:
    """The answering-machine detector's verdict (see :class:`~softphone.protocol.DetectMachine`)."""

    TYPE: ClassVar[str] = "amd"
    call: str
    verdict: MachineVerdictName
    cause: str
    words: int
    voiced_s: float


ProgressSource = Literal["tone", "announcement"]


@dataclass(frozen=True)
class Progress:
    """What the network said (see :class:`~softphone.protocol.DetectProgress`): a tone
    (``by="tone"``; ``what`` ``busy``, ``congestion``, ``vacant``, ``sit``, or ``ringback``,
    which only means it rings) or an announcement of the library (``by="announcement"``;
    ``what`` its class, ``busy``, ``off``, ``unreachable``, ``invalid`` or ``suspended``, and
    its id). ``after_s``: seconds of media heard (from the first frame of early media, or
    from the answer) when decided."""

    TYPE: ClassVar[str] = "progress"
    call: str
    by: ProgressSource
    what: str
    after_s: float
    announcement: str = ""
    answered: bool = False
    """Heard after the answer (a carrier that answers, then announces)."""
    score: float = 0.0
    """How close the announcement matched (its bit error rate; lower is closer)."""


@dataclass(frozen=True)
class EarlyMediaKept:
    """Speech-like early media that matched nothing, on a call that then failed with
    ``status`` (or rang out: 408), kept as the clip ``clip`` (a WAV and its description in the
    ``heard`` directory of :class:`~softphone.protocol.DetectProgress`). Sent before ``hung_up``."""

    TYPE: ClassVar[str] = "early_media_kept"
    call: str
    clip: str
    file: str
    seconds: float
    status: int


@dataclass(frozen=True)
class RecordingSaved:
    """A recording stopped with :class:`~softphone.protocol.StopRecording` is complete on disk."""

    TYPE: ClassVar[str] = "recording_saved"
    call: str
    file: str
    duration_s: float


@dataclass(frozen=True)
class SpeechStarted:
    TYPE: ClassVar[str] = "speech_started"
    call: str


@dataclass(frozen=True)
class SpeechEnded:
    TYPE: ClassVar[str] = "speech_ended"
    call: str
    duration_s: float


HangupSide = Literal["local", "remote", "lost"]
"""``lost``: never sent by a worker; the engine reports the calls of a worker that died so."""


@dataclass(frozen=True)
class HungUp:
    """Last event of every call; the id is dead afterwards."""

    TYPE: ClassVar[str] = "hung_up"
    call: str
    by: HangupSide
    status: int
    duration_s: float
    """Connected time; 0 for a call never answered."""
    reason: str = ""
    """Why the worker ended it on its own: ``media_timeout`` (no RTP for the media timeout),
    ``max_call`` (the longest call allowed); empty otherwise."""


@dataclass(frozen=True)
class Refused:
    """An INVITE refused before it became a call (no call id exists): 403 for a source
    outside ``--allow``, 420 for one that would replace a dialog, 503 over ``--invite-rate``
    or with no place for its media; 488 for a re-offer with more audio lines than its
    call holds."""

    TYPE: ClassVar[str] = "refused"
    source: str
    caller: str
    status: int = 403


@dataclass(frozen=True)
class Error:
    TYPE: ClassVar[str] = "error"
    message: str
    call: str | None = None


@dataclass(frozen=True)
class Transferred:
    """Final NOTIFY sipfrag status of a :class:`~softphone.protocol.Transfer`."""

    TYPE: ClassVar[str] = "transferred"
    call: str
    status: int


@dataclass(frozen=True)
class Registration:
    """Trunk registration result (status 200 with ``expires`` > 0 = registered)."""

    TYPE: ClassVar[str] = "registration"
    status: int
    reason: str
    expires: int


@dataclass(frozen=True)
class TextReceived:
    """A MESSAGE outside any call from an allowed source. pjsua has already answered it 200
    (it does so before the application sees it); ``problem`` says why the body could not be
    read (then ``body`` is empty)."""

    TYPE: ClassVar[str] = "text_received"
    text: str
    """``<worker>-txt-<n>``."""
    sender: str
    """User part of P-Asserted-Identity if present, else of From."""
    to: str
    """User part of the request URI."""
    body: str
    content_type: str
    source: str
    call_id: str
    problem: str = ""


@dataclass(frozen=True)
class TextStatus:
    """The far end's final answer to a :class:`~softphone.protocol.SendText` (408 when none
    came)."""

    TYPE: ClassVar[str] = "text_status"
    text: str
    status: int
    reason: str = ""


@dataclass(frozen=True)
class WorkerStats:
    TYPE: ClassVar[str] = "stats"
    name: str
    calls: int
    max_calls: int


Event = (
    Ready | Incoming | Ringing | Answered | Busy | NoAnswer | Failed | Dtmf | PlaybackEnded
    | Digits | MachineDetection | Progress | EarlyMediaKept | RecordingSaved | SpeechStarted
    | SpeechEnded | HungUp | Refused | Error
    | Transferred | Registration | TextReceived | TextStatus | WorkerStats
)
