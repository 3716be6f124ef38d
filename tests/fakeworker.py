"""A softphone worker without pjsua2, for tests of the engine's call logic.

It is a :class:`engine.workers.Worker` whose process is replaced (``start``,
``send``, ``stop``) and speaks the same protocol objects: commands are
recorded in :attr:`FakeWorker.sent`. A ``dial`` is answered by the far end
scripted in :attr:`FakeWorker.phones` (number → a list of behaviours, one per
call, the last one repeating) or, for a plain answer, :attr:`FakeWorker.answers`;
:meth:`ring` makes an inbound call, :meth:`die` loses every call as a dead
process would.

Behaviours of a far end: ``busy``, ``rang_out`` (rings, nobody picks up),
``no_answer`` (480), ``not_found`` (404), ``trunk_503``, ``answer`` (answers,
then does nothing), ``ack`` / ``ack_info`` (answers and presses the ack digit
while the warning plays, by RFC 2833 / SIP INFO), ``officer`` (presses 0),
``silent`` (answers, listens, never presses anything), ``machine`` (a long
greeting: the detector says machine, then the greeting ends).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from engine.workers import LOST, Inbox, Worker, WorkerSpec
from softphone import MAX_CALLS_PER_WORKER
from softphone import protocol as p

ANSWER, BUSY, NO_ANSWER, NOT_FOUND = "answer", "busy", "no_answer", "not_found"
RANG_OUT, TRUNK_503, ACK, ACK_INFO, OFFICER, SILENT, MACHINE = (
    "rang_out", "trunk_503", "ack", "ack_info", "officer", "silent", "machine")
_UNREACHED = {
    BUSY: (p.Busy, 486, 486), RANG_OUT: (p.NoAnswer, 408, 487), NO_ANSWER: (p.NoAnswer, 480, 480),
    NOT_FOUND: (p.Failed, 404, 404), TRUNK_503: (p.Failed, 503, 503),
}


class FakeWorker(Worker):
    """:class:`Worker` with the process replaced by a scripted far end."""

    def __init__(self, spec: WorkerSpec, inbox: Inbox) -> None:
        super().__init__(spec, inbox)
        self.sent: list[p.Command] = []
        self.answers: dict[str, str] = {}
        self.phones: dict[str, list[str]] = {}
        self.officer: str = ANSWER  # how the duty officer's phone behaves
        self.dialled: list[str] = []  # numbers, in the order called
        self._behaviour: dict[str, str] = {}  # live call → its far end's behaviour
        self._ids = itertools.count(1)
        self.text_status: int | None = 200  # the far end's answer to a text (None: nothing)

    def start(self) -> None:
        self.ready.set()
        self._emit(p.Ready(self.name, self.spec.sip_port, MAX_CALLS_PER_WORKER))

    async def stop(self) -> None:
        for call in list(self.calls):
            self._end(call, "local", 200)
        self.ready.clear()

    def of_call(self, call: str) -> list[p.Command]:
        return [c for c in self.sent if getattr(c, "call", None) == call]

    def ring(self, caller: str, callee: str) -> str:
        call = f"{self.name}-in-{next(self._ids)}"
        self.calls[call] = 0.0
        self._emit(p.Incoming(call, caller, callee, "127.0.0.1:5099", f"{call}@test", ""))
        return call

    def text(self, sender: str, to: str, body: str, content_type: str = "text/plain") -> str:
        text = f"{self.name}-txt-{next(self._ids)}"
        self._emit(p.TextReceived(text, sender, to, body, content_type, "127.0.0.1:5099",
                                  f"{text}@test"))
        return text

    def hang_up_remote(self, call: str) -> None:
        self._end(call, "remote", 200)

    def play_ends(self, call: str, reason: str = "done") -> None:
        plays = [c for c in self.of_call(call) if isinstance(c, p.Play)]
        self._emit(p.PlaybackEnded(call, reason, plays[-1].file))  # type: ignore[arg-type]

    def die(self) -> None:
        for call in list(self.calls):
            self.calls.pop(call)
            self._behaviour.pop(call, None)
            self._emit(p.HungUp(call, LOST, 500, 0.0))

    async def send(self, command: p.Command) -> bool:
        self.sent.append(command)
        if isinstance(command, p.Dial):
            self.calls[command.call] = 0.0
            self._far_end(command)
        elif isinstance(command, p.Play):
            self._heard(command)
        elif isinstance(command, p.SendText):  # the SMS gateway answers with text_status
            if self.text_status is not None:
                self._emit(p.TextStatus(command.text, self.text_status, "OK"))
        elif isinstance(command, (p.Hangup, p.Reject)) and command.call in self.calls:
            status = command.status if isinstance(command, p.Reject) else 200
            self._end(command.call, "local", status or 200)
        return True

    # ------------------------------------------------------------ the far end

    def _far_end(self, dial: p.Dial) -> None:
        number = dial.uri.removeprefix("sip:").split("@", 1)[0]
        if dial.call.endswith("-officer") or re.search(r"-op\d+$", dial.call):
            behaviour = self.officer
        elif number in self.phones:
            script = self.phones[number]
            behaviour = script.pop(0) if len(script) > 1 else script[0]
        else:
            behaviour = self.answers.get(number, ANSWER)
        self.dialled.append(number)
        if behaviour in _UNREACHED:
            kind, status, end = _UNREACHED[behaviour]
            if behaviour == RANG_OUT:
                self._emit(p.Ringing(dial.call, 180))
            self._emit(kind(dial.call, status))
            self._end(dial.call, "remote" if behaviour != RANG_OUT else "local", end)
            return
        self._behaviour[dial.call] = behaviour
        self._emit(p.Ringing(dial.call, 180))
        self._emit(p.Answered(dial.call))

    def _heard(self, play: p.Play) -> None:
        """What the far end does when a prompt starts playing to it."""
        call, name = play.call, Path(play.file).stem
        behaviour = self._behaviour.get(call)
        if behaviour is None or play.loop:
            return
        if name.startswith("warn-") and name not in _SAID_AROUND:  # the warning itself
            if behaviour in (ACK, ACK_INFO, OFFICER):
                digit = "0" if behaviour == OFFICER else "1"
                self._behaviour[call] = SILENT if behaviour == OFFICER else behaviour
                self._emit(p.Dtmf(call, digit, "info" if behaviour == ACK_INFO else "rfc2833"))
                self._emit(p.PlaybackEnded(call, "interrupted", play.file))
                return
            if behaviour == MACHINE:
                self._behaviour[call] = SILENT
                self._emit(p.MachineDetection(call, "machine", "LONGGREETING", 2, 1.5))
                self._emit(p.SpeechEnded(call, 4.0))
                return
        self._emit(p.PlaybackEnded(call, "done", play.file))

    def _end(self, call: str, by: str, status: int) -> None:
        if call in self.calls:
            self.calls.pop(call)
            self._behaviour.pop(call, None)
            self._emit(p.HungUp(call, by, status, 1.0))  # type: ignore[arg-type]

    def _emit(self, event: p.Event) -> None:
        self.inbox.put_nowait((self, event))


_SAID_AROUND = {"warn-thanks", "warn-goodbye", "warn-machine", "warn-connecting",
                "warn-officer-unreachable"}
