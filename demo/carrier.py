"""A simulated carrier: victims' phones and a duty officer's desk on loopback, on pjsua2.

    python -m demo.carrier --port 5070 --officer-port 5071 \\
        --phone 13800138001=busy,busy,ack@4 --phone 13700137003=noanswer \\
        --announcement busy=busy.wav --caling caling.wav ...

Two softphone workers (the same ``softphone.worker`` processes the engine
uses, one pjsua2 Endpoint each): one answers ``sip:<number>@127.0.0.1:PORT``
as the victims' phones, the other ``sip:duty@127.0.0.1:OFFICER_PORT`` as the
duty officer. Each phone follows its script, one behaviour per call, the last
one repeating:

- ``busy``: 486 Busy Here (on the phone with the scammer);
- ``noanswer``: rings until the caller gives up;
- ``machine``: an answering machine that plays ``--greeting``;
- ``ack@S``: answers, listens S seconds, presses 1;
- ``officer@S``: answers, listens S seconds, presses 0 (asks for the officer);
- ``hangup@S``: answers and hangs up after S seconds.

And as a Chinese carrier's network answers (183 Session Progress, early media):

- ``said-busy``: the line is in use and the network *says* so: the ``--announcement busy=``
  recording, looped, and a 480 only 30 s later (unless the caller cancels first);
- ``said-invalid``: the same with the no-such-number announcement (空号), and a 404;
- ``caling@S``: a 彩铃: the ``--caling`` music for 3 s, then the person answers, listens S
  seconds and presses 1.

The officer answers, says ``--officer-says`` and hangs up. Every move is one
line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path

from callflow import Answer, Timeout
from engine.workers import Inbox, Worker, WorkerSpec
from screening import mask
from softphone import protocol as p

BEHAVIOURS = ("busy", "noanswer", "machine", "ack", "officer", "hangup", "said-busy",
              "said-invalid", "caling")
SAID_FINAL = {"said-busy": 480, "said-invalid": 404}  # what the network ends the call with, late
SAID_HOLD_S = 30.0
CALING_S = 3.0
# "desk" is the duty officer's own move: answer, talk, hang up


@dataclass(frozen=True)
class Move:
    kind: str
    after_s: float = 0.0


def parse_script(text: str) -> list[Move]:
    moves = []
    for part in text.split(","):
        kind, _, after = part.strip().partition("@")
        if kind not in BEHAVIOURS:
            raise ValueError(f"{kind!r} is not one of {', '.join(BEHAVIOURS)}")
        moves.append(Move(kind, float(after) if after else 3.0))
    if not moves:
        raise ValueError("a phone needs at least one behaviour")
    return moves


class Carrier:
    def __init__(self, phones: dict[str, list[Move]], greeting: str, officer_says: str,
                 announcements: dict[str, str] | None = None, caling: str = "") -> None:
        self.phones = phones
        self.greeting = greeting
        self.officer_says = officer_says
        self.announcements = announcements or {}
        self.caling = caling
        self.calls: dict[str, tuple[Worker, str, Move]] = {}  # call → worker, number, move
        self.timers: set[asyncio.Task[None]] = set()

    def say(self, text: str) -> None:
        print(text, flush=True)

    def next_move(self, number: str) -> Move:
        script = self.phones.get(number) or [Move("ack", 3.0)]
        return script.pop(0) if len(script) > 1 else script[0]

    async def on_event(self, worker: Worker, event: p.Event) -> None:
        if isinstance(event, p.Incoming):
            await self.incoming(worker, event)
        elif isinstance(event, p.Answered) and event.call in self.calls:
            _, number, move = self.calls[event.call]
            if move.kind in ("ack", "officer", "hangup", "caling"):
                self.later(move.after_s, self.act(worker, event.call, number, move))
        elif isinstance(event, p.PlaybackEnded) and event.reason == "done":
            entry = self.calls.get(event.call)
            if entry is not None and entry[1] == "duty":
                self.say("duty officer: hangs up after talking to the person")
                await worker.send(p.Hangup(event.call))
        elif isinstance(event, p.HungUp):
            entry = self.calls.pop(event.call, None)
            if entry is not None and entry[2].kind == "noanswer":
                self.say(f"{mask(entry[1])}: stopped ringing, nobody picked up")
            elif entry is not None and entry[2].kind in SAID_FINAL and event.status == 487:
                self.say(f"{mask(entry[1])}: the caller hung up on the announcement "
                         f"(cancelled, not {SAID_HOLD_S:.0f} s later)")

    async def incoming(self, worker: Worker, event: p.Incoming) -> None:
        number = event.callee
        if number == "duty":
            self.calls[event.call] = (worker, number, Move("desk"))
            self.say("duty officer: picks up")
            await worker.send(p.Answer(event.call))
            await worker.send(p.Play(event.call, self.officer_says))
            return
        move = self.next_move(number)
        self.calls[event.call] = (worker, number, move)
        shown = mask(number)
        if move.kind == "busy":
            self.say(f"{shown}: busy, on the phone with someone else")
            await worker.send(p.Reject(event.call, 486))
        elif move.kind == "noanswer":
            self.say(f"{shown}: rings, nobody picks up")
            await worker.send(p.Ring(event.call))
        elif move.kind == "machine":
            self.say(f"{shown}: the answering machine picks up")
            await worker.send(p.Answer(event.call))
            await worker.send(p.Play(event.call, self.greeting))
        elif move.kind in SAID_FINAL:
            what = move.kind.removeprefix("said-")
            self.say(f"{shown}: the network answers 183 and says the number is {what}")
            await worker.send(p.Ring(event.call, 183))
            await worker.send(p.Play(event.call, self.announcements[what], loop=True))
            self.later(SAID_HOLD_S, self.end_late(worker, event.call, SAID_FINAL[move.kind]))
        elif move.kind == "caling":
            self.say(f"{shown}: rings with a 彩铃 (music as early media)")
            await worker.send(p.Ring(event.call, 183))
            await worker.send(p.Play(event.call, self.caling, loop=True))
            self.later(CALING_S, self.pick_up(worker, event.call, number))
        else:
            self.say(f"{shown}: picks up and listens")
            await worker.send(p.Answer(event.call))

    async def end_late(self, worker: Worker, call: str, status: int) -> None:
        """The carrier's final response, long after its announcement began."""
        if call in self.calls:
            await worker.send(p.Reject(call, status))

    async def pick_up(self, worker: Worker, call: str, number: str) -> None:
        if call in self.calls:
            self.say(f"{mask(number)}: picks up after the 彩铃 and listens")
            await worker.send(p.Stop(call))
            await worker.send(p.Answer(call))

    async def act(self, worker: Worker, call: str, number: str, move: Move) -> None:
        if call not in self.calls:
            return
        if move.kind == "hangup":
            self.say(f"{mask(number)}: hangs up")
            await worker.send(p.Hangup(call))
            return
        digit = "0" if move.kind == "officer" else "1"
        self.say(f"{mask(number)}: presses {digit}")
        await worker.send(p.SendDigits(call, digit))

    def later(self, delay: float, action: Coroutine[object, object, None]) -> None:
        async def run() -> None:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                action.close()  # the carrier stops: the move never happens
                raise
            await action

        task = asyncio.create_task(run())
        self.timers.add(task)
        task.add_done_callback(self.timers.discard)


