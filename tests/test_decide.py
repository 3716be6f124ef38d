"""Screening decisions from tables of (caller, expected action, status, rule)."""

from __future__ import annotations

import pytest

from screening import Action, NumberList, PrefixRule, RateRule, Rules, Screener, Verdict, normalize


def key(raw: str) -> int:
    number = normalize(raw)
    assert number.key is not None
    return number.key


RULES = Rules(
    lists=(
        NumberList("fraud", Action.REJECT, {key("13800137490"), key("0591-87654321")}, 603),
        NumberList("suspect", Action.WARN, {key("13900001111"), key("13800137490")}),
        NumberList("watch", Action.TAG, {key("13700002222")}),
        NumberList("busy-fraud", Action.REJECT, {key("13600003333")}, 486),
        NumberList("trusted", Action.ALLOW, {key("110"), key("17000009999"), key("13500004444")}),
    ),
    prefixes=(
        PrefixRule("+86170", Action.TAG, reason="virtual operator 170"),
        PrefixRule("+861700", Action.REJECT, 604, "known fraud range"),
        PrefixRule("+86171", Action.WARN),
        PrefixRule("1065", Action.TAG, reason="bulk sms short code"),
    ),
    official_numbers=frozenset({"110", "96110", "95588"}),
    overseas=Verdict(Action.WARN, None, "call from abroad"),
    anonymous=Verdict(Action.REJECT, 433, "anonymity disallowed"),
    invalid=Verdict(Action.TAG, None, "not a number"),
)

# (caller as written, action, SIP status, rule)
TABLE = [
    ("13800137490", Action.REJECT, 603, "list:fraud"),  # reject beats warn on another list
    ("+86 138 0013 7490", Action.REJECT, 603, "list:fraud"),
    ("008613800137490", Action.REJECT, 603, "list:fraud"),
    ("059187654321", Action.REJECT, 603, "list:fraud"),
    ("13900001111", Action.WARN, None, "list:suspect"),
    ("13700002222", Action.TAG, None, "list:watch"),
    ("13600003333", Action.REJECT, 486, "list:busy-fraud"),
    ("13300000000", Action.ALLOW, None, "default"),
    ("110", Action.ALLOW, None, "list:trusted"),
    ("17000009999", Action.ALLOW, None, "list:trusted"),  # allowlist beats the 170 prefixes
    ("17012345678", Action.TAG, None, "prefix:+86170"),
    ("17001234567", Action.REJECT, 604, "prefix:+861700"),  # longest prefix wins
    ("17112345678", Action.WARN, None, "prefix:+86171"),
    ("10658", Action.TAG, None, "prefix:1065"),
    ("+1 202 555 0143", Action.WARN, None, "overseas"),
    ("+852 95588", Action.REJECT, 603, "spoof"),  # foreign caller id posing as a bank
    ("+95588", Action.REJECT, 603, "spoof"),  # not even a possible number
    ("0096110", Action.REJECT, 603, "spoof"),
    ("96110", Action.ALLOW, None, "default"),  # the real hotline, dialled at home
    ("anonymous", Action.REJECT, 433, "anonymous"),
    ("", Action.REJECT, 433, "anonymous"),
    ("not-a-number", Action.TAG, None, "invalid"),
    ("9" * 40, Action.TAG, None, "invalid"),
]


@pytest.mark.parametrize(("caller", "action", "status", "rule"), TABLE)
def test_decision(caller: str, action: Action, status: int | None, rule: str) -> None:
    decision = Screener(RULES).decide(caller, now=0.0)
    assert (decision.action, decision.status, decision.rule) == (action, status, rule)


def test_decision_dict_masks_the_number() -> None:
    decision = Screener(RULES).decide("13800137490", now=0.0)
    assert decision.as_dict() == {
        "action": "reject", "status": 603, "rule": "list:fraud", "reason": "on list fraud",
        "number": "138****7490", "kind": "e164",
    }


RATE = Rules(rate=RateRule(max_calls=3, window_s=60, block_s=600, status=486),
             lists=(NumberList("trusted", Action.ALLOW, {key("13500004444")}),))

# (seconds since start, caller, expected action): one caller over its limit, others not
RATE_TABLE = [
    (0, "13800000001", Action.ALLOW),
    (10, "13800000001", Action.ALLOW),
    (20, "13800000001", Action.ALLOW),
    (21, "13800000002", Action.ALLOW),  # another caller is counted apart
    (30, "13800000001", Action.REJECT),  # 4th call in 60 s
    (100, "13800000001", Action.REJECT),  # still blocked (block_s 600)
    (629, "13800000001", Action.REJECT),
    (631, "13800000001", Action.ALLOW),  # block over, counting starts again
    (632, "+86 138 0000 0001", Action.ALLOW),  # same caller, other form: same count
    (633, "13800000001", Action.ALLOW),
    (634, "13800000001", Action.REJECT),
    (0, "13500004444", Action.ALLOW),
]


def test_rate_rule_over_time() -> None:
    screener = Screener(RATE)
    for t, caller, action in RATE_TABLE[:-1]:
        decision = screener.decide(caller, now=float(t))
        assert decision.action is action, (t, caller)
        if action is Action.REJECT:
            assert (decision.rule, decision.status) == ("rate", 486)


def test_rate_rule_does_not_touch_the_allowlist() -> None:
    screener = Screener(RATE)
    for t in range(20):
        assert screener.decide("13500004444", now=float(t)).action is Action.ALLOW


def test_rate_window_slides() -> None:
    screener = Screener(RATE)
    # 3 calls a minute apart never exceed 3 calls in 60 s
    assert all(screener.decide("13800000003", now=61.0 * i).action is Action.ALLOW for i in range(10))


def test_rate_tracker_is_bounded() -> None:
    screener = Screener(RATE)
    screener.tracker.capacity = 100
    for i in range(1000):
        screener.decide(f"138{i:08d}", now=float(i))
    assert len(screener.tracker._calls) <= 100
