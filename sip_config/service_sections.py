"""The sections of ``dialer.yaml`` for the services: ``screening`` of inbound calls, the
warning ``dialer``, the ``hotline`` and the ``sms`` consultation line.

Each field's docstring is what an operator reads in ``dialer.yaml``.
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from .values import (
    ActionName,
    Digits,
    Hours,
    HoursOrClosed,
    Seconds,
    Section,
    SipStatus,
    SipUri,
    Weekday,
    parse_hours,
)

__all__ = [
    "AmdConfig",
    "AreaCode",
    "DialerConfig",
    "HotlineConfig",
    "ListConfig",
    "MessageConfig",
    "PrefixConfig",
    "ProgressConfig",
    "RateConfig",
    "RetryConfig",
    "ScreeningConfig",
    "SmsConfig",
    "TextsConfig",
    "VerdictConfig",
]


class ListConfig(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    """The list's name: it names the list in decisions and its directory in data_dir."""
    file: str | None = None
    """A text/CSV file of numbers, imported when it changes (relative to this file)."""
    action: ActionName = "reject"
    status: SipStatus | None = None
    """Final response of a reject (default 603 Decline)."""
    reason: str = ""


class PrefixConfig(Section):
    prefix: Annotated[str, Field(pattern=r"^\+?[0-9]+$")]
    """"+86170" matches E.164 numbers; plain digits match short and local numbers."""
    action: ActionName = "tag"
    status: SipStatus | None = None
    reason: str = ""


class VerdictConfig(Section):
    action: ActionName
    status: SipStatus | None = None
    reason: str = ""


class RateConfig(Section):
    max_calls: Annotated[int, Field(ge=1)] = 5
    window_s: Seconds = 60
    block_s: Seconds = 600
    action: ActionName = "reject"
    status: SipStatus | None = 486


class ScreeningConfig(Section):
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "CN"
    """Home country (ISO code) for numbers written without a country code."""
    lists: tuple[ListConfig, ...] = ()
    prefixes: tuple[PrefixConfig, ...] = ()
    official_numbers: tuple[Digits, ...] = ()
    """Official short numbers; a foreign caller id that is one of them is a spoof."""
    spoof: VerdictConfig = VerdictConfig(action="reject", reason="foreign number posing as an official one")
    overseas: VerdictConfig | None = None
    anonymous: VerdictConfig = VerdictConfig(action="tag", reason="caller id withheld")
    invalid: VerdictConfig = VerdictConfig(action="tag", reason="caller id is not a phone number")
    rate: RateConfig | None = None
    on_error: Literal["allow", "reject"] = "allow"
    """What a caller gets when no decision can be made (a list cannot be read, a fault):
    allow keeps the hotline reachable; reject answers 503."""
    warn_callee_on_block: bool = False
    """A blocked call to a person's number (not the hotline) becomes a warning task for that
    person: a fraud number was calling them."""


class RetryConfig(Section):
    """When to call again, by what the last attempt met. Every wait gets a little jitter."""

    busy_s: Seconds = 15
    """Busy (486/600, the busy tone or announcement): the person is probably on the phone with
    the scammer right now, and the moment that call ends is the moment to reach them: call
    again soon (this long after the busy call started), and keep calling often."""
    busy_growth: Annotated[float, Field(ge=1, le=3)] = 1.05
    """Each further busy in a row waits this much longer ..."""
    busy_cap_s: Seconds = 16
    """... up to this. (bench/reach.py: with these defaults the median time from the line
    becoming free to the call being answered is under 15 s; a longer cap costs seconds there.)"""
    rang_out_s: Seconds = 10
    """The phone rang for ring_timeout_s and nobody picked up. With call waiting, our call rang
    as a second call while the person talks to the scammer: the line is in use, call again soon
    (like busy, these attempts do not use up max_attempts)."""
    no_answer_s: Seconds = 60
    """No answer from the network (408/480/487), or a declined call (603)."""
    unreachable_s: Seconds = 30
    """The phone is switched off or out of coverage (the carrier says so in early media, or
    Q.850 cause 20). Counted towards escalation like busy, never using up max_attempts: a
    line that stays off is called until give_up_after_s, and a warning text goes out at once
    (the SMS centre holds it until the phone is back on)."""
    unacknowledged_s: Seconds = 120
    """Answered, the warning played, but no acknowledgement (or the person hung up on it)."""
    machine_s: Seconds = 300
    """An answering machine took the call (a short message was left)."""
    trunk_s: Seconds = 5
    """The trunk's fault (403, 503, other 5xx, no response): not counted against the person;
    doubles on each such failure in a row ..."""
    trunk_cap_s: Seconds = 120
    """... up to this."""
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.2
    """Each wait is stretched or shortened at random by up to this fraction."""


