"""The count of pjsua's I/O queue places held by calls' media sockets: pure."""

from __future__ import annotations

import pytest

from softphone.places import MediaPlaces

# 64 places, 1 for the SIP socket, 2 spare: 30 calls' worth of (RTP, RTCP)
PLACES = MediaPlaces(places=64, fixed=1, spare=2, linger_s=0.75, max_calls=4)


def fresh() -> MediaPlaces:
    return MediaPlaces(places=64, fixed=1, spare=2, linger_s=0.75, max_calls=4)


def test_thirty_calls_fit_and_the_next_waits_for_a_place() -> None:
    assert PLACES.units_max == 30
    places = fresh()
    for n in range(30):  # each INVITE becomes a call and is rejected at once
        assert places.admit(f"sip-{n}", now=n * 0.01)
        places.opened(f"c{n}", f"sip-{n}")
        places.closed(f"c{n}", now=n * 0.01)
    assert not places.admit("sip-30", now=0.30)  # every place held or lingering
    assert not places.take("out-1", now=0.30)  # an outbound call too
    assert places.admit("sip-31", now=0.75)  # the first one's places came back
    assert not places.admit("sip-32", now=0.75)


@pytest.mark.parametrize(("steps", "held"), [
    # an INVITE pjsua never turned into a call holds its places from when it was let through
    ([("admit", "a", 0.0)], {0.0: 1, 0.74: 1, 0.75: 0}),
    # a call up holds them as long as it is up, and linger_s after it ended
    ([("admit", "a", 0.0), ("opened", "c", "a"), ("closed", "c", 5.0)],
     {0.0: 1, 4.9: 1, 5.7: 1, 5.75: 0}),
    # a call the INVITE became is counted once, not as an INVITE and a call
    ([("admit", "a", 0.0), ("opened", "c", "a")], {0.0: 1}),
    # an outbound call from the moment it may open its sockets
    ([("take", "o", 1.0), ("closed", "o", 2.0)], {1.0: 1, 2.5: 1, 2.75: 0}),
    # an end heard twice, or of a call never counted, frees nothing more
    ([("take", "o", 1.0), ("closed", "o", 2.0), ("closed", "o", 2.1), ("closed", "x", 2.1)],
     {2.2: 1, 2.75: 0}),
])
def test_what_holds_places_and_for_how_long(steps: list[tuple], held: dict[float, int]) -> None:
    places = fresh()
    for step in steps:
        if step[0] == "opened":
            places.opened(step[1], step[2])
        else:
            getattr(places, step[0])(step[1], step[2])
    assert {at: places.held(at) for at in held} == held


def test_with_every_call_up_an_invite_takes_no_place() -> None:
    """pjsua answers 486 before opening media when its 4 calls are up."""
    places = fresh()
    for n in range(4):
        assert places.take(f"o{n}", now=0.0)
    assert all(places.admit(f"sip-{n}", now=0.1) for n in range(100))
    assert places.held(0.1) == 4


def test_pjsuas_own_count_of_its_calls_decides_whether_an_invite_takes_a_place() -> None:
    places = fresh()
    for n in range(4):
        assert places.take(f"o{n}", now=0.0)
    assert places.admit("sip-a", now=0.1, calls_up=3)  # a call pjsua freed: media will open
    assert places.held(0.1) == 5
    assert places.admit("sip-b", now=0.1, calls_up=4)  # pjsua will answer 486
    assert places.held(0.1) == 5


def test_an_offer_of_many_audio_lines_holds_a_unit_for_each() -> None:
    """pjsua opens RTP and RTCP for every usable audio line of an offer (up to 16)."""
    places = fresh()
    assert places.admit("sip-a", now=0.0, units=16)
    places.opened("a", "sip-a")
    assert places.held(0.0) == 16
    assert not places.admit("sip-b", now=0.1, units=16)  # 32 units: over 30
    assert places.admit("sip-c", now=0.1, units=14)
    assert not places.admit("sip-d", now=0.1)
    # a re-offer in the call's dialog opens nothing more with as many lines, more would
    assert places.reoffer_fits("sip-a", 16) and not places.reoffer_fits("sip-a", 17)
    assert places.reoffer_fits("sip-unknown", 16)  # not ours: pjsua answers 481
    places.closed("a", now=1.0)
    assert places.reoffer_fits("sip-a", 17)  # the dialog went with the call: pjsua says 481
    assert places.held(1.0) == 16 and places.held(1.75) == 0


def test_invites_sharing_a_call_id_are_each_counted() -> None:
    places = fresh()
    assert places.admit("same", now=0.0) and places.admit("same", now=0.0)
    places.opened("a", "same")  # one became a call, the other was refused by pjsua
    assert places.held(0.1) == 2 and places.held(0.75) == 1


def test_a_call_pjsua_has_and_this_count_missed_still_holds_places() -> None:
    places = fresh()
    assert places.held(0.0, calls_up=2) == 2
    for n in range(28):
        assert places.admit(f"sip-{n}", now=0.0, calls_up=2)
    assert not places.admit("sip-x", now=0.0, calls_up=2)
