"""DTMF digit collection for one call: pure, time is a parameter."""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.protocol import DigitsReason


@dataclass(frozen=True)
class CollectResult:
    digits: str
    reason: DigitsReason


@dataclass
class DigitCollector:
    """Collects up to ``max_digits`` digits; the timeout restarts after each digit.

    A digit equal to ``terminator`` ends collection and is not part of the result.
    """

    max_digits: int
    timeout_s: float
    terminator: str
    started_at: float
    digits: str = field(default="")

    def __post_init__(self) -> None:
        self._deadline = self.started_at + self.timeout_s

    def feed(self, digit: str, now: float) -> CollectResult | None:
        if self.terminator and digit == self.terminator:
            return CollectResult(self.digits, "terminator")
        self.digits += digit
        self._deadline = now + self.timeout_s
        if len(self.digits) >= self.max_digits:
            return CollectResult(self.digits, "max")
        return None

    def expire(self, now: float) -> CollectResult | None:
        if now >= self._deadline:
            return CollectResult(self.digits, "timeout")
        return None
