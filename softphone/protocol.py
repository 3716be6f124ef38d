"""JSON-lines protocol between the engine and a softphone worker process.

Commands travel on the worker's stdin, events on its stdout, one JSON object
per line with a ``type`` field naming the message. Both sides import this
module; it does no I/O (bytes in, objects out, in the spirit of h11).

``ringing`` is both a command (send 180) and an event (peer sent 180/183), so
the two directions are decoded separately: :func:`decode_command` and
:func:`decode_event`. :func:`encode` serves both.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, Union

__all__ = [
    "Answer",
    "Answered",
    "Bridge",
    "Busy",
    "Collect",
    "Command",
    "DetectMachine",
    "DetectProgress",
    "Dial",
    "Digits",
    "Dtmf",
    "EarlyMediaKept",
    "Error",
    "Event",
    "Failed",
    "Hangup",
    "HungUp",
    "Incoming",
    "MachineDetection",
    "NoAnswer",
    "Play",
    "PlaybackEnded",
    "Progress",
    "ProtocolError",
    "Ready",
    "Record",
    "RecordingSaved",
    "Redirect",
    "Refused",
    "Registration",
    "Reject",
    "Ring",
    "Ringing",
    "SendDigits",
    "SendText",
    "Shutdown",
    "SpeechEnded",
    "SpeechStarted",
    "Stats",
    "Stop",
    "StopRecording",
    "TextReceived",
    "TextStatus",
    "Transfer",
    "Transferred",
    "WorkerStats",
    "decode_command",
    "decode_event",
    "encode",
]


DtmfMethod = Literal["rfc2833", "info"]


class ProtocolError(ValueError):
    """A line that is not a well-formed message; ``str()`` names the problem."""


# --------------------------------------------------------------------- commands


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
    """Stop the call's recording and close its WAV; :class:`RecordingSaved` follows."""

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
    verdict comes once as :class:`MachineDetection`. Thresholds in seconds, as in
    :class:`audio.amd.AmdSettings`, counted from the answer."""

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
    :class:`Progress`. ``heard``: a directory where speech-like early media that matched
    nothing is kept as a clip when the call fails (:class:`EarlyMediaKept`); "" keeps none."""

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
    :class:`TextStatus` with the same ``text`` id follows once the far end has answered."""

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
    """Ask for a :class:`WorkerStats` event."""

    TYPE: ClassVar[str] = "stats"


Command = (
    Dial | Answer | Ring | Reject | Redirect | Play | Stop | Record | StopRecording | Collect
    | Transfer
    | Bridge | SendDigits | DetectMachine | DetectProgress | Hangup | SendText | Shutdown | Stats
)

# ----------------------------------------------------------------------- events


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
    """Result of a :class:`Collect`; the terminator is not part of ``digits``."""

    TYPE: ClassVar[str] = "digits"
    call: str
    digits: str
    reason: DigitsReason


MachineVerdictName = Literal["human", "machine", "unsure"]


@dataclass(frozen=True)
class MachineDetection:
    """The answering-machine detector's verdict (see :class:`DetectMachine`)."""

    TYPE: ClassVar[str] = "amd"
    call: str
    verdict: MachineVerdictName
    cause: str
    words: int
    voiced_s: float


ProgressSource = Literal["tone", "announcement"]


@dataclass(frozen=True)
class Progress:
    """What the network said (see :class:`DetectProgress`): a tone (``by="tone"``; ``what``
    ``busy``, ``congestion``, ``vacant``, ``sit``, or ``ringback``, which only means it rings)
    or an announcement of the library (``by="announcement"``; ``what`` its class, ``busy``,
    ``off``, ``unreachable``, ``invalid`` or ``suspended``, and its id). ``after_s``: seconds
    of media heard (from the first frame of early media, or from the answer) when decided."""

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
    ``heard`` directory of :class:`DetectProgress`). Sent before ``hung_up``."""

    TYPE: ClassVar[str] = "early_media_kept"
    call: str
    clip: str
    file: str
    seconds: float
    status: int


@dataclass(frozen=True)
class RecordingSaved:
    """A recording stopped with :class:`StopRecording` is complete on disk."""

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
    outside ``--allow``, 503 over ``--invite-rate``."""

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
    """Final NOTIFY sipfrag status of a :class:`Transfer`."""

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
    """The far end's final answer to a :class:`SendText` (408 when none came)."""

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
    | Digits | MachineDetection | Progress | EarlyMediaKept | RecordingSaved | SpeechStarted | SpeechEnded | HungUp | Refused
    | Error
    | Transferred | Registration | TextReceived | TextStatus | WorkerStats
)

COMMANDS: dict[str, type] = {c.TYPE: c for c in typing.get_args(Command)}
EVENTS: dict[str, type] = {e.TYPE: e for e in typing.get_args(Event)}


# ------------------------------------------------------------------ encode/decode


def encode(message: Command | Event) -> str:
    """One JSON line (without the newline) for a command or an event."""
    body: dict[str, Any] = {"type": message.TYPE}
    for f in fields(message):
        body[f.name] = getattr(message, f.name)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode_command(line: str) -> Command:
    """Parse a command line; raises :class:`ProtocolError` naming the problem."""
    return typing.cast(Command, _decode(line, COMMANDS, "command"))


def decode_event(line: str) -> Event:
    """Parse an event line; raises :class:`ProtocolError` naming the problem."""
    return typing.cast(Event, _decode(line, EVENTS, "event"))


def _decode(line: str, registry: dict[str, type], kind: str) -> object:
    try:
        body = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"a {kind} must be a JSON object")
    name = body.pop("type", None)
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown {kind} type {name!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ProtocolError(f"{name}: unknown field(s) {', '.join(unknown)}")
    for f in fields(cls):
        if f.name in body:
            body[f.name] = _checked(name, f.name, body[f.name], hints[f.name])
    try:
        return cls(**body)
    except TypeError:
        missing = sorted(
            f.name for f in fields(cls) if f.name not in body and _required(f)
        )
        raise ProtocolError(f"{name}: missing field(s) {', '.join(missing)}") from None


def _required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _checked(kind: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` if it fits ``hint`` (ints accepted for floats), else ProtocolError."""
    if _fits(value, hint):
        if hint is float and isinstance(value, int):
            return float(value)
        return value
    raise ProtocolError(f"{kind}.{name}: {value!r} is not {_describe(hint)}")


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is dict:
        return "an object of strings"
    if hint is type(None):
        return "null"
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}.get(
        hint, str(hint)
    )
