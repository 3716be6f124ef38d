"""The warning call, pure: worker events in, commands out, time as a number."""

from __future__ import annotations

import pytest

from audio.amd import AmdSettings
from callflow import StateTable, Timeout, Timer, UnexpectedEvent, commands_of, timers_of
from dialer import Outcome, Stage, WarningCall, WarningScript
from dialer.call import TABLE, On
from dialer.warning import TaskCancelled
from softphone import protocol as p

C, OFF = "t1-1", "t1-1-officer"
SCRIPT = WarningScript(warning="w.wav", thanks="thanks.wav", goodbye="bye.wav", machine="m.wav",
                       connecting="conn.wav", officer_unreachable="away.wav", caller_id="96110",
                       ring_timeout_s=40, officer_uri="sip:duty@op", repeats=2, ack_wait_s=6,
                       max_call_s=300, greeting_wait_s=20, amd=AmdSettings())
DIAL = [p.Dial(C, "sip:13800137490@trunk", "96110", 40, {}),
        p.DetectMachine(C, 2.5, 1.5, 0.8, 5.0, 0.1, 0.05, 3, 5.0)]
WARN = p.Play(C, "w.wav", interrupt_on_digit=True)


def answered() -> list:
    return [(p.Ringing(C, 180), []), (p.Answered(C), [WARN])]


