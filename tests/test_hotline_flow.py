"""The inbound call flow and trunk pacing, pure: events in, commands out, time as a number."""

from __future__ import annotations

import pytest
from menubook import BOOK, wav

from callflow import Timeout, UnexpectedEvent, commands_of, notices_of
from engine import AlreadyCalling, Pacer, dial_uri, trunk_target
from hotline import InboundCall, Ivr, Prompts, Route, route_for
from hotline.inbound import TABLE, Stage
from hotline.queue import NoOperator, QueueUpdate, RingOperators
from screening import Action, Decision, ServiceNumber, normalize
from softphone import protocol as p

PROMPTS = Prompts("warning.wav", "connecting.wav")


def new_ivr() -> Ivr:
    return Ivr(CALL, "13800137490", BOOK, wav, "/var/messages/m.wav")


def play(prompt: str) -> p.Play:
    return p.Play(CALL, f"{prompt}.wav", interrupt_on_digit=True)
CALL, OP, OP2 = "w1-in-1", "w1-in-1-op1", "w1-in-1-op2"
DIAL = p.Dial(OP, "sip:duty@op", "13800137490", 20.0, {"X-Screening": "allow"})


def decision(action: Action, status: int | None = None) -> Decision:
    return Decision(action, "test", "test", normalize("13800137490"), status)


@pytest.mark.parametrize(("action", "callee", "hours", "route"), [
    (Action.REJECT, "961108", True, Route.REJECT),
    (Action.REJECT, "123", False, Route.REJECT),
    (Action.ALLOW, "961108", True, Route.OPERATOR),
    (Action.ALLOW, "961108", False, Route.IVR),
    (Action.TAG, "961108", False, Route.IVR),
    (Action.WARN, "961108", True, Route.OPERATOR),
    (Action.ALLOW, "5555", True, Route.NOT_FOUND),
    (Action.ALLOW, "0591961108", False, Route.IVR),
    (Action.ALLOW, "+86591961108", True, Route.OPERATOR),
    (Action.ALLOW, "86591961108", False, Route.IVR),
    (Action.ALLOW, "008659196110", False, Route.NOT_FOUND),
    (Action.ALLOW, "0592961108", False, Route.NOT_FOUND),
    (Action.ALLOW, "", False, Route.NOT_FOUND),
    (Action.REJECT, "0591961108", False, Route.REJECT),
])
def test_route(action: Action, callee: str, hours: bool, route: Route) -> None:
    assert route_for(decision(action), callee, ServiceNumber("961108", "0591"), hours) is route


def test_without_an_area_code_only_the_number_is_the_hotline() -> None:
    line = ServiceNumber("961108")
    assert route_for(decision(Action.ALLOW), "961108", line, False) is Route.IVR
    assert route_for(decision(Action.ALLOW), "0591961108", line, False) is Route.NOT_FOUND


def flow(action: Action, route: Route, status: int | None = None) -> InboundCall:
    return InboundCall(CALL, "13800137490", decision(action, status), route, PROMPTS, new_ivr)


