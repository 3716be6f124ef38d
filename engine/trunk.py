"""Pacing of outbound calls through the trunk: channels at once, calls per second,
and never two calls at once to one number.

Pure: the caller passes ``now``. :meth:`Pacer.wait_s` says how long to wait
before the next call setup may start (``None``: every channel is busy);
:meth:`Pacer.take` counts a setup that starts now, for a number;
:meth:`Pacer.release` gives the channel and the number back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["AlreadyCalling", "Pacer", "dial_uri", "trunk_target"]

_HOSTPORT = re.compile(r"^sips?:(?:[^@]*@)?(?P<hostport>[^;>]+)")


class AlreadyCalling(Exception):
    """A call to this number is already under way (never two at once)."""


@dataclass
class Pacer:
    max_channels: int
    max_cps: float
    next_setup_at: float = float("-inf")
    calling: dict[int, str] = field(default_factory=dict)
    """Normalized number key → the call that holds it."""

    @property
    def active(self) -> int:
        return len(self.calling)

    @property
    def free(self) -> int:
        return max(0, self.max_channels - self.active)

    def wait_s(self, now: float) -> float | None:
        if self.active >= self.max_channels:
            return None
        return max(0.0, self.next_setup_at - now)

    def busy(self, key: int) -> bool:
        return key in self.calling

    def take(self, key: int, call: str, now: float) -> None:
        """Count a call setup that starts now (only when ``wait_s(now) == 0``)."""
        if key in self.calling:
            raise AlreadyCalling(f"call {self.calling[key]} to this number is under way")
        if self.active >= self.max_channels:
            raise RuntimeError("no free trunk channel")  # the caller did not ask wait_s
        self.calling[key] = call
        self.next_setup_at = max(now, self.next_setup_at) + 1.0 / self.max_cps

    def release(self, key: int) -> None:
        self.calling.pop(key, None)


def trunk_target(uri: str) -> str:
    """``sip:user@10.0.0.1:5070;transport=udp`` → ``10.0.0.1:5070``."""
    match = _HOSTPORT.match(uri)
    if not match:
        raise ValueError(f"{uri!r} is not a SIP URI")
    return match.group("hostport")


def dial_uri(number: str, trunk_uri: str) -> str:
    return f"sip:{number}@{trunk_target(trunk_uri)}"
