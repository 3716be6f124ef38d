"""Value types the sections of ``dialer.yaml`` share: SIP URIs, seconds, ports, time windows.

Each is a type with its check attached (pydantic ``Annotated`` validators), so
a section only names the type; :class:`Section` is the base of every section
(frozen, unknown keys refused).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "ActionName",
    "Digits",
    "EnvName",
    "Hours",
    "HoursOrClosed",
    "Port",
    "Seconds",
    "Section",
    "SipStatus",
    "SipUri",
    "TimeZoneName",
    "Weekday",
    "parse_hours",
    "parse_hours_or_closed",
]

_URI = re.compile(
    r"^sips?:(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+@)?"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?:;[^\s]*)?$"
)
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _sip_uri(value: str) -> str:
    match = _URI.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a SIP URI like sip:127.0.0.1:5070 or sip:user@host")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"port {port} in {value!r} is outside 1-65535")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (write e.g. Asia/Shanghai)") from None
    return value


def _digits(value: str) -> str:
    if not value.isdigit():
        raise ValueError(f"{value!r} must be digits only")
    return value


SipUri = Annotated[str, AfterValidator(_sip_uri)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Digits = Annotated[str, AfterValidator(_digits)]
Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(gt=0, lt=65536)]
SipStatus = Annotated[int, Field(ge=400, le=699)]
ActionName = Literal["reject", "warn", "tag", "allow"]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]


class Hours(BaseModel):
    """A daily time window; ``start > end`` wraps past midnight."""

    model_config = ConfigDict(frozen=True)
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_hours(value: object) -> object:
    if isinstance(value, Hours) or not isinstance(value, str):
        return value
    match = _HOURS.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a time window like 08:00-22:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    for hour, minute in ((h1, m1), (h2, m2)):
        if hour > 23 or minute > 59:
            raise ValueError(f"{hour:02d}:{minute:02d} in {value!r} is not a time of day")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{value!r} starts and ends at the same time")
    return Hours(start=time(h1, m1), end=time(h2, m2))


class Section(BaseModel):
    """A section of ``dialer.yaml``: frozen, and a key it does not know is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_hours_or_closed(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "closed":
        return None
    return parse_hours(value)


HoursOrClosed = Annotated[Hours | None, BeforeValidator(parse_hours_or_closed)]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