class AmdConfig(Section):
    """Answering-machine detection while the warning plays (Asterisk AMD's defaults)."""

    enabled: bool = True
    initial_silence_s: Seconds = 2.5
    """Silence before the first word: never a machine (a person may listen quietly), only unsure."""
    greeting_s: Seconds = 1.5
    """A greeting with more speech than this is a machine."""
    after_greeting_silence_s: Seconds = 0.8
    """Silence after a short greeting ("喂?"): a person."""
    total_analysis_s: Seconds = 5.0
    min_word_s: Seconds = 0.1
    between_words_silence_s: Seconds = 0.05
    max_words: Annotated[int, Field(ge=1)] = 3
    max_word_s: Seconds = 5.0
    greeting_wait_s: Seconds = 20
    """On a machine, the message is left when its greeting ends, or after this at the latest."""


class ProgressConfig(Section):
    """What the network says before an answer (early media): the national tones and the
    carrier's spoken announcements (``run_dialer.py announcements``), heard on every warning
    call; a busy, switched-off, vacant or suspended line is cancelled at once."""

    enabled: bool = True
    tones: Literal["cn"] = "cn"
    """Whose tones to recognise: cn (GB/T 3380, everything at 450 Hz, told apart by cadence),
    with the ITU special information tones."""
    keep_heard_days: Annotated[float, Field(ge=0)] = 7
    """Speech-like early media that matched nothing and ended in a failure is kept this long
    as a clip (``announcements heard``), for an operator to add it; 0 keeps none."""
    answered_s: Annotated[float, Field(ge=0, le=30)] = 6
    """Some carriers answer (200) and then play the announcement: the announcements are
    listened for this long after an answer too (0: not after an answer)."""


class TextsConfig(Section):
    """Warning texts beside the warning calls, for a person who cannot pick up."""

    enabled: bool = True
    every_s: Annotated[float, Field(ge=1)] = 300
    """At most one warning text this often per task (the first follows the first attempt
    that did not reach the person)."""
    max_per_task: Annotated[int, Field(ge=1, le=20)] = 3


class DialerConfig(Section):
    ring_timeout_s: Seconds = 40
    """How long a warning call rings before we hang up (and call again: see retry.rang_out_s)."""
    retry: RetryConfig = RetryConfig()
    max_attempts: Annotated[int, Field(ge=1)] = 20
    """Attempts answered without an acknowledgement (or by a machine), or that the network
    answered no, or that were declined; then the task fails. A line in use does not use them
    up (busy, a ring that ran out as a waiting call, a phone switched off): it is called until
    give_up_after_s."""
    escalate_after_attempts: Annotated[int, Field(ge=1)] = 3
    """After this many attempts without an acknowledgement (busy ones included), an 'escalated'
    event asks the local station to visit; calling goes on."""
    give_up_after_s: Seconds = 14400
    """A task still unacknowledged this long after its first attempt fails."""
    ack_digit: Annotated[str, Field(pattern=r"^[0-9*#]$")] = "1"
    officer_digit: Annotated[str, Field(pattern=r"^[0-9*#]$")] = "0"
    """Reaches the duty officer (dialer.officer_uri)."""
    officer_uri: SipUri | None = None
    """The duty officer a person reaches with officer_digit; default hotline.operator_uri."""
    officer_ring_timeout_s: Seconds = 30
    repeats: Annotated[int, Field(ge=1, le=10)] = 3
    """How many times the warning is said on one call when no digit comes."""
    ack_wait_s: Seconds = 6
    """Silence left for the digit after each time the warning is said."""
    max_call_s: Seconds = 300
    """A warning call that has gone on this long is ended (not when bridged to the officer)."""
    quiet_hours: Annotated[Hours | None, BeforeValidator(parse_hours)] = None
    """Normal-risk tasks wait out this window (e.g. "22:00-08:00"); high risk calls at any hour."""
    center_name: Annotated[str, Field(min_length=2, max_length=40)] = "公安局反诈中心"
    """Who is calling, said first on every warning call."""
    catalog: str | None = None
    """The warning catalog (YAML; relative to this file); default the shipped dialer/warnings.yaml."""
    record: bool = False
    """Record every warning call to <data_dir>/recordings/<task>-<attempt>.wav (evidence)."""
    amd: AmdConfig = AmdConfig()
    texts: TextsConfig = TextsConfig()
    progress: ProgressConfig = ProgressConfig()


