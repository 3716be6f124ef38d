"""How the commands show moments and lengths of time to people."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["duration", "iso"]


def iso(at: float | None, tz: ZoneInfo) -> str | None:
    """``2026-12-01T23:05:00+08:00`` in ``engine.timezone``; None stays None."""
    return None if at is None else datetime.fromtimestamp(at, tz).isoformat(timespec="seconds")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"
