"""The voice menu, pure: worker events in, commands out, time as a number."""

from __future__ import annotations

import pytest
from menubook import BOOK, wav

from callflow import Timeout, Timer, UnexpectedEvent, commands_of, notices_of, timers_of
from hotline import Ivr, IvrStage, MessageSaved, MessageSettings, SaveMessage
from hotline.ivr import TABLE
from softphone import protocol as p

C = "w1-in-1"
REC = "/var/messages/20261201-230000-w1-in-1.wav"


def play(prompt: str) -> p.Play:
    return p.Play(C, wav(prompt), interrupt_on_digit=True)


def done(prompt: str) -> p.PlaybackEnded:
    return p.PlaybackEnded(C, "done", wav(prompt))


def cut(prompt: str) -> p.PlaybackEnded:
    return p.PlaybackEnded(C, "interrupted", wav(prompt))


def digit(d: str, method: str = "rfc2833") -> p.Dtmf:
    return p.Dtmf(C, d, method)  # type: ignore[arg-type]


def timeout(name: str) -> Timeout:
    return Timeout(C, name)


HUNG_UP = p.HungUp(C, "remote", 200, 30.0)
INTO_MAIN = [(done("welcome"), [play("main_long")]), (done("main_long"), [])]

# (name, [(event, expected commands)], the path at the end)
SCRIPTS = [
    ("a fraud type two menus down", [
        *INTO_MAIN,
        (digit("1"), [play("types_long")]),
        (cut("main_long"), []),
        (digit("2"), [play("type_investment")]),
        (done("type_investment"), [play("types_short")]),
        (HUNG_UP, []),
    ], "main>1>types>2"),
    ("the same by SIP INFO", [
        *INTO_MAIN,
        (digit("1", "info"), [play("types_long")]),
        (digit("2", "info"), [play("type_investment")]),
        (HUNG_UP, []),
    ], "main>1>types>2"),
    ("a digit during the welcome goes to the entry menu", [
        (digit("2"), [play("six_rules")]),
        (cut("welcome"), []),
        (done("six_rules"), [play("main_short")]),
        (HUNG_UP, []),
    ], "main>2"),
    ("# goes back, * says the menu again", [
        *INTO_MAIN,
        (digit("1"), [play("types_long")]),
        (digit("#"), [play("main_long")]),
        (digit("*"), [play("main_long")]),
        (HUNG_UP, []),
    ], "main>1>types>main"),
    ("# in the entry menu says it again", [
        *INTO_MAIN,
        (digit("#"), [play("main_long")]),
        (HUNG_UP, []),
    ], "main"),
    ("a multi-digit option after the inter-digit pause decides", [
        *INTO_MAIN,
        (digit("1"), [play("types_long")]),
        (done("types_long"), []),
        (digit("1"), []),  # 1 or 12? wait a moment
        (timeout("interdigit"), [play("type_loan")]),
        (HUNG_UP, []),
    ], "main>1>types>1"),
    ("two digits typed quickly", [
        *INTO_MAIN,
        (digit("1"), [play("types_long")]),
        (digit("1"), []),
        (digit("2"), [play("type_prize")]),
        (HUNG_UP, []),
    ], "main>1>types>12"),
    ("an invalid digit: sorry, and the short greeting", [
        *INTO_MAIN,
        (digit("7"), [play("invalid")]),
        (done("invalid"), [play("main_short")]),
        (done("main_short"), []),
        (digit("2"), [play("six_rules")]),
        (HUNG_UP, []),
    ], "main>2"),
    ("three invalid digits: the goodbye, never a dead line", [
        *INTO_MAIN,
        (digit("7"), [play("invalid")]),
        (digit("8"), [play("invalid")]),
        (digit("9"), [play("goodbye")]),
        (done("goodbye"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 40.0), []),
    ], "main"),
    ("silence: the long greeting again, then the goodbye", [
        *INTO_MAIN,
        (timeout("digit"), [play("main_long")]),
        (done("main_long"), []),
        (timeout("digit"), [play("main_long")]),
        (done("main_long"), []),
        (timeout("digit"), [play("goodbye")]),
        (done("goodbye"), [p.Hangup(C)]),
        (p.HungUp(C, "local", 200, 40.0), []),
    ], "main"),
    ("a good digit resets the count of failures; a menu may have its own invalid prompt", [
        *INTO_MAIN,
        (digit("7"), [play("invalid")]),
        (digit("8"), [play("invalid")]),
        (digit("1"), [play("types_long")]),
        (digit("7"), [play("types_invalid")]),
        (digit("8"), [play("types_invalid")]),
        (HUNG_UP, []),
    ], "main>1>types"),
]


@pytest.mark.parametrize(("steps", "path"), [s[1:] for s in SCRIPTS], ids=[s[0] for s in SCRIPTS])
def test_script(steps: list, path: str) -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC)
    assert commands_of(ivr.start(0.0)) == [p.Answer(C), play("welcome")]
    now = 1.0
    for event, expected in steps:
        assert commands_of(ivr.on_event(event, now)) == expected, event
        now += 1.0
    assert ivr.finished and ivr.path == path


def test_the_digit_timer_follows_each_greeting_and_stops_on_a_digit() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC)
    ivr.start(0.0, answered=True)
    ivr.on_event(done("welcome"), 1.0)
    assert timers_of(ivr.on_event(done("main_long"), 5.0)) == [Timer(C, "digit", 15.0)]
    assert Timer(C, "digit", None) in timers_of(ivr.on_event(digit("1"), 6.0))


