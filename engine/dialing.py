"""The warning dialer wired to the workers: due tasks → trunk pacing → warning calls → store.

The store is the queue. Whatever accepts a request (``warn`` in another
process, :meth:`Dialing.submit` in this one, MQTT later) commits it first; the
dialer notices within ~20 ms (``PRAGMA data_version``) or at once when woken.
For each task that is due, while the trunk has a channel, its calls-per-second
allow a setup and a worker has room, it records the attempt (on disk before
the INVITE leaves), takes the channel and the number in the :class:`Pacer`,
and hands a :class:`~dialer.WarningCall` to the engine. When the call is over,
the pure :class:`~dialer.Policy` says what comes next and the store records it
with its events; each stored event leaves as a :class:`TaskNotice`.

At start, attempts a crash left open are recorded as interrupted (not counted)
and their tasks are due again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import audio
from audio.amd import AmdSettings
from audio.library import Library
from callflow import CallFlow, Notice
from dialer import (
    Catalog,
    Outcome,
    Policy,
    StoreError,
    Submitted,
    Task,
    TaskEvent,
    TaskState,
    TaskStore,
    WarningCall,
    WarningRequest,
    WarningScript,
    known_by,
)
from dialer.call import OfficerAnswered, WarningAcknowledged, WarningAnswered
from dialer.catalog import prompt_name
from dialer.requests import RequestError, validate
from screening import Decision
from softphone import protocol as p
from texts import warning_text_due

from .trunk import Pacer, dial_uri

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["Dialing", "TaskNotice", "notice_of"]

log = logging.getLogger("engine.dialing")

PRUNE_EVERY_S = 3600.0  # how often heard clips older than keep_heard_days are removed
POLL_S = 0.02  # how often the store is checked for requests from other processes (cheap)
CALLEE_QUIET_S = 600.0  # blocked calls to one person within this are one warning
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


@dataclass
class _Live:
    flow: WarningCall
    key: int  # the pacer's number key
    started_at: float


class Dialing:
    def __init__(self, engine: Engine, store: TaskStore, catalog: Catalog, policy: Policy,
                 rng: Callable[[], float] = random.random) -> None:
        self.engine = engine
        self.store = store
        self.catalog = catalog
        self.policy = policy
        self.rng = rng
        config = engine.config
        self.trunk_uri = config.sip.trunk.uri
        self.pacer = Pacer(config.sip.trunk.max_channels, config.sip.trunk.max_cps)
        self.live: dict[str, _Live] = {}  # task id → its call in flight
        self.prompt_dir = engine.prompt_dir
        self._wake = asyncio.Event()
        self._last_seq = max((e.seq for e in store.events()), default=0)
        self._scripts: dict[str, WarningScript] = {}
        self.library = Library.of(engine.loaded.data_dir)
        self._pruned_at = -PRUNE_EVERY_S
        self._callees: dict[str, float] = {}  # number → when a blocked call last made a task
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        now = self.engine.clock.now()
        interrupted = self.store.recover(now, due_at=now + RECOVERY_GRACE_S if self._had_calls() else now)
        for attempt in interrupted:
            log.warning("attempt %d of task %s was interrupted by a stop of the engine; "
                        "calling again", attempt.n, attempt.task_id)
        self.publish()
        self._tasks = [asyncio.create_task(self._run(), name="dialing"),
                       asyncio.create_task(self._poll(), name="dialing-poll")]
        self.engine.pool.on_slot_freed(self.wake)

    def _had_calls(self) -> bool:
        return bool(self.store.tasks([TaskState.CALLING]))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    def submit(self, request: WarningRequest) -> Submitted:
        """An in-process request: on disk before this returns, then dialled."""
        now = self.engine.clock.now()
        submitted = self.store.submit(request, now, self.policy.not_before(request.risk, now))
        self.publish()
        self.wake()
        return submitted

    def warn_callee(self, callee: str, decision: Decision) -> None:
        """A blocked fraud call was for ``callee``: that person is at risk, warn them
        (``screening.warn_callee_on_block``). A callee that is no person's phone is left alone;
        a second blocked call within CALLEE_QUIET_S is the same warning."""
        now = self.engine.clock.now()
        config = self.engine.config.screening
        try:
            request = validate(callee, None, "high", None,
                               f"a call from {decision.number.masked} to this person was blocked "
                               f"({decision.rule}: {decision.reason})", known_types=["general"],
                               source="screening", country=config.country)
        except RequestError as exc:
            log.debug("blocked call to %s: no warning (%s)", callee[:20], exc)
            return
        if now - self._callees.get(request.number, -CALLEE_QUIET_S) < CALLEE_QUIET_S:
            return
        self._callees[request.number] = now
        for number, at in list(self._callees.items()):
            if now - at >= CALLEE_QUIET_S:
                del self._callees[number]
        try:
            submitted = self.submit(request)
        except StoreError as exc:
            log.error("the warning for %s, called by a blocked number, was not stored: %s",
                      request.masked, exc)
            return
        log.info("a blocked call was for %s: warning task %s%s", request.masked, submitted.task.id,
                 " (merged)" if submitted.merged else "")

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                until = await self._pump()
            except Exception:  # a bad moment of the store must not stop the dialling for good
                log.exception("placing warning calls")
                until = self.engine.clock.now() + 1.0
            await self._sleep(until)

    async def _sleep(self, until: float | None) -> None:
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(self.engine.clock.sleep_until(until)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                if self.store.changed():
                    self.publish()
                    self.wake()
            except Exception:
                log.exception("reading the task store")

    def _prune_heard(self, now: float) -> None:
        """Heard clips are kept dialer.progress.keep_heard_days, then removed."""
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        keep_s = self.engine.config.dialer.progress.keep_heard_days * 86400
        try:
            gone = self.library.prune_heard(now, keep_s)
        except OSError as exc:
            log.warning("heard clips not pruned: %s", exc)
            return
        if gone:
            log.info("%d heard clip(s) older than %g days removed", gone, keep_s / 86400)

    async def _pump(self) -> float | None:
        """Place every call that may start now; returns when to look again (None: when woken)."""
        clock = self.engine.clock
        self._prune_heard(clock.now())
        while True:
            now = clock.now()
            wait = self.pacer.wait_s(now)
            if wait is None:
                return None  # every channel is busy: a call's end wakes us
            worker = self.engine.pool.least_loaded()
            if worker is None:
                return None  # every worker is full or down: a freed slot wakes us
            due = self.store.due(now, 1)
            if not due:
                return self.store.next_due_at()
            if wait > 0:
                return now + wait
            task = due[0]
            key = int(task.number)
            if self.pacer.busy(key):  # cannot happen with one open task per number; never dial twice
                log.error("task %s is due while its number is in a call; waiting", task.id)
                return now + 1.0
            call = f"{task.id}-{task.tries + 1}"
            try:
                attempt = self.store.begin_attempt(task.id, call, worker.name, now)
            except StoreError as exc:  # cancelled a moment ago
                log.info("%s", exc)
                continue
            self.pacer.take(key, call, now)
            flow = WarningCall(call, task.id, attempt.n, dial_uri(task.dial, self.trunk_uri),
                               self._script(task.fraud_type),
                               attempt.recording if self.engine.config.dialer.record else None)
            self.live[task.id] = _Live(flow, key, now)
            self.publish()
            await self.engine.run_flow(flow, worker, flow.start(now), finished=self._ended,
                                       observe=self._observe)

    def _script(self, fraud_type: str) -> WarningScript:
        kind = self.catalog.get(fraud_type).id
        if kind not in self._scripts:
            config = self.engine.config
            d, a = config.dialer, config.dialer.amd

            def wav(name: str) -> str:
                return str(audio.path_of(self.prompt_dir, prompt_name(name)))

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
        now = self.engine.clock.now()
        if isinstance(notice, WarningAnswered):
            self.store.mark_answered(notice.task, notice.attempt, now)
        elif isinstance(notice, WarningAcknowledged):
            self.store.mark_reached(flow.task, flow.attempt, "acknowledged", now)
        elif isinstance(notice, OfficerAnswered):
            self.store.mark_reached(flow.task, flow.attempt, "transferred", now)
        else:
            return
        self.publish()

    def _ended(self, flow: CallFlow) -> None:
        assert isinstance(flow, WarningCall)
        live = self.live.pop(flow.task, None)
        if live is not None:
            self.pacer.release(live.key)
        self.wake()
        now = self.engine.clock.now()
        outcome = flow.outcome or Outcome.ERROR
        how = flow.how or {"by": "error", "error": "the call ended without an outcome"}
        try:
            task = self.store.task(flow.task)
            plan = self.policy.after(self.store.history(task), outcome, now, self.rng(),
                                     how=known_by(how),
                                     started_at=live.started_at if live is not None else None)
            task = self.store.end_attempt(flow.task, flow.attempt, outcome, flow.status,
                                          flow.digits, flow.amd, now, plan, how)
        except StoreError as exc:
            log.error("the end of attempt %d of task %s was not stored: %s", flow.attempt,
                      flow.task, exc)
        else:
            self._text(task, outcome, now)
        self.publish()

    def _text(self, task: Task, outcome: Outcome, now: float) -> None:
        """A warning text beside the calls, when the call did not reach the person."""
        texting = self.engine.texting
        sent = texting.texts_of(task.id)
        off_before = outcome is Outcome.UNREACHABLE and sum(
            a.outcome is Outcome.UNREACHABLE for a in self.store.attempts(task.id)) > 1
        if warning_text_due(self.engine.config.dialer.texts, outcome=outcome,
                            task_open=task.state.open,
                            delivered=sum(m.state != "failed" for m in sent),
                            last_sent_at=max((m.at for m in sent), default=None),
                            quiet=self.policy.not_before(task.risk, now) > now, now=now,
                            off_before=off_before):
            texting.warn(task, now)

    # ------------------------------------------------------------ events out

    def publish(self) -> None:
        """Every event stored since the last call leaves as a :class:`TaskNotice`."""
        events = self.store.events(after=self._last_seq)
        numbers: dict[str, str] = {}
        for event in events:
            self._last_seq = event.seq
            if event.task_id not in numbers:
                with contextlib.suppress(StoreError):
                    numbers[event.task_id] = self.store.task(event.task_id).dial
            self.engine.notice(notice_of(event, numbers.get(event.task_id, "")))
            if event.event == "cancelled":
                self._cancelled(event.task_id)

    def _cancelled(self, task_id: str) -> None:
        """A task cancelled while its call rings: the call is cancelled too (an answered one
        goes on: the person is hearing the warning)."""
        live = self.live.get(task_id)
        if live is None or live.flow.answered_at is not None:
            return
        worker = self.engine.holder(live.flow)
        if worker is not None:
            asyncio.ensure_future(worker.send(p.Hangup(live.flow.call)))


def notice_of(event: TaskEvent, number: str) -> TaskNotice:
    return TaskNotice(call=f"{event.task_id}-{event.attempt}" if event.attempt else event.task_id,
                      task_id=event.task_id, task_event=event.event, attempt=event.attempt,
                      outcome=event.outcome, number=number, seq=event.seq, when=event.at,
                      detail=event.detail)
