"""Phone number normalization: every written form of a number becomes one key.

A caller id arrives as whatever the far end put in its From or P-Asserted-Identity
header, and a blocklist file holds whatever the operator exported. Both go
through :func:`normalize`, which never raises: garbage is a :class:`Number` of
kind ``INVALID``.

The digit-only forms that make up nearly all traffic and nearly all list files
(``13800137490``, ``8613800137490``, ``008613800137490``, ``+8613800137490``,
``059187654321``) are decided by the small rule table in :func:`classify_digits`
in a microsecond; everything else is handed to ``phonenumbers``. The bulk
importer (:mod:`screening.fileparse`) implements the same table over numpy
arrays, and ``tests/test_numbers.py`` holds both to agree with ``phonenumbers``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import phonenumbers

__all__ = ["SHORT_BASE", "Number", "NumberKind", "classify_digits", "mask", "normalize", "short_key"]

#: Characters people and exports put between digits.
_FORMATTING = re.compile(r"[\s\-().\"'/]")
_DIGITS = re.compile(r"\+?[0-9]+")
_SIP_USER = re.compile(r"^(?:sips?:|tel:)?([^@;]*)")
_WITHHELD = frozenset({"", "anonymous", "unknown", "withheld", "private", "restricted", "unavailable"})

#: Keys of national short and local numbers live above every E.164 key
#: (E.164 has at most 15 digits); the digit count is part of the key so that
#: leading zeros are kept apart.
SHORT_BASE = 10**16


class NumberKind(enum.Enum):
    E164 = "e164"  # a full international number, country code included
    SHORT = "short"  # a national short or service number: 110, 96110, 95588
    LOCAL = "local"  # 7-8 digits without the area code
    ANONYMOUS = "anonymous"  # withheld, empty, "anonymous"
    INVALID = "invalid"  # not a phone number


@dataclass(frozen=True, slots=True)
class Number:
    """A normalized number. ``key`` is the integer the blocklist store holds."""

    kind: NumberKind
    digits: str  # E.164 digits without "+", or the national digits of a short/local number
    key: int | None
    country_code: int | None = None
    raw: str = ""

    @property
    def e164(self) -> str | None:
        return "+" + self.digits if self.kind is NumberKind.E164 else None

    @property
    def national(self) -> str:
        """The number as dialled inside its country (no country code, no trunk 0)."""
        if self.kind is NumberKind.E164 and self.country_code is not None:
            return self.digits[len(str(self.country_code)) :]
        return self.digits

    def is_domestic(self, country_code: int) -> bool:
        return self.kind is not NumberKind.E164 or self.country_code == country_code

    @property
    def masked(self) -> str:
        return mask(self.national if self.kind is NumberKind.E164 else self.digits or self.kind.value)


def mask(number: str) -> str:
    """Mask a number for people to read, the way police notices do: ``138****7490``.

    Short service numbers (six digits or fewer) are not personal and stay whole.
    """
    digits = number.lstrip("+")
    if not digits.isdigit() or len(digits) <= 6:
        return number
    keep_head = 3
    keep_tail = 4 if len(digits) >= 9 else 2
    return number[: len(number) - len(digits)] + digits[:keep_head] + "*" * (
        len(digits) - keep_head - keep_tail
    ) + digits[-keep_tail:]


def short_key(digits: str) -> int:
    return SHORT_BASE * len(digits) + int(digits)


def classify_digits(digits: str, plus: bool, country_code: int = 86) -> Number | None:
    """The fast rule table for a digit string (``plus``: it was written with "+").

    Returns ``None`` when the form is not one of the common ones; the caller then
    asks ``phonenumbers``. Only valid for mainland China rules (IDD ``00``, trunk
    prefix ``0``, mobiles ``1`` + 10 digits); other countries always return ``None``.
    """
    if country_code != 86:
        return None
    n = len(digits)
    if plus:
        # "+86 0591 ..." keeps a trunk zero that phonenumbers knows how to drop.
        if 8 <= n <= 15 and not digits.startswith("860") and digits[0] != "0":
            return _e164(digits)
        return None
    if digits.startswith("00"):
        return classify_digits(digits[2:], True, country_code)
    if n == 11 and digits[0] == "1":
        return _e164("86" + digits)
    if n == 13 and digits.startswith("861"):
        return _e164(digits)
    if 10 <= n <= 12 and digits[0] == "0" and digits[1] != "0":
        return _e164("86" + digits[1:])
    if 3 <= n <= 6 and digits[0] != "0":
        return Number(NumberKind.SHORT, digits, short_key(digits))
    if 7 <= n <= 8 and digits[0] not in "01":
        return Number(NumberKind.LOCAL, digits, short_key(digits))
    return None


def _e164(digits: str) -> Number:
    cc = 86 if digits.startswith("86") else _country_code(digits)
    return Number(NumberKind.E164, digits, int(digits), cc)


def _country_code(digits: str) -> int | None:
    for length in (1, 2, 3):
        cc = int(digits[:length])
        if phonenumbers.region_code_for_country_code(cc) != "ZZ":
            return cc
    return None


def normalize(raw: str, region: str = "CN") -> Number:
    """Normalize a caller id or list entry. Never raises."""
    if isinstance(raw, str) and raw.isdigit() and raw.isascii() and region == "CN":
        fast = classify_digits(raw, False)  # the common case, without regexes
        if fast is not None:
            return Number(fast.kind, fast.digits, fast.key, fast.country_code, raw)
    text = raw if isinstance(raw, str) else ""
    text = text.strip()
    user = _SIP_USER.match(text)
    candidate = user.group(1) if user else text
    if candidate.lower() in _WITHHELD:
        return Number(NumberKind.ANONYMOUS, "", None, raw=raw)
    compact = _FORMATTING.sub("", candidate)
    if _DIGITS.fullmatch(compact):
        plus = compact.startswith("+")
        digits = compact.lstrip("+")
        cc = phonenumbers.country_code_for_region(region)
        fast = classify_digits(digits, plus, cc)
        if fast is not None:
            return Number(fast.kind, fast.digits, fast.key, fast.country_code, raw)
        if len(digits) > 17:
            return Number(NumberKind.INVALID, "", None, raw=raw)
        slow = _parse_slow(candidate, region, raw)
        international = plus or digits.startswith("00")
        if slow.kind is not NumberKind.E164 and international:
            # Keep the digits of a "+110"-style number: spoof rules look at them.
            return Number(NumberKind.INVALID, digits.removeprefix("00"), None, raw=raw)
        return slow
    return _parse_slow(candidate, region, raw)


def _parse_slow(candidate: str, region: str, raw: str) -> Number:
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return Number(NumberKind.INVALID, "", None, raw=raw)
    except Exception:  # noqa: BLE001 - phonenumbers must never take a call down with it
        return Number(NumberKind.INVALID, "", None, raw=raw)
    national = str(parsed.national_number)
    if parsed.italian_leading_zero:
        national = "0" * (parsed.number_of_leading_zeros or 1) + national
    if phonenumbers.is_possible_number(parsed):
        digits = f"{parsed.country_code}{national}"
        if len(digits) <= 15:
            return Number(NumberKind.E164, digits, int(digits), parsed.country_code, raw)
    if candidate.lstrip().startswith("+"):
        return Number(NumberKind.INVALID, "", None, raw=raw)
    local = _FORMATTING.sub("", candidate)
    if local.isdigit() and 3 <= len(local) <= 8:
        kind = NumberKind.SHORT if len(local) <= 6 else NumberKind.LOCAL
        return Number(kind, local, short_key(local), raw=raw)
    return Number(NumberKind.INVALID, "", None, raw=raw)
