"""Warning requests: what is accepted, and the one sentence for what is not."""

from __future__ import annotations

import pytest

from dialer import RequestError, Risk, parse_csv, validate
from dialer.catalog import REQUIRED_TYPES, load_catalog

KNOWN = load_catalog().known()


@pytest.mark.parametrize(("number", "dial", "e164"), [
    ("13800137490", "13800137490", "8613800137490"),
    ("+86 138 0013 7490", "13800137490", "8613800137490"),
    ("008613800137490", "13800137490", "8613800137490"),
    ("138-0013-7490", "13800137490", "8613800137490"),
    ("0591-87654321", "059187654321", "8659187654321"),
    ("+86 591 8765 4321", "059187654321", "8659187654321"),
])
def test_callable_numbers(number: str, dial: str, e164: str) -> None:
    request = validate(number, known_types=KNOWN)
    assert (request.dial, request.number, request.masked[:3]) == (dial, e164, dial[:3])
    assert request.risk is Risk.HIGH and request.fraud_type == "general"


@pytest.mark.parametrize(("fields", "message"), [
    ({"number": "110"}, "110 is a short service number, not a person's phone"),
    ({"number": "87654321"}, "has no area code"),
    ({"number": "+1 202 555 0143"}, ("202***0143 is a foreign number (+1); warning calls go to "
                                     "numbers of +86 only")),
    ({"number": "not a number"}, "'not a number' is not a phone number"),
    ({"number": ""}, "needs the number"),
    ({"number": "12345678901"}, "is not a mobile or landline number in use"),
    ({"number": "13800137490", "fraud_type": "lottery"}, ("'lottery' is not a fraud type of the "
                                                          "catalog; known types: boss_or_acquaintance")),
    ({"number": "13800137490", "risk": "urgent"}, "risk must be high or normal, not 'urgent'"),
    ({"number": "13800137490", "case_id": "a b"}, "case id 'a b' must be 1-64 letters"),
    ({"number": "13800137490", "note": "x" * 501}, "at most 500 characters"),
])
def test_refused_with_one_sentence(fields: dict, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        validate(**fields, known_types=KNOWN)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_catalog_has_the_contract_types_and_more() -> None:
    assert set(REQUIRED_TYPES) <= set(KNOWN) and len(KNOWN) > len(REQUIRED_TYPES)


CSV = """\
number,fraud_type,risk,case_id
13800137490,police_impersonation,high,FZ-1
110,general,high,FZ-2
13900001111,lottery,normal,FZ-3

# a comment
+86 139 0000 2222,,normal,
13900003333,loan,medium,FZ-5
"""


def test_csv_good_rows_accepted_bad_rows_named_by_line() -> None:
    good, bad = parse_csv(CSV, known_types=KNOWN)
    assert [(line, r.dial, r.fraud_type, r.risk.value) for line, r in good] == [
        (2, "13800137490", "police_impersonation", "high"),
        (7, "13900002222", "general", "normal"),
    ]
    assert [(e.line, e.message.split(" ")[0]) for e in bad] == [(3, "110"), (4, "'lottery'"),
                                                                (8, "risk")]
    assert str(bad[0]).startswith("line 3: 110 is a short service number")


def test_csv_without_a_header_reads_columns_in_order() -> None:
    good, bad = parse_csv("13800137490,loan,normal,C-1,from the bank,req-1\n", known_types=KNOWN)
    [(_, request)] = good
    assert (request.fraud_type, request.case_ids, request.note, request.request_id) == (
        "loan", ("C-1",), "from the bank", "req-1")
    assert not bad


def test_csv_with_an_unknown_column_stops_at_the_header() -> None:
    good, bad = parse_csv("number,phone_type\n13800137490,mobile\n", known_types=KNOWN)
    assert not good and "unknown column(s) phone_type" in bad[0].message


def test_csv_row_with_too_many_fields() -> None:
    _, bad = parse_csv("13800137490,loan,high,C,n,r,extra\n", known_types=KNOWN)
    assert bad[0].line == 1 and "7 fields, at most 6" in bad[0].message
