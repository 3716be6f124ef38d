"""What a final SIP status means for an outbound call: pure."""

from __future__ import annotations

from typing import Literal

Outcome = Literal["answered", "busy", "no_answer", "failed"]

BUSY = frozenset({486, 600})
NO_ANSWER = frozenset({408, 480, 487})


def outbound_outcome(status: int) -> Outcome:
    """``status`` is the final response code of an outbound INVITE."""
    if 200 <= status < 300:
        return "answered"
    if status in BUSY:
        return "busy"
    if status in NO_ANSWER:
        return "no_answer"
    return "failed"
