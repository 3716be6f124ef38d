"""The configuration schema: every section of ``dialer.yaml`` as frozen, typed objects.

Each field's docstring is what an operator reads in ``dialer.yaml``; the YAML
file is the commented example. Checks that need more than one field, or the
file system, live in :mod:`sip_config.load`.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, time
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "AmdConfig",
    "BalancerConfig",
    "Config",
    "DialerConfig",
    "EngineConfig",
    "HotlineConfig",
    "Hours",
    "ListConfig",
    "ListenConfig",
    "MqttConfig",
    "PrefixConfig",
    "ProgressConfig",
    "RateConfig",
    "RetryConfig",
    "ScreeningConfig",
    "SipConfig",
    "TrunkConfig",
    "VerdictConfig",
    "parse_hours",
]

_URI = re.compile(
    r"^sips?:(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+@)?"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?:;[^\s]*)?$"
)
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _sip_uri(value: str) -> str:
    match = _URI.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a SIP URI like sip:127.0.0.1:5070 or sip:user@host")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"port {port} in {value!r} is outside 1-65535")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (write e.g. Asia/Shanghai)") from None
    return value


def _digits(value: str) -> str:
    if not value.isdigit():
        raise ValueError(f"{value!r} must be digits only")
    return value


SipUri = Annotated[str, AfterValidator(_sip_uri)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Digits = Annotated[str, AfterValidator(_digits)]
Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(gt=0, lt=65536)]
SipStatus = Annotated[int, Field(ge=400, le=699)]
ActionName = Literal["reject", "warn", "tag", "allow"]


class Hours(BaseModel):
    """A daily time window; ``start > end`` wraps past midnight."""

    model_config = ConfigDict(frozen=True)
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_hours(value: object) -> object:
    if isinstance(value, Hours) or not isinstance(value, str):
        return value
    match = _HOURS.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a time window like 08:00-22:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    for hour, minute in ((h1, m1), (h2, m2)):
        if hour > 23 or minute > 59:
            raise ValueError(f"{hour:02d}:{minute:02d} in {value!r} is not a time of day")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{value!r} starts and ends at the same time")
    return Hours(start=time(h1, m1), end=time(h2, m2))


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EngineConfig(_Section):
    data_dir: str = "var"
    """Where tasks, list snapshots and recordings are kept (relative to this file)."""
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Shanghai"
    """The time zone of operator hours and of timestamps people read."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Softphone worker processes; each carries at most 4 calls."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_host: str = "127.0.0.1"
    """Where the metrics are served: loopback unless a scraper elsewhere needs them (they
    have no authentication)."""
    metrics_port: Port | None = None
    """Prometheus metrics on http://<sip.listen.host>:<this>/metrics; leave out for none."""


class ListenConfig(_Section):
    host: str = "127.0.0.1"
    """Address the SIP workers listen on."""
    port: Port = 5060
    """Where callers and the hotline trunk send INVITEs. Without sip.balancer that is the first
    worker (worker N listens on port + N - 1); with it, the Kamailio front (worker N on
    port + N)."""
    rtp_port: Port = 40000
    """First RTP port; each worker gets its own range of 100 ports from here."""


class TrunkConfig(_Section):
    uri: SipUri = "sip:127.0.0.1:5070"
    """Where warning calls go: the INVITE is sent to sip:<number>@<host:port of this URI>."""
    caller_id: str = "96110"
    """The number warning calls show."""
    username: str | None = None
    """Digest user name when the trunk asks for authentication."""
    password_env: EnvName | None = None
    """Name of the environment variable holding the trunk password (never the password)."""
    registrar: SipUri | None = None
    """Register there (needs username and password_env); leave out for no registration."""
    max_channels: Annotated[int, Field(ge=1)] = 30
    """Calls at once the trunk accepts."""
    max_cps: Annotated[float, Field(gt=0)] = 10
    """New calls per second the trunk accepts."""


