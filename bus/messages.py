"""What arrives on the bus, checked before anything changes; what leaves it, as JSON.

Pure functions: a payload in, a typed request or :class:`BadMessage` (one
sentence naming what is wrong) out. The engine side (:mod:`bus.bus`) stores,
applies and answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dialer import RequestError, WarningRequest, validate
from screening import NumberKind, normalize

__all__ = ["MAX_NUMBERS", "MAX_PAYLOAD", "BadMessage", "ListUpdate", "callback_done", "dumps",
           "list_update", "parse_object", "sender", "warning_cancel", "warning_request"]

MAX_PAYLOAD = 256 * 1024
"""Bytes. A warning request is about 150; a list update of MAX_NUMBERS numbers about 160 k."""
MAX_NUMBERS = 10_000
REQUEST_FIELDS = ("number", "fraud_type", "risk", "case_id", "task_id", "note", "by")
UPDATE_FIELDS = ("op", "numbers", "list", "id", "by")
CANCEL_FIELDS = ("task_id", "reason", "by")
CALLBACK_DONE_FIELDS = ("id", "note", "by")
"""Every message may name its sender in ``by`` (a system's name): the change records it as
``mqtt:<by>``."""


class BadMessage(ValueError):
    """A message that changes nothing; ``str()`` is one sentence for the ``error`` topic."""


def dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def parse_object(payload: bytes | bytearray | str) -> dict[str, Any]:
    """The JSON object in a payload."""
    if len(payload) > MAX_PAYLOAD:
        raise BadMessage(f"the message is {len(payload):,} bytes, more than the {MAX_PAYLOAD:,} "
                         "accepted")
    try:
        text = payload if isinstance(payload, str) else bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise BadMessage("the message is not UTF-8 text") from None
    if not text.strip():
        raise BadMessage("the message is empty; a JSON object was expected")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadMessage(f"the message is not valid JSON ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno})") from None
    except RecursionError:
        raise BadMessage("the message is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise BadMessage(f"the message must be a JSON object, not {_kind(value)}")
    try:  # "\ud800" is valid JSON, but no store can keep a lone surrogate
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage("the message holds an escaped character that is not valid Unicode "
                         "(a lone surrogate)") from None
    return value


def _kind(value: object) -> str:
    return {list: "a list", str: "a string", bool: "true or false", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _no_unknown(obj: Mapping[str, Any], known: Iterable[str], what: str) -> None:
    unknown = sorted(set(obj) - set(known))
    if unknown:
        raise BadMessage(f"unknown field{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(u) for u in unknown)} in a {what}; the fields are "
                         f"{', '.join(known)}")


def warning_request(obj: Mapping[str, Any], *, known_types: Iterable[str],
                    country: str = "CN") -> WarningRequest:
    """``{"number", "fraud_type"?, "risk"?, "case_id"?, "task_id"?, "note"?}`` → a request,
    with the same rules as ``warn`` (``task_id`` is the request's id: a repeat is no new task)."""
    _no_unknown(obj, REQUEST_FIELDS, "warning request")
    for name in ("number", "fraud_type", "risk", "case_id", "task_id", "note"):
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise BadMessage(f"{name} must be a string, not {_kind(value)}")
    try:
        return validate(obj.get("number"), obj.get("fraud_type"), obj.get("risk"),
                        obj.get("case_id"), obj.get("note"), obj.get("task_id"),
                        known_types=known_types, source="mqtt", country=country)
    except RequestError as exc:
        raise BadMessage(str(exc)) from None


def sender(obj: Mapping[str, Any]) -> str | None:
    """Who sent the message, as it names itself (``by``), or None."""
    value = obj.get("by")
    if value is not None and not isinstance(value, str):
        raise BadMessage(f"by must be a string naming the sender, not {_kind(value)}")
    return value


def warning_cancel(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``{"task_id", "reason"?}`` → (task id, reason), as ``warn cancel`` takes them."""
    _no_unknown(obj, CANCEL_FIELDS, "cancel")
    task_id, reason = obj.get("task_id"), obj.get("reason", "")
    if not isinstance(task_id, str) or not task_id:
        raise BadMessage("a cancel needs task_id, the task's id" if task_id is None
                         else f"task_id must be a string, not {_kind(task_id)}")
    if not isinstance(reason, str):
        raise BadMessage(f"reason must be a string, not {_kind(reason)}")
    if len(reason) > 500:
        raise BadMessage(f"the reason has {len(reason)} characters; at most 500")
    return task_id, reason


def callback_done(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``{"id", "note"?}`` → (message id, note), as ``callbacks done`` takes them."""
    _no_unknown(obj, CALLBACK_DONE_FIELDS, "callback done")
    message_id, note = obj.get("id"), obj.get("note", "")
    if not isinstance(message_id, str) or not message_id:
        raise BadMessage("a callback done needs id, the message's id" if message_id is None
                         else f"id must be a string, not {_kind(message_id)}")
    if not isinstance(note, str):
        raise BadMessage(f"note must be a string, not {_kind(note)}")
    return message_id, note


def sms_reply(obj: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """``{"id": thread id, "text", "reply_id"?}`` → (thread id, the text, reply id), as
    ``sms reply`` takes them (the text is checked where every reply is: ``Center.reply``); a
    repeated ``reply_id`` is not a second text."""
    _no_unknown(obj, ("id", "text", "reply_id", "by"), "text reply")
    for name in ("id", "text", "reply_id"):
        value = obj.get(name)
        if name == "reply_id" and value is None:
            continue
        if not isinstance(value, str):
            raise BadMessage(f"{name} must be a string, not {_kind(value)}" if value is not None
                             else f"a text reply needs {name}")
    return obj["id"], obj["text"], obj.get("reply_id")


@dataclass(frozen=True)
class ListUpdate:
    op: Literal["add", "remove"]
    keys: tuple[int, ...]
    refused: tuple[tuple[str, str], ...]  # (entry as sent, why)
    list: str | None
    id: str | None  # the sender's, echoed in the result


def list_update(obj: Mapping[str, Any], country: str = "CN") -> ListUpdate:
    """``{"op": "add"|"remove", "numbers": [...], "list"?, "id"?}``; entries that are not phone
    numbers are refused one by one, the others applied."""
    _no_unknown(obj, UPDATE_FIELDS, "blocklist update")
    op = obj.get("op")
    if op not in ("add", "remove"):
        shown = "missing" if op is None else repr(op)
        raise BadMessage(f'op must be "add" or "remove", not {shown}')
    numbers = obj.get("numbers")
    if not isinstance(numbers, list) or not numbers:
        raise BadMessage("numbers must be a non-empty list of phone numbers")
    if len(numbers) > MAX_NUMBERS:
        raise BadMessage(f"{len(numbers):,} numbers in one update; at most {MAX_NUMBERS:,} "
                         "(use blocklist import for a whole list)")
    name = obj.get("list")
    if name is not None and not isinstance(name, str):
        raise BadMessage(f"list must be the name of a list, not {_kind(name)}")
    ref = obj.get("id")
    if ref is not None and not isinstance(ref, str | int):
        raise BadMessage(f"id must be a string, not {_kind(ref)}")
    keys: list[int] = []
    refused: list[tuple[str, str]] = []
    for entry in numbers:
        if not isinstance(entry, str | int) or isinstance(entry, bool):
            refused.append((json.dumps(entry)[:40], "not a phone number"))
            continue
        number = normalize(str(entry), country)
        if number.key is None or number.kind is NumberKind.INVALID:
            refused.append((str(entry)[:40], "not a phone number"))
        else:
            keys.append(number.key)
    return ListUpdate(op, tuple(keys), tuple(refused), name, None if ref is None else str(ref))
