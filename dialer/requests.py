"""Warning requests: validated before anything is stored, from any source alike.

The command line (``warn``, ``warn --file``), MQTT and the screening all hand
raw fields to :func:`validate`, which returns a :class:`WarningRequest` or
raises :class:`RequestError` with one sentence naming what is wrong.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import phonenumbers

from screening import NumberKind, mask, normalize

__all__ = ["RequestError", "Risk", "RowError", "WarningRequest", "parse_csv", "validate"]

_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_CALLABLE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
             phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
CSV_COLUMNS = ("number", "fraud_type", "risk", "case_id", "note", "request_id")
MAX_NOTE = 500


class RequestError(ValueError):
    """A request that cannot be accepted; ``str()`` is one sentence, ``field`` what it is
    about (number, fraud_type, risk, case_id, request_id, note; columns for a CSV's row).

    The sentence is ``template`` (an English ``str.format`` pattern, and the message the
    console's catalog translates) filled with ``values``."""

    def __init__(self, template: str, field: str = "number", **values: object) -> None:
        super().__init__(template.format(**values) if values else template)
        self.field = field
        self.template = template
        self.values = values


class Risk(enum.Enum):
    HIGH = "high"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        return 0 if self is Risk.HIGH else 1


@dataclass(frozen=True)
class WarningRequest:
    number: str
    """E.164 digits without "+" (``8613800137490``): the key of the person."""
    dial: str
    """What the trunk is sent: the national form (``13800137490``, ``059187654321``)."""
    fraud_type: str
    risk: Risk
    case_ids: tuple[str, ...] = ()
    note: str = ""
    request_id: str | None = None
    source: str = "cli"

    @property
    def masked(self) -> str:
        return mask(self.dial)


def validate(number: object, fraud_type: object = None, risk: object = None, case_id: object = None,
             note: object = None, request_id: object = None, *, known_types: Iterable[str],
             source: str = "cli", country: str = "CN") -> WarningRequest:
    if not isinstance(number, str) or not number.strip():
        raise RequestError("a warning request needs the number of the person to call")
    dial, e164 = callable_number(number, country)
    known = sorted(known_types)
    kind = "general" if fraud_type in (None, "") else fraud_type
    if not isinstance(kind, str) or kind not in known:
        raise RequestError("{kind!r} is not a fraud type of the catalog; known types: {known}",
                           "fraud_type", kind=kind, known=", ".join(known))
    level = "high" if risk in (None, "") else risk
    if level not in ("high", "normal"):
        raise RequestError("risk must be high or normal, not {level!r}", "risk", level=level)
    cases: tuple[str, ...] = ()
    if case_id not in (None, ""):
        if not isinstance(case_id, str) or not _ID.match(case_id):
            raise RequestError("case id {case_id!r} must be 1-64 letters, digits or . _ : -",
                               "case_id", case_id=case_id)
        cases = (case_id,)
    if request_id not in (None, "") and (not isinstance(request_id, str) or not _ID.match(request_id)):
        raise RequestError("request id {request_id!r} must be 1-64 letters, digits or . _ : -",
                           "request_id", request_id=request_id)
    text = "" if note is None else note
    if not isinstance(text, str) or len(text) > MAX_NOTE:
        raise RequestError("a note must be text of at most {max} characters", "note",
                           max=MAX_NOTE)
    return WarningRequest(e164, dial, kind, Risk(level), cases, text.strip(),
                          request_id or None, source)  # type: ignore[arg-type]


def callable_number(raw: str, country: str = "CN") -> tuple[str, str]:
    """``(what to dial, E.164 digits)`` for a mobile or landline of the home country."""
    number = normalize(raw, country)
    shown = number.masked if number.kind is NumberKind.E164 else raw.strip()[:20]
    if number.kind is NumberKind.SHORT:
        raise RequestError("{number} is a short service number, not a person's phone",
                           number=shown)
    if number.kind is NumberKind.LOCAL:
        raise RequestError("{number} has no area code; write it with one (e.g. 0591…)",
                           number=shown)
    if number.kind is not NumberKind.E164:
        raise RequestError("{number!r} is not a phone number", number=raw.strip()[:20])
    home = phonenumbers.country_code_for_region(country)
    if number.country_code != home:
        raise RequestError("{number} is a foreign number (+{code}); warning calls go to numbers "
                           "of +{home} only", number=shown, code=number.country_code, home=home)
    parsed = phonenumbers.parse("+" + number.digits)
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) not in _CALLABLE:
        raise RequestError("{number} is not a mobile or landline number in use", number=shown)
    return national_digits(parsed), number.digits


def national_digits(parsed: phonenumbers.PhoneNumber) -> str:
    """How the trunk dials a number of its own country: the national digits, a landline's
    trunk 0 kept (``059187654321``, ``13800137490``)."""
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return re.sub(r"\D", "", national)


@dataclass(frozen=True)
class RowError:
    line: int
    error: RequestError
    """What is wrong with the row (its sentence, and its pattern for a translation)."""

    @property
    def message(self) -> str:
        return str(self.error)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def parse_csv(text: str, *, known_types: Iterable[str], country: str = "CN",
              source: str = "csv") -> tuple[list[tuple[int, WarningRequest]], list[RowError]]:
    """Rows of ``number[,fraud_type[,risk[,case_id[,note[,request_id]]]]]``, with or without a
    header naming those columns. Good rows are returned with their line, bad ones as errors."""
    known = list(known_types)
    good: list[tuple[int, WarningRequest]] = []
    bad: list[RowError] = []
    reader = csv.reader(io.StringIO(text))
    columns: tuple[str, ...] = CSV_COLUMNS
    first = True
    for row in reader:
        line = reader.line_num
        cells = [c.strip() for c in row]
        if not cells or all(not c for c in cells) or cells[0].startswith("#"):
            continue
        if first:
            first = False
            if cells[0].lower() == "number":
                unknown = [c for c in cells if c.lower() not in CSV_COLUMNS]
                if unknown:
                    bad.append(RowError(line, RequestError(
                        "unknown column(s) {unknown}; the columns are {columns}", "columns",
                        unknown=", ".join(unknown), columns=", ".join(CSV_COLUMNS))))
                    return good, bad
                columns = tuple(c.lower() for c in cells)
                continue
        if len(cells) > len(columns):
            bad.append(RowError(line, RequestError(
                "{fields} fields, at most {most} expected ({columns})", "columns",
                fields=len(cells), most=len(columns), columns=", ".join(columns))))
            continue
        fields_: Mapping[str, str] = dict(zip(columns, cells, strict=False))
        try:
            good.append((line, validate(
                fields_.get("number", ""), fields_.get("fraud_type"), fields_.get("risk"),
                fields_.get("case_id"), fields_.get("note"), fields_.get("request_id"),
                known_types=known, source=source, country=country)))
        except RequestError as exc:
            bad.append(RowError(line, exc))
    return good, bad