class BalancerConfig(_Section):
    """Kamailio in front of the workers. With this section, ``run`` starts Kamailio itself and
    restarts it if it dies: it listens on sip.listen.host:sip.listen.port (the address callers
    and the hotline trunk use) and hands each new call to a worker; the workers move behind it,
    worker N to sip.listen.port + N on the same host. Without it, callers reach the workers
    directly (worker N on sip.listen.port + N - 1). ``kamailio-config`` writes the same files."""

    @staticmethod
    def _cidr(value: str) -> str:
        try:
            ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an address or network (CIDR)") from None
        return value

    @staticmethod
    def _removed(value: object) -> None:
        raise ValueError(
            "is no longer used: Kamailio now listens on sip.listen.host and sip.listen.port (the "
            "address callers use) and the workers move behind it to sip.listen.port + 1 and up; "
            "remove this key and put the address callers use in sip.listen")

    algorithm: Literal["round-robin", "call-load"] = "round-robin"
    """round-robin: workers in turn, with the per-worker flood guard (new_calls_per_worker_s);
    call-load: the worker with the fewest calls, without that guard."""
    new_calls_per_worker_s: Annotated[int, Field(ge=1, le=1000)] = 25
    """(round-robin) New calls one worker is given a second; past it the next worker takes the
    call, and when every worker is over it the caller gets 503 with Retry-After. pjsua opens two
    media sockets per INVITE before the engine sees it and frees them 500 ms after the call: at
    30-60 new INVITEs a second a worker aborts, with its live calls."""
    flood_requests: Annotated[int, Field(ge=2, le=100000)] = 16
    """Requests (of any method) one source address may send in flood_window_s (Kamailio's pike
    module, reqs_density_per_unit; 16 in 2 s is its stock example). Pike blocks somewhere
    between this and 3 times this (IPv4); a source over it is banned for ban_s."""
    flood_window_s: Annotated[int, Field(ge=1, le=60)] = 2
    """The sampling window of flood_requests, in whole seconds (pike sampling_time_unit)."""
    ban_s: Annotated[int, Field(ge=1, le=86400)] = 300
    """How long a flooding source stays banned: every request from it is dropped without a
    reply (htable ipban with autoexpire). ``kamcmd -s unix:<data_dir>/kamailio/kamailio_ctl
    htable.dump ipban`` lists the bans; ``htable.delete ipban ADDRESS`` lifts one."""
    flood_exempt: tuple[Annotated[str, AfterValidator(_cidr)], ...] = ()
    """Sources (CIDRs) never counted or banned: your carrier's SBC or the hotline trunk, whose
    calls from many people arrive from one address. The per-worker guard still applies to them."""
    scanner_agents: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9 ._/-]+$")], ...] = (
        "friendly-scanner", "sipvicious", "sipcli", "sip-scan", "VaxSIPUserAgent", "pplsip",
        "sundayddr", "iWar")
    """User-Agent parts of SIP scanners (case-insensitive); their requests are dropped without a
    reply. An empty list drops none."""
    host: Annotated[None, BeforeValidator(_removed)] = None
    """Removed (always None): the front listens on sip.listen.host."""
    port: Annotated[None, BeforeValidator(_removed)] = None
    """Removed (always None): the front listens on sip.listen.port."""


class SipConfig(_Section):
    listen: ListenConfig = ListenConfig()
    trunk: TrunkConfig = TrunkConfig()
    balancer: BalancerConfig | None = None
    """Leave out when callers reach the workers directly."""
    allowed_sources: tuple[str, ...] = ("127.0.0.1/32",)
    """Addresses (CIDR) that may send INVITEs; others get 403."""
    media_timeout_s: Seconds = 10
    """A call that has received no RTP for this long is ended (media_timeout): a vanished peer
    must not hold a channel."""
    max_call_s: Seconds = 3600
    """No call lasts longer than this."""
    transaction_timeout_s: Annotated[float, Field(ge=2, le=32)] = 6
    """How long a SIP transaction waits for the far end (pjsip's timers B, F, H and J, 64×T1 =
    32 s by default): an answer never ACKed, a BYE never answered, an INVITE never responded to
    free their channel after this."""
    new_calls_per_worker_s: Annotated[float, Field(ge=0, le=1000)] = 20
    """New INVITEs one worker takes a second; more get 503 from a pjsip module ahead of pjsua,
    before it opens their media sockets (a flood straight at a worker used up its 64-slot I/O
    queue and aborted it with its live calls). Behind the front, at least the front's own
    sip.balancer.new_calls_per_worker_s. 0: no limit."""

    def networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(ip_network(n, strict=False) for n in self.allowed_sources)


