"""When a warning text goes beside the warning calls: pure, time as an argument.

A person whom the calls do not reach (the line is busy because the scammer
keeps them on it, nobody picks up, a machine answers) still reads a text: who
is calling, why, from which number, and 110. The first goes after the first
attempt that did not reach the person, then at most one every
``dialer.texts.every_s`` while the task is open, at most
``dialer.texts.max_per_task`` that were not refused; normal-risk tasks wait
out the quiet hours as their calls do.

A phone the carrier says is switched off or out of coverage gets its text at
once, whatever the spacing: the SMS centre holds it until the phone is back on,
so the person reads it the moment they switch it on (scammers tell their
victims to switch off, or to fly in airplane mode). Only the first such attempt
of a task skips the spacing; a phone that stays off is not texted every 30 s.
"""

from __future__ import annotations

from dialer.model import Outcome
from sip_config.schema import TextsConfig

__all__ = ["UNREACHED", "warning_text_due"]

UNREACHED = frozenset({Outcome.BUSY, Outcome.RANG_OUT, Outcome.NO_ANSWER, Outcome.MACHINE,
                       Outcome.UNACKNOWLEDGED, Outcome.REJECTED, Outcome.UNREACHABLE})
"""Attempts after which the person has not heard the warning through: a text may follow.
The trunk's faults and lost calls say nothing about the person."""


def warning_text_due(settings: TextsConfig, *, outcome: Outcome, task_open: bool,
                     delivered: int, last_sent_at: float | None, quiet: bool,
                     now: float, off_before: bool = False) -> bool:
    """After an attempt ended with ``outcome``: send a warning text now?

    ``delivered``: texts of the task not refused by the far end (sent or still waiting
    for their answer); ``last_sent_at``: the last text of the task, refused or not;
    ``off_before``: an earlier attempt of the task found the phone unreachable."""
    if not settings.enabled or not task_open or quiet or outcome not in UNREACHED:
        return False
    if delivered >= settings.max_per_task:
        return False
    if outcome is Outcome.UNREACHABLE and not off_before:
        return True
    return last_sent_at is None or now - last_sent_at >= settings.every_s
