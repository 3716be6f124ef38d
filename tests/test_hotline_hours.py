"""Operator hours, pure: the moment in, open or not out."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from hotline.hours import OperatorHours, official_day
from sip_config.schema import parse_hours

DAY = parse_hours("08:00-22:00")
HOURS = OperatorHours(DAY, weekdays={"saturday": parse_hours("09:00-17:00"), "sunday": None},
                      holidays=frozenset({date(2026, 10, 1)}), holiday_hours=None,
                      workdays=frozenset({date(2026, 9, 27)}))  # a Sunday worked in lieu
NIGHT_DESK = OperatorHours(parse_hours("20:00-02:00"), weekdays={"sunday": None})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("hours", "moment", "open_"), [
    (HOURS, "2026-12-01 07:59", False),  # Tuesday
    (HOURS, "2026-12-01 08:00", True),
    (HOURS, "2026-12-01 21:59", True),
    (HOURS, "2026-12-01 22:00", False),  # the IVR from 22:00
    (HOURS, "2026-12-05 08:30", False),  # Saturday: 09:00-17:00
    (HOURS, "2026-12-05 16:59", True),
    (HOURS, "2026-12-06 12:00", False),  # Sunday: closed
    (HOURS, "2026-10-01 12:00", False),  # a holiday (a Thursday)
    (HOURS, "2026-09-27 12:00", True),  # the make-up working Sunday: usual hours
    (HOURS, "2026-09-27 21:00", True),
    (NIGHT_DESK, "2026-12-01 19:59", False),
    (NIGHT_DESK, "2026-12-01 23:30", True),
    (NIGHT_DESK, "2026-12-02 01:59", True),  # after midnight: Tuesday's window
    (NIGHT_DESK, "2026-12-02 02:00", False),
    (NIGHT_DESK, "2026-12-07 01:00", False),  # Monday 01:00: Sunday was closed
    (NIGHT_DESK, "2026-12-06 01:00", True),  # Sunday 01:00: Saturday's window
])
def test_open_at(hours: OperatorHours, moment: str, open_: bool) -> None:
    assert hours.open_at(at(moment)) is open_


def test_the_official_calendar_knows_holidays_and_make_up_days() -> None:
    assert official_day(date(2026, 10, 1)) == "holiday"
    assert official_day(date(2026, 10, 10)) == "workday"  # a Saturday worked in lieu
    assert official_day(date(2026, 12, 5)) == ""  # an ordinary Saturday
    assert official_day(date(2030, 1, 1)) == ""  # a year the package does not know
    official = OperatorHours(DAY, weekdays={"saturday": None}, calendar=official_day)
    assert not official.open_at(at("2026-10-01 12:00"))
    assert official.open_at(at("2026-10-10 12:00"))  # Saturday, but a working day
    assert not official.open_at(at("2026-12-05 12:00"))
