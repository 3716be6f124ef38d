"""The Kamailio front's settings, from ``dialer.yaml``: where it listens, which workers sit
behind it and on which ports, which numbers texts may go to, how to start it.

Ports: the front listens on ``sip.listen.host:sip.listen.port``, the address
callers use; behind it worker N listens on ``sip.listen.port + N`` on the same
host (:func:`worker_ports`). Without ``sip.balancer`` worker N listens on
``sip.listen.port + N - 1``.

:func:`setup_from_config` builds a :class:`BalancerSetup`; :mod:`front.cfg` and
:mod:`front.dispatcher` render it as ``kamailio.cfg`` and ``dispatcher.list``.
:func:`behind_front` moves the workers' own specs behind the front.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import Field, dataclass, replace
from ipaddress import ip_address
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from screening import ServiceNumber
from sip_config import Config, LoadedConfig
from softphone import MAX_CALLS_PER_WORKER

__all__ = [
    "ALGORITHMS",
    "UNSPECIFIED_HOSTS",
    "BalancerSetup",
    "WorkerAddress",
    "WorkerFields",
    "behind_front",
    "front_source",
    "host_for_uri",
    "message_numbers",
    "setup_from_config",
    "start_argv",
    "start_command",
    "worker_ports",
]

Algorithm = Literal["round-robin", "call-load"]

ALGORITHMS: dict[str, int] = {"round-robin": 4, "call-load": 10}
"""Config name of an algorithm → its number in ``ds_select_dst``."""

UNSPECIFIED_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
"""A front listening on every address is reached by the workers on loopback."""

_MAX_SOCKET_PATH = 100
"""A Unix socket path longer than this (the kernel's limit is 107 bytes) moves to /tmp."""


@dataclass(frozen=True)
class WorkerAddress:
    name: str
    """``w1`` … ``wN``: the engine's worker names, used as dispatcher ``duid``."""
    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"sip:{host_for_uri(self.host)}:{self.port}"


@dataclass(frozen=True)
class BalancerSetup:
    """Everything the two files depend on; build it with :func:`setup_from_config`."""

    host: str
    """Address the balancer listens on (UDP): sip.listen.host."""
    port: int
    """sip.listen.port: the address callers use."""
    algorithm: Algorithm
    workers: tuple[WorkerAddress, ...]
    allowed_sources: tuple[str, ...]
    """CIDRs that may send requests (the workers are always allowed)."""
    list_file: Path
    """Absolute path of ``dispatcher.list`` as written into ``kamailio.cfg``."""
    control_socket: Path
    """Unix socket of the ``ctl`` module, for ``kamcmd -s unix:PATH dispatcher.list``."""
    max_calls: int = MAX_CALLS_PER_WORKER
    """Calls one worker carries (``maxload`` of call-load balancing)."""
    new_calls_per_worker_s: int = 25
    """New INVITEs and texts one worker is given a second (round-robin only). pjsua opens two
    media sockets per INVITE and frees their places in its 64-place I/O queue 500 ms
    after the call; the worker sheds with 503 what would find no place
    (``softphone.places``), and this rate keeps such sheds rare. Past it the next worker
    takes the call; when every worker is over it or sheds it, the caller gets 503 with
    Retry-After."""
    fr_timer_ms: int = 2000
    """A worker that sends no reply at all to an INVITE in this time is taken as dead."""
    fr_inv_timer_ms: int = 120000
    """A ringing call (the worker sent 1xx) waits this long for the final reply."""
    ping_interval_s: int = 5
    """OPTIONS pings to every worker, this often."""
    ping_failures: int = 2
    """Unanswered pings in a row before a worker is marked down."""
    flood_requests: int = 16
    """Requests one source may send in ``flood_window_s`` before it is banned (pike)."""
    flood_window_s: int = 2
    ban_s: int = 300
    """How long a flooding source is banned (htable ``ipban`` autoexpire)."""
    flood_exempt: tuple[str, ...] = ()
    """CIDRs never counted or banned (besides the workers)."""
    scanner_agents: tuple[str, ...] = ()
    """User-Agent parts whose requests are dropped without a reply."""
    message_numbers: tuple[str, ...] = ()
    """Request-URI user parts a text (SIP MESSAGE) may go to: the hotline and the SMS
    line in every dialed form. A text to any other gets 404; none: every text gets 404."""
    message_max_chars: int = 1000
    """A text over this many characters (of its UTF-8 body, not bytes) gets 413."""
    source: str = ""
    """Where the setup came from (a config file), for the header comment."""

    @property
    def algorithm_number(self) -> int:
        return ALGORITHMS[self.algorithm]


def worker_ports(config: Config) -> tuple[int, ...]:
    """SIP port of each worker: behind the front (``sip.balancer``) worker N takes
    ``sip.listen.port + N``, because the front holds ``sip.listen.port``; without it, worker N
    takes ``sip.listen.port + N - 1``."""
    first = config.sip.listen.port + (1 if config.sip.balancer is not None else 0)
    return tuple(first + i for i in range(config.engine.workers))


def front_source(config: Config) -> str:
    """The address the front's requests reach the workers from (a host, no port)."""
    host = config.sip.listen.host
    return UNSPECIFIED_HOSTS.get(host, host)


class WorkerFields(Protocol):
    """A worker's spec as :func:`behind_front` sees it: a frozen dataclass with these fields
    (the engine's ``WorkerSpec`` is one); ``sip_port``, ``allow`` and ``front`` are replaced."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def sip_port(self) -> int: ...

    @property
    def allow(self) -> Sequence[str]: ...

    @property
    def front(self) -> str | None: ...

    @property
    def invite_rate(self) -> float: ...


_Spec = TypeVar("_Spec", bound=WorkerFields)


def behind_front(specs: Sequence[_Spec], loaded: LoadedConfig) -> list[_Spec]:
    """The workers' specs behind the front: their own SIP ports, and only the front's address
    allowed to send them INVITEs and texts (every call and text arrives through it, after its
    flood defence; a source of sip.allowed_sources that aims at a worker's port directly gets
    403), and the fronts of the other nodes (``sip.balancer.nodes``), which hand them calls
    too. The front itself checks sip.allowed_sources."""
    ports = worker_ports(loaded.config)
    source = front_source(loaded.config)
    fronts = [source] + ([peer.host for peer in loaded.config.sip.balancer.nodes]
                         if loaded.config.sip.balancer is not None else [])
    allow = tuple(dict.fromkeys(f"{h}/{128 if ip_address(h).version == 6 else 32}"
                                for h in fronts))
    front_rate = loaded.config.sip.balancer.new_calls_per_worker_s \
        if loaded.config.sip.balancer is not None else 0
    return [replace(spec, sip_port=port, allow=allow, front=source,
                    invite_rate=max(spec.invite_rate, front_rate) if spec.invite_rate else 0)
            for spec, port in zip(specs, ports, strict=True)]


def setup_from_config(config: Config, out_dir: Path, *, source: str = "",
                      ping_interval_s: int = 5, fr_timer_ms: int = 2000) -> BalancerSetup:
    """The balancer of ``config`` whose files live in ``out_dir``.

    Raises ``ValueError`` when ``sip.balancer`` is not configured, or when the workers'
    ports would run past 65535.
    """
    balancer = config.sip.balancer
    if balancer is None:
        raise ValueError("sip.balancer is not configured")
    listen = config.sip.listen
    ports = worker_ports(config)
    if ports[-1] > 65535:
        raise ValueError(f"the workers behind the front need SIP ports {ports[0]}-{ports[-1]} "
                         f"(sip.listen.port + 1 and up), past 65535: lower sip.listen.port")
    worker_host = UNSPECIFIED_HOSTS.get(listen.host, listen.host)
    workers = tuple(WorkerAddress(f"w{i + 1}", worker_host, port) for i, port in enumerate(ports))
    workers += tuple(WorkerAddress(f"{peer.name}-w{i}", peer.host, peer.port + i)
                     for peer in balancer.nodes for i in range(1, peer.workers + 1))
    out_dir = out_dir.absolute()
    return BalancerSetup(
        host=listen.host, port=listen.port, algorithm=balancer.algorithm,
        workers=workers, allowed_sources=config.sip.allowed_sources,
        list_file=out_dir / "dispatcher.list", control_socket=_control_socket(out_dir),
        new_calls_per_worker_s=balancer.new_calls_per_worker_s,
        ping_interval_s=ping_interval_s, fr_timer_ms=fr_timer_ms,
        flood_requests=balancer.flood_requests, flood_window_s=balancer.flood_window_s,
        ban_s=balancer.ban_s, flood_exempt=balancer.flood_exempt,
        scanner_agents=balancer.scanner_agents, source=source,
        message_numbers=message_numbers(config),
        message_max_chars=config.sms.max_chars if config.sms is not None else 1000,
    )


def message_numbers(config: Config) -> tuple[str, ...]:
    """Every form of ``hotline.number`` and, when configured, ``sms.number`` (both behind
    ``hotline.area_code``) that a text's Request-URI may carry."""
    area = config.hotline.area_code or ""
    lines = [config.hotline.number, config.sms.number if config.sms is not None else None]
    forms = (form for number in lines if number
             for form in ServiceNumber(number, area).dialed_forms())
    return tuple(dict.fromkeys(forms))


def start_argv(cfg_path: Path, run_dir: Path | None = None, binary: str = "kamailio") -> list[str]:
    """Kamailio in the foreground (``-DD``), logging to stderr (``-E``); ``run_dir`` is a
    private runtime directory (``-Y``) instead of /run/kamailio."""
    argv = [binary, "-DD", "-E", "-f", str(cfg_path)]
    return [*argv, "-Y", str(run_dir)] if run_dir is not None else argv


def start_command(cfg_path: Path) -> str:
    """The command that runs Kamailio in the foreground, logging to stderr."""
    return " ".join(start_argv(cfg_path))


def host_for_uri(host: str) -> str:
    """IPv6 literals go in brackets in SIP URIs and listen lines."""
    try:
        if ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


def _control_socket(out_dir: Path) -> Path:
    """``kamailio_ctl`` beside the files, or in /tmp when that path is too long for a socket."""
    path = out_dir / "kamailio_ctl"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"antifraud-kamailio-{digest}.ctl"
