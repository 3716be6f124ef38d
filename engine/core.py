"""The engine: one asyncio loop that wires call flows to softphone workers.

Every worker event goes to the flow that owns its call id; the flow's outputs
go out: commands to the worker that holds the call, notices to the log, the
event file and every subscriber, timers to the clock (which later delivers a
:class:`~callflow.Timeout` to the same flow). The logic lives in the flows
(:mod:`hotline.inbound`, :mod:`dialer.call`); nothing here decides anything
about a call.

An inbound ``incoming`` event is screened first (the lists are refreshed,
then one pure decision), then given to a new :class:`~hotline.inbound.InboundCall`.
Outbound warning calls are placed by :class:`~engine.dialing.Dialing`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import audio
from audio.library import Library
from callflow import (
    Answer,
    CallFlow,
    Event,
    Notice,
    Output,
    Request,
    Timeout,
    Timer,
    UnexpectedEvent,
)
from center import ENGINE, Center, Invalid
from dialer import Policy
from dialer.callee import CalleeWarnings
from front import Front, behind_front
from hotline import Route, SaveMessage, route_for
from hotline.queue import JoinQueue, LeaveQueue, QueueReport
from screening import NumberKind, ServiceNumber, StoreError, normalize
from settings import Settings, settings_for
from sip_config import LoadedConfig
from softphone import protocol as p
from stores import StoreError as RecordsError
from stores import TrunkLimits, open_stores

from .clock import Clock, SystemClock, TimerHandle, local
from .desk import HotlineDesk
from .dialing import Dialing
from .inbound import Gate
from .lock import DataDirLock
from .membership import Membership, StoreHealth
from .prompt_sets import prompt_sets
from .texting import Texting
from .workers import RESTART_BACKOFF_S, RTP_PORTS_PER_WORKER, Worker, WorkerPool, WorkerSpec

__all__ = ["CallScreened", "Engine", "EngineStarted", "EngineStatus", "FlowFailed", "SourceRefused",
           "pool_specs", "worker_specs"]

log = logging.getLogger("engine")


@dataclass(frozen=True)
class EngineStarted(Notice):
    KIND: ClassVar[str] = "engine_started"
    workers: int


@dataclass(frozen=True)
class CallScreened(Notice):
    KIND: ClassVar[str] = "screened"
    NUMBERS: ClassVar[tuple[str, ...]] = ("number", "callee")
    action: str
    status: int | None
    rule: str
    reason: str
    number: str
    kind: str
    route: str
    callee: str
    source: str
    worker: str
    decision_us: float
    error: str = ""  # why no decision could be made (screening.on_error answered), or ""


@dataclass(frozen=True)
class SourceRefused(Notice):
    """An INVITE refused before it became a call: 403 (a source not allowed) or 503 (over the
    worker's new calls a second)."""

    KIND: ClassVar[str] = "refused"
    source: str
    caller: str  # masked
    status: int = 403


STATUS_EVERY_S = 30.0
FOLLOW_LISTS_S = 5.0  # with a shared store: a look at the lists' journal at least this often


@dataclass(frozen=True)
class EngineStatus(Notice):
    """How the engine stands (every 30 s, and when a list becomes unreadable or mended)."""

    KIND: ClassVar[str] = "status"
    workers_ready: int
    workers: int
    calls: int
    tasks_due: int
    lists_unreadable: list[str]


@dataclass(frozen=True)
class EngineEvent(Notice):
    """Something the engine did on somebody's word (a reload or its refusal, a drain of the
    workers, a graceful stop): in the event log, and on MQTT as ``engine/event``."""

    by: str

    def payload(self, node: str, at: str) -> dict[str, Any]:
        out = self.record()
        del out["call"]
        out.update(node=node, at=at)
        return out


@dataclass(frozen=True)
class WorkersDraining(EngineEvent):
    """The workers are being replaced by new processes, one at a time."""

    KIND: ClassVar[str] = "workers_draining"
    workers: int


@dataclass(frozen=True)
class WorkersDrained(EngineEvent):
    """Every worker was replaced by a new process, one at a time, without dropping a call."""

    KIND: ClassVar[str] = "workers_drained"
    workers: int
    took_s: float


@dataclass(frozen=True)
class Draining(EngineEvent):
    """A graceful stop began: no new call or task; the calls in progress go on."""

    KIND: ClassVar[str] = "draining"
    calls_left: int
    drain_s: float


class Abandoned(RuntimeError):
    """The engine hung a flow up on purpose (this node lost its lease)."""


@dataclass(frozen=True)
class FlowFailed(Notice):
    """A flow raised: its calls were hung up and the engine went on."""

    KIND: ClassVar[str] = "flow_failed"
    error: str


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
            media_timeout_s=sip.media_timeout_s, max_call_s=sip.max_call_s,
            transaction_timeout_s=sip.transaction_timeout_s,
            invite_rate=sip.new_calls_per_worker_s,
        )
        for i in range(config.engine.workers)
    ]


