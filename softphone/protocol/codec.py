"""Commands and events to JSON lines and back, every field checked against its type.

No I/O: a line in, an object out (or a :class:`ProtocolError` naming the
problem), in the spirit of h11.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Literal, Union

from softphone.protocol.commands import Command
from softphone.protocol.events import Event

__all__ = ["COMMANDS", "EVENTS", "ProtocolError", "decode_command", "decode_event", "encode"]


class ProtocolError(ValueError):
    """A line that is not a well-formed message; ``str()`` names the problem."""


COMMANDS: dict[str, type] = {c.TYPE: c for c in typing.get_args(Command)}
EVENTS: dict[str, type] = {e.TYPE: e for e in typing.get_args(Event)}


def encode(message: Command | Event) -> str:
    """One JSON line (without the newline) for a command or an event."""
    body: dict[str, Any] = {"type": message.TYPE}
    for f in fields(message):
        body[f.name] = getattr(message, f.name)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode_command(line: str) -> Command:
    """Parse a command line; raises :class:`ProtocolError` naming the problem."""
    return typing.cast(Command, _decode(line, COMMANDS, "command"))


def decode_event(line: str) -> Event:
    """Parse an event line; raises :class:`ProtocolError` naming the problem."""
    return typing.cast(Event, _decode(line, EVENTS, "event"))


def _decode(line: str, registry: dict[str, type], kind: str) -> object:
    try:
        body = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"a {kind} must be a JSON object")
    name = body.pop("type", None)
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown {kind} type {name!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ProtocolError(f"{name}: unknown field(s) {', '.join(unknown)}")
    for f in fields(cls):
        if f.name in body:
            body[f.name] = _checked(name, f.name, body[f.name], hints[f.name])
    try:
        return cls(**body)
    except TypeError:
        missing = sorted(
            f.name for f in fields(cls) if f.name not in body and _required(f)
        )
        raise ProtocolError(f"{name}: missing field(s) {', '.join(missing)}") from None


def _required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _checked(kind: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` if it fits ``hint`` (ints accepted for floats), else ProtocolError."""
    if _fits(value, hint):
        if hint is float and isinstance(value, int):
            return float(value)
        return value
    raise ProtocolError(f"{kind}.{name}: {value!r} is not {_describe(hint)}")


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is dict:
        return "an object of strings"
    if hint is type(None):
        return "null"
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}.get(
        hint, str(hint)
    )