class MessageConfig(Section):
    """Messages left on the hotline for a callback."""

    max_s: Annotated[float, Field(ge=5, le=600)] = 60
    """The longest message."""
    silence_s: Annotated[float, Field(ge=1, le=30)] = 3
    """Silence after speech that ends a message (as # does)."""
    initial_silence_s: Annotated[float, Field(ge=1, le=60)] = 8
    """Silence after the beep, before any word, that ends it."""


AreaCode = Annotated[str, Field(pattern=r"^0?[1-9][0-9]{1,3}$")]


class HotlineConfig(Section):
    number: Digits = "961108"
    area_code: AreaCode | None = None
    """The hotline's area code (e.g. "0591"): callers from elsewhere dial it first
    (0591961108, +86591961108); the hotline and the SMS line answer with and without it."""
    operator_hours: Annotated[Hours, BeforeValidator(parse_hours)] = Hours(start=time(8), end=time(22))
    """Operators answer inside this window (it may cross midnight); the IVR answers outside it."""
    weekdays: dict[Weekday, HoursOrClosed] = {}  # noqa: RUF012 - a pydantic field, copied
    """Other hours on some days of the week, e.g. {saturday: "09:00-17:00", sunday: closed}."""
    holidays: tuple[date, ...] = ()
    """Dates on which holiday_hours apply (e.g. 2026-10-01)."""
    holiday_hours: HoursOrClosed = None
    """Operator hours on a holiday; closed (the IVR all day) by default."""
    workdays: tuple[date, ...] = ()
    """Make-up working days (调休上班): the usual hours even when the weekday says otherwise."""
    official_calendar: bool = False
    """Also follow China's official holidays and make-up working days (chinese-calendar)."""
    operator_uri: SipUri = "sip:operator@127.0.0.1:5090"
    """The operator, when hotline.operators is not given (a queue of one)."""
    operators: tuple[SipUri, ...] = ()
    """The operators' phones, rung by the queue."""
    ring: Literal["round_robin", "longest_idle", "all"] = "round_robin"
    """Which free operator rings: each in turn, the one idle longest, or all at once."""
    operator_ring_s: Seconds = 20
    """How long one operator's phone rings before the next is tried."""
    max_wait_s: Seconds = 120
    """A caller waiting this long for an operator (or for whom no operator answers at all) is
    offered the voice menu or a message for callback."""
    queue_announce_s: Seconds = 30
    """How often a waiting caller hears their place in the queue."""
    menus: str | None = None
    """The voice menus (YAML; relative to this file); default the shipped hotline/menus.yaml."""
    message: MessageConfig = MessageConfig()

    @property
    def operator_uris(self) -> tuple[str, ...]:
        return self.operators or (self.operator_uri,)


class SmsConfig(Section):
    """The SMS consultation line: texts (SIP MESSAGE) to it are consultations."""

    number: Digits
    """The line's number (e.g. 121100130), reached in every dialed form (hotline.area_code)."""
    reply_hours: Annotated[Hours | None, BeforeValidator(parse_hours)] = None
    """Operators answer texts inside this window; outside it an automatic reply says when
    they will (default: hotline.operator_hours and its weekdays and holidays)."""
    thread_s: Annotated[float, Field(ge=0, le=86400)] = 600
    """A text from the same number within this of the last one joins the same thread."""
    max_chars: Annotated[int, Field(ge=70, le=10000)] = 1000
    """Longer texts are refused (413 at the front; dropped by the engine)."""
