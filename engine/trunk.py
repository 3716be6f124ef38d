"""Pacing of outbound calls through the trunk: channels at once and calls per second.

Pure: the caller passes ``now``; :meth:`Pacer.wait_s` says how long to wait
before the next call setup may start (``None``: every channel is busy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Pacer", "dial_uri", "trunk_target"]

_HOSTPORT = re.compile(r"^sips?:(?:[^@]*@)?(?P<hostport>[^;>]+)")


@dataclass
class Pacer:
    max_channels: int
    max_cps: float
    active: int = 0
    next_setup_at: float = float("-inf")

    def wait_s(self, now: float) -> float | None:
        if self.active >= self.max_channels:
            return None
        return max(0.0, self.next_setup_at - now)

    def take(self, now: float) -> None:
        """Count a call setup that starts now (call only when ``wait_s(now) == 0``)."""
        self.active += 1
        self.next_setup_at = max(now, self.next_setup_at) + 1.0 / self.max_cps

    def release(self) -> None:
        self.active = max(0, self.active - 1)


def trunk_target(uri: str) -> str:
    """``sip:user@10.0.0.1:5070;transport=udp`` → ``10.0.0.1:5070``."""
    match = _HOSTPORT.match(uri)
    if not match:
        raise ValueError(f"{uri!r} is not a SIP URI")
    return match.group("hostport")


def dial_uri(number: str, trunk_uri: str) -> str:
    return f"sip:{number}@{trunk_target(trunk_uri)}"
