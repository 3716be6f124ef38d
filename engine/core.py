"""The engine: one asyncio loop that decides; softphone workers that carry the calls.

Inbound: every ``incoming`` event is screened first (the lists are refreshed,
then one pure decision), then handed to an :class:`~engine.hotline.InboundCall`
whose commands go back to the worker that holds the call. Outbound:
:meth:`Engine.dial` paces calls through the trunk (channels, calls per second),
never calls one number twice at once, and returns an :class:`OutboundCall`
whose events arrive on a queue. Everything worth knowing leaves as a
:class:`~engine.hotline.Notice`: logged (numbers masked), appended to
``<data_dir>/events.jsonl``, and given to every subscriber.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import audio
from screening import ListSet, normalize
from sip_config import LoadedConfig
from softphone import protocol as p

from .hotline import InboundCall, Notice, Prompts, UnexpectedEvent, route_for
from .trunk import Pacer, dial_uri
from .workers import RTP_PORTS_PER_WORKER, Worker, WorkerPool, WorkerSpec

__all__ = ["AlreadyCalling", "Engine", "OutboundCall", "worker_specs"]

log = logging.getLogger("engine")


class AlreadyCalling(Exception):
    """A call to this number is already under way (never two at once)."""


@dataclass
class OutboundCall:
    id: str
    number: str  # the full number: stays inside the engine
    uri: str
    key: int = 0  # the normalized number: one call per key at a time
    worker: str = ""
    events: asyncio.Queue[p.Event] = field(default_factory=asyncio.Queue)
    outcome: asyncio.Future[p.Event] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    ended: asyncio.Future[p.HungUp] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    send: Callable[[p.Command], Any] | None = None

    def on_event(self, event: p.Event) -> None:
        self.events.put_nowait(event)
        final = (p.Answered, p.Busy, p.NoAnswer, p.Failed, p.HungUp)
        if isinstance(event, final) and not self.outcome.done():
            self.outcome.set_result(event)
        if isinstance(event, p.HungUp) and not self.ended.done():
            self.ended.set_result(event)

    async def command(self, command: p.Command) -> None:
        assert self.send is not None
        await self.send(command)

    async def hangup(self) -> None:
        if not self.ended.done():
            await self.command(p.Hangup(self.id))


def worker_specs(loaded: LoadedConfig) -> list[WorkerSpec]:
    config = loaded.config
    sip, trunk = config.sip, config.sip.trunk
    logs = loaded.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return [
        WorkerSpec(
            name=f"w{i + 1}", host=sip.listen.host, sip_port=sip.listen.port + i,
            rtp_port=sip.listen.rtp_port + i * RTP_PORTS_PER_WORKER, allow=sip.allowed_sources,
            trunk_user=trunk.username, trunk_password_env=trunk.password_env,
            trunk_registrar=trunk.registrar, log_file=logs / f"worker-w{i + 1}.log",
        )
        for i in range(config.engine.workers)
    ]


class Engine:
    def __init__(self, loaded: LoadedConfig, specs: list[WorkerSpec] | None = None,
                 worker_type: type[Worker] = Worker) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.tz = ZoneInfo(self.config.engine.timezone)
        self.lists = ListSet(loaded)
        self.screener = self.lists.screener()
        self.pool = WorkerPool(specs if specs is not None else worker_specs(loaded), worker_type)
        self.inbound: dict[str, InboundCall] = {}
        self.outbound: dict[str, OutboundCall] = {}
        self.pacer = Pacer(self.config.sip.trunk.max_channels, self.config.sip.trunk.max_cps)
        self._numbers_in_call: set[int] = set()
        self._pacing = asyncio.Condition()
        self._ids = itertools.count(1)
        self._subscribers: list[asyncio.Queue[Notice]] = []
        self._dispatcher: asyncio.Task[None] | None = None
        data = loaded.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.events_path = data / "events.jsonl"
        self._events = self.events_path.open("a", encoding="utf-8", buffering=1)  # a line at a time
        self.prompt_dir = data / "prompts"
        self.prompts = Prompts(*(str(audio.path_of(self.prompt_dir, n))
                                 for n in ("welcome", "warning", "connecting")))

    # ------------------------------------------------------------ life cycle

    async def start(self) -> None:
        for report in self.lists.sync_sources():
            log.info("imported %s into list %s: %d numbers", report.file.name, report.list_name,
                     len(report.parsed.keys))
        audio.build(self.prompt_dir)
        await self.pool.start()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="engine-dispatch")
        self._notice(Notice("engine_started", "", {"workers": len(self.pool.workers)}))

    async def stop(self) -> None:
        await self.pool.stop()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        self._events.close()

    def subscribe(self) -> asyncio.Queue[Notice]:
        queue: asyncio.Queue[Notice] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def operator_hours_now(self) -> bool:
        return self.config.hotline.operator_hours.contains(datetime.now(self.tz).time())

    # ------------------------------------------------------------ outbound

    async def dial(self, number: str, headers: dict[str, str] | None = None,
                   ring_timeout_s: float | None = None) -> OutboundCall:
        parsed = normalize(number, self.config.screening.country)
        if parsed.key is None:
            raise ValueError(f"{number!r} is not a phone number")
        digits = "".join(ch for ch in number if ch.isdigit() or ch == "+")
        if parsed.key in self._numbers_in_call:
            raise AlreadyCalling(f"a call to {parsed.masked} is already under way")
        self._numbers_in_call.add(parsed.key)
        try:
            await self._trunk_slot()
        except BaseException:
            self._numbers_in_call.discard(parsed.key)
            raise
        try:
            worker = await self.pool.worker_for_dial()
        except BaseException:
            self._numbers_in_call.discard(parsed.key)
            await self._release_trunk()
            raise
        call = OutboundCall(f"out-{next(self._ids)}", digits,
                            dial_uri(digits, self.config.sip.trunk.uri), parsed.key, worker.name)
        call.send = worker.send
        self.outbound[call.id] = call
        timeout = ring_timeout_s or self.config.dialer.ring_timeout_s
        self._notice(Notice("dialling", call.id, {"number": parsed.masked, "worker": worker.name}))
        await worker.send(p.Dial(call.id, call.uri, self.config.sip.trunk.caller_id, timeout,
                                 headers or {}))
        return call

    async def _trunk_slot(self) -> None:
        async with self._pacing:
            while True:
                wait = self.pacer.wait_s(time.monotonic())
                if wait == 0:
                    self.pacer.take(time.monotonic())
                    return
                if wait is None:
                    await self._pacing.wait()
                else:
                    await asyncio.sleep(wait)

    async def _release_trunk(self) -> None:
        async with self._pacing:
            self.pacer.release()
            self._pacing.notify()

    # ------------------------------------------------------------ events

    async def _dispatch(self) -> None:
        while True:
            worker, event = await self.pool.inbox.get()
            try:
                await self._on_event(worker, event)
            except Exception:  # one bad call must not stop the engine
                log.exception("event %s from worker %s", event.TYPE, worker.name)

    async def _on_event(self, worker: Any, event: p.Event) -> None:
        if isinstance(event, (p.HungUp, p.Ready)):
            self.pool.slot_freed()
        if isinstance(event, p.Incoming):
            await self._incoming(worker, event)
            return
        if isinstance(event, p.Refused):
            self._notice(Notice("refused", "", {"source": event.source,
                                                "caller": normalize(event.caller).masked}))
            return
        call = getattr(event, "call", None)
        if call is None:
            if isinstance(event, p.Error):
                log.warning("worker %s: %s", worker.name, event.message)
            return
        if call in self.inbound:
            await self._inbound_event(worker, self.inbound[call], event)
        elif call in self.outbound:
            await self._outbound_event(self.outbound[call], event)

    async def _incoming(self, worker: Any, event: p.Incoming) -> None:
        started = time.perf_counter()
        self.lists.refresh()
        decision = self.screener.decide(event.caller, time.monotonic())
        route = route_for(decision, event.callee, self.config.hotline.number, self.operator_hours_now())
        flow = InboundCall(event.call, event.caller, decision, route, self.prompts,
                           self.config.hotline.operator_uri)
        self.inbound[event.call] = flow
        self.inbound[flow.operator_leg] = flow
        commands = flow.start()
        decided_us = round((time.perf_counter() - started) * 1e6, 1)  # screen + route, before I/O
        await self._send(worker, commands)
        self._notice(Notice("screened", event.call, {
            **decision.as_dict(), "route": route.value, "callee": event.callee,
            "source": event.source, "worker": worker.name, "decision_us": decided_us,
        }))
        self._flush(flow)

    async def _inbound_event(self, worker: Any, flow: InboundCall, event: p.Event) -> None:
        try:
            commands = flow.on_event(event)
        except UnexpectedEvent as exc:
            log.warning("call %s: %s", flow.call, exc)
            return
        await self._send(worker, commands)
        self._flush(flow)
        if flow.finished:
            self.inbound.pop(flow.call, None)
            self.inbound.pop(flow.operator_leg, None)

    async def _outbound_event(self, call: OutboundCall, event: p.Event) -> None:
        call.on_event(event)
        if isinstance(event, (p.Answered, p.Busy, p.NoAnswer, p.Failed)):
            data: dict[str, object] = {"number": normalize(call.number).masked}
            if hasattr(event, "status"):
                data["status"] = event.status
            self._notice(Notice(event.TYPE, call.id, data))
        if isinstance(event, p.HungUp):
            self.outbound.pop(call.id, None)
            self._numbers_in_call.discard(call.key)
            await self._release_trunk()
            self._notice(Notice("ended", call.id, {"by": event.by, "status": event.status,
                                                   "duration_s": event.duration_s}))

    async def _send(self, worker: Any, commands: list[p.Command]) -> None:
        for command in commands:
            await worker.send(command)

    def _flush(self, flow: InboundCall) -> None:
        for notice in flow.notices:
            self._notice(notice)
        flow.notices.clear()

    def _notice(self, notice: Notice) -> None:
        record = {"at": datetime.now(self.tz).isoformat(timespec="milliseconds"),
                  "event": notice.kind, "call": notice.call, **notice.data}
        log.info("%s %s %s", notice.kind, notice.call,
                 " ".join(f"{k}={v}" for k, v in notice.data.items()))
        self._events.write(json.dumps(record, ensure_ascii=False) + "\n")
        for queue in self._subscribers:
            queue.put_nowait(notice)

