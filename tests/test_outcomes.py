"""One table from what the network said to what the worker reports and what the attempt's
outcome is: the worker's event and the dialer's outcome come from the same map, so they agree
(408 and 603 were read two ways before)."""

from __future__ import annotations

import pytest

from dialer import Outcome, outcome_of_heard, outcome_of_status
from softphone.outcome import ANNOUNCEMENT_CLASSES, BY_ANNOUNCEMENT, Ending, ending_of, q850_cause

# status, Q.850 cause, rang → the worker's event, the attempt's outcome
ROWS = [
    (486, None, False, "busy", Outcome.BUSY),
    (600, None, True, "busy", Outcome.BUSY),
    (480, None, True, "no_answer", Outcome.NO_ANSWER),
    (487, None, True, "no_answer", Outcome.NO_ANSWER),
    (408, None, True, "no_answer", Outcome.RANG_OUT),  # a ring that timed out: call waiting
    (408, None, False, "failed", Outcome.TRUNK_ERROR),  # no response at all: the trunk's fault
    (603, None, True, "failed", Outcome.REJECTED),  # Decline: turned down, counted, retried
    (404, None, False, "failed", Outcome.INVALID_NUMBER),
    (410, None, False, "failed", Outcome.INVALID_NUMBER),
    (484, None, False, "failed", Outcome.INVALID_NUMBER),
    (604, None, False, "failed", Outcome.INVALID_NUMBER),
    (403, None, False, "failed", Outcome.TRUNK_ERROR),
    (503, None, False, "failed", Outcome.TRUNK_ERROR),
    (500, None, True, "failed", Outcome.TRUNK_ERROR),
    (400, None, False, "failed", Outcome.TRUNK_ERROR),  # the worker could not send the INVITE
    (499, None, True, "no_answer", Outcome.NO_ANSWER),  # an unknown 4xx says nothing more
    # RFC 3326: the Q.850 cause decides over the status
    (480, 17, True, "busy", Outcome.BUSY),
    (487, 17, True, "busy", Outcome.BUSY),
    (480, 1, False, "failed", Outcome.INVALID_NUMBER),
    (480, 18, True, "no_answer", Outcome.NO_ANSWER),
    (480, 19, True, "no_answer", Outcome.NO_ANSWER),
    (480, 20, False, "failed", Outcome.UNREACHABLE),
    (480, 21, True, "failed", Outcome.REJECTED),
    (503, 34, False, "failed", Outcome.TRUNK_ERROR),
    (480, 42, False, "failed", Outcome.TRUNK_ERROR),
    (486, 16, False, "busy", Outcome.BUSY),  # normal clearing names no reason: the status decides
    (404, 31, False, "failed", Outcome.INVALID_NUMBER),
]


@pytest.mark.parametrize(("status", "cause", "rang", "event", "outcome"), ROWS)
def test_status_and_cause_to_event_and_outcome(status: int, cause: int | None, rang: bool,
                                               event: str, outcome: Outcome) -> None:
    ending = ending_of(status, cause, rang)
    worker_event = {Ending.BUSY: "busy", Ending.NO_ANSWER: "no_answer"}.get(ending, "failed")
    assert (worker_event, outcome_of_status(status, rang, cause)) == (event, outcome)


@pytest.mark.parametrize(("values", "cause"), [
    (['Q.850;cause=17;text="User busy"'], 17),
    (["q.850 ; cause = 20"], 20),
    (['SIP;cause=480;text="x"', "Q.850;cause=1"], 1),
    (['SIP;cause=200;text="Call completed elsewhere", Q.850;cause=21'], 21),
    (['Q.850;text="a, b";cause=18'], 18),
    (['SIP;cause=487'], None),
    (["Q.850;cause=abc"], None),
    ([], None),
])
def test_the_q850_cause_of_reason_headers(values: list[str], cause: int | None) -> None:
    assert q850_cause(values) == cause


@pytest.mark.parametrize(("by", "what", "outcome"), [
    ("announcement", "busy", Outcome.BUSY),
    ("announcement", "off", Outcome.UNREACHABLE),
    ("announcement", "unreachable", Outcome.UNREACHABLE),
    ("announcement", "invalid", Outcome.INVALID_NUMBER),
    ("announcement", "suspended", Outcome.SUSPENDED),
    ("tone", "busy", Outcome.BUSY),
    ("tone", "congestion", Outcome.TRUNK_ERROR),
    ("tone", "vacant", Outcome.INVALID_NUMBER),
    ("tone", "sit", Outcome.UNREACHABLE),
    ("tone", "ringback", None),  # it rings: nothing ends
])
def test_what_early_media_said(by: str, what: str, outcome: Outcome | None) -> None:
    assert outcome_of_heard(by, what) is outcome


def test_the_announcement_classes_of_the_contract() -> None:
    assert ANNOUNCEMENT_CLASSES == ("busy", "off", "unreachable", "invalid", "suspended", "ringing")
    assert set(BY_ANNOUNCEMENT) == set(ANNOUNCEMENT_CLASSES) - {"ringing"}