async def serve(args: argparse.Namespace) -> int:
    phones = {number: parse_script(script) for number, script in
              (item.split("=", 1) for item in args.phone)}
    announcements = dict(item.split("=", 1) for item in args.announcement)
    carrier = Carrier(phones, str(args.greeting), str(args.officer_says), announcements,
                      str(args.caling or ""))
    inbox: Inbox = asyncio.Queue()
    logs = Path(args.log_dir)
    specs = [WorkerSpec("phones", "127.0.0.1", args.port, args.rtp_port, ("127.0.0.1/32",),
                        log_file=logs / "carrier-phones.log"),
             WorkerSpec("officer", "127.0.0.1", args.officer_port, args.rtp_port + 100,
                        ("127.0.0.1/32",), log_file=logs / "carrier-officer.log")]
    workers = [Worker(spec, inbox) for spec in specs]
    for worker in workers:
        worker.start()
    await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in workers)), 20)
    carrier.say(f"carrier ready: phones on 127.0.0.1:{args.port}, "
                f"duty officer on 127.0.0.1:{args.officer_port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    while not stop.is_set():
        getter = asyncio.ensure_future(inbox.get())
        await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            worker, event = getter.result()
            if isinstance(event, (Timeout, Answer)):  # only workers put here; no flows run
                continue
            try:
                await carrier.on_event(worker, event)
            except Exception as exc:  # noqa: BLE001 - a simulated phone must not take the carrier down
                carrier.say(f"carrier: {type(exc).__name__}: {exc}")
        else:
            getter.cancel()
    await asyncio.gather(*(w.stop() for w in workers))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.carrier", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port of the phones")
    parser.add_argument("--officer-port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, default=46000)
    parser.add_argument("--phone", action="append", default=[], metavar="NUMBER=SCRIPT")
    parser.add_argument("--greeting", type=Path, required=True, help="the answering machine's WAV")
    parser.add_argument("--officer-says", type=Path, required=True, help="the officer's WAV")
    parser.add_argument("--announcement", action="append", default=[], metavar="WHAT=WAV",
                        help="what the network says (busy, invalid) for the said-… phones")
    parser.add_argument("--caling", type=Path, help="the 彩铃 music for caling phones")
    parser.add_argument("--log-dir", default=".")
    args = parser.parse_args(argv)
    try:
        for item in args.phone:
            _, sep, script = item.partition("=")
            if not sep:
                raise ValueError(f"--phone {item!r}: write NUMBER=SCRIPT")
            parse_script(script)
    except ValueError as exc:
        parser.error(str(exc))
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
