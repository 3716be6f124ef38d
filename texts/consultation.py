"""The SMS consultation line's rules: a text in, what to do with it out. Pure.

pjsua answers every MESSAGE 200 before anyone looks, so refusing is the engine's: a text that
is no consultation is dropped with one sentence saying why, by the first rule of
:data:`REFUSALS` it meets (the Kamailio front refuses most of these with a status first). A
consultation is kept with its screening decision (a blocked sender's text is stored and never
answered) and the advice its words name; its automatic reply depends on the hour: outside the
operators' hours, when they open next, 110 and the advice; inside them, a short
acknowledgement. Time is a parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

import phonenumbers

from dialer.requests import national_digits
from hotline.hours import OperatorHours
from screening import Action, Decision, Number, NumberKind, ServiceNumber, normalize

from .words import Advice, TextBook, hours_label, opens_label

__all__ = ["REFUSALS", "Consultation", "ConsultationLine", "Dropped", "Incoming"]


@dataclass(frozen=True)
class Incoming:
    """A MESSAGE as the worker handed it over."""

    sender: str  # the user part of P-Asserted-Identity or From
    to: str  # the user part of the request URI
    body: str
    content_type: str
    problem: str = ""  # why the body could not be read ("" when it could)


@dataclass(frozen=True)
class Dropped:
    why: str


@dataclass(frozen=True)
class Consultation:
    number: str  # the sender as the trunk dials it
    body: str  # stripped of the line breaks gateways add
    blocked: bool
    rule: str  # the screening rule that blocked it, or ""
    advice: Advice | None

    @property
    def fraud_type(self) -> str:
        return self.advice.fraud_type if self.advice else ""


@dataclass(frozen=True)
class _Facts:
    """What the rules look at."""

    text: Incoming
    sender: Number
    line: ServiceNumber | None
    hotline: ServiceNumber
    max_chars: int


Rule = tuple[Callable[[_Facts], bool], Callable[[_Facts], str]]

REFUSALS: list[Rule] = [
    (lambda f: bool(f.text.problem), lambda f: f.text.problem),
    (lambda f: f.sender.kind in (NumberKind.ANONYMOUS, NumberKind.INVALID),
     lambda f: "its sender has no phone number to answer"),
    (lambda f: (f.line is not None and f.line.matches(f.text.sender))
     or f.hotline.matches(f.text.sender),
     lambda f: "it comes from our own number (a loop through the trunk?)"),
    (lambda f: not f.text.body.strip(),
     lambda f: "its body is empty"),  # pjsua gives no content type to a MESSAGE without a body
    (lambda f: not f.text.content_type.lower().startswith("text/plain"),
     lambda f: f"its content type is {f.text.content_type or 'missing'}, not text/plain"),
    (lambda f: len(f.text.body) > f.max_chars,
     lambda f: f"its body has {len(f.text.body)} characters, more than {f.max_chars}"),
    (lambda f: f.line is None,
     lambda f: "there is no SMS line (sms.number is not configured)"),
    (lambda f: f.line is not None and not (f.line.matches(f.text.to)
                                           or f.hotline.matches(f.text.to)),
     lambda f: f"it is for {f.text.to or 'no number'}, neither the SMS line nor the hotline"),
]
"""Why a MESSAGE is no consultation, in the order the rules are tried: the first that holds
gives the sentence."""


class ConsultationLine:
    def __init__(self, line: ServiceNumber | None, hotline: ServiceNumber, max_chars: int,
                 country: str, book: TextBook, hours: OperatorHours, center: str,
                 tz: tzinfo) -> None:
        self.line = line
        self.hotline = hotline
        self.max_chars = max_chars
        self.country_code = phonenumbers.country_code_for_region(country)
        self.book = book
        self.hours = hours
        self.center = center
        self.tz = tz

    def refusal(self, text: Incoming) -> str:
        """Why ``text`` is no consultation, or ""."""
        facts = _Facts(text, normalize(text.sender), self.line, self.hotline, self.max_chars)
        for holds, why in REFUSALS:
            if holds(facts):
                return why(facts)
        return ""

    def take(self, text: Incoming, decision: Decision) -> Dropped | Consultation:
        """What becomes of a text whose sender the screening decided on."""
        why = self.refusal(text)
        if why:
            return Dropped(why)
        blocked = decision.action is Action.REJECT
        body = text.body.strip()
        return Consultation(self.dialable(normalize(text.sender)), body, blocked,
                            decision.rule if blocked else "",
                            None if blocked else self.book.advice_for(body))

    def dialable(self, sender: Number) -> str:
        """The sender as the trunk is dialled: the national form at home (trunk 0 kept:
        059187654321), +CC… abroad, a short number as it is."""
        if sender.kind is not NumberKind.E164:
            return sender.digits
        if sender.country_code != self.country_code:
            return "+" + sender.digits
        return national_digits(phonenumbers.parse("+" + sender.digits))

    def reply(self, now: float, advice: Advice | None) -> str:
        """The automatic reply to a consultation that opened its thread at ``now``."""
        moment = datetime.fromtimestamp(now, self.tz)
        return self.book.reply(open_now=self.hours.open_at(moment), center=self.center,
                               hours=hours_label(self.hours.usual),
                               opens=opens_label(moment, self.hours.next_open(moment)),
                               advice=advice)
