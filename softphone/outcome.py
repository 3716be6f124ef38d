"""What the network said of an outbound call that was never answered: one table, pure.

The final SIP status decides, unless the response carries ``Reason: Q.850;cause=N``
(RFC 3326): carriers often end a call with a 480 or 487 that names no reason and put the
real one in the cause (17 user busy, 20 subscriber absent…), so a cause in
:data:`BY_CAUSE` decides over the status. Both the worker (which event it sends) and the
dialer (which outcome an attempt gets) read :func:`ending_of`; nothing else maps statuses.

Chinese carriers more often *say* why, before any final response: a spoken announcement
or a national tone as early media. What each means is here too (:data:`BY_ANNOUNCEMENT`,
:data:`BY_TONE`), beside the statuses and causes.
"""

from __future__ import annotations

import enum
import re

from audio.announce import CLASSES, RINGING

__all__ = ["ANNOUNCEMENT_CLASSES", "BY_ANNOUNCEMENT", "BY_CAUSE", "BY_STATUS", "BY_TONE", "Ending",
           "ending_of", "q850_cause"]


class Ending(enum.Enum):
    BUSY = "busy"  # on another call (with the scammer, most likely)
    NO_ANSWER = "no_answer"  # rang, or the network gave up, without saying why
    REJECTED = "rejected"  # the person (or their phone) declined the call
    UNREACHABLE = "unreachable"  # switched off, no signal, out of the service area
    INVALID = "invalid"  # the number does not exist
    SUSPENDED = "suspended"  # the line is suspended (停机, unpaid): calls cannot reach it
    TRUNK = "trunk"  # our trunk or the network failed: says nothing of the person


BY_STATUS: dict[int, Ending] = {
    486: Ending.BUSY, 600: Ending.BUSY,
    480: Ending.NO_ANSWER, 487: Ending.NO_ANSWER,
    603: Ending.REJECTED,  # Decline: the callee's own choice, not the network's
    404: Ending.INVALID, 410: Ending.INVALID, 484: Ending.INVALID, 604: Ending.INVALID,
    400: Ending.TRUNK, 401: Ending.TRUNK, 403: Ending.TRUNK, 407: Ending.TRUNK,
    415: Ending.TRUNK, 416: Ending.TRUNK, 420: Ending.TRUNK, 421: Ending.TRUNK,
    488: Ending.TRUNK, 491: Ending.TRUNK, 493: Ending.TRUNK, 494: Ending.TRUNK,
}
"""Final statuses with a fixed meaning; 408 depends on ringing (:func:`ending_of`), other
5xx are the trunk's, any other 4xx/6xx is a no-answer."""

BY_CAUSE: dict[int, Ending] = {
    1: Ending.INVALID,  # unallocated (unassigned) number
    17: Ending.BUSY,  # user busy
    18: Ending.NO_ANSWER,  # no user responding
    19: Ending.NO_ANSWER,  # no answer from user (user alerted)
    20: Ending.UNREACHABLE,  # subscriber absent (switched off, no coverage)
    21: Ending.REJECTED,  # call rejected
    22: Ending.INVALID,  # number changed
    27: Ending.UNREACHABLE,  # destination out of order
    28: Ending.INVALID,  # invalid number format
    34: Ending.TRUNK, 38: Ending.TRUNK, 41: Ending.TRUNK, 42: Ending.TRUNK,  # congestion
}
"""Q.850 causes that name the reason; others (16 normal clearing, 31 unspecified…) leave
it to the status."""


BY_ANNOUNCEMENT: dict[str, Ending] = {
    "busy": Ending.BUSY,  # 您拨打的电话正在通话中
    "off": Ending.UNREACHABLE,  # 您拨打的电话已关机
    "unreachable": Ending.UNREACHABLE,  # 暂时无法接通 / 不在服务区
    "invalid": Ending.INVALID,  # 您拨打的号码是空号
    "suspended": Ending.SUSPENDED,  # 您拨打的电话已停机
}
"""What each class of a carrier's spoken announcements means (``announcements add --as``)."""

ANNOUNCEMENT_CLASSES = (*CLASSES, RINGING)
"""The classes ``announcements add --as`` takes: the five that end a call, and ``ringing``,
a notice of the carrier's that means the call goes on (呼叫转移, 请不要挂机): it never ends
a call and keeps the others from matching the words it shares with them."""

BY_TONE: dict[str, Ending] = {
    "busy": Ending.BUSY,  # 忙音, 450 Hz 0.35 / 0.35 s
    "congestion": Ending.TRUNK,  # 拥塞音, 0.7 / 0.7 s: the network, not the person
    "vacant": Ending.INVALID,  # 空号音, 3 × 0.1 / 0.1 s then 0.4 / 0.4 s
    "sit": Ending.UNREACHABLE,  # ITU special information tone: cannot be completed as dialled
}
"""National and ITU tones that end a call (the ringback tone means it rings: no ending)."""


def ending_of(status: int, cause: int | None = None, rang: bool = False) -> Ending:
    """An outbound INVITE's final non-2xx ``status`` (and Q.850 ``cause``, when given).

    ``rang``: a 180/183 came first. A 408 after ringing is a ring that timed out (our own
    timer or the network's); a 408 with nothing before it is no response at all, which is
    the trunk's fault, not the person's."""
    if cause is not None and cause in BY_CAUSE:
        return BY_CAUSE[cause]
    if status in BY_STATUS:
        return BY_STATUS[status]
    if status == 408:
        return Ending.NO_ANSWER if rang else Ending.TRUNK
    if status >= 500 and status < 600:
        return Ending.TRUNK
    return Ending.NO_ANSWER


_CAUSE = re.compile(r"(?i)^\s*Q\.850\s*;(?:.*;)?\s*cause\s*=\s*(\d{1,3})\b")


def q850_cause(reasons: list[str]) -> int | None:
    """The cause of the first ``Q.850`` value among ``Reason`` header values (one header may
    hold several values, comma-separated), or ``None``."""
    for value in reasons:
        for part in _split(value):
            match = _CAUSE.match(part)
            if match:
                return int(match.group(1))
    return None


def _split(value: str) -> list[str]:
    """Comma-separated values of a header, commas inside quoted text kept."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
