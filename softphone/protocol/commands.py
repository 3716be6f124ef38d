"""The engine's commands to a softphone worker: one frozen dataclass each.

``TYPE`` is the command's name on the wire (the ``type`` field of its JSON
line); :data:`Command` is every one of them. Encoding, decoding and checking
live in :mod:`softphone.protocol.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

__all__ = [
    "Answer",
    "Bridge",
    "Collect",
    "Command",
    "DetectMachine",
    "DetectProgress",
    "Dial",
    "DtmfMethod",
    "Hangup",
    "Play",
    "Record",
    "Redirect",
    "Reject",
    "Ring",
    "SendDigits",
    "SendText",
    "Shutdown",
    "Stats",
    "Stop",
    "StopRecording",
    "Transfer",
]


DtmfMethod = Literal["rfc2833", "info"]


@dataclass(frozen=True)
class Dial:
    """Place an outbound call; ``call`` is the id chosen by the engine."""

    TYPE: ClassVar[str] = "dial"
    call: str
    uri: str
    caller_id: str = ""
    """User part (``"96110"``) or a full SIP URI for the From header."""
    ring_timeout_s: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """200 OK with media for an inbound call."""

    TYPE: ClassVar[str] = "answer"
    call: str


@dataclass(frozen=True)
class Ring:
    """180 Ringing for an inbound call; 183 Session Progress opens early media (SDP answered):
    a prompt played then is heard before the answer, as a carrier's announcement or 彩铃."""

    TYPE: ClassVar[str] = "ringing"
    call: str
    status: Literal[180, 183] = 180


@dataclass(frozen=True)
class Reject:
    """Final non-2xx response to an inbound call (603, 486, 403...)."""

    TYPE: ClassVar[str] = "reject"
    call: str
    status: int = 603


@dataclass(frozen=True)
class Redirect:
    """302 Moved Temporarily with ``uri`` as Contact."""

    TYPE: ClassVar[str] = "redirect"
    call: str
    uri: str


@dataclass(frozen=True)
class Play:
    """Play a WAV file to the peer, replacing any current playback."""

    TYPE: ClassVar[str] = "play"
    call: str
    file: str
    loop: bool = False
    interrupt_on_digit: bool = False


@dataclass(frozen=True)
class Stop:
    """Stop the current playback."""

    TYPE: ClassVar[str] = "stop"
    call: str


@dataclass(frozen=True)
class Record:
    """Record the audio received from the peer into a WAV file until hang-up."""

    TYPE: ClassVar[str] = "record"
    call: str
    file: str


@dataclass(frozen=True)
class StopRecording:
    """Stop the call's recording and close its WAV;
    :class:`~softphone.protocol.RecordingSaved` follows."""

    TYPE: ClassVar[str] = "stop_recording"
    call: str


@dataclass(frozen=True)
class Collect:
    """Collect DTMF digits; ``timeout_s`` restarts after every digit."""

    TYPE: ClassVar[str] = "collect"
    call: str
    max_digits: int = 1
    timeout_s: float = 10.0
    terminator: str = "#"


@dataclass(frozen=True)
class Transfer:
    """Blind transfer (REFER) of a connected call to ``uri``."""

    TYPE: ClassVar[str] = "transfer"
    call: str
    uri: str


@dataclass(frozen=True)
class Bridge:
    """Connect the audio of two calls of this worker both ways (a B2BUA join).

    Either call may still be waiting for media: the join happens when both
    have audio. Prompts keep playing until stopped."""

    TYPE: ClassVar[str] = "bridge"
    call: str
    other: str


@dataclass(frozen=True)
class SendDigits:
    """Send DTMF digits on a connected call, by RFC 2833 or by SIP INFO."""

    TYPE: ClassVar[str] = "send_digits"
    call: str
    digits: str
    method: DtmfMethod = "rfc2833"


@dataclass(frozen=True)
class DetectMachine:
    """Run answering-machine detection on the call's received audio from the answer on (send
    right after ``dial``; early media before the answer is never analysed as a machine); the
    verdict comes once as :class:`~softphone.protocol.MachineDetection`. Thresholds in
    seconds, as in :class:`audio.amd.AmdSettings`, counted from the answer."""

    TYPE: ClassVar[str] = "detect_machine"
    call: str
    initial_silence_s: float = 2.5
    greeting_s: float = 1.5
    after_greeting_silence_s: float = 0.8
    total_analysis_s: float = 5.0
    min_word_s: float = 0.1
    between_words_silence_s: float = 0.05
    max_words: int = 3
    max_word_s: float = 5.0


@dataclass(frozen=True)
class DetectProgress:
    """Listen to what the network says before the answer (send right after ``dial``): the
    national tones of ``tones`` and the announcements of the library in the directory
    ``library`` (see :mod:`audio.library`), from the first frame of early media; after an
    answer, the announcements only, for ``answered_s``. Each verdict comes as
    :class:`~softphone.protocol.Progress`. ``heard``: a directory where speech-like early
    media that matched nothing is kept as a clip when the call fails
    (:class:`~softphone.protocol.EarlyMediaKept`); "" keeps none."""

    TYPE: ClassVar[str] = "detect_progress"
    call: str
    tones: str = "cn"
    library: str = ""
    answered_s: float = 0.0
    heard: str = ""


@dataclass(frozen=True)
class Hangup:
    """BYE if connected, CANCEL if outbound and early, ``status`` if inbound unanswered."""

    TYPE: ClassVar[str] = "hangup"
    call: str
    status: int | None = None


@dataclass(frozen=True)
class SendText:
    """Send a text (an out-of-dialog SIP MESSAGE, ``text/plain;charset=UTF-8``) to ``uri``;
    :class:`~softphone.protocol.TextStatus` with the same ``text`` id follows once the far end
    has answered."""

    TYPE: ClassVar[str] = "send_text"
    text: str
    uri: str
    body: str
    sender: str = ""
    """User part (``"121100130"``) or a full SIP URI for the From header."""


@dataclass(frozen=True)
class Shutdown:
    """Hang up every call and exit 0."""

    TYPE: ClassVar[str] = "shutdown"


@dataclass(frozen=True)
class Stats:
    """Ask for a :class:`~softphone.protocol.WorkerStats` event."""

    TYPE: ClassVar[str] = "stats"


Command = (
    Dial | Answer | Ring | Reject | Redirect | Play | Stop | Record | StopRecording | Collect
    | Transfer
    | Bridge | SendDigits | DetectMachine | DetectProgress | Hangup | SendText | Shutdown | Stats
)
