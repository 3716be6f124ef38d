"""Refusing an INVITE before pjsua opens its media: a pjsip module ahead of pjsua's.

pjsua opens two media sockets for every new INVITE (``pjsua_call_on_incoming``)
before any pjsua2 callback runs, and frees them ~500 ms after the call; its
select I/O queue holds 64. A flood of INVITEs straight at a worker (no Kamailio
front, or a source aiming past it) used up the queue and aborted the worker
with its live calls. pjsua2 offers no hook early enough, but pjsip's own API
does: a module registered with a priority between the transaction layer (16)
and the user-agent layer (32) sees each request that no transaction has
claimed, before pjsua does. :class:`InviteGuard` is such a module, through
``ctypes`` (the wheel exports ``pjsip_endpt_register_module`` and
``pjsip_endpt_respond_stateless``): a new INVITE (no To tag) from a source
outside ``--allow`` gets 403, one that would replace a dialog (``Replaces``:
pjsua answers it on its own, a call the worker would never hear of) 420, one
over ``--invite-rate`` new INVITEs a second 503, and so does one whose media
would find no place in pjsua's I/O queue (:class:`~softphone.places.MediaPlaces`:
the rate cannot see that a burst within half a second fills it, nor that one
INVITE may offer sixteen audio lines); a re-offer in a call's dialog (INVITE,
UPDATE) with more audio lines than the call holds gets 488. All statelessly and
without a socket opened; everything else goes on to pjsua untouched.

It reads the request from ``pjsip_rx_data`` (the source in ``pkt_info``, the
message where ``msg_info.msg_buf`` points: pjsip has skipped any CR/LF
before the request line), laid out as in pjsip 2.15's ``sip_transport.h``;
the layout is checked on every request (the message lies inside the packet
buffer, and starts with the method ``pjsip_rx_data_get_info`` names), and on a
mismatch the guard turns itself off and says so once, so a wheel built
differently loses the guard, never a call.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import time
from collections.abc import Callable

from softphone.places import MediaPlaces
from softphone.sipmsg import SourcePolicy, audio_lines, caller_of, header

__all__ = ["InviteGuard", "RateBucket"]

log = logging.getLogger("softphone.guard")

PRIORITY = 31  # after the transaction layer (16: retransmissions), before the UA layer (32)
PJSIP_MAX_PKT_LEN = 4000  # pjsip 2.15's default, which the wheel keeps
PJ_INET6_ADDRSTRLEN = 46


class _Str(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_char_p), ("slen", ctypes.c_ssize_t)]


class _TimeVal(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("msec", ctypes.c_long)]


class _TpInfo(ctypes.Structure):
    _fields_ = [("pool", ctypes.c_void_p), ("transport", ctypes.c_void_p),
                ("tp_data", ctypes.c_void_p),
                # pjsip_rx_data_op_key: pj_ioqueue_op_key_t (32 + 2 pointers), then rdata
                ("op_key", ctypes.c_void_p * 35)]


class _PktInfo(ctypes.Structure):
    _fields_ = [("timestamp", _TimeVal), ("packet", ctypes.c_char * PJSIP_MAX_PKT_LEN),
                ("zero", ctypes.c_uint32), ("len", ctypes.c_ssize_t),
                ("src_addr", ctypes.c_uint32 * 7),  # pj_sockaddr: a union, 28 bytes
                ("src_addr_len", ctypes.c_int),
                ("src_name", ctypes.c_char * PJ_INET6_ADDRSTRLEN), ("src_port", ctypes.c_int)]


class _MsgInfo(ctypes.Structure):
    _fields_ = [("msg_buf", ctypes.c_void_p), ("len", ctypes.c_int)]  # (the first two fields)


class _RxData(ctypes.Structure):
    _fields_ = [("tp_info", _TpInfo), ("pkt_info", _PktInfo), ("msg_info", _MsgInfo)]


_PACKET_OFFSET = _RxData.pkt_info.offset + _PktInfo.packet.offset

_OnRx = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_RxData))
_Status = ctypes.CFUNCTYPE(ctypes.c_int)
_Load = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _Module(ctypes.Structure):
    _fields_ = [("prev", ctypes.c_void_p), ("next", ctypes.c_void_p), ("name", _Str),
                ("id", ctypes.c_int), ("priority", ctypes.c_int),
                ("load", _Load), ("start", _Status), ("stop", _Status), ("unload", _Status),
                ("on_rx_request", _OnRx), ("on_rx_response", _OnRx),
                ("on_tx_request", ctypes.c_void_p), ("on_tx_response", ctypes.c_void_p),
                ("on_tsx_state", ctypes.c_void_p)]


class RateBucket:
    """At most ``rate`` a second, ``rate`` at once (a token bucket); 0: no limit."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.at = clock()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _library() -> ctypes.CDLL:
    return ctypes.CDLL(str(importlib.import_module("pjsua2._pjsua2").__file__))