# (name, [(event, expected commands)], outcome)
SCRIPTS = [
    ("busy", [(p.Busy(C, 486), []), (p.HungUp(C, "remote", 486, 0.0), [])], Outcome.BUSY),
    ("rang out", [(p.Ringing(C, 180), []), (p.NoAnswer(C, 408), []),
                  (p.HungUp(C, "local", 487, 0.0), [])], Outcome.RANG_OUT),
    ("no response at all", [(p.NoAnswer(C, 408), []), (p.HungUp(C, "local", 408, 0.0), [])],
     Outcome.TRUNK_ERROR),
    ("not found", [(p.Failed(C, 404, "Not Found"), []), (p.HungUp(C, "remote", 404, 0.0), [])],
     Outcome.INVALID_NUMBER),
    ("ack while the warning plays (barge-in)", [
        *answered(),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.PlaybackEnded(C, "interrupted", "w.wav"), []),  # the warning the digit cut short
        (p.PlaybackEnded(C, "done", "thanks.wav"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 9.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("ack by SIP INFO after the warning", [
        *answered(),
        (p.PlaybackEnded(C, "done", "w.wav"), []),
        (p.Dtmf(C, "1", "info"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.PlaybackEnded(C, "done", "thanks.wav"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 9.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("no digit: said again, then goodbye", [
        *answered(),
        (p.PlaybackEnded(C, "done", "w.wav"), []),
        (Timeout(C, "ack"), [WARN]),
        (p.PlaybackEnded(C, "done", "w.wav"), []),
        (Timeout(C, "ack"), [p.Play(C, "bye.wav", interrupt_on_digit=True)]),
        (p.PlaybackEnded(C, "done", "bye.wav"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 40.0), []),
    ], Outcome.UNACKNOWLEDGED),
    ("hangs up in the middle of the warning", [
        *answered(),
        (p.HungUp(C, "remote", 200, 3.0), []),
    ], Outcome.UNACKNOWLEDGED),
    ("another digit changes nothing", [
        *answered(),
        (p.Dtmf(C, "5", "rfc2833"), []),
        (p.PlaybackEnded(C, "interrupted", "w.wav"), []),
        (p.HungUp(C, "remote", 200, 3.0), []),
    ], Outcome.UNACKNOWLEDGED),
    ("0 reaches the officer, who answers", [
        *answered(),
        (p.Dtmf(C, "0", "rfc2833"), [
            p.Play(C, "conn.wav", loop=True),
            p.Dial(OFF, "sip:duty@op", "96110", 30.0, {"X-Warning-Task": "t1"})]),
        (p.PlaybackEnded(C, "interrupted", "w.wav"), []),
        (p.Ringing(OFF, 180), []),
        (p.Answered(OFF), [p.Stop(C), p.Bridge(C, OFF)]),
        (p.PlaybackEnded(C, "stopped", "conn.wav"), []),
        (p.HungUp(OFF, "remote", 200, 60.0), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 70.0), []),
    ], Outcome.TRANSFERRED),
    ("the officer is busy: the warning resumes", [
        *answered(),
        (p.Dtmf(C, "0", "info"), [
            p.Play(C, "conn.wav", loop=True),
            p.Dial(OFF, "sip:duty@op", "96110", 30.0, {"X-Warning-Task": "t1"})]),
        (p.Busy(OFF, 486), [p.Play(C, "away.wav", interrupt_on_digit=True)]),
        (p.HungUp(OFF, "remote", 486, 0.0), []),
        (p.PlaybackEnded(C, "done", "away.wav"), [WARN]),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 30.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("the person hangs up while the officer rings", [
        *answered(),
        (p.Dtmf(C, "0", "rfc2833"), [
            p.Play(C, "conn.wav", loop=True),
            p.Dial(OFF, "sip:duty@op", "96110", 30.0, {"X-Warning-Task": "t1"})]),
        (p.HungUp(C, "remote", 200, 10.0), [p.Hangup(OFF)]),
        (p.HungUp(OFF, "local", 487, 0.0), []),
    ], Outcome.UNACKNOWLEDGED),
    ("a machine: the greeting ends, a short message is left", [
        *answered(),
        (p.MachineDetection(C, "machine", "LONGGREETING", 2, 1.5), [p.Stop(C)]),
        (p.PlaybackEnded(C, "stopped", "w.wav"), []),
        (p.SpeechEnded(C, 4.2), [p.Play(C, "m.wav", interrupt_on_digit=True)]),
        (p.PlaybackEnded(C, "done", "m.wav"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 12.0), []),
    ], Outcome.MACHINE),
    ("a machine whose greeting never ends", [
        *answered(),
        (p.MachineDetection(C, "machine", "MAXWORDS", 3, 1.0), [p.Stop(C)]),
        (Timeout(C, "greeting"), [p.Play(C, "m.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 30.0), []),
    ], Outcome.MACHINE),
    ("a digit is proof of a person whatever the detector thought", [
        *answered(),
        (p.MachineDetection(C, "machine", "LONGGREETING", 2, 1.5), [p.Stop(C)]),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("a digit before the verdict: the verdict is ignored", [
        *answered(),
        (p.Dtmf(C, "7", "rfc2833"), []),
        (p.MachineDetection(C, "machine", "LONGGREETING", 2, 1.5), []),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.UNACKNOWLEDGED),
    ("silence is a person: the warning goes on", [
        *answered(),
        (p.MachineDetection(C, "unsure", "INITIALSILENCE", 0, 0.0), []),
        (p.PlaybackEnded(C, "done", "w.wav"), []),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("the worker died during the warning", [
        *answered(),
        (p.HungUp(C, "lost", 500, 3.0), []),
    ], Outcome.LOST),
    ("the worker died, but the ack was in", [
        *answered(),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "lost", 500, 3.0), []),
    ], Outcome.ACKNOWLEDGED),
    # --- what the network says before the answer (early media) ---
    ("a busy announcement in early media: cancelled at once", [
        (p.Ringing(C, 183), []),
        (p.Progress(C, "announcement", "busy", 2.1, "a1b2c3", score=0.12), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.BUSY),
    ("the busy tone", [
        (p.Ringing(C, 183), []),
        (p.Progress(C, "tone", "busy", 1.1), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.BUSY),
    ("switched off: unreachable", [
        (p.Ringing(C, 183), []),
        (p.Progress(C, "announcement", "off", 2.4, "a2"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.UNREACHABLE),
    ("no such number (空号): invalid", [
        (p.Progress(C, "announcement", "invalid", 2.0, "a3"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.INVALID_NUMBER),
    ("the vacant-number tone: invalid", [
        (p.Progress(C, "tone", "vacant", 2.0), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.INVALID_NUMBER),
    ("suspended (停机)", [
        (p.Progress(C, "announcement", "suspended", 2.0, "a4"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.SUSPENDED),
    ("congestion is the network's, not the person's", [
        (p.Progress(C, "tone", "congestion", 1.5), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.TRUNK_ERROR),
    ("the verdict and the late final response cross: the verdict stands", [
        (p.Progress(C, "announcement", "busy", 2.0, "a1"), [p.Hangup(C)]),
        (p.NoAnswer(C, 480), []),
        (p.HungUp(C, "remote", 480, 0.0), []),
    ], Outcome.BUSY),
    ("the ringback tone and a 彩铃 ring: then the person answers", [
        (p.Ringing(C, 183), []),
        (p.Progress(C, "tone", "ringback", 1.0), []),
        (p.SpeechEnded(C, 3.0), []),  # the 彩铃's singer
        (p.Answered(C), [WARN]),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("a machine verdict before the answer is noted, never acted on", [
        (p.Ringing(C, 183), []),
        (p.MachineDetection(C, "machine", "LONGGREETING", 3, 1.6), []),
        (p.Answered(C), [WARN]),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("digits in early media are not a person", [
        (p.Dtmf(C, "1", "rfc2833"), []),
        (p.Busy(C, 486), []),
        (p.HungUp(C, "remote", 486, 0.0), []),
    ], Outcome.BUSY),
    ("a 480 with Reason Q.850 cause 17 is busy", [
        (p.Ringing(C, 180), []),
        (p.NoAnswer(C, 480, 17), []),
        (p.HungUp(C, "remote", 480, 0.0), []),
    ], Outcome.BUSY),
    ("a 480 with cause 20 (subscriber absent) is unreachable", [
        (p.Failed(C, 480, "Temporarily Unavailable", 20), []),
        (p.HungUp(C, "remote", 480, 0.0), []),
    ], Outcome.UNREACHABLE),
    ("unknown early media kept, then the 480", [
        (p.Ringing(C, 183), []),
        (p.EarlyMediaKept(C, "h1", "/x/h1.wav", 9.5, 480), []),
        (p.NoAnswer(C, 480), []),
        (p.HungUp(C, "remote", 480, 0.0), []),
    ], Outcome.NO_ANSWER),
    # --- an operator cancels the task during the call ---
    ("cancelled while it rings: the call is cancelled", [
        (p.Ringing(C, 180), []),
        (TaskCancelled(C), [p.Hangup(C)]),
        (p.HungUp(C, "local", 487, 0.0), []),
    ], Outcome.NO_ANSWER),
    ("cancelled once answered: the warning goes on", [
        *answered(),
        (TaskCancelled(C), []),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.ACKNOWLEDGED),
    # --- a carrier that answers (200), then announces ---
    ("answered, then the busy announcement: busy, not a machine", [
        *answered(),
        (p.MachineDetection(C, "machine", "LONGGREETING", 3, 1.5), [p.Stop(C)]),
        (p.PlaybackEnded(C, "stopped", "w.wav"), []),
        (p.Progress(C, "announcement", "busy", 2.2, "a1", answered=True), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 3.0), []),
    ], Outcome.BUSY),
    ("answered, announced before the detector spoke", [
        *answered(),
        (p.Progress(C, "announcement", "off", 2.0, "a2", answered=True), [p.Hangup(C)]),
        (p.MachineDetection(C, "machine", "LONGGREETING", 3, 1.5), []),
        (p.HungUp(C, "local", 200, 3.0), []),
    ], Outcome.UNREACHABLE),
    ("answered, the message for a machine already playing: the announcement wins", [
        *answered(),
        (p.MachineDetection(C, "machine", "MAXWORDS", 3, 1.0), [p.Stop(C)]),
        (Timeout(C, "greeting"), [p.Play(C, "m.wav", interrupt_on_digit=True)]),
        (p.Progress(C, "announcement", "busy", 2.9, "a1", answered=True), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 5.0), []),
    ], Outcome.BUSY),
    ("a person pressed a digit: an announcement after it is noted only", [
        *answered(),
        (p.Dtmf(C, "5", "rfc2833"), []),
        (p.Progress(C, "announcement", "busy", 2.0, "a1", answered=True), []),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("acknowledged: the network has nothing more to say", [
        *answered(),
        (p.Dtmf(C, "1", "rfc2833"), [p.Play(C, "thanks.wav", interrupt_on_digit=True)]),
        (p.Progress(C, "announcement", "busy", 2.0, "a1", answered=True), []),
        (p.HungUp(C, "remote", 200, 8.0), []),
    ], Outcome.ACKNOWLEDGED),
    ("a call that goes on too long is ended", [
        *answered(),
        (p.PlaybackEnded(C, "done", "w.wav"), []),
        (Timeout(C, "call"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 300.0), []),
    ], Outcome.UNACKNOWLEDGED),
]


@pytest.mark.parametrize(("steps", "outcome"), [s[1:] for s in SCRIPTS], ids=[s[0] for s in SCRIPTS])
def test_script(steps: list, outcome: Outcome) -> None:
    call = WarningCall(C, "t1", 1, "sip:13800137490@trunk", SCRIPT)
    assert commands_of(call.start(0.0)) == DIAL
    now = 1.0
    for event, expected in steps:
        assert commands_of(call.on_event(event, now)) == expected, event
        now += 1.0
    assert call.outcome is outcome
    assert call.finished


def test_timers_are_asked_for_and_cancelled() -> None:
    call = WarningCall(C, "t1", 1, "sip:x@trunk", SCRIPT)
    call.start(0.0)
    assert timers_of(call.on_event(p.Answered(C), 10.0)) == [Timer(C, "call", 310.0)]
    assert timers_of(call.on_event(p.PlaybackEnded(C, "done", "w.wav"), 30.0)) == [Timer(C, "ack", 36.0)]
    assert timers_of(call.on_event(p.Dtmf(C, "1", "rfc2833"), 31.0)) == [Timer(C, "ack", None)]


def test_recording_starts_on_answer() -> None:
    call = WarningCall(C, "t1", 1, "sip:x@trunk", SCRIPT, record_to="/var/rec/t1-1.wav")
    call.start(0.0)
    assert commands_of(call.on_event(p.Answered(C), 1.0)) == [p.Record(C, "/var/rec/t1-1.wav"), WARN]


def test_no_detector_when_amd_is_off() -> None:
    call = WarningCall(C, "t1", 1, "sip:x@trunk", WarningScript(**{**SCRIPT.__dict__, "amd": None}))
    assert [type(c) for c in commands_of(call.start(0.0))] == [p.Dial]


def test_the_table_is_total_every_trigger_has_a_row_in_every_stage() -> None:
    """A surprise from the network (an event no row foresaw) must never end a call that could
    reach a person as an uncounted error: every pair is decided, even if only to ignore it."""
    missing = [(s.name, o.name) for s in Stage for o in On if (s, o) not in TABLE.rows]
    assert missing == []


def test_an_event_without_a_row_names_state_and_event() -> None:
    class Partial(WarningCall):
        TABLE = StateTable("warning call", {})

    call = Partial(C, "t1", 1, "sip:x@trunk", SCRIPT)
    call.start(0.0)
    with pytest.raises(UnexpectedEvent, match="warning call: no transition for ack_timeout .* dialling"):
        call.on_event(Timeout(C, "ack"), 1.0)


def test_progress_is_asked_for_after_the_dial() -> None:
    listen = p.DetectProgress("", "cn", "/var/announcements", 6.0, "/var/announcements/heard")
    call = WarningCall(C, "t1", 1, "sip:x@trunk", WarningScript(**{**SCRIPT.__dict__,
                                                                    "progress": listen}))
    assert commands_of(call.start(0.0))[2] == p.DetectProgress(
        C, "cn", "/var/announcements", 6.0, "/var/announcements/heard")


@pytest.mark.parametrize(("steps", "how"), [
    ([p.Progress(C, "announcement", "busy", 2.1, "a1b2c3", score=0.12),
      p.HungUp(C, "local", 487, 0.0)],
     {"by": "announcement", "class": "busy", "announcement": "a1b2c3", "after_s": 2.1,
      "score": 0.12, "answered": False}),
    ([p.Progress(C, "tone", "busy", 1.1), p.HungUp(C, "local", 487, 0.0)],
     {"by": "tone", "tone": "busy", "after_s": 1.1}),
    ([p.NoAnswer(C, 480, 17), p.HungUp(C, "remote", 480, 0.0)],
     {"by": "q850", "status": 480, "q850": 17}),
    ([p.NoAnswer(C, 480, 16), p.HungUp(C, "remote", 480, 0.0)],
     {"by": "status", "status": 480, "q850": 16}),
    ([p.Busy(C, 486), p.HungUp(C, "remote", 486, 0.0)], {"by": "status", "status": 486}),
    ([p.HungUp(C, "remote", 503, 0.0)], {"by": "status", "status": 503}),
    ([p.Answered(C), p.Dtmf(C, "1", "rfc2833")], {"by": "digit", "digit": "1"}),
    ([p.Answered(C), p.HungUp(C, "lost", 500, 3.0)], {"by": "worker_lost"}),
])
def test_each_outcome_says_how_it_was_known(steps: list, how: dict) -> None:
    call = WarningCall(C, "t1", 1, "sip:x@trunk", SCRIPT)
    call.start(0.0)
    for event in steps:
        call.on_event(event, 1.0)
    assert call.how == how


def test_every_stage_is_in_the_table() -> None:
    assert TABLE.states() == set(Stage)
