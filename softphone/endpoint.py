"""Command line of a worker and the one pjsua2 ``Endpoint`` it owns.

Everything here runs on the main thread: pjsua2 is configured with
``threadCnt = 0`` and ``mainThreadOnly = True`` and polled by the worker loop.
"""

from __future__ import annotations

import argparse
import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass

import pjsua2 as pj

from softphone import clockthread
from softphone.legs import CallSink, PhoneAccount
from softphone.sipmsg import SourcePolicy

MAX_CALLS = 4
"""PJSUA_MAX_CALLS compiled into the wheel: ``maxCalls`` above it is clamped."""
CLOCK_RATE = 8000
CODEC_PRIORITY = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}


@dataclass(frozen=True)
class Trunk:
    user: str
    password: str
    registrar: str
    """``sip:host:port`` of the registrar."""


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    sip_host: str
    sip_port: int
    rtp_port: int
    sources: SourcePolicy
    trunk: Trunk | None
    log_level: int
    media_timeout_s: float = 0.0
    max_call_s: float = 0.0
    transaction_timeout_ms: int = 0
    front: str | None = None
    invite_rate: float = 0.0


def parse_args(argv: Sequence[str] | None = None) -> WorkerConfig:
    parser = argparse.ArgumentParser(prog="python -m softphone.worker")
    parser.add_argument("--name", required=True)
    parser.add_argument("--sip-host", default="127.0.0.1")
    parser.add_argument("--sip-port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--rtp-port", type=int, default=40000)
    parser.add_argument("--allow", action="append", default=[], metavar="CIDR",
                        help="sources allowed to send INVITEs (default: all)")
    parser.add_argument("--trunk-user")
    parser.add_argument("--trunk-password-env", metavar="VAR")
    parser.add_argument("--trunk-registrar", metavar="URI")
    parser.add_argument("--log-level", type=int, default=1, help="pjsip console log level")
    parser.add_argument("--media-timeout-s", type=float, default=0.0,
                        help="end a connected call after this long without RTP (0: never)")
    parser.add_argument("--max-call-s", type=float, default=0.0,
                        help="end a connected call after this long (0: never)")
    parser.add_argument("--front", metavar="ADDRESS",
                        help="the SIP front (Kamailio): INVITEs from it carry the caller's own "
                             "address in X-Source-Address")
    parser.add_argument("--transaction-timeout-ms", type=int, default=0,
                        help="pjsip's timers B/F/H/J (0: pjsip's 64*T1 = 32 s)")
    parser.add_argument("--invite-rate", type=float, default=0.0,
                        help="new INVITEs a second this worker takes; more get 503 before pjsua "
                             "opens media for them (0: no limit)")
    args = parser.parse_args(argv)
    try:
        sources = SourcePolicy.from_cidrs(args.allow)
    except ValueError as exc:
        parser.error(f"--allow: {exc}")
    trunk = None
    if args.trunk_registrar:
        if not args.trunk_user:
            parser.error("--trunk-registrar needs --trunk-user")
        password = os.environ.get(args.trunk_password_env or "", "")
        if args.trunk_password_env and not password:
            parser.error(f"environment variable {args.trunk_password_env} is empty or unset")
        trunk = Trunk(args.trunk_user, password, args.trunk_registrar)
    return WorkerConfig(args.name, args.sip_host, args.sip_port, args.rtp_port, sources,
                        trunk, args.log_level, args.media_timeout_s, args.max_call_s,
                        args.transaction_timeout_ms, args.front, args.invite_rate)


def start_endpoint(config: WorkerConfig, media_thread: bool = False) -> tuple[pj.Endpoint, int]:
    """Create, configure and start the Endpoint; returns it and the bound SIP port.

    RTP shares the SIP sockets' ioqueue, read by the worker's own ``libHandleEvents``:
    pjmedia's media thread, which polls every 10 ms whether a call is up or not, is not
    started, and the conference bridge has no clock until a call needs one
    (:class:`MediaClock`). ``media_thread``: both as before, for a benchmark's reference."""
    ep = pj.Endpoint()
    ep.libCreate()
    ep_config = pj.EpConfig()
    ep_config.uaConfig.threadCnt = 0
    ep_config.uaConfig.mainThreadOnly = True
    ep_config.uaConfig.maxCalls = MAX_CALLS
    ep_config.uaConfig.userAgent = f"antifraud-softphone/{config.name}"
    ep_config.logConfig.level = config.log_level
    ep_config.logConfig.consoleLevel = config.log_level
    ep_config.medConfig.clockRate = CLOCK_RATE
    ep_config.medConfig.sndClockRate = CLOCK_RATE
    ep_config.medConfig.noVad = True
    ep_config.medConfig.ecTailLen = 0
    ep_config.medConfig.hasIoqueue = media_thread
    ep_config.medConfig.threadCnt = 1 if media_thread else 0
    ep_config.medConfig.sndAutoCloseTime = 1 if media_thread else -1  # else: MediaClock
    ep.libInit(ep_config)
    if config.transaction_timeout_ms:
        set_transaction_timeout(config.transaction_timeout_ms)
    if media_thread:
        ep.audDevManager().setNullDev()
    else:
        ep.audDevManager().setNoDev()  # no clock until a call needs one (MediaClock)
    transport = pj.TransportConfig()
    transport.port = config.sip_port
    transport.boundAddress = config.sip_host
    transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    ep.libStart()
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, CODEC_PRIORITY.get(codec.codecId, 0))
    bound = ep.transportGetInfo(transport_id).localName
    return ep, int(bound.rsplit(":", 1)[1])