def test_every_step_is_a_notice_with_the_path() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC)
    notes = notices_of(ivr.start(0.0))
    for event in (done("welcome"), digit("1"), digit("2"), HUNG_UP):
        notes += notices_of(ivr.on_event(event, 1.0))
    kinds = [(n.KIND, getattr(n, "path", "")) for n in notes]
    assert kinds == [("ivr_prompt", ""), ("ivr_menu", "main"), ("ivr_prompt", "main"),
                     ("dtmf", ""), ("ivr_menu", "main>1>types"), ("ivr_prompt", "main>1>types"),
                     ("dtmf", ""), ("ivr_prompt", "main>1>types>2"), ("ivr_ended", "main>1>types>2")]
    asked = [n for n in notes if n.KIND == "ivr_prompt" and n.fraud_type]  # type: ignore[attr-defined]
    assert [n.fraud_type for n in asked] == ["investment"]  # type: ignore[attr-defined]


MESSAGE = MessageSettings(max_s=60, silence_s=3, initial_silence_s=8)


def leave_message(ivr: Ivr) -> list:
    ivr.start(0.0, answered=True)
    ivr.on_event(done("welcome"), 1.0)
    assert commands_of(ivr.on_event(digit("3"), 2.0)) == [play("message_intro")]
    assert commands_of(ivr.on_event(done("message_intro"), 6.0)) == [play("beep")]
    out = ivr.on_event(done("beep"), 6.5)
    assert commands_of(out) == [p.Record(C, REC)]
    return timers_of(out)


def test_a_message_ends_after_the_silence_that_follows_speech() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC, MESSAGE)
    assert leave_message(ivr) == [Timer(C, "message", 66.5), Timer(C, "silence", 14.5)]
    assert timers_of(ivr.on_event(p.SpeechStarted(C), 7.0)) == [Timer(C, "silence", None)]
    assert timers_of(ivr.on_event(p.SpeechEnded(C, 9.0), 16.5)) == [Timer(C, "silence", 19.0)]
    assert commands_of(ivr.on_event(timeout("silence"), 19.0)) == [p.StopRecording(C)]
    out = ivr.on_event(p.RecordingSaved(C, REC, 12.4), 19.2)
    [save] = [o for o in out if isinstance(o, SaveMessage)]
    assert (save.file, save.duration_s, save.path, save.caller) == (REC, 12.4, "main>3>message",
                                                                    "13800137490")
    assert commands_of(out) == []  # no thanks before it is stored
    assert commands_of(ivr.on_event(MessageSaved(C, "m1"), 19.3)) == [play("message_thanks")]
    assert commands_of(ivr.on_event(done("message_thanks"), 25.0)) == [p.Hangup(C)]


def test_a_message_ends_on_hash() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC, MESSAGE)
    leave_message(ivr)
    ivr.on_event(p.SpeechStarted(C), 7.0)
    assert commands_of(ivr.on_event(digit("5"), 9.0)) == []  # other digits are part of it
    assert commands_of(ivr.on_event(digit("#"), 10.0)) == [p.StopRecording(C)]
    assert ivr.state is IvrStage.SAVING


def test_a_message_never_spoken_ends_after_the_initial_silence() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC, MESSAGE)
    leave_message(ivr)
    assert commands_of(ivr.on_event(timeout("silence"), 14.5)) == [p.StopRecording(C)]


def test_the_longest_message() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC, MESSAGE)
    leave_message(ivr)
    ivr.on_event(p.SpeechStarted(C), 7.0)
    assert commands_of(ivr.on_event(timeout("message"), 66.5)) == [p.StopRecording(C)]


def test_a_message_that_cannot_be_stored_is_said_to_have_failed() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC, MESSAGE)
    leave_message(ivr)
    ivr.on_event(digit("#"), 10.0)
    ivr.on_event(p.RecordingSaved(C, REC, 3.5), 10.2)
    assert commands_of(ivr.on_event(MessageSaved(C, None, "disk full"), 10.3)) == [play("message_failed")]


def test_hanging_up_while_speaking_still_leaves_the_message() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC, MESSAGE)
    leave_message(ivr)
    ivr.on_event(p.SpeechStarted(C), 7.0)
    out = ivr.on_event(HUNG_UP, 20.0)
    [save] = [o for o in out if isinstance(o, SaveMessage)]
    assert save.duration_s == 13.5 and ivr.finished


def test_an_event_without_a_row_names_state_and_event() -> None:
    ivr = Ivr(C, "13800137490", BOOK, wav, REC)
    ivr.start(0.0)
    with pytest.raises(UnexpectedEvent, match="voice menu: no transition for digit_timeout .* welcome"):
        ivr.on_event(timeout("digit"), 1.0)


def test_every_stage_is_in_the_table() -> None:
    assert TABLE.states() == set(IvrStage)


@pytest.mark.parametrize("stage", list(IvrStage))
def test_the_callers_voice_changes_nothing_outside_a_message(stage: IvrStage) -> None:
    """Found by bench/ivr.py: callers talking over the welcome had their calls failed."""
    ivr = Ivr(C, "13800137490", BOOK, wav, REC)
    ivr.start(0.0)
    ivr.state = stage
    for event in (p.SpeechStarted(C), p.SpeechEnded(C, 1.2)):
        out = ivr.on_event(event, 1.0)
        if stage is not IvrStage.RECORDING:
            assert out == [] and ivr.state is stage
