"""The operators' queue, pure: positions, who rings, busy then free, nobody answering."""

from __future__ import annotations

from hotline.queue import Offer, OperatorQueue

A, B, C = "sip:a@desk", "sip:b@desk", "sip:c@desk"


def test_first_come_first_served_with_positions() -> None:
    queue = OperatorQueue((A,))
    assert [queue.join(c) for c in ("x", "y", "z")] == [1, 2, 3]
    assert queue.offers(0.0) == [Offer("x", (A,))]
    assert (queue.ahead("y"), queue.ahead("z")) == (1, 2)
    queue.answered("x", A)
    assert (queue.ahead("y"), queue.ahead("z")) == (0, 1)  # x left the line
    assert queue.offers(1.0) == []  # A is talking
    queue.done(A, 60.0)
    assert queue.offers(61.0) == [Offer("y", (A,))]


def test_round_robin_rings_each_in_turn() -> None:
    queue = OperatorQueue((A, B, C))
    for call in ("x", "y", "z"):
        queue.join(call)
    assert queue.offers(0.0) == [Offer("x", (A,)), Offer("y", (B,)), Offer("z", (C,))]


def test_longest_idle_rings_the_one_idle_longest() -> None:
    queue = OperatorQueue((A, B, C), "longest_idle")
    queue.idle_since = {A: 50.0, B: 10.0, C: 30.0}
    queue.join("x")
    assert queue.offers(60.0) == [Offer("x", (B,))]


def test_ring_all_and_the_first_to_answer_takes_it() -> None:
    queue = OperatorQueue((A, B, C), "all")
    queue.join("x")
    assert queue.offers(0.0) == [Offer("x", (A, B, C))]
    assert sorted(queue.answered("x", B)) == [A, C]  # stop those
    assert sorted(queue.free()) == [A, C]


def test_a_busy_operator_is_skipped_and_a_free_one_takes_the_call() -> None:
    queue = OperatorQueue((A, B))
    queue.join("x")
    assert queue.offers(0.0) == [Offer("x", (A,))]
    queue.not_answered("x", A, 5.0)  # A was busy (486) or did not pick up
    assert queue.offers(5.0) == [Offer("x", (B,))]
    queue.answered("x", B)
    assert queue.talking == {B: "x"}


def test_nobody_answering_gives_the_caller_up() -> None:
    queue = OperatorQueue((A, B))
    queue.join("x")
    queue.offers(0.0)
    queue.not_answered("x", A, 20.0)
    queue.offers(20.0)
    queue.not_answered("x", B, 40.0)
    assert queue.offers(40.0) == [Offer("x", (), nobody=True)]
    assert queue.position("x") == 0


def test_a_caller_who_hangs_up_leaves_the_line() -> None:
    queue = OperatorQueue((A,))
    queue.join("x")
    queue.join("y")
    queue.offers(0.0)
    queue.talking[A] = "other"
    queue.ringing.pop(A)
    queue.leave("y")
    assert queue.waiting == ["x"]
