"""What the bus accepts and refuses, and the outbox's order, cursors and durability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bus import BadMessage
from bus.messages import MAX_PAYLOAD, list_update, parse_object, warning_request
from dialer import REQUIRED_TYPES, Risk
from screening import normalize
from stores import open_stores

TYPES = list(REQUIRED_TYPES)


def request(payload: bytes | str) -> object:
    return warning_request(parse_object(payload), known_types=TYPES)


@pytest.mark.parametrize(("payload", "says"), [
    (b"{bad", "not valid JSON"),
    (b"", "empty"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object, not a list"),
    (b'"13800137490"', "not a string"),
    (b"null", "not null"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b" " * (MAX_PAYLOAD + 1), "more than the"),
    (json.dumps({"number": 13800137490}).encode(), "number must be a string, not a number"),
    (json.dumps({"fraudtype": "loan", "number": "13800137490"}).encode(),
     "unknown field 'fraudtype'"),
    (json.dumps({"number": "13800137490", "fraud_type": "lottery"}).encode(),
     "'lottery' is not a fraud type of the catalog; known types: boss_or_acquaintance"),
    (json.dumps({"number": "13800137490", "risk": "urgent"}).encode(), "risk must be high or normal"),
    (json.dumps({"number": "110"}).encode(), "short service number"),
    (json.dumps({"number": "+14155550100"}).encode(), "foreign number"),
    (json.dumps({"fraud_type": "loan"}).encode(), "needs the number"),
    (json.dumps({"number": "13800137490", "task_id": "has space"}).encode(), "request id"),
    (json.dumps({"number": "13800137490", "case_id": ["C1"]}).encode(),
     "case_id must be a string, not a list"),
    (json.dumps({"number": "13800137490", "risk": True}).encode(), "not true or false"),
])
def test_a_bad_request_is_one_sentence(payload: bytes, says: str) -> None:
    with pytest.raises(BadMessage) as caught:
        request(payload)
    text = str(caught.value)
    assert says in text, text
    assert "\n" not in text and len(text) < 400
    assert "13800137490" not in text  # a person's number is never echoed whole


def test_a_good_request_is_the_same_as_warn() -> None:
    got = request(json.dumps({"number": "+86 138-0013-7490", "fraud_type": "investment",
                              "risk": "normal", "case_id": "C-9", "task_id": "case-9:1",
                              "note": "转账 5 万"}))
    assert (got.number, got.dial, got.fraud_type, got.risk, got.case_ids, got.request_id,
            got.note, got.source) == ("8613800137490", "13800137490", "investment", Risk.NORMAL,
                                      ("C-9",), "case-9:1", "转账 5 万", "mqtt")
    assert request(b'{"number": "13800137490"}').fraud_type == "general"  # type: ignore[attr-defined]


def test_a_list_update_refuses_entries_one_by_one() -> None:
    update = list_update({"op": "add", "numbers": ["13900001111", "+86 139 0000 2222", "x1", 13900003333,
                                                   None, "7", "059187654321"], "id": "u1"})
    assert update.op == "add" and update.id == "u1" and update.list is None
    assert update.keys == tuple(normalize(n).key for n in
                                ("13900001111", "13900002222", "13900003333", "059187654321"))
    assert [r for r, _ in update.refused] == ["x1", "null", "7"]


@pytest.mark.parametrize(("obj", "says"), [
    ({"op": "drop", "numbers": ["13900001111"]}, "op must be \"add\" or \"remove\", not 'drop'"),
    ({"numbers": ["13900001111"]}, "not missing"),
    ({"op": "add", "numbers": "13900001111"}, "non-empty list"),
    ({"op": "add", "numbers": []}, "non-empty list"),
    ({"op": "add", "numbers": ["1"] * 10_001}, "at most 10,000"),
    ({"op": "add", "numbers": ["13900001111"], "list": 3}, "list must be the name"),
    ({"op": "add", "numbers": ["13900001111"], "lists": "fraud"}, "unknown field 'lists'"),
])
def test_a_bad_list_update_changes_nothing(obj: dict, says: str) -> None:
    with pytest.raises(BadMessage) as caught:
        list_update(obj)
    assert says in str(caught.value), str(caught.value)


def test_the_outbox_keeps_order_until_done_and_survives_a_reopen(tmp_path: Path) -> None:
    box = open_stores(tmp_path).outbox
    box.put([("warning/event", '{"n":1}'), ("screening/event", '{"n":2}')], 1.0,
            cursor=("tasks", "7"))
    box.put([("warning/event", '{"n":3}')], 2.0)
    assert [json.loads(p.payload)["n"] for p in box.peek(10)] == [1, 2, 3]
    first = box.peek(2)
    box.done([p.id for p in first])
    box.close()
    again = open_stores(tmp_path).outbox
    assert [json.loads(p.payload)["n"] for p in again.peek(10)] == [3]
    assert again.cursor("tasks") == "7" and again.cursor("callbacks") is None
    assert again.depth() == 1 and again.oldest_at() == 2.0
    again.put([], 3.0, cursor=("tasks", "9"))
    assert again.cursor("tasks") == "9"
    assert (tmp_path / "outbox.sqlite").stat().st_mode & 0o777 == 0o600


def test_past_its_cap_the_outbox_drops_the_oldest_screening_events_only(tmp_path: Path) -> None:
    box = open_stores(tmp_path).outbox
    box.put([("warning/event", '{"n":0}')], 1.0)
    box.put([("screening/event", f'{{"n":{n}}}') for n in range(1, 6)], 2.0)
    box.put([("sms/event", '{"n":6}')], 3.0)
    assert box.trim(keep=10, topic="screening/event") == 0
    assert box.trim(keep=4, topic="screening/event") == 3
    assert [json.loads(p.payload)["n"] for p in box.peek(10)] == [0, 4, 5, 6]
    assert box.trim(keep=1, topic="screening/event") == 2  # never the other topics
    assert [p.topic for p in box.peek(10)] == ["warning/event", "sms/event"]


def test_a_failed_copy_moves_no_cursor(tmp_path: Path) -> None:
    box = open_stores(tmp_path).outbox
    box.put([("a", "{}")], 1.0, cursor=("tasks", "1"))
    with pytest.raises(Exception):  # noqa: B017 - any failure: the transaction is rolled back
        box.put([("a", "{}"), ("b", None)], 2.0, cursor=("tasks", "5"))  # type: ignore[list-item]
    assert box.cursor("tasks") == "1" and box.depth() == 1