class MediaClock:
    """The conference bridge's clock (pjsua's null sound device: a thread that ticks every
    20 ms), running only while calls need it.

    pjsua's own idle close (``sndAutoCloseTime``) fires once a second after the last call
    and is not enough: a recorder let go after it never gets its WAV header (pjsua applies
    the port's removal on a clock tick), and with a close delay of 0 the timer can fire
    before the last disconnection is applied and leave the clock running for good. So the
    worker keeps it: on as soon as it has a call (before any media is connected: with no
    sound device, pjsua connects nothing to a clock), off :data:`LINGER_S` after the last
    call, its media and its recorders are gone."""

    LINGER_S = 0.2  # ten ticks: the last removals are applied before the clock stops

    def __init__(self, devices: pj.AudDevManager) -> None:
        self.devices = devices
        self.running = False
        self._idle_since: float | None = None

    def follow(self, needed: bool, now: float) -> None:
        if needed:
            self._idle_since = None
            if not self.running:
                self.devices.setNullDev()
                self.running = True
        elif self.running:
            if self._idle_since is None:
                self._idle_since = now
            elif now - self._idle_since >= self.LINGER_S:
                self.devices.setNoDev()  # returns once the clock thread has ended
                clockthread.let_go()
                self.running = False
                self._idle_since = None


def set_transaction_timeout(ms: int) -> None:
    """Set pjsip's transaction timeout (timers B, F, H, J; 64*T1 = 32 s by default).

    pjsua2 has no setting for it; pjsip's C API has ``pjsip_tsx_set_timers(t1, t2,
    t4, td)``, where ``td`` is that timeout (0 keeps a timer as it is). The
    wheel's extension module exports it, and ``dlopen`` of the already loaded
    module returns the same library, so this sets the timers pjsua uses.
    Without it, an answer whose ACK never comes holds its call slot 32 s (timer
    H) and the BYE that follows another 32 s (timer F): measured 75 s.
    """
    library = ctypes.CDLL(_pjsua2_library())
    set_timers = library.pjsip_tsx_set_timers
    set_timers.argtypes = [ctypes.c_uint] * 4
    set_timers.restype = None
    set_timers(0, 0, 0, ms)


def _pjsua2_library() -> str:
    import importlib

    module = importlib.import_module("pjsua2._pjsua2")
    return str(module.__file__)


def create_accounts(
    config: WorkerConfig, sip_port: int, sink: CallSink
) -> tuple[PhoneAccount, PhoneAccount | None]:
    """The local account (no registration) and, if configured, the trunk account."""
    local = PhoneAccount(sink)
    local.create(_account_config(config, f"sip:{config.name}@{config.sip_host}:{sip_port}"))
    if config.trunk is None:
        return local, None
    trunk_cfg = _account_config(config, _trunk_id_uri(config.trunk))
    trunk_cfg.regConfig.registrarUri = config.trunk.registrar
    trunk_cfg.regConfig.timeoutSec = 300
    trunk_cfg.regConfig.unregWaitMsec = 1000
    trunk_cfg.sipConfig.authCreds.append(
        pj.AuthCredInfo("digest", "*", config.trunk.user, 0, config.trunk.password)
    )
    trunk = PhoneAccount(sink)
    trunk.create(trunk_cfg)
    return local, trunk


def _trunk_id_uri(trunk: Trunk) -> str:
    host = trunk.registrar.split(":", 1)[1] if ":" in trunk.registrar else trunk.registrar
    return f"sip:{trunk.user}@{host.split(';', 1)[0]}"


def _account_config(config: WorkerConfig, id_uri: str) -> pj.AccountConfig:
    acc = pj.AccountConfig()
    acc.idUri = id_uri
    acc.mediaConfig.transportConfig.port = config.rtp_port
    acc.mediaConfig.transportConfig.boundAddress = config.sip_host
    return acc
