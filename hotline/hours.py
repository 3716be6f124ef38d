"""When operators answer the hotline: pure, the moment is an argument.

The usual window (``hotline.operator_hours``) may cross midnight, and then the
hours after midnight belong to the day it opened. A day of the week may have
its own window or be closed (``hotline.weekdays``). A holiday
(``hotline.holidays``, or China's official ones with
``hotline.official_calendar``) has ``hotline.holiday_hours`` (closed: the voice
menu all day). A make-up working day (``hotline.workdays``, or an official
调休 day) has the usual window whatever its weekday.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sip_config.schema import HotlineConfig, Hours

__all__ = ["OperatorHours", "official_day"]

log = logging.getLogger("hotline.hours")

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

DayKind = str  # "holiday", "workday" or "" (an ordinary day)


def official_day(day: date) -> DayKind:
    """China's official calendar: ``holiday`` (a statutory one), ``workday`` (a make-up day),
    or "" (ordinary, or a year the package does not know)."""
    import chinese_calendar

    try:
        off, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return ""
    if name is None:
        return ""
    return "holiday" if off else "workday"


@dataclass(frozen=True)
class OperatorHours:
    usual: Hours
    weekdays: Mapping[str, Hours | None] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    holiday_hours: Hours | None = None
    workdays: frozenset[date] = frozenset()
    calendar: Callable[[date], DayKind] | None = None

    @classmethod
    def from_config(cls, config: HotlineConfig) -> OperatorHours:
        weekdays: dict[str, Hours | None] = {str(k): v for k, v in config.weekdays.items()}
        return cls(config.operator_hours, weekdays, frozenset(config.holidays),
                   config.holiday_hours, frozenset(config.workdays),
                   official_day if config.official_calendar else None)

    def window(self, day: date) -> Hours | None:
        """The operators' window that opens on ``day``; None: closed all day."""
        kind = self._kind(day)
        if kind == "holiday":
            return self.holiday_hours
        if kind == "workday":
            return self.usual
        name = WEEKDAYS[day.weekday()]
        return self.weekdays.get(name, self.usual)

    def open_at(self, moment: datetime) -> bool:
        day, now = moment.date(), moment.time()
        today = self.window(day)
        if today is not None and _from_open(today, now):
            return True
        yesterday = self.window(day - timedelta(days=1))
        return yesterday is not None and _after_midnight(yesterday, now)

    def next_open(self, moment: datetime, days: int = 14) -> datetime | None:
        """``moment`` if operators are there, else when they next are (None: not within
        ``days``)."""
        if self.open_at(moment):
            return moment
        for n in range(days + 1):
            day = moment.date() + timedelta(days=n)
            window = self.window(day)
            if window is None:
                continue
            opens = datetime.combine(day, window.start, moment.tzinfo)
            if opens > moment:
                return opens
        return None

    def _kind(self, day: date) -> DayKind:
        if day in self.workdays:
            return "workday"
        if day in self.holidays:
            return "holiday"
        return self.calendar(day) if self.calendar is not None else ""


def _from_open(hours: Hours, now: time) -> bool:
    """The part of the window on its own day."""
    if hours.start <= hours.end:
        return hours.start <= now < hours.end
    return now >= hours.start


def _after_midnight(hours: Hours, now: time) -> bool:
    """The part of yesterday's window that runs past midnight into today."""
    return hours.start > hours.end and now < hours.end
