"""Notices: what people and other systems hear about a call or a task.

Each kind of notice is a frozen dataclass with a ``KIND`` (its name in the
event file and the log; the MQTT plug-in :mod:`bus` subscribes to the notices
and publishes payloads of its own). Fields named in ``NUMBERS`` hold full phone
numbers; :meth:`Notice.record` masks them unless asked not to, so logs and
files for people never carry a full number by accident.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from screening import mask

__all__ = ["CallEnded", "DigitPressed", "Notice"]


@dataclass(frozen=True)
class Notice:
    KIND: ClassVar[str] = "notice"
    NUMBERS: ClassVar[tuple[str, ...]] = ()
    call: str

    def record(self, full_numbers: bool = False) -> dict[str, Any]:
        """``{"event": KIND, "call": ..., field: value, ...}``, numbers masked."""
        out: dict[str, Any] = {"event": self.KIND}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.NUMBERS and isinstance(value, str) and not full_numbers:
                value = mask(value)
            elif isinstance(value, enum.Enum):
                value = value.value
            out[f.name] = value
        return out

    def summary(self) -> str:
        """One log line: ``kind call key=value …`` (numbers masked)."""
        record = self.record()
        record.pop("event")
        call = record.pop("call")
        return f"{self.KIND} {call} " + " ".join(f"{k}={v}" for k, v in record.items())


@dataclass(frozen=True)
class DigitPressed(Notice):
    KIND: ClassVar[str] = "dtmf"
    digit: str
    method: str


@dataclass(frozen=True)
class CallEnded(Notice):
    KIND: ClassVar[str] = "ended"
    by: str
    status: int
    duration_s: float
    digits: str = ""
    reason: str = ""  # media_timeout, max_call: the worker ended it on its own