# (action, route, [(event, expected commands)], notices)
SCRIPTS = [
    ("blocked caller", Action.REJECT, Route.REJECT, 603, [
        (None, [p.Reject(CALL, 603)]),
        (p.HungUp(CALL, "local", 603, 0.0), []),
    ], ["ended"]),
    ("unknown callee", Action.ALLOW, Route.NOT_FOUND, None, [
        (None, [p.Reject(CALL, 404)]),
    ], []),
    ("after hours the voice menu takes the call", Action.ALLOW, Route.IVR, None, [
        (None, [p.Answer(CALL), play("welcome")]),
        (p.Dtmf(CALL, "2", "rfc2833"), [play("six_rules")]),
        (p.PlaybackEnded(CALL, "interrupted", "welcome.wav"), []),
        (p.HungUp(CALL, "remote", 200, 8.0), []),
    ], ["ivr", "ivr_prompt", "dtmf", "ivr_menu", "ivr_prompt", "ivr_ended", "ended"]),
    ("operator answers, caller hangs up", Action.ALLOW, Route.OPERATOR, None, [
        (None, [p.Ring(CALL)]),
        (RingOperators(CALL, ("sip:duty@op",)), [DIAL]),
        (p.Ringing(OP, 180), []),
        (p.Answered(OP), [p.Answer(CALL), p.Bridge(CALL, OP)]),
        (p.HungUp(CALL, "remote", 200, 30.0), [p.Hangup(OP)]),
        (p.HungUp(OP, "local", 200, 29.0), []),
    ], ["operator_dialled", "operator_answered", "ended"]),
    ("operator hangs up first", Action.ALLOW, Route.OPERATOR, None, [
        (None, [p.Ring(CALL)]),
        (RingOperators(CALL, ("sip:duty@op",)), [DIAL]),
        (p.Answered(OP), [p.Answer(CALL), p.Bridge(CALL, OP)]),
        (p.HungUp(OP, "remote", 200, 10.0), [p.Hangup(CALL)]),
        (p.HungUp(CALL, "local", 200, 10.0), []),
    ], ["operator_dialled", "operator_answered", "ended"]),
    ("the only operator is busy: the voice menu takes the call", Action.ALLOW, Route.OPERATOR, None, [
        (None, [p.Ring(CALL)]),
        (RingOperators(CALL, ("sip:duty@op",)), [DIAL]),
        (p.Busy(OP, 486), []),
        (p.HungUp(OP, "remote", 486, 0.0), []),
        (NoOperator(CALL), [p.Answer(CALL), play("operators-busy")]),
        (p.PlaybackEnded(CALL, "done", "operators-busy.wav"), [play("welcome")]),
        (p.HungUp(CALL, "remote", 200, 5.0), []),
    ], ["operator_dialled", "operator_unreachable", "queue_gave_up", "ivr", "ivr_prompt", "ivr_ended",
        "ended"]),
    ("ring-all: the first operator to answer takes it", Action.ALLOW, Route.OPERATOR, None, [
        (None, [p.Ring(CALL)]),
        (RingOperators(CALL, ("sip:a@desk", "sip:b@desk")), [
            p.Dial(OP, "sip:a@desk", "13800137490", 20.0, {"X-Screening": "allow"}),
            p.Dial(OP2, "sip:b@desk", "13800137490", 20.0, {"X-Screening": "allow"})]),
        (p.Answered(OP2), [p.Hangup(OP), p.Answer(CALL), p.Bridge(CALL, OP2)]),
        (p.HungUp(OP, "local", 487, 0.0), []),
        (p.HungUp(CALL, "remote", 200, 9.0), [p.Hangup(OP2)]),
        (p.HungUp(OP2, "local", 200, 9.0), []),
    ], ["operator_dialled", "operator_dialled", "operator_answered", "ended"]),
    ("a caller who waits hears their place, then an operator", Action.ALLOW, Route.OPERATOR, None, [
        (None, [p.Ring(CALL)]),
        (QueueUpdate(CALL, 2), [p.Answer(CALL), p.Play(CALL, "queue-2.wav", interrupt_on_digit=True)]),
        (QueueUpdate(CALL, 1), []),
        (Timeout(CALL, "announce"), [p.Play(CALL, "queue-1.wav", interrupt_on_digit=True)]),
        (RingOperators(CALL, ("sip:duty@op",)), [p.Play(CALL, "connecting.wav", loop=True), DIAL]),
        (p.Answered(OP), [p.Stop(CALL), p.Bridge(CALL, OP)]),
    ], ["queued", "operator_dialled", "operator_answered"]),
    ("waiting too long: the voice menu", Action.ALLOW, Route.OPERATOR, None, [
        (None, [p.Ring(CALL)]),
        (QueueUpdate(CALL, 11), [p.Answer(CALL), p.Play(CALL, "queue-many.wav", interrupt_on_digit=True)]),
        (Timeout(CALL, "max_wait"), [play("operators-busy")]),
        (p.PlaybackEnded(CALL, "done", "operators-busy.wav"), [play("welcome")]),
        (RingOperators(CALL, ("sip:duty@op",)), []),  # too late: the call has moved on
        (p.HungUp(CALL, "remote", 200, 130.0), []),
    ], ["queued", "queue_gave_up", "ivr", "ivr_prompt", "ivr_ended", "ended"]),
    ("warned caller hears the warning, then the operator", Action.WARN, Route.OPERATOR, None, [
        (None, [p.Answer(CALL), p.Play(CALL, "warning.wav")]),
        (p.PlaybackEnded(CALL, "done", "warning.wav"), []),
        (RingOperators(CALL, ("sip:duty@op",)), [
            p.Play(CALL, "connecting.wav", loop=True),
            p.Dial(OP, "sip:duty@op", "13800137490", 20.0, {"X-Screening": "warn"})]),
        (p.Answered(OP), [p.Stop(CALL), p.Bridge(CALL, OP)]),
    ], ["operator_dialled", "operator_answered"]),
    ("caller gives up while the operator rings", Action.ALLOW, Route.OPERATOR, None, [
        (None, [p.Ring(CALL)]),
        (RingOperators(CALL, ("sip:duty@op",)), [DIAL]),
        (p.HungUp(CALL, "remote", 487, 3.0), [p.Hangup(OP)]),
        (p.Answered(OP), [p.Hangup(OP)]),  # its 200 crossed our CANCEL
        (p.HungUp(OP, "local", 200, 0.0), []),
    ], ["operator_dialled", "ended"]),
]


