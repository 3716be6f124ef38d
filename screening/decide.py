"""Screening decisions: caller number and time in, one :class:`Decision` out.

No I/O here. The lists are anything that answers ``key in list`` (the on-disk
:class:`~screening.store.NumberStore`, or a plain set in tests); time is a
parameter, so the rate rule is tested without sleeping.

How a decision is made, in order:

1. The number is normalized. A withheld caller gets ``rules.anonymous``; a
   string that is no number at all gets ``rules.invalid``.
2. An ``allow`` list that holds the number wins over everything else.
3. Every other rule that matches is collected: the exact-number lists, a
   foreign number posing as an official short number (``+852 95588``, ``+110``),
   the longest matching prefix rule, foreign origin, and the per-caller rate
   rule. The most severe action wins (reject > warn > tag); between equals, the
   first in that order.
4. Nothing matched: allow.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

from .numbers import Number, NumberKind, normalize

__all__ = [
    "Action",
    "Decision",
    "NumberList",
    "PrefixRule",
    "RateRule",
    "RateTracker",
    "Rules",
    "Screener",
]


class Action(enum.Enum):
    ALLOW = "allow"  # let the call through (allowlisted, or nothing matched)
    TAG = "tag"  # let it through, marked
    WARN = "warn"  # answer, play the warning, then continue
    REJECT = "reject"  # final response, no media

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.ALLOW: 0, Action.TAG: 1, Action.WARN: 2, Action.REJECT: 3}
DEFAULT_REJECT_STATUS = 603


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule: str  # what matched: "list:national", "prefix:+86170", "spoof", "rate", "default"
    reason: str
    number: Number
    status: int | None = None  # the SIP final response of a reject

    @property
    def blocked(self) -> bool:
        return self.action is Action.REJECT

    def as_dict(self) -> dict[str, Any]:
        """For JSON output and events: the number is masked."""
        return {
            "action": self.action.value,
            "status": self.status,
            "rule": self.rule,
            "reason": self.reason,
            "number": self.number.masked,
            "kind": self.number.kind.value,
        }


@dataclass(frozen=True)
class NumberList:
    name: str
    action: Action
    numbers: Container[int]
    status: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class PrefixRule:
    """``prefix`` is written as the normalized form it matches: "+86170" for an
    E.164 number, plain digits ("1065") for a short or local number."""

    prefix: str
    action: Action
    status: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class RateRule:
    max_calls: int
    window_s: float
    block_s: float
    action: Action = Action.REJECT
    status: int | None = 486


@dataclass(frozen=True)
class Verdict:
    """An action with its status and reason, for the rules that are not lists."""

    action: Action
    status: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Rules:
    home_country_code: int = 86
    region: str = "CN"
    lists: Sequence[NumberList] = ()
    prefixes: Sequence[PrefixRule] = ()
    official_numbers: frozenset[str] = frozenset()
    spoof: Verdict = Verdict(Action.REJECT, DEFAULT_REJECT_STATUS, "foreign number posing as an official one")
    overseas: Verdict | None = None
    anonymous: Verdict = Verdict(Action.TAG, None, "caller id withheld")
    invalid: Verdict = Verdict(Action.TAG, None, "caller id is not a phone number")
    rate: RateRule | None = None


@dataclass
class RateTracker:
    """Per-caller call times, bounded: the oldest callers are forgotten first."""

    capacity: int = 100_000
    _calls: OrderedDict[int, deque[float]] = field(default_factory=OrderedDict)
    _blocked_until: dict[int, float] = field(default_factory=dict)

    def observe(self, key: int, now: float, rule: RateRule) -> bool:
        """Count a call; True when this caller is over the limit (or still blocked)."""
        until = self._blocked_until.get(key)
        if until is not None:
            if now < until:
                return True
            del self._blocked_until[key]
        calls = self._calls.pop(key, None) or deque()
        calls.append(now)
        while calls and calls[0] <= now - rule.window_s:
            calls.popleft()
        self._calls[key] = calls
        if len(self._calls) > self.capacity:
            self._calls.popitem(last=False)
        if len(calls) > rule.max_calls:
            self._blocked_until[key] = now + rule.block_s
            calls.clear()
            return True
        return False


class Screener:
    def __init__(self, rules: Rules, tracker: RateTracker | None = None) -> None:
        self.rules = rules
        self.tracker = tracker or RateTracker()
        self._prefixes = {p.prefix: p for p in rules.prefixes}
        self._prefix_lengths = sorted({len(p) for p in self._prefixes}, reverse=True)

    def decide(self, caller: str, now: float) -> Decision:
        rules = self.rules
        number = normalize(caller, rules.region)
        if number.kind is NumberKind.ANONYMOUS:
            return _verdict(rules.anonymous, "anonymous", number)
        spoof = self._spoof(number)
        if number.kind is NumberKind.INVALID:
            return spoof or _verdict(rules.invalid, "invalid", number)
        key = number.key
        found: list[Decision] = []
        for lst in rules.lists:
            if key in lst.numbers:
                decision = Decision(lst.action, f"list:{lst.name}", lst.reason or f"on list {lst.name}",
                                    number, _status(lst.action, lst.status))
                if lst.action is Action.ALLOW:
                    return decision
                found.append(decision)
        if spoof:
            found.append(spoof)
        prefix = self._longest_prefix(number)
        if prefix:
            found.append(Decision(prefix.action, f"prefix:{prefix.prefix}",
                                  prefix.reason or f"number starts with {prefix.prefix}",
                                  number, _status(prefix.action, prefix.status)))
        if rules.overseas and not number.is_domestic(rules.home_country_code):
            found.append(_verdict(rules.overseas, "overseas", number))
        if rules.rate and key is not None and self.tracker.observe(key, now, rules.rate):
            rate = rules.rate
            found.append(Decision(rate.action, "rate", f"more than {rate.max_calls} calls in "
                                  f"{rate.window_s:g} s", number, _status(rate.action, rate.status)))
        if not found:
            return Decision(Action.ALLOW, "default", "no rule matched", number)
        return max(found, key=lambda d: d.action.severity)  # max keeps the first of equals

    def _longest_prefix(self, number: Number) -> PrefixRule | None:
        text = number.e164 or number.digits
        for length in self._prefix_lengths:
            rule = self._prefixes.get(text[:length])
            if rule is not None:
                return rule
        return None

    def _spoof(self, number: Number) -> Decision | None:
        official = self.rules.official_numbers
        if not official:
            return None
        foreign = (number.kind is NumberKind.E164 and not number.is_domestic(self.rules.home_country_code))
        written_foreign = number.kind is NumberKind.INVALID and number.raw.strip().startswith(("+", "00"))
        if not (foreign or written_foreign):
            return None
        national = number.national if foreign else number.digits
        candidates = {national, number.digits}
        if not candidates & official:
            return None
        return _verdict(self.rules.spoof, "spoof", number)


def _status(action: Action, status: int | None) -> int | None:
    if action is not Action.REJECT:
        return None
    return status or DEFAULT_REJECT_STATUS


def _verdict(verdict: Verdict, rule: str, number: Number) -> Decision:
    return Decision(verdict.action, rule, verdict.reason, number, _status(verdict.action, verdict.status))
