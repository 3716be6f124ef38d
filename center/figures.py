"""The hotline's figures, from the engine's event file: calls by hour and route, what callers
asked about, calls abandoned. Pure: records in, figures out (the records are
:func:`center.views.read_events`'; their ``event`` names the notice that wrote them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = ["hotline_figures"]


def hotline_figures(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    calls = {e["call"]: e for e in events if e.get("event") == "screened"
             and e.get("route") in ("operator", "ivr", "reject")}
    by_hour = Counter(datetime.fromisoformat(e["at"]).hour for e in calls.values())
    answered_by_operator = {e["call"] for e in events if e.get("event") == "operator_answered"}
    to_ivr = {e["call"] for e in events if e.get("event") == "ivr"}
    queued = {e["call"] for e in events if e.get("event") == "queued"}
    gave_up = {e["call"] for e in events if e.get("event") == "queue_gave_up"}
    messages = [e for e in events if e.get("event") == "message_left" and e.get("stored")]
    asked = Counter(e["fraud_type"] for e in events
                    if e.get("event") == "ivr_prompt" and e.get("fraud_type"))
    abandoned = 0
    for e in events:
        if e.get("event") == "ivr_ended" and e.get("how") == "hung_up" and e.get("by") == "remote" \
                and e.get("path", "").count(">") < 1:
            abandoned += 1  # hung up before choosing anything
        if e.get("event") == "ended" and e.get("by") == "remote" \
                and calls.get(e.get("call"), {}).get("route") == "operator" \
                and e["call"] not in answered_by_operator and e["call"] not in to_ivr:
            abandoned += 1  # hung up while an operator's phone rang
    return {
        "calls": len(calls),
        "by_hour": {f"{h:02d}:00": by_hour[h] for h in sorted(by_hour)},
        "by_route": {"operator": len(answered_by_operator),
                     "waited in the queue": len(queued),
                     "queue gave up (voice menu)": len(gave_up), "voice menu": len(to_ivr),
                     "message left": len(messages),
                     "refused by screening": sum(e["route"] == "reject" for e in calls.values())},
        "fraud_types_asked": dict(asked.most_common()),
        "abandoned": abandoned,
    }