def pool_specs(loaded: LoadedConfig) -> list[WorkerSpec]:
    """The workers the engine runs for ``loaded``: behind the front when there is one."""
    specs = worker_specs(loaded)
    return behind_front(specs, loaded) if loaded.config.sip.balancer else specs


class Engine:
    def __init__(self, settings: Settings | LoadedConfig, specs: list[WorkerSpec] | None = None,
                 worker_type: type[Worker] = Worker, clock: Clock | None = None) -> None:
        """``settings``: what :func:`settings.load_settings` read; a config read alone (tests,
        benches) has the files it names read here, once."""
        if isinstance(settings, LoadedConfig):
            settings = settings_for(settings)
        self.settings = settings
        loaded = settings.loaded
        self.loaded = loaded
        self.config = loaded.config
        self.clock: Clock = clock or SystemClock()
        self.tz = ZoneInfo(self.config.engine.timezone)
        hotline = self.config.hotline
        self.hotline_line = ServiceNumber(hotline.number, hotline.area_code or "")
        self.gate = Gate(loaded, self.notice, self.clock.now)
        self.lists = self.gate.lists
        self.front = (Front(loaded, self.notice, restart_backoff_s=RESTART_BACKOFF_S)
                      if self.config.sip.balancer else None)
        self.pool = WorkerPool(specs if specs is not None else pool_specs(loaded), worker_type)
        self.flows: dict[str, CallFlow] = {}  # every live leg id → the flow that owns it
        self._holder: dict[int, Worker] = {}  # id(flow) → the worker that carries its legs
        self._timers: dict[tuple[int, str], TimerHandle] = {}
        self._finished: dict[int, Callable[[CallFlow], object]] = {}
        self._observers: dict[int, Callable[[CallFlow, Notice], object]] = {}
        self._subscribers: list[asyncio.Queue[Notice]] = []
        self._dispatcher: asyncio.Task[None] | None = None
        self._status: asyncio.Task[None] | None = None
        self._lists: asyncio.Task[None] | None = None
        self.last_reload: dict[str, Any] | None = None  # what the last reload did (status)
        self.draining_since: float | None = None  # a graceful stop is under way
        self.worker_drain: dict[str, Any] | None = None  # the last drain-workers (status)
        data = loaded.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.events_path = data / "events.jsonl"
        self._events = self.events_path.open("a", encoding="utf-8", buffering=1)  # a line at a time
        self.prompt_dir = data / "prompts"
        self.stores = open_stores(loaded)
        self.desk = HotlineDesk(loaded, settings.menus, self.prompt_dir, self.tz, self.notice,
                                self.stores.callbacks)
        self._requests: dict[type[Request], Callable[[Any, float], Answer | None]] = {
            SaveMessage: self.desk.save, JoinQueue: self.desk.join, LeaveQueue: self.desk.leave,
            QueueReport: self.desk.report,
        }
        self.desk.deliver = self.deliver
        self.lock = DataDirLock(data)
        self.health = StoreHealth()  # the stores' reachability, said once each way
        self.store = self.stores.tasks
        self.center = Center(loaded, settings.catalog, self.stores, self.clock.now, self.lists)
        self.callees = CalleeWarnings(self.config.screening.country)
        self.cluster = self.stores.cluster
        self.dialing = Dialing(self.config, self.clock, self.store, settings.catalog,
                               Policy(self.config.dialer, self.tz), self.pool, self, self.notice,
                               self.prompt_dir, Library.of(data), self.config.engine.node_name,
                               health=self.health)
        self.membership = Membership(self.cluster, self.config.engine.node_name,
                                     self.config.engine.lease_s, self.health, self._node_info,
                                     self.clock.now, self._lease_lost, self._taken_over)
        self.texting = Texting(self.config, self.clock, self.tz, self.stores.texts, self.store,
                               settings.catalog, settings.book, self.hotline_line,
                               lambda number: self.gate.decide(number)[0], self.pool,
                               self.notice, self.health)
        self.dialing.texts = self.texting

    # ------------------------------------------------------------ life cycle

    async def start(self) -> None:
        self.lock.take()  # one engine per data directory: never two calls to one number
        sync = self.center.list_sync
        if sync is not None:  # what the other nodes changed while this one was down
            applied = sync.sync()
            if applied:
                log.info("lists: %d changes made by other nodes applied", applied)
        for name, path in self.lists.stale_sources():
            try:
                if sync is None:
                    report = self.lists.import_file(name, path)
                else:  # through the cluster's journal: every node gets it
                    report = self.center.import_list(path, name, ENGINE)
            except (StoreError, RecordsError, Invalid) as exc:
                log.error("list %s: %s was not imported: %s", name, path, exc)
                continue
            log.info("imported %s into list %s: %d numbers", report.file.name, report.list_name,
                     len(report.parsed.keys))
        self.gate.check_lists()
        for _, prompts, rate in prompt_sets(self.settings):
            audio.build(self.prompt_dir, prompts, rate=rate)
        if self.front is not None:
            await self.front.start()  # before the workers: a missing kamailio fails at once
        await self.pool.start()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="engine-dispatch")
        self.notice(EngineStarted("", len(self.pool.workers)))
        self.membership.join()  # before the first claim: the claims carry its generation
        if self.cluster.shared:  # the trunk's limits are every node's together
            trunk = self.config.sip.trunk
            self.cluster.pace(TrunkLimits(trunk.max_channels, trunk.max_cps))
        self.membership.start()
        self.dialing.start()
        self.texting.start()
        self._status = asyncio.create_task(self._report_status(), name="engine-status")
        if sync is not None:
            self._lists = asyncio.create_task(self._follow_lists(), name="engine-lists")

    async def _follow_lists(self) -> None:
        """Another node changed a list: this node's copy follows within a moment."""
        journal = self.stores.lists
        assert journal is not None
        while True:
            try:
                sync = self.center.list_sync  # (a reload may bring new lists)
                if await journal.watch.wait(FOLLOW_LISTS_S) and sync is not None:
                    applied = sync.sync()
                    if applied:
                        self.gate.check_lists()
                        log.info("lists: %d changes from the cluster applied", applied)
                    self.health.answered()
            except RecordsError as exc:
                self.health.failed(exc)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("following the lists' changes")
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._status is not None:
            self._status.cancel()
        if self._lists is not None:
            self._lists.cancel()
        await self.dialing.stop()
        await self.pool.stop()
        if self.front is not None:
            await self.front.stop()  # after the workers: their last BYEs pass through it
        if self._dispatcher is not None:
            # the calls the workers ended on the way out reach their flows (and the store)
            while not self.pool.inbox.empty():
                await asyncio.sleep(0)
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        await self.texting.stop()
        await self.membership.stop()
        for handle in self._timers.values():
            handle.cancel()
        self._events.close()
        self.stores.close()
        self.lock.release()

    # ------------------------------------------------------------ draining

    def start_draining(self, by: str = "") -> None:
        """Take no new call and no new task from now on (a graceful stop): INVITEs get 503,
        which the front hands to another worker or node; due tasks stay in the store for the
        next start; calls in progress go on."""
        if self.draining_since is None:
            self.draining_since = self.clock.now()
            for worker in self.pool.workers:
                worker.draining = True
            self.dialing.draining = True
            log.warning("draining (asked by %s): no new call or task; %d calls in progress go on",
                        by, self.calls_left())
            self.notice(Draining("", by, self.calls_left(), self.config.engine.drain_s))

    def calls_left(self) -> int:
        return sum(len(w.calls) for w in self.pool.workers)

    async def drain_workers(self, specs: list[WorkerSpec], by: str,
                            loaded: LoadedConfig | None = None) -> dict[str, Any]:
        """Replace the workers one at a time with new processes started from ``specs``: each
        takes no new call (its INVITEs get 503: the front gives them to the others), its
        calls finish, then it is stopped and its successor started; capacity is down by one
        worker at most. With more ``specs`` than workers (``engine.workers`` raised), the new
        ones are started and the front hears of them; with fewer, the last workers take no
        new call, leave the front's list, and stop once their calls are over. ``loaded``: the
        configuration ``specs`` came from (the front's list is written from it)."""
        started = self.clock.now()
        pids: dict[str, list[int | None]] = {}
        self.worker_drain = {"at": started, "by": by, "result": "draining", "done": [],
                             "worker": None, "calls_left": 0}
        log.info("draining the workers one at a time (asked by %s)", by)
        self.notice(WorkersDraining("", by, len(specs)))
        extra = self.pool.workers[len(specs):]
        for worker in extra:  # fewer workers: these take no new call from now on
            worker.draining = True
        if extra:
            await self._front_list(loaded)
        for index, spec in enumerate(specs[:len(self.pool.workers) - len(extra)]):
            worker = self.pool.workers[index]
            before = worker.pid
            await self._until_idle(worker)
            new = await self.pool.replace(index, spec)
            pids[worker.name] = [before, new.pid]
            self.worker_drain["done"].append(worker.name)
            log.info("worker %s replaced (pid %s → %s)", worker.name, before, new.pid)
        for worker in extra:
            before = worker.pid
            await self._until_idle(worker)
            await self.pool.retire(worker)
            pids[worker.name] = [before, None]
            self.worker_drain["done"].append(worker.name)
            log.info("worker %s stopped (pid %s): engine.workers is %d now", worker.name,
                     before, len(specs))
        added = specs[len(self.pool.workers):]
        for spec in added:
            new = await self.pool.add(spec)
            pids[spec.name] = [None, new.pid]
            self.worker_drain["done"].append(spec.name)
            log.info("worker %s started (pid %s): engine.workers is %d now", spec.name, new.pid,
                     len(specs))
        if added:
            await self._front_list(loaded)
        self.worker_drain.update(result="done", worker=None, calls_left=0, pids=pids,
                                 took_s=round(self.clock.now() - started, 1))
        self.notice(WorkersDrained("", by, len(pids), self.worker_drain["took_s"]))
        return self.worker_drain

    async def _until_idle(self, worker: Worker) -> None:
        """``worker`` takes no new call; returns once its calls are over."""
        worker.draining = True
        drain = self.worker_drain
        assert drain is not None
        drain.update(worker=worker.name, calls_left=len(worker.calls))
        while worker.calls:
            drain["calls_left"] = len(worker.calls)
            await asyncio.sleep(0.1)

    async def _front_list(self, loaded: LoadedConfig | None) -> None:
        """The front's list of workers written again from ``loaded`` and read by Kamailio."""
        if self.front is not None and loaded is not None:
            await self.front.workers_changed(loaded)

    def reconfigure(self, settings: Settings, by: str = "") -> None:
        """Apply a reloaded configuration's live parts, all at once (no await in between):
        screening rules and lists, operator hours and the queue, voice menus, the warning
        catalog, the retry policy, texts, the trunk's limits, the log level. The caller
        validated it whole and built its prompts first; calls in progress keep the flows
        they started with. What needs new workers or a restart is the caller's to say."""
        loaded = settings.loaded
        self.settings, self.loaded, self.config = settings, loaded, loaded.config
        hotline = self.config.hotline
        self.hotline_line = ServiceNumber(hotline.number, hotline.area_code or "")
        self.gate.reconfigure(loaded)
        self.lists = self.gate.lists
        self.desk.reconfigure(loaded, settings.menus)
        self.center = Center(loaded, settings.catalog, self.stores, self.clock.now, self.lists)
        self.dialing.reconfigure(self.config, settings.catalog,
                                 Policy(self.config.dialer, self.tz), by=f"reload:{by}")
        self.texting.reconfigure(self.config, settings.catalog, settings.book,
                                 self.hotline_line)
        logging.getLogger().setLevel(self.config.engine.log_level.upper())
        if self.cluster.shared:
            trunk = self.config.sip.trunk
            self.cluster.pace(TrunkLimits(trunk.max_channels, trunk.max_cps))

    def status(self) -> EngineStatus:
        workers = self.pool.workers
        try:
            due = self.store.due_count(self.clock.now())
        except RecordsError as exc:  # said once; the rest of the status still holds
            self.health.failed(exc)
            due = 0
        return EngineStatus("", sum(w.ready.is_set() for w in workers), len(workers),
                            sum(len(w.calls) for w in workers), due, sorted(self.gate.problems))

    async def _report_status(self) -> None:
        """Every STATUS_EVERY_S, and at once when a list's health changes."""
        last: tuple[str, ...] = ()
        next_at = 0.0
        while True:
            await asyncio.sleep(1.0)
            problems = tuple(sorted(self.gate.problems))
            if problems != last or time.monotonic() >= next_at:
                try:
                    self.notice(self.status())
                except Exception:
                    log.exception("status")
                last, next_at = problems, time.monotonic() + STATUS_EVERY_S

    def holder(self, flow: CallFlow) -> Worker | None:
        """The worker that carries a flow's legs."""
        return self._holder.get(id(flow))

    def subscribe(self) -> asyncio.Queue[Notice]:
        queue: asyncio.Queue[Notice] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def operator_hours_now(self) -> bool:
        return self.desk.open_at(self.clock.now())

    # ------------------------------------------------------------ flows

    async def run_flow(self, flow: CallFlow, worker: Worker, outputs: list[Output],
                       finished: Callable[[CallFlow], object] | None = None,
                       observe: Callable[[CallFlow, Notice], object] | None = None) -> None:
        """Adopt a started flow: its legs are routed to it, its first outputs go out.

        ``observe`` sees each of the flow's notices first; ``finished`` is called
        once, when the flow is done (or failed) and forgotten."""
        for leg in flow.legs:
            self.flows[leg] = flow
        self._holder[id(flow)] = worker
        if finished is not None:
            self._finished[id(flow)] = finished
        if observe is not None:
            self._observers[id(flow)] = observe
        await self._apply(flow, outputs)

    async def _apply(self, flow: CallFlow, outputs: list[Output]) -> None:
        worker = self._holder.get(id(flow))
        observe = self._observers.get(id(flow))
        for output in outputs:
            if isinstance(output, Notice):
                if observe is not None:
                    try:
                        observe(flow, output)
                    except Exception:  # the call goes on; the log says why
                        log.exception("observer of %s", type(flow).__name__)
                self.notice(output)
            elif isinstance(output, Timer):
                self._timer(flow, output)
            elif isinstance(output, Request):
                self._request(flow, output)
            elif worker is not None:
                if isinstance(output, p.Dial) and output.call not in self.flows:
                    self.flows[output.call] = flow  # a leg the flow places now
                await worker.send(output)
        if flow.finished:
            self._forget(flow)

    def _timer(self, flow: CallFlow, timer: Timer) -> None:
        key = (id(flow), timer.name)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        if timer.at is not None:
            event = Timeout(timer.call, timer.name)
            self._timers[key] = self.clock.call_at(timer.at, lambda: self._deliver(flow, event))

    def _request(self, flow: CallFlow, request: Request) -> None:
        """A flow asked the engine for something (store a message…); the answer is an event
        for the same flow, queued behind what the worker has sent so far."""
        answer = self._requests[type(request)](request, self.clock.now())
        worker = self._holder.get(id(flow))
        if answer is not None and worker is not None:
            self.pool.inbox.put_nowait((worker, answer))

    def deliver(self, call: str, event: Answer) -> None:
        """An event for the flow that owns ``call`` (from the engine's own parts, e.g. the queue),
        queued behind what its worker has sent so far."""
        flow = self.flows.get(call)
        worker = self._holder.get(id(flow)) if flow is not None else None
        if worker is not None:
            self.pool.inbox.put_nowait((worker, event))

    def _deliver(self, flow: CallFlow, event: Timeout) -> None:
        self._timers.pop((id(flow), event.name), None)
        if id(flow) in self._holder:
            worker = self._holder[id(flow)]
            self.pool.inbox.put_nowait((worker, event))

    def _forget(self, flow: CallFlow) -> None:
        for leg in flow.legs:
            if self.flows.get(leg) is flow:
                del self.flows[leg]
        self._holder.pop(id(flow), None)
        for key in [k for k in self._timers if k[0] == id(flow)]:
            self._timers.pop(key).cancel()
        self._observers.pop(id(flow), None)
        done = self._finished.pop(id(flow), None)
        if done is not None:
            try:
                done(flow)
            except Exception:
                log.exception("end of %s", type(flow).__name__)

    async def abandon(self, flow: CallFlow, reason: str) -> None:
        """Hang up every leg of ``flow`` now and forget it."""
        await self._fail(flow, Abandoned(reason))

    def _node_info(self) -> dict[str, object]:
        """What this node says of itself to the others at each renewal of its lease."""
        workers = self.pool.workers
        listen = self.config.sip.listen
        return {"host": socket.gethostname(), "sip": f"{listen.host}:{listen.port}",
                "workers": sum(w.ready.is_set() for w in workers), "of": len(workers),
                "calls": sum(len(w.calls) for w in workers),
                "warning_calls": len(self.dialing.live), "pid": os.getpid()}

    def _lease_lost(self) -> None:
        asyncio.get_running_loop().create_task(
            self.dialing.abandon_all("this node lost its lease: another node took its calls"))

    def _taken_over(self, node: str, attempts: list[Any]) -> None:
        self.dialing.publish()
        self.dialing.wake()

    async def _fail(self, flow: CallFlow, error: BaseException) -> None:
        """A flow that raised: hang up whatever it holds, tell people, go on."""
        log.error("call flow %s failed: %s", type(flow).__name__, error,
                  exc_info=not isinstance(error, UnexpectedEvent))
        worker = self._holder.get(id(flow))
        self.notice(FlowFailed(flow.legs[0], str(error)))
        if worker is not None:
            for leg in flow.legs:
                if leg in worker.calls:
                    await worker.send(p.Hangup(leg, 500))
        flow.fail(error)
        self._forget(flow)

    # ------------------------------------------------------------ events

    async def _dispatch(self) -> None:
        while True:
            worker, event = await self.pool.inbox.get()
            try:
                await self._on_event(worker, event)
            except Exception:  # one bad call must not stop the engine
                log.exception("event %s from worker %s", event.TYPE, worker.name)

    async def _on_event(self, worker: Worker, event: Event) -> None:
        if isinstance(event, (p.HungUp, p.Ready)):
            self.pool.slot_freed()
        if isinstance(event, p.Incoming):
            await self._incoming(worker, event)
            return
        if isinstance(event, (p.TextReceived, p.TextStatus)):
            self.texting.on_worker(worker, event)
            return
        if isinstance(event, p.Refused):
            self.notice(SourceRefused("", event.source, normalize(event.caller).masked,
                                      event.status))
            return
        call = getattr(event, "call", None)
        if call is None:
            if isinstance(event, p.Error):
                log.warning("worker %s: %s", worker.name, event.message)
            return
        flow = self.flows.get(call)
        if flow is None:
            if isinstance(event, p.Error):
                log.warning("worker %s, call %s: %s", worker.name, call, event.message)
            return
        if isinstance(event, p.Error):
            log.warning("worker %s, call %s: %s", worker.name, call, event.message)
        try:
            outputs = flow.on_event(event, self.clock.now())
        except Exception as exc:  # noqa: BLE001 - any fault of a flow ends its call, not the engine
            await self._fail(flow, exc)
            return
        await self._apply(flow, outputs)

    async def _incoming(self, worker: Worker, event: p.Incoming) -> None:
        """Every INVITE gets a final answer: screened, routed, or refused if all else fails."""
        if worker.draining:  # being replaced, or the engine stops: another worker takes it
            await worker.send(p.Reject(event.call, 503))
            return
        started = time.perf_counter()
        try:
            decision, error = self.gate.decide(event.caller)
            route = route_for(decision, event.callee, self.hotline_line,
                              self.operator_hours_now())
            flow = self.desk.new_call(event.call, event.caller, decision, route, self.clock.now())
            outputs = flow.start(self.clock.now())
        except Exception as exc:
            log.exception("call %s could not be handled", event.call)
            self.notice(FlowFailed(event.call, f"{type(exc).__name__}: {exc}"))
            await worker.send(p.Reject(event.call, 500))
            return
        decided_us = round((time.perf_counter() - started) * 1e6, 1)  # screen + route, before I/O
        d = decision.as_dict()
        number = decision.number
        shown = number.national if number.kind is NumberKind.E164 else number.digits or number.kind.value
        self.notice(CallScreened(event.call, d["action"], d["status"], d["rule"], d["reason"],
                                 shown, d["kind"], route.value, event.callee, event.source,
                                 worker.name, decided_us, error))
        await self.run_flow(flow, worker, outputs)
        if (route is Route.REJECT and self.config.screening.warn_callee_on_block
                and not self.hotline_line.matches(event.callee)):
            self.warn_callee(event.callee, decision)

    def warn_callee(self, callee: str, decision: Any) -> None:
        """A blocked fraud call was for ``callee``: that person is at risk, warn them
        (``screening.warn_callee_on_block``; :class:`dialer.callee.CalleeWarnings` decides)."""
        request = self.callees.request(callee, decision, self.clock.now())
        if request is None:
            return
        try:
            submitted = self.center.warn(request, ENGINE)
        except RecordsError as exc:
            log.error("the warning for %s, called by a blocked number, was not stored: %s",
                      request.masked, exc)
            return
        log.info("a blocked call was for %s: warning task %s%s", request.masked,
                 submitted.task.id, " (merged)" if submitted.merged else "")

    def notice(self, notice: Notice) -> None:
        record = {"at": local(self.clock, self.tz).isoformat(timespec="milliseconds"),
                  **notice.record()}
        log.info("%s", notice.summary())
        self._events.write(json.dumps(record, ensure_ascii=False) + "\n")
        for queue in self._subscribers:
            queue.put_nowait(notice)
