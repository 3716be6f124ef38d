"""Pure parts of the softphone worker: protocol, digit collection, speech hangover, SIP text."""

from __future__ import annotations

import pytest

from softphone import protocol as p
from softphone.digits import CollectResult, DigitCollector
from softphone.sipmsg import SourcePolicy, caller_of, header, request_uri, user_part
from softphone.speech import SpeechDetector, SpeechEnd, SpeechStart

COMMANDS = [
    p.Dial("c1", "sip:13800138000@127.0.0.1:5070", "96110", 30.0, {"X-Task-Id": "t1"}),
    p.Answer("c1"), p.Ring("c1"), p.Reject("c1", 486), p.Redirect("c1", "sip:110@h"),
    p.Play("c1", "/p.wav", loop=True, interrupt_on_digit=True), p.Stop("c1"),
    p.Record("c1", "/r.wav"), p.Collect("c1", 4, 5.0, "#"), p.Transfer("c1", "sip:0@h"),
    p.Hangup("c1"), p.Hangup("c1", 486), p.Shutdown(), p.Stats(),
]
EVENTS = [
    p.Ready("w1", 5080, 4), p.Incoming("w1-in-1", "138", "961108", "1.2.3.4:5060", "cid", "Z"),
    p.Ringing("c1", 183), p.Answered("c1"), p.Busy("c1", 486), p.NoAnswer("c1", 408),
    p.Failed("c1", 404, "Not Found"), p.Dtmf("c1", "5", "info"),
    p.PlaybackEnded("c1", "done", "/p.wav"), p.Digits("c1", "12", "terminator"),
    p.SpeechStarted("c1"), p.SpeechEnded("c1", 1.25), p.HungUp("c1", "remote", 200, 3.5),
    p.Refused("10.0.0.1:5060", "138"), p.Error("bad", None), p.Transferred("c1", 200),
    p.Registration(200, "OK", 300), p.WorkerStats("w1", 2, 4),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.TYPE)
