"""A blocked fraud call was for a person: that person is at risk, and gets a warning. Pure.

``screening.warn_callee_on_block``: the screening blocked a call from a fraud number; its
callee is the scammer's target. :class:`CalleeWarnings` turns the callee into a high-risk
warning request (none for a callee that is no person's phone: a short number, garbage), and
takes further blocked calls to the same person within :data:`QUIET_S` for the same warning.
Time is a parameter.
"""

from __future__ import annotations

from screening import Decision

from .requests import RequestError, WarningRequest, validate

__all__ = ["QUIET_S", "CalleeWarnings"]

QUIET_S = 600.0


class CalleeWarnings:
    def __init__(self, country: str, quiet_s: float = QUIET_S) -> None:
        self.country = country
        self.quiet_s = quiet_s
        self._last: dict[str, float] = {}  # the callee's number → when a request was last made

    def request(self, callee: str, decision: Decision, now: float) -> WarningRequest | None:
        """The request for ``callee`` after a call to them was blocked by ``decision``, or
        None (no person's number, or warned about within the quiet time)."""
        try:
            request = validate(callee, None, "high", None,
                               f"a call from {decision.number.masked} to this person was blocked "
                               f"({decision.rule}: {decision.reason})", known_types=["general"],
                               source="screening", country=self.country)
        except RequestError:
            return None
        last = self._last.get(request.number)
        if last is not None and now - last < self.quiet_s:
            return None
        self._last[request.number] = now
        for number, at in list(self._last.items()):
            if now - at >= self.quiet_s:
                del self._last[number]
        return request
