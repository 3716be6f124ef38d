"""Number normalization: every written form gives one key; garbage never raises."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from screening import NumberKind, mask, normalize, parse_bytes
from screening.numbers import SHORT_BASE

MOBILE = 8613800137490
LANDLINE = 8659187654321

# (written form, kind, key)
FORMS = [
    ("+86 138 0013 7490", NumberKind.E164, MOBILE),
    ("+8613800137490", NumberKind.E164, MOBILE),
    ("008613800137490", NumberKind.E164, MOBILE),
    ("8613800137490", NumberKind.E164, MOBILE),
    ("13800137490", NumberKind.E164, MOBILE),
    ("138-0013-7490", NumberKind.E164, MOBILE),
    ("(138) 0013 7490", NumberKind.E164, MOBILE),
    ("sip:13800137490@10.0.0.1", NumberKind.E164, MOBILE),
    ("tel:+86-138-0013-7490", NumberKind.E164, MOBILE),
    ("0591-87654321", NumberKind.E164, LANDLINE),
    ("059187654321", NumberKind.E164, LANDLINE),
    ("+86 591 8765 4321", NumberKind.E164, LANDLINE),
    ("+86 0591 87654321", NumberKind.E164, LANDLINE),
    ("01012345678", NumberKind.E164, 861012345678),
    ("+1 202 555 0143", NumberKind.E164, 12025550143),
    ("+852 9558 8000", NumberKind.E164, 85295588000),
    ("110", NumberKind.SHORT, 3 * SHORT_BASE + 110),
    ("96110", NumberKind.SHORT, 5 * SHORT_BASE + 96110),
    ("95588", NumberKind.SHORT, 5 * SHORT_BASE + 95588),
    ("87654321", NumberKind.LOCAL, 8 * SHORT_BASE + 87654321),
    ("anonymous", NumberKind.ANONYMOUS, None),
    ("Anonymous", NumberKind.ANONYMOUS, None),
    ("", NumberKind.ANONYMOUS, None),
    ("   ", NumberKind.ANONYMOUS, None),
    ("withheld", NumberKind.ANONYMOUS, None),
    ("abc", NumberKind.INVALID, None),
    ("1" * 40, NumberKind.INVALID, None),
    ("+", NumberKind.INVALID, None),
    ("++8613800137490", NumberKind.E164, MOBILE),  # phonenumbers forgives a doubled plus
    ("+95588", NumberKind.INVALID, None),
    ("\x00\xff☎", NumberKind.INVALID, None),
]


@pytest.mark.parametrize(("raw", "kind", "key"), FORMS)
def test_normalize(raw: str, kind: NumberKind, key: int | None) -> None:
    number = normalize(raw)
    assert (number.kind, number.key) == (kind, key)


@pytest.mark.parametrize(("raw", "kind", "key"), FORMS)
def test_bulk_parser_agrees_with_normalize(raw: str, kind: NumberKind, key: int | None) -> None:
    parsed = parse_bytes(f"{raw}\n".encode())
    if kind in (NumberKind.E164, NumberKind.SHORT, NumberKind.LOCAL):
        assert parsed.keys.tolist() == [key]
    else:
        assert parsed.keys.tolist() == []


@pytest.mark.parametrize("garbage", [None, 42, b"bytes", "\n\n", "sip:@", "+" * 100, "9" * 10000])
def test_garbage_never_raises(garbage: object) -> None:
    assert normalize(garbage).key is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "masked"), [
    ("13800137490", "138****7490"),
    ("+86 138 0013 7490", "138****7490"),
    ("0591-87654321", "591****4321"),
    ("110", "110"),
    ("96110", "96110"),
    ("anonymous", "anonymous"),
])
def test_masked(raw: str, masked: str) -> None:
    assert normalize(raw).masked == masked


def test_mask_plain_strings() -> None:
    assert mask("13800137490") == "138****7490"
    assert mask("+8613800137490") == "+861******7490"
    assert mask("12345") == "12345"


def _random_forms(rng: random.Random, count: int) -> list[str]:
    forms = []
    for _ in range(count):
        choice = rng.randrange(6)
        mobile = f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}"
        area = rng.choice(["10", "20", "21", "591", "571", "755", "898"])
        landline = f"{rng.randrange(2, 10)}{rng.randrange(10**7):07d}"
        forms.append([
            mobile, f"86{mobile}", f"+86{mobile}", f"0086{mobile}",
            f"0{area}{landline}", f"+86{area}{landline}",
        ][choice])
    return forms


def test_fast_rules_agree_with_phonenumbers() -> None:
    """The rule table is a shortcut, not a second opinion: phonenumbers says the same."""
    rng = random.Random(7)
    for form in _random_forms(rng, 2000):
        fast = normalize(form)
        slow = phonenumbers.parse(form, "CN")
        assert fast.e164 == phonenumbers.format_number(slow, phonenumbers.PhoneNumberFormat.E164), form


def test_bulk_parser_agrees_on_random_forms() -> None:
    rng = random.Random(11)
    forms = _random_forms(rng, 5000)
    parsed = parse_bytes(("\n".join(forms) + "\n").encode())
    assert parsed.keys.tolist() == sorted({normalize(f).key for f in forms})
    assert parsed.malformed_count == 0


def test_bulk_parser_reports_malformed_lines_with_numbers() -> None:
    text = "number,note\n13800137490,first\n\n# comment\nabc\n1" + "2" * 39 + "\n+86 591 8765 4321\n"
    parsed = parse_bytes(text.encode())
    assert parsed.header
    assert parsed.keys.tolist() == [MOBILE, LANDLINE]
    assert parsed.malformed == [(5, "abc"), (6, "1" + "2" * 39)]
    assert parsed.malformed_count == 2
    assert parsed.lines == 7


def test_bulk_parser_reads_csv_and_crlf() -> None:
    text = b"13800137490;x\r\n8613800137491\t y\r\n+8613800137492\r\n13800137493"
    assert parse_bytes(text).keys.tolist() == [MOBILE, MOBILE + 1, MOBILE + 2, MOBILE + 3]
