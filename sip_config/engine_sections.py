"""The sections of ``dialer.yaml`` for the engine itself and what it talks to: ``engine``,
``sip`` (its ``listen``, ``trunk`` and ``balancer``), ``mqtt`` and ``console``.

Each field's docstring is what an operator reads in ``dialer.yaml``.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from .values import EnvName, Port, Seconds, Section, SipUri, TimeZoneName

__all__ = [
    "BalancerConfig",
    "ConsoleConfig",
    "EngineConfig",
    "ListenConfig",
    "MqttConfig",
    "PeerNode",
    "SipConfig",
    "TrunkConfig",
]


class EngineConfig(Section):
    data_dir: str = "var"
    """Where tasks, list snapshots and recordings are kept (relative to this file)."""
    timezone: TimeZoneName = "Asia/Shanghai"
    """The time zone of operator hours and of timestamps people read."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Softphone worker processes; each carries at most 4 calls."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_host: str = "127.0.0.1"
    """Where the metrics are served: loopback unless a scraper elsewhere needs them (they
    have no authentication)."""
    metrics_port: Port | None = None
    """Prometheus metrics on http://<sip.listen.host>:<this>/metrics; leave out for none."""
    node: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")] \
        | None = None
    """This engine's name among several sharing one store (default: the host name). Each
    attempt records the node that placed it; after a crash a node recovers its own calls."""

    drain_s: Annotated[float, Field(ge=0, le=86400)] = 300.0
    """run_dialer.py stop --graceful: how long calls in progress may go on before the engine
    stops anyway."""
    media_dir: str | None = None
    """Where warning-call recordings and callback messages are written (default: data_dir).
    With several nodes, a directory every node mounts (NFS…), so that any node's console plays
    what any node recorded."""
    store: Annotated[str, AfterValidator(_store_url)] | None = None
    """Where tasks, texts, callbacks, the outbox and the console's users are kept: leave out
    for SQLite files in data_dir (one machine), or postgresql://USER@HOST:PORT/DB for one
    database shared by several nodes (add ?sslmode=verify-full for TLS)."""
    store_password_env: EnvName | None = None
    """Name of the environment variable holding the database password (never the password)."""
    lease_s: Annotated[float, Field(ge=3, le=300)] = 10.0
    """With a shared store: a node silent this long is taken as dead, and its calls are
    placed again by the others (it renews its lease every lease_s / 5)."""

    @property
    def node_name(self) -> str:
        return self.node or socket.gethostname() or "engine"


def _store_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql://USER@HOST:PORT/DB URL (leave it out for SQLite)")
    userinfo = rest.split("/", 1)[0].rpartition("@")[0]
    if ":" in userinfo:
        raise ValueError("must not hold the password: name its environment variable in "
                         "engine.store_password_env")
    if "password=" in rest:
        raise ValueError("must not hold the password: name its environment variable in "
                         "engine.store_password_env")
    return value


class ListenConfig(Section):
    host: str = "127.0.0.1"
    """Address the SIP workers listen on."""
    port: Port = 5060
    """Where callers and the hotline trunk send INVITEs. Without sip.balancer that is the first
    worker (worker N listens on port + N - 1); with it, the Kamailio front (worker N on
    port + N)."""
    rtp_port: Port = 40000
    """First RTP port; each worker gets its own range of 100 ports from here."""


class TrunkConfig(Section):
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


def _address(value: str) -> str:
    try:
        ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    return value


class PeerNode(Section):
    """Another engine node behind its own front, as this node's front reaches it."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    """Its engine.node."""
    host: Annotated[str, AfterValidator(_address)]
    """Its sip.listen.host (an IP address this node reaches)."""
    port: Port = 5060
    """Its sip.listen.port: its workers listen on port + 1 and up."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Its engine.workers."""


class BalancerConfig(Section):
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
    nodes: tuple[PeerNode, ...] = ()
    """The other engine nodes sharing the store (engine.store): new calls go to their workers
    too, and a node that stops answering OPTIONS is skipped. List every other node on each
    node; each node's workers then take calls from the others' fronts."""
    host: Annotated[None, BeforeValidator(_removed)] = None
    """Removed (always None): the front listens on sip.listen.host."""
    port: Annotated[None, BeforeValidator(_removed)] = None
    """Removed (always None): the front listens on sip.listen.port."""


class SipConfig(Section):
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


class MqttConfig(Section):
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


class ConsoleConfig(Section):
    port: Port
    """The duty officers' console on http(s)://<host>:<port>/; leave the whole console
    section out for none."""
    host: str = "127.0.0.1"
    """Where it listens: loopback unless the officers' desks reach it on the center's network."""
    language: Literal["zh", "en"] = "zh"
    """The pages' language (each user may switch)."""
    session_idle_s: Annotated[int, Field(ge=60, le=86400)] = 1800
    """A session unused this long ends; the officer signs in again."""
    tls_cert: str | None = None
    """Certificate (PEM) to serve the console over HTTPS (relative to this file), with
    tls_key; then its cookie is Secure."""
    tls_key: str | None = None
