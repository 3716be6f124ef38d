"""What the text store keeps: texts in and out, threads, their states and transitions. Pure.

A text out goes ``pending`` → ``sending`` → ``sent`` or ``failed`` (or ``dropped`` when
its task closed first); a consultation in is ``stored``, or ``blocked`` when its sender is.
A thread is one question and its answer: ``waiting`` for an operator, ``replied``, or
``blocked``. Each state table is one mapping here; :func:`joins` says which thread a new
text belongs to. Every store applies these rules; none writes its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from screening import mask

__all__ = ["KINDS", "MESSAGE_TRANSITIONS", "THREAD_TRANSITIONS", "Message", "MessageState",
           "Thread", "ThreadState", "joins"]


class MessageState(enum.StrEnum):
    STORED = "stored"  # a consultation in
    BLOCKED = "blocked"  # a consultation from a blocked sender: kept, never answered
    PENDING = "pending"  # out: waiting to be handed to a sender
    SENDING = "sending"  # out: handed over, waiting for the far end's answer
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"  # out: its task closed before it went


class ThreadState(enum.StrEnum):
    WAITING = "waiting"
    REPLIED = "replied"
    BLOCKED = "blocked"


M, T = MessageState, ThreadState
MESSAGE_TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    M.STORED: frozenset(),
    M.BLOCKED: frozenset(),
    M.PENDING: frozenset({M.SENDING, M.DROPPED}),
    M.SENDING: frozenset({M.SENT, M.FAILED, M.PENDING, M.DROPPED}),  # pending: sent again
    M.SENT: frozenset(),
    M.FAILED: frozenset(),
    M.DROPPED: frozenset(),
}
THREAD_TRANSITIONS: dict[ThreadState, frozenset[ThreadState]] = {
    T.WAITING: frozenset({T.REPLIED}),
    T.REPLIED: frozenset({T.WAITING}),  # the operator's answer was refused: it waits again
    T.BLOCKED: frozenset(),
}
KINDS = ("consultation", "auto_reply", "reply", "warning")


@dataclass(frozen=True)
class Message:
    id: int
    direction: str  # in, out
    kind: str  # consultation, auto_reply, reply, warning
    number: str  # the person's number as it is dialled (national form)
    body: str
    at: float
    state: MessageState
    status: int | None  # the far end's SIP answer to an outgoing text
    reason: str
    thread_id: str | None
    task_id: str | None
    answered_at: float | None
    rule: str  # screening rule of a consultation ("" when allowed)

    @property
    def masked(self) -> str:
        return mask(self.number)


@dataclass(frozen=True)
class Thread:
    id: str
    number: str
    state: ThreadState
    opened_at: float
    last_at: float
    replied_at: float | None
    fraud_type: str  # what the advice matched, or ""
    texts: tuple[str, ...]  # what the person wrote, oldest first

    @property
    def masked(self) -> str:
        return mask(self.number)

    def waited_s(self, now: float) -> float:
        """How long the person has waited for an operator (until the reply)."""
        return (self.replied_at if self.replied_at is not None else now) - self.opened_at


def joins(last: Thread | None, blocked: bool, at: float, thread_s: float) -> bool:
    """Does a new text from a number join ``last``, that number's latest thread? It does
    while the thread waits (a blocked number's texts join its blocked thread) and its last
    text is at most ``thread_s`` old; a replied thread is closed: the next text opens one."""
    if last is None or at - last.last_at > thread_s:
        return False
    return last.state is (ThreadState.BLOCKED if blocked else ThreadState.WAITING)
