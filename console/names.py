"""The words the pages take from the records (task states, outcomes, roles, audit actions),
marked for the message catalog: a template writes ``_(task.state.value)`` and the catalog has
each of these; and how an attempt's outcome was known, in the reader's language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .i18n import N_

__all__ = ["ACTIONS", "CLASSES", "EVENTS", "OUTCOMES", "STATES", "known_by"]

STATES = (N_("queued"), N_("calling"), N_("waiting"), N_("acknowledged"), N_("transferred"),
          N_("failed"), N_("cancelled"))
OUTCOMES = (N_("answered_no_ack"), N_("machine"), N_("busy"), N_("rang_out"), N_("no_answer"),
            N_("rejected"), N_("unreachable"), N_("suspended"), N_("invalid_number"),
            N_("trunk_error"), N_("lost"), N_("interrupted"), N_("error"),
            N_("pending"), N_("sending"), N_("sent"), N_("refused"), N_("dropped"),
            N_("stored"), N_("blocked"), N_("replied"), N_("open"), N_("done"))
EVENTS = (N_("queued"), N_("merged"), N_("cancelled"), N_("requeued"), N_("risk_raised"),
          N_("assigned"))
ACTIONS = (N_("warn"), N_("warn_many"), N_("cancel"), N_("requeue"), N_("raise_risk"),
           N_("assign"), N_("reveal"), N_("reply"), N_("callback_done"), N_("list_add"),
           N_("list_remove"), N_("list_import"), N_("user_add"), N_("user_password"),
           N_("user_disable"), N_("user_enable"), N_("sign_in"), N_("sign_out"),
           N_("sign_in_failed"), N_("sign_in_locked"))


_TONES = {"busy": N_("the busy tone"), "congestion": N_("the congestion tone"),
          "vacant": N_("the no-such-number tone"), "sit": N_("the special information tone"),
          "ringback": N_("the ringback tone")}
_BY = {"officer": N_("the duty officer answered"), "max_call_s": N_("the longest call allowed"),
       "worker_lost": N_("the worker carrying the call died"),
       "engine_stopped": N_("the engine stopped during the call")}


def known_by(how: dict[str, Any], _: Callable[..., str]) -> str:
    """How an attempt's outcome was known, in the reader's language (as ``task show`` says it)."""
    by = how.get("by", "")
    seconds = f"{how['after_s']:g}" if "after_s" in how else ""
    after = _(", after {s} s", s=seconds) if seconds else ""
    if by == "announcement":
        answered = _(", after the answer") if how.get("answered") else ""
        return _("the carrier's announcement {id} ({what})", id=how.get("announcement", "?"),
                 what=_(str(how.get("class", "?")))) + answered + after
    if by == "tone":
        tone = str(how.get("tone"))
        return _(_TONES[tone]) + after if tone in _TONES else tone + after
    if by in ("status", "q850"):
        cause = _(", Q.850 cause {n}", n=how["q850"]) if how.get("q850") is not None else ""
        return f"SIP {how.get('status')}{cause}"
    if by == "digit":
        return _("the digit {d}", d=how.get("digit", ""))
    if by == "amd":
        return _("answering-machine detection ({why})", why=how.get("cause", ""))
    if by == "no_digit":
        return _("no digit after {n} warnings", n=how.get("plays", "?"))
    if by == "hung_up":
        return _("hung up before a digit") if how.get("side") == "remote" else _("ended")
    if by == "error":
        return _("the call's logic failed: {why}", why=how.get("error", ""))
    return _(_BY[by]) if by in _BY else ""


CLASSES = (N_("busy"), N_("off"), N_("unreachable"), N_("invalid"), N_("suspended"),
           N_("ringing"))