def test_command_roundtrip(command: p.Command) -> None:
    assert p.decode_command(p.encode(command)) == command


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.TYPE)
def test_event_roundtrip(event: p.Event) -> None:
    line = p.encode(event)
    assert "\n" not in line
    assert p.decode_event(line) == event


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("nope", "not JSON"),
        ("[1]", "JSON object"),
        ('{"call": "c1"}', "unknown command type None"),
        ('{"type": "fly"}', "unknown command type 'fly'"),
        ('{"type": "answer"}', "missing field(s) call"),
        ('{"type": "answer", "call": "c1", "extra": 1}', "unknown field(s) extra"),
        ('{"type": "reject", "call": "c1", "status": "603"}', "reject.status"),
        ('{"type": "play", "call": "c1", "file": "f", "loop": 1}', "play.loop"),
        ('{"type": "dial", "call": "c", "uri": "u", "headers": {"X": 1}}', "dial.headers"),
    ],
)
def test_malformed_commands_name_the_problem(line: str, problem: str) -> None:
    with pytest.raises(p.ProtocolError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        p.decode_command(line)


def test_int_accepted_where_number_expected() -> None:
    assert p.decode_command('{"type":"dial","call":"c","uri":"u","ring_timeout_s":2}') == p.Dial(
        "c", "u", ring_timeout_s=2.0)


@pytest.mark.parametrize(
    ("presses", "expected"),
    [
        ([("1", 0.0), ("2", 1.0)], CollectResult("12", "max")),
        ([("1", 0.0), ("#", 1.0)], CollectResult("1", "terminator")),
        ([("#", 0.0)], CollectResult("", "terminator")),
    ],
)
def test_digit_collector(presses: list[tuple[str, float]], expected: CollectResult) -> None:
    collector = DigitCollector(max_digits=2, timeout_s=5, terminator="#", started_at=0.0)
    results = [collector.feed(d, t) for d, t in presses]
    assert results[-1] == expected
    assert all(r is None for r in results[:-1])


def test_digit_collector_timeout_restarts_after_each_digit() -> None:
    collector = DigitCollector(max_digits=4, timeout_s=5, terminator="#", started_at=0.0)
    assert collector.expire(4.9) is None
    assert collector.feed("7", 4.9) is None
    assert collector.expire(9.8) is None
    assert collector.expire(9.9) == CollectResult("7", "timeout")


def test_speech_needs_three_voiced_frames_and_half_a_second_of_silence() -> None:
    detector = SpeechDetector(frame_s=0.02)
    assert [detector.feed(v) for v in (True, True, False, True, True)] == [None] * 5
    assert detector.feed(True) == SpeechStart()
    changes = [detector.feed(False) for _ in range(24)] + [detector.feed(True)]
    assert changes == [None] * 25  # a 480 ms pause does not end the utterance
    silence = [detector.feed(False) for _ in range(25)]
    assert silence[:-1] == [None] * 24
    end = silence[-1]
    assert isinstance(end, SpeechEnd)
    assert end.duration_s == pytest.approx(0.02 * (3 + 24 + 1))
    assert detector.flush() is None


INVITE = (
    "INVITE sip:961108@10.0.0.5:5080;transport=udp SIP/2.0\r\n"
    'f: "Li Si" <sip:13800138000@carrier.example>;tag=abc\r\n'
    "t: <sip:961108@10.0.0.5>\r\n"
    "i: 1234@host\r\n"
    "\r\n"
    "v=0\r\nP-Asserted-Identity: <sip:999@body.example>\r\n"
)


def test_invite_fields_with_compact_headers() -> None:
    assert header(INVITE, "From") == '"Li Si" <sip:13800138000@carrier.example>;tag=abc'
    assert header(INVITE, "Call-ID") == "1234@host"
    assert user_part(request_uri(INVITE)) == "961108"
    assert caller_of(INVITE) == ("13800138000", "Li Si")  # the body is not a header


def test_p_asserted_identity_wins_over_from() -> None:
    invite = INVITE.replace("i: 1234@host\r\n",
                            "i: 1234@host\r\nP-Asserted-Identity: <tel:+8613911112222>\r\n")
    assert caller_of(invite) == ("+8613911112222", "")


@pytest.mark.parametrize(
    ("cidrs", "source", "allowed"),
    [([], "8.8.8.8:5060", True), (["127.0.0.0/8"], "127.0.0.1:5060", True),
     (["127.0.0.0/8"], "10.1.1.1:5060", False), (["::1/128"], "[::1]:5060", True),
     (["127.0.0.0/8"], "[::1]:5060", False)],
)
def test_source_policy(cidrs: list[str], source: str, allowed: bool) -> None:
    assert SourcePolicy.from_cidrs(cidrs).allows(source) is allowed


def test_the_sip_socket_is_found_by_its_port_and_a_packet_to_it_ends_the_wait() -> None:
    import select
    import socket

    from softphone.worker import sip_socket

    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # stands for pjsip's own socket
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    rtp.bind(("127.0.0.1", 0))
    port = sip.getsockname()[1]
    found = sip_socket(port)
    try:
        assert found is not None and found.getsockname() == sip.getsockname()
        assert found.fileno() != sip.fileno()  # a duplicate: closing it leaves pjsip's open
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"x", rtp.getsockname())  # RTP does not end the wait
            assert select.select((found,), (), (), 0.05)[0] == []
            peer.sendto(b"\r\n\r\n", ("127.0.0.1", port))  # SIP (or the Waker) does
            assert select.select((found,), (), (), 1.0)[0] == [found]
        assert sip.recv(16) == b"\r\n\r\n"  # and the packet is still there for pjsip to read
    finally:
        if found is not None:
            found.close()
        sip.close()
        rtp.close()
    assert sip_socket(port) is None  # nothing bound there any more
