"""The warning dialer wired to the workers: due tasks → trunk pacing → warning calls → store.

The store is the queue. Whatever accepts a request (``warn`` in another process, MQTT, the
console, the engine itself: all through :class:`center.Center`) commits it first; the dialer
hears of it through the store's watch (at once for this process's commits, within ~20 ms
for another's). While the trunk has a channel, its calls per second allow a setup and a
worker has room, it claims the next due task for this node (the attempt is on disk before
the INVITE leaves), takes the channel and the number in the :class:`Pacer`, and hands a
:class:`~dialer.WarningCall` to the engine. When the call is over, the pure
:class:`~dialer.Policy` says what comes next and the store records it with its events; each
stored event leaves as a :class:`TaskNotice`.

At start, this node's attempts that a crash left open are recorded as interrupted (not
counted) and their tasks are due again; other nodes' calls are theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

import audio
from audio.amd import AmdSettings
from audio.library import Library
from callflow import Answer, CallFlow, Notice, Output
from dialer import (
    Catalog,
    Outcome,
    Policy,
    Task,
    TaskEvent,
    TaskState,
    WarningCall,
    WarningScript,
    known_by,
)
from dialer.catalog import prompt_name
from dialer.policy import history_of
from dialer.warning import OfficerAnswered, TaskCancelled, WarningAcknowledged, WarningAnswered
from sip_config import Config
from softphone import protocol as p
from stores import Refused, StoreError, StoreUnavailable, TaskStore
from texts import Message, warning_text_due

from .clock import Clock
from .membership import StoreHealth
from .trunk import Pacer, dial_uri
from .workers import Worker, WorkerPool

__all__ = ["CallHost", "Dialing", "TaskNotice", "WarningTexts", "notice_of"]

log = logging.getLogger("engine.dialing")

PRUNE_EVERY_S = 3600.0  # how often heard clips older than keep_heard_days are removed
RETRY_S = 1.0  # while the store cannot be written: how often to try again
RECHECK_S = 0.05  # nothing claimed though something was due: look again no sooner
RECOVERY_GRACE_S = 2.5
"""After a crash, calls of the dead engine may still be up for a moment (its workers hang up
within 2 s of losing it): interrupted tasks are called again after this."""


@dataclass(frozen=True)
class TaskNotice(Notice):
    """A warning task changed (one row of the store's event history)."""

    KIND: ClassVar[str] = "task"
    NUMBERS: ClassVar[tuple[str, ...]] = ("number",)
    task_id: str
    task_event: str  # queued, merged, attempt, answered, attempt_ended, escalated, ...
    attempt: int
    outcome: str | None
    number: str  # the national form; masked in records
    seq: int
    when: float  # epoch seconds, as stored
    detail: dict[str, Any] = field(default_factory=dict)

    def payload(self, full_numbers: bool = False) -> dict[str, Any]:
        """The contract's ``warning/event`` message."""
        record = self.record(full_numbers)
        at = datetime.fromtimestamp(self.when, UTC).isoformat(timespec="milliseconds")
        out = {"task_id": self.task_id, "event": self.task_event, "attempt": self.attempt,
               "number": record["number"], "at": at, "id": self.seq}
        if self.outcome is not None:
            out["outcome"] = self.outcome
        if self.task_event == "escalated":
            out["case_ids"] = self.detail.get("case_ids", [])
        return out


class CallHost(Protocol):
    """What the engine does for the dialer: carry a flow's calls on a worker."""

    def run_flow(self, flow: CallFlow, worker: Worker, outputs: list[Output],
                 finished: Callable[[CallFlow], object] | None = None,
                 observe: Callable[[CallFlow, Notice], object] | None = None) -> Awaitable[None]: ...

    def deliver(self, call: str, event: Answer) -> None:
        """An event for the flow that owns ``call``, behind what its worker has sent so far."""
        ...

    def abandon(self, flow: CallFlow, reason: str) -> Awaitable[None]:
        """Hang up every leg of ``flow`` at once and forget it (its ``finished`` still runs)."""
        ...


class WarningTexts(Protocol):
    """The texts beside the calls (:class:`engine.texting.Texting`)."""

    def texts_of(self, task_id: str) -> list[Message]: ...

    def warn(self, task: Task, now: float) -> Message | None: ...


@dataclass
class _Live:
    flow: WarningCall
    key: int  # the pacer's number key
    started_at: float


class Dialing:
    def __init__(self, config: Config, clock: Clock, store: TaskStore, catalog: Catalog,
                 policy: Policy, pool: WorkerPool, calls: CallHost,
                 notice: Callable[[Notice], None], prompt_dir: Path, library: Library,
                 node: str, rng: Callable[[], float] = random.random,
                 health: StoreHealth | None = None) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.catalog = catalog
        self.policy = policy
        self.pool = pool
        self.calls = calls
        self.notice = notice
        self.prompt_dir = prompt_dir
        self.library = library
        self.node = node
        self.rng = rng
        self.health = health or StoreHealth()
        self._unsaved: deque[tuple[Callable[[], object], str]] = deque()
        self.draining = False
        self.texts: WarningTexts | None = None  # set once the engine has its texting
        self.trunk_uri = config.sip.trunk.uri
        self.pacer = Pacer(config.sip.trunk.max_channels, config.sip.trunk.max_cps)
        self.live: dict[str, _Live] = {}  # task id → its call in flight
        self._wake = asyncio.Event()
        self._last_seq = store.last_event_seq()
        self._scripts: dict[str, WarningScript] = {}
        self._pruned_at = -PRUNE_EVERY_S
        self._tasks: list[asyncio.Task[None]] = []

    def reconfigure(self, config: Config, catalog: Catalog, policy: Policy, by: str = "") -> None:
        """A reloaded configuration: the catalog's warnings, the retry policy and the trunk
        for the next call and the next decision of each task; a call in progress keeps the
        script it started with. A retry already planned later than the new policy allows is
        planned again (:meth:`_replan`), the others stay as they are."""
        before = self.config.dialer
        if (before.retry, before.quiet_hours) != (config.dialer.retry, config.dialer.quiet_hours):
            self._tasks.append(asyncio.create_task(self._replan(policy, by), name="replan"))
        self.config = config
        self.catalog = catalog
        self.policy = policy
        self.trunk_uri = config.sip.trunk.uri
        self.pacer.max_channels = config.sip.trunk.max_channels
        self.pacer.max_cps = config.sip.trunk.max_cps
        self._scripts = {}
        self._unpin()
        self.wake()

    async def _replan(self, policy: Policy, by: str) -> None:
        """Every waiting task whose next call was planned later than ``policy`` allows is
        brought forward (a shorter busy retry during an incident applies to the lines already
        found busy, not only to the next ones)."""
        try:
            waiting = self.store.tasks([TaskState.WAITING])
            tried = self.store.attempts_of([task.id for task in waiting])
        except StoreError as exc:
            log.warning("the retries planned before the reload were not checked: %s", exc)
            return
        moved = 0
        for i, task in enumerate(waiting):
            if self.policy is not policy:
                return  # another reload came meanwhile: its own pass goes on
            if i % 200 == 199:
                await asyncio.sleep(0)  # a long list never holds the calls up
            if not tried.get(task.id):
                continue
            last = tried[task.id][-1]
            at = policy.replan(task, last.started_at, last.ended_at or last.started_at,
                               self.rng())
            if at is None:
                continue
            try:
                if self.store.bring_forward(task.id, at, self.clock.now(), by) is not None:
                    moved += 1
            except StoreError as exc:
                log.warning("task %s keeps its planned retry: %s", task.id, exc)
        if moved:
            log.info("%d planned retries brought forward to the new retry policy", moved)
            self.publish()
            self.wake()

    def _unpin(self) -> None:
        """Let go of the pinned prompts that neither a call in progress nor a script uses."""
        def files(script: WarningScript) -> tuple[str, ...]:
            return (script.warning, script.thanks, script.goodbye, script.machine,
                    script.connecting, script.officer_unreachable)
        scripts = [live.flow.script for live in self.live.values()] + [*self._scripts.values()]
        audio.unpin(self.prompt_dir, (f for script in scripts for f in files(script)))

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        now = self.clock.now()
        interrupted = self.store.recover(self.node, now, due_at=now + RECOVERY_GRACE_S)
        for attempt in interrupted:
            log.warning("attempt %d of task %s was interrupted by a stop of the engine; "
                        "calling again", attempt.n, attempt.task_id)
        self.publish()
        self.store.watch.subscribe(self.wake)  # this process's requests: at once
        self._tasks = [asyncio.create_task(self._run(), name="dialing"),
                       asyncio.create_task(self._listen(), name="dialing-watch")]
        self.pool.on_slot_freed(self.wake)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                until = await self._pump() if self._flush() else self.clock.now() + RETRY_S
            except StoreUnavailable as exc:  # said once; calls in progress go on
                self.health.failed(exc)
                until = self.clock.now() + RETRY_S
            except Refused as exc:  # this node's lease was taken: it joins again first
                log.warning("no warning call placed: %s", exc)
                until = self.clock.now() + RETRY_S
            except Exception:  # a bad moment of the store must not stop the dialling for good
                log.exception("placing warning calls")
                until = self.clock.now() + RETRY_S
            await self._sleep(until)

    async def _sleep(self, until: float | None) -> None:
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep_until(until)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _listen(self) -> None:
        """Another process (``warn``, the console) or node changed the store: its events go
        out, and the dialer looks at what is due."""
        while True:
            try:
                if await self.store.watch.wait():
                    self.publish()
                    self.wake()
            except StoreUnavailable as exc:
                self.health.failed(exc)
                await asyncio.sleep(RETRY_S)
            except Exception:
                log.exception("reading the task store")
                await asyncio.sleep(RETRY_S)

    def _prune_heard(self, now: float) -> None:
        """Heard clips are kept dialer.progress.keep_heard_days, then removed."""
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        self._unpin()  # the calls that began before the last reload are over by now
        keep_s = self.config.dialer.progress.keep_heard_days * 86400
        try:
            gone = self.library.prune_heard(now, keep_s)
        except OSError as exc:
            log.warning("heard clips not pruned: %s", exc)
            return
        if gone:
            log.info("%d heard clip(s) older than %g days removed", gone, keep_s / 86400)

    async def _pump(self) -> float | None:
        """Place every call that may start now; returns when to look again (None: when woken)."""
        if self.draining:  # a graceful stop: the due tasks wait in the store for the next start
            return None
        self._prune_heard(self.clock.now())
        while True:
            now = self.clock.now()
            wait = self.pacer.wait_s(now)
            if wait is None:
                return None  # every channel is busy: a call's end wakes us
            worker = self.pool.least_loaded()
            if worker is None:
                return None  # every worker is full or down: a freed slot wakes us
            if wait > 0:  # the trunk's calls a second: a moment, if anything is due
                due_at = self.store.next_due_at()
                return None if due_at is None else max(now + wait, due_at)
            claims = self.store.claim(now, self.node, worker.name)
            self.health.answered()
            if not claims:
                due = self.store.next_due_at()  # (the trunk of all nodes may be full)
                return None if due is None else max(due, now + RECHECK_S)
            task, attempt = claims[0].task, claims[0].attempt
            key = int(task.number)
            flow = WarningCall(attempt.call, task.id, attempt.n, dial_uri(task.dial, self.trunk_uri),
                               self._script(task.fraud_type),
                               attempt.recording if self.config.dialer.record else None)
            if self.pacer.busy(key):  # cannot happen with one open task per number: never dial twice
                log.error("task %s was due while its number is in a call; called again later",
                          task.id)
                flow.fail(RuntimeError("the number was in a call already"))
                self._ended(flow)
                continue
            self.pacer.take(key, attempt.call, now)
            self.live[task.id] = _Live(flow, key, now)
            self.publish()
            await self.calls.run_flow(flow, worker, flow.start(now), finished=self._ended,
                                      observe=self._observe)

    def _script(self, fraud_type: str) -> WarningScript:
        kind = self.catalog.get(fraud_type).id
        if kind not in self._scripts:
            config = self.config
            d, a = config.dialer, config.dialer.amd

            def wav(name: str) -> str:  # pinned: a reload during the call changes none of it
                return str(audio.pin(audio.path_of(self.prompt_dir, prompt_name(name))))

            progress = d.progress
            self._scripts[kind] = WarningScript(
                warning=wav(kind), thanks=wav("thanks"), goodbye=wav("goodbye"),
                machine=wav("machine"), connecting=wav("connecting"),
                officer_unreachable=wav("officer_unreachable"),
                caller_id=config.sip.trunk.caller_id, ring_timeout_s=d.ring_timeout_s,
                ack_digit=d.ack_digit, officer_digit=d.officer_digit,
                officer_uri=d.officer_uri or config.hotline.operator_uri,
                officer_ring_timeout_s=d.officer_ring_timeout_s, repeats=d.repeats,
                ack_wait_s=d.ack_wait_s, max_call_s=d.max_call_s, greeting_wait_s=a.greeting_wait_s,
                amd=AmdSettings(**a.model_dump(exclude={"enabled", "greeting_wait_s"}))
                if a.enabled else None,
                progress=p.DetectProgress(
                    "", progress.tones, str(self.library.directory), progress.answered_s,
                    str(self.library.heard_dir) if progress.keep_heard_days else "")
                if progress.enabled else None)
        return self._scripts[kind]

    # ------------------------------------------------------------ the call's course

    def _observe(self, flow: CallFlow, notice: Notice) -> None:
        assert isinstance(flow, WarningCall)
        now = self.clock.now()
        task, n = flow.task, flow.attempt
        if isinstance(notice, WarningAnswered):
            self._keep(lambda: self.store.mark_answered(task, n, now))
        elif isinstance(notice, WarningAcknowledged):
            self._keep(lambda: self.store.mark_reached(task, n, "acknowledged", now))
        elif isinstance(notice, OfficerAnswered):
            self._keep(lambda: self.store.mark_reached(task, n, "transferred", now))
        else:
            return
        self.publish()

    def _ended(self, flow: CallFlow) -> None:
        assert isinstance(flow, WarningCall)
        live = self.live.pop(flow.task, None)
        if live is not None:
            self.pacer.release(live.key)
        self.wake()
        now = self.clock.now()
        outcome = flow.outcome or Outcome.ERROR
        how = flow.how or {"by": "error", "error": "the call ended without an outcome"}
        started_at = live.started_at if live is not None else None
        rand = self.rng()

        def store() -> None:
            task = self.store.task(flow.task)
            plan = self.policy.after(history_of(task), outcome, now, rand, how=known_by(how),
                                     started_at=started_at)
            task = self.store.end_attempt(flow.task, flow.attempt, outcome, flow.status,
                                          flow.digits, flow.amd, now, plan, how)
            self._text(task, outcome, now)

        self._keep(store, f"the end of attempt {flow.attempt} of task {flow.task}")
        self.publish()

    def _keep(self, write: Callable[[], object], what: str = "") -> None:
        """A write about a call, now or, while the store cannot be written, as soon as it can
        (in the order the calls said them): what a call learned is never dropped."""
        if self._unsaved:
            self._unsaved.append((write, what))
            return
        try:
            write()
        except StoreUnavailable as exc:
            self._unsaved.append((write, what))
            self.health.failed(exc)
        except StoreError as exc:
            log.error("%s was not stored: %s", what or "a call's progress", exc)
        else:
            self.health.answered()

    def _flush(self) -> bool:
        """The writes kept while the store was away, in order; False if it still is."""
        while self._unsaved:
            write, what = self._unsaved[0]
            try:
                write()
            except StoreUnavailable as exc:
                self.health.failed(exc)
                return False
            except StoreError as exc:
                log.error("%s was not stored: %s", what or "a call's progress", exc)
            self._unsaved.popleft()
            self.health.answered()
            self.publish()
        return True

    async def abandon_all(self, reason: str) -> None:
        """Hang up every warning call this node carries (its lease was taken: the others
        interrupted these attempts and may call the same people now)."""
        for live in list(self.live.values()):
            await self.calls.abandon(live.flow, reason)

    def _text(self, task: Task, outcome: Outcome, now: float) -> None:
        """A warning text beside the calls, when the call did not reach the person."""
        if self.texts is None:
            return
        sent = self.texts.texts_of(task.id)
        off_before = outcome is Outcome.UNREACHABLE and sum(
            a.outcome is Outcome.UNREACHABLE for a in self.store.attempts(task.id)) > 1
        if warning_text_due(self.config.dialer.texts, outcome=outcome,
                            task_open=task.state.open,
                            delivered=sum(m.state != "failed" for m in sent),
                            last_sent_at=max((m.at for m in sent), default=None),
                            quiet=self.policy.not_before(task.risk, now) > now, now=now,
                            off_before=off_before):
            self.texts.warn(task, now)

    # ------------------------------------------------------------ events out

    def publish(self) -> None:
        """Every event stored since the last call leaves as a :class:`TaskNotice`."""
        try:
            events = self.store.events(after=self._last_seq)
        except StoreUnavailable as exc:  # the events wait in the store; said once
            self.health.failed(exc)
            return
        numbers: dict[str, str] = {}
        for event in events:
            self._last_seq = event.seq
            if event.task_id not in numbers:
                with contextlib.suppress(StoreError):
                    numbers[event.task_id] = self.store.task(event.task_id).dial
            self.notice(notice_of(event, numbers.get(event.task_id, "")))
            if event.event == "cancelled":
                self._cancelled(event.task_id)

    def _cancelled(self, task_id: str) -> None:
        """A task cancelled during its call: the call's flow decides (a ringing call is
        cancelled, an answered one goes on: the person is hearing the warning)."""
        live = self.live.get(task_id)
        if live is not None:
            self.calls.deliver(live.flow.call, TaskCancelled(live.flow.call))


def notice_of(event: TaskEvent, number: str) -> TaskNotice:
    return TaskNotice(call=f"{event.task_id}-{event.attempt}" if event.attempt else event.task_id,
                      task_id=event.task_id, task_event=event.event, attempt=event.attempt,
                      outcome=event.outcome, number=number, seq=event.seq, when=event.at,
                      detail=event.detail)
