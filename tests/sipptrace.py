"""What a SIPp UAS saw, from its ``-trace_msg`` log: each call's number, start and end.

A call starts with the first INVITE of its Call-ID and ends with the first BYE
or CANCEL received, or the first final non-2xx response sent. Used to check,
from the far end's side, that no number was ever called twice at once and
how many calls were up together.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["Call", "calls_of", "max_concurrent", "overlaps"]

_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$", re.MULTILINE)


@dataclass
class Call:
    call_id: str
    number: str
    start: float
    end: float | None = None


def calls_of(trace: Path) -> list[Call]:
    text = trace.read_text(errors="replace")
    parts = _STAMP.split(text)
    calls: dict[str, Call] = {}
    for stamp, body in zip(parts[1::2], parts[2::2], strict=False):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        lines = body.strip().splitlines()
        if len(lines) < 3:
            continue
        received = lines[0].startswith("UDP message received")
        first = lines[2] if not lines[1].strip() else lines[1]
        call_id = next((ln.split(":", 1)[1].strip() for ln in lines
                        if ln.lower().startswith("call-id:")), None)
        if call_id is None:
            continue
        if received and first.startswith("INVITE ") and call_id not in calls:
            number = first.split()[1].removeprefix("sip:").split("@", 1)[0]
            calls[call_id] = Call(call_id, number, at)
        call = calls.get(call_id)
        if call is None or call.end is not None:
            continue
        if received and first.startswith(("BYE ", "CANCEL ")) or not received and re.match(r"SIP/2\.0 [3-6]\d\d ", first) and "INVITE" in body:
            call.end = at
    return sorted(calls.values(), key=lambda c: c.start)


def overlaps(calls: list[Call]) -> list[tuple[Call, Call]]:
    """Pairs of calls to one number that were up at the same time."""
    found = []
    by_number: dict[str, list[Call]] = {}
    for call in calls:
        by_number.setdefault(call.number, []).append(call)
    for same in by_number.values():
        for a, b in itertools.pairwise(same):
            if a.end is None or b.start < a.end:
                found.append((a, b))
    return found


def max_concurrent(calls: list[Call]) -> int:
    edges = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls if c.end is not None])
    busiest = level = 0
    for _, step in edges:
        level += step
        busiest = max(busiest, level)
    return busiest