class ListConfig(_Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    """The list's name: it names the list in decisions and its directory in data_dir."""
    file: str | None = None
    """A text/CSV file of numbers, imported when it changes (relative to this file)."""
    action: ActionName = "reject"
    status: SipStatus | None = None
    """Final response of a reject (default 603 Decline)."""
    reason: str = ""


class PrefixConfig(_Section):
    prefix: Annotated[str, Field(pattern=r"^\+?[0-9]+$")]
    """"+86170" matches E.164 numbers; plain digits match short and local numbers."""
    action: ActionName = "tag"
    status: SipStatus | None = None
    reason: str = ""


class VerdictConfig(_Section):
    action: ActionName
    status: SipStatus | None = None
    reason: str = ""


class RateConfig(_Section):
    max_calls: Annotated[int, Field(ge=1)] = 5
    window_s: Seconds = 60
    block_s: Seconds = 600
    action: ActionName = "reject"
    status: SipStatus | None = 486


class ScreeningConfig(_Section):
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


class RetryConfig(_Section):
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


class AmdConfig(_Section):
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


class ProgressConfig(_Section):
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


class TextsConfig(_Section):
    """Warning texts beside the warning calls, for a person who cannot pick up."""

    enabled: bool = True
    every_s: Annotated[float, Field(ge=1)] = 300
    """At most one warning text this often per task (the first follows the first attempt
    that did not reach the person)."""
    max_per_task: Annotated[int, Field(ge=1, le=20)] = 3


class DialerConfig(_Section):
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


def parse_hours_or_closed(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "closed":
        return None
    return parse_hours(value)


HoursOrClosed = Annotated[Hours | None, BeforeValidator(parse_hours_or_closed)]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class MessageConfig(_Section):
    """Messages left on the hotline for a callback."""

    max_s: Annotated[float, Field(ge=5, le=600)] = 60
    """The longest message."""
    silence_s: Annotated[float, Field(ge=1, le=30)] = 3
    """Silence after speech that ends a message (as # does)."""
    initial_silence_s: Annotated[float, Field(ge=1, le=60)] = 8
    """Silence after the beep, before any word, that ends it."""


AreaCode = Annotated[str, Field(pattern=r"^0?[1-9][0-9]{1,3}$")]


class HotlineConfig(_Section):
    number: Digits = "961108"
    area_code: AreaCode | None = None
    """The hotline's area code (e.g. "0591"): callers from elsewhere dial it first
    (0591961108, +86591961108); the hotline and the SMS line answer with and without it."""
    operator_hours: Annotated[Hours, BeforeValidator(parse_hours)] = Hours(start=time(8), end=time(22))
    """Operators answer inside this window (it may cross midnight); the IVR answers outside it."""
    weekdays: dict[Weekday, HoursOrClosed] = {}
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


class SmsConfig(_Section):
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


class MqttConfig(_Section):
    url: Annotated[str, Field(pattern=r"^mqtts?://[^\s/:]+(:[0-9]{1,5})?/?$")]
    """Broker, e.g. mqtt://127.0.0.1:1883. Leave the whole mqtt section out for no MQTT."""
    topic_prefix: Annotated[str, Field(pattern=r"^[^#+\s]+$")] = "antifraud"
    username: str | None = None
    password_env: EnvName | None = None
    """Name of the environment variable holding the broker password (never the password)."""
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] = "antifraud-engine"
    """The broker keeps this client's session (subscriptions, requests sent while the engine
    is down) under this id."""
    ca_file: str | None = None
    """CA certificate (PEM) to check the broker's certificate with, for mqtts:// (relative to
    this file); leave out to use the system's CAs."""
    full_numbers: bool = False
    """Events carry full phone numbers (only for a broker inside the center's network);
    otherwise masked like 138****7490."""
    keepalive_s: Annotated[int, Field(ge=5, le=600)] = 30
    reconnect_max_s: Annotated[float, Field(ge=1, le=600)] = 30
    """Longest wait between two attempts to reach the broker (jittered, doubling from 0.5 s)."""
    outbox_max_events: Annotated[int, Field(ge=1000)] = 1_000_000
    """Events kept on disk while the broker is away; past them the oldest screening events
    (one per call) are dropped. Task, callback and text events are never dropped: they are
    also in their own stores."""


class Config(_Section):
    engine: EngineConfig = EngineConfig()
    sip: SipConfig = SipConfig()
    screening: ScreeningConfig = ScreeningConfig()
    dialer: DialerConfig = DialerConfig()
    hotline: HotlineConfig = HotlineConfig()
    mqtt: MqttConfig | None = None
    sms: SmsConfig | None = None