@pytest.mark.parametrize(("action", "route", "status", "steps", "notices"),
                         [s[1:] for s in SCRIPTS], ids=[s[0] for s in SCRIPTS])
def test_script(action: Action, route: Route, status: int | None, steps: list, notices: list[str]) -> None:
    call = flow(action, route, status)
    kinds = []
    for event, expected in steps:
        got = call.start(0.0) if event is None else call.on_event(event, 1.0)
        assert commands_of(got) == expected, event
        kinds += [n.KIND for n in notices_of(got)]
    assert kinds == notices


def test_finished_only_when_both_legs_are_gone() -> None:
    call = flow(Action.ALLOW, Route.OPERATOR)
    call.start(0.0)
    call.on_event(RingOperators(CALL, ("sip:duty@op",)), 0.5)
    call.on_event(p.Answered(OP), 1.0)
    call.on_event(p.HungUp(CALL, "remote", 200, 1.0), 2.0)
    assert not call.finished
    call.on_event(p.HungUp(OP, "local", 200, 1.0), 2.0)
    assert call.finished


def test_an_event_without_a_row_names_state_and_event() -> None:
    call = flow(Action.ALLOW, Route.IVR)
    call.start(0.0)
    call.on_event(p.HungUp(CALL, "remote", 200, 1.0), 1.0)
    with pytest.raises(UnexpectedEvent, match="no transition for hung_up .* in state ended"):
        call.on_event(p.HungUp(CALL, "remote", 200, 1.0), 2.0)


def test_every_stage_but_new_has_rows() -> None:
    assert TABLE.states() == set(Stage) - {Stage.NEW}


def test_pacer_channels_and_calls_per_second() -> None:
    pacer = Pacer(max_channels=2, max_cps=4)
    assert pacer.wait_s(0.0) == 0
    pacer.take(1, "a", 0.0)
    assert pacer.wait_s(0.0) == pytest.approx(0.25)
    assert pacer.wait_s(0.25) == 0
    pacer.take(2, "b", 0.25)
    assert pacer.wait_s(10.0) is None  # both channels busy
    pacer.release(1)
    assert pacer.wait_s(10.0) == 0


def test_pacer_never_two_calls_to_one_number() -> None:
    pacer = Pacer(max_channels=5, max_cps=100)
    pacer.take(8613800137490, "a", 0.0)
    assert pacer.busy(8613800137490)
    with pytest.raises(AlreadyCalling):
        pacer.take(8613800137490, "b", 1.0)
    pacer.release(8613800137490)
    pacer.take(8613800137490, "b", 1.0)


@pytest.mark.parametrize(("uri", "target"), [
    ("sip:127.0.0.1:5070", "127.0.0.1:5070"),
    ("sip:gw@carrier.example:5060;transport=udp", "carrier.example:5060"),
    ("sips:[::1]:5061", "[::1]:5061"),
])
def test_trunk_target(uri: str, target: str) -> None:
    assert trunk_target(uri) == target
    assert dial_uri("13800137490", uri) == f"sip:13800137490@{target}"
