"""A softphone worker without pjsua2, for tests of the engine's call logic.

It is a :class:`engine.workers.Worker` whose process is replaced (``start``,
``send``, ``stop``) and speaks the same protocol objects: commands are recorded in :attr:`FakeWorker.sent`; a ``dial`` is
answered by :attr:`FakeWorker.answers` (number → what the far end does);
:meth:`ring` makes an inbound call, :meth:`die` loses every call as a dead
process would.
"""

from __future__ import annotations

import itertools
from typing import Any

from engine.workers import LOST, Inbox, Worker, WorkerSpec
from softphone import MAX_CALLS_PER_WORKER
from softphone import protocol as p

ANSWER, BUSY, NO_ANSWER, NOT_FOUND = "answer", "busy", "no_answer", "not_found"


class FakeWorker(Worker):
    """:class:`Worker` with the process replaced by a scripted far end."""

    def __init__(self, spec: WorkerSpec, inbox: Inbox) -> None:
        super().__init__(spec, inbox)
        self.sent: list[p.Command] = []
        self.answers: dict[str, str] = {}
        self._ids = itertools.count(1)

    def start(self) -> None:
        self.ready.set()
        self._emit(p.Ready(self.name, self.spec.sip_port, MAX_CALLS_PER_WORKER))

    async def stop(self) -> None:
        self.ready.clear()

    def of_call(self, call: str) -> list[p.Command]:
        return [c for c in self.sent if getattr(c, "call", None) == call]

    def ring(self, caller: str, callee: str) -> str:
        call = f"{self.name}-in-{next(self._ids)}"
        self.calls[call] = 0.0
        self._emit(p.Incoming(call, caller, callee, "127.0.0.1:5099", f"{call}@test", ""))
        return call

    def hang_up_remote(self, call: str) -> None:
        self.calls.pop(call, None)
        self._emit(p.HungUp(call, "remote", 200, 1.0))

    def play_ends(self, call: str, reason: str = "done") -> None:
        plays = [c for c in self.of_call(call) if isinstance(c, p.Play)]
        self._emit(p.PlaybackEnded(call, reason, plays[-1].file))  # type: ignore[arg-type]

    def die(self) -> None:
        for call in list(self.calls):
            self.calls.pop(call)
            self._emit(p.HungUp(call, LOST, 500, 0.0))

    async def send(self, command: p.Command) -> None:
        self.sent.append(command)
        if isinstance(command, p.Dial):
            self.calls[command.call] = 0.0
            self._far_end(command)
        elif isinstance(command, (p.Hangup, p.Reject)) and command.call in self.calls:
            self.calls.pop(command.call)
            status = command.status if isinstance(command, p.Reject) else 200
            self._emit(p.HungUp(command.call, "local", status or 200, 0.0))

    def _far_end(self, dial: p.Dial) -> None:
        number = dial.uri.removeprefix("sip:").split("@", 1)[0]
        answer = self.answers.get(number, ANSWER)
        self._emit(p.Ringing(dial.call, 180))
        final: dict[str, Any] = {
            ANSWER: p.Answered(dial.call), BUSY: p.Busy(dial.call, 486),
            NO_ANSWER: p.NoAnswer(dial.call, 408), NOT_FOUND: p.Failed(dial.call, 404, "Not Found"),
        }
        self._emit(final[answer])
        if answer != ANSWER:
            self.calls.pop(dial.call, None)
            self._emit(p.HungUp(dial.call, "remote", final[answer].status, 0.0))

    def _emit(self, event: p.Event) -> None:
        self.inbox.put_nowait((self, event))
