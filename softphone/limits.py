"""How long a connected call may go on in a worker, and which calls are past it.

A peer that vanished (a crashed phone, a scanner) must not hold one of the 4
channels: a call that receives no RTP for ``media_timeout_s``, or has lasted
``max_call_s``, is ended by the worker on its own (``hung_up`` with reason
``media_timeout`` or ``max_call``). :func:`overdue` decides; the
:class:`~softphone.exchange.Exchange` hangs up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pjsua2 as pj

from softphone.legs import CallLeg

__all__ = ["MEDIA_CHECK_S", "CallLimits", "overdue", "rx_packets"]

MEDIA_CHECK_S = 1.0  # how often RTP counters are read


@dataclass(frozen=True)
class CallLimits:
    """How long a call may go on; 0 turns a limit off."""

    media_timeout_s: float = 0.0
    """A connected call that receives no RTP for this long is ended (``media_timeout``)."""
    max_call_s: float = 0.0
    """No connected call lasts longer (``max_call``)."""


def overdue(legs: Iterable[CallLeg], limits: CallLimits,
            now: float) -> Iterator[tuple[CallLeg, str]]:
    """Each connected call past a limit, with the reason to end it. Lazy: a call the caller
    ends before the next one is looked at is seen as it is then. Reading the RTP counters
    updates ``rx_packets`` and ``rx_at`` of the calls."""
    for leg in list(legs):
        if leg.ended or leg.silent or not leg.connected or leg.connected_at is None:
            continue
        if limits.max_call_s and now - leg.connected_at >= limits.max_call_s:
            yield leg, "max_call"
            continue
        if not limits.media_timeout_s:
            continue
        received = rx_packets(leg)
        if received > leg.rx_packets:
            leg.rx_packets, leg.rx_at = received, now
        elif leg.rx_at is not None and now - leg.rx_at >= limits.media_timeout_s:
            yield leg, "media_timeout"


def rx_packets(leg: CallLeg) -> int:
    """RTP packets the call has received so far (its stream's RTCP statistics)."""
    try:
        return int(leg.phone.getStreamStat(0).rtcp.rxStat.pkt)
    except pj.Error:
        return leg.rx_packets  # no stream (yet): nothing counted