class InviteGuard:
    """Registered once per worker; ``refused(source, caller, status)`` hears each refusal."""

    def __init__(self, sources: SourcePolicy, rate: float, places: MediaPlaces,
                 refused: Callable[[str, str, int], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sources = sources
        self.bucket = RateBucket(rate, clock)
        self.places = places
        self.clock = clock
        self.refused = refused
        self.enabled = True
        self.counts = {"403": 0, "503": 0}
        self._lib = _library()
        self._lib.pjsua_get_pjsip_endpt.restype = ctypes.c_void_p
        self._lib.pjsip_endpt_register_module.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Module)]
        self._lib.pjsip_endpt_respond_stateless.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(_RxData), ctypes.c_int, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_void_p]
        self._lib.pjsua_call_get_count.restype = ctypes.c_uint
        self._lib.pjsip_rx_data_get_info.restype = ctypes.c_char_p
        self._lib.pjsip_rx_data_get_info.argtypes = [ctypes.POINTER(_RxData)]
        self._name = b"mod-antifraud-guard"
        self._on_rx = _OnRx(self._on_rx_request)  # kept: pjsip calls it for the worker's life
        self._module = _Module(name=_Str(self._name, len(self._name)), id=-1, priority=PRIORITY,
                               on_rx_request=self._on_rx)

    def register(self) -> None:
        """After ``libInit`` (the endpoint exists), on the thread that owns pjsua."""
        endpt = self._lib.pjsua_get_pjsip_endpt()
        status = self._lib.pjsip_endpt_register_module(endpt, ctypes.byref(self._module))
        if status != 0:
            log.error("the INVITE guard could not be registered (pjsip status %d); INVITEs reach "
                      "pjsua unguarded", status)
            self.enabled = False
        self._endpt = endpt

    def _on_rx_request(self, rdata: ctypes._Pointer[_RxData]) -> int:
        try:
            return self._decide(rdata)
        except Exception:  # never let a fault here lose a request: pjsua takes it
            log.exception("INVITE guard")
            return 0

    def _decide(self, rdata: ctypes._Pointer[_RxData]) -> int:
        if not self.enabled:
            return 0
        info = self._lib.pjsip_rx_data_get_info(rdata) or b""
        pkt = rdata.contents.pkt_info
        start = ctypes.addressof(rdata.contents) + _PACKET_OFFSET
        msg = rdata.contents.msg_info
        # msg_buf points into packet (pjsip skips the CR/LF keep-alives before a request line)
        if not (msg.msg_buf and start <= msg.msg_buf < start + PJSIP_MAX_PKT_LEN
                and 0 < msg.len <= start + PJSIP_MAX_PKT_LEN - msg.msg_buf
                and 0 < pkt.len <= PJSIP_MAX_PKT_LEN):
            return self._layout_changed(f"message at {msg.msg_buf}, {msg.len} bytes")
        packet = ctypes.string_at(msg.msg_buf, msg.len)
        method = packet.split(b" ", 1)[0]
        if not info.startswith(b"Request msg " + method + b"/"):
            return self._layout_changed(f"{info[:40]!r} against {packet[:16]!r}")
        if method not in (b"INVITE", b"UPDATE"):
            return 0
        message = packet.decode("utf-8", "replace")
        source = f"{pkt.src_name.decode()}:{pkt.src_port}"
        to = header(message, "To") or ""
        if method == b"UPDATE" or ";tag=" in to.replace(" ", "").lower():
            # in a call's dialog: a re-offer with more audio lines than the call holds would
            # open more sockets than were counted for it
            if not self.places.reoffer_fits(header(message, "Call-ID") or "",
                                            audio_lines(message)):
                return self._refuse(rdata, source, message, 488)
            return 0
        if not self.sources.allows(source):
            return self._refuse(rdata, source, message, 403)
        if header(message, "Replaces") is not None:
            # pjsua would answer it itself, a call the worker never hears of (RFC 3891)
            return self._refuse(rdata, source, message, 420)
        if not self.bucket.take():
            return self._refuse(rdata, source, message, 503)
        # the offer is read only now: a flood refused above costs no parse of its body
        if not self.places.admit(header(message, "Call-ID") or "", self.clock(),
                                 self._lib.pjsua_call_get_count(),
                                 max(1, audio_lines(message))):
            return self._refuse(rdata, source, message, 503)
        return 0

    def _refuse(self, rdata: ctypes._Pointer[_RxData], source: str, message: str,
                status: int) -> int:
        self._lib.pjsip_endpt_respond_stateless(self._endpt, rdata, status, None, None, None)
        self.counts[str(status)] = self.counts.get(str(status), 0) + 1
        try:
            self.refused(source, caller_of(message)[0], status)
        except Exception:
            log.exception("INVITE guard: reporting a refusal")
        return 1  # consumed: pjsua never sees it, no media socket is opened

    def _layout_changed(self, what: str) -> int:
        log.error("the INVITE guard cannot read pjsip's received packets (%s); it is off, and "
                  "INVITEs reach pjsua unguarded", what)
        self.enabled = False
        return 0
