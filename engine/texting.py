"""Texts wired to the workers: the SMS consultation line and the warning texts.

A worker hands over every MESSAGE it gets (pjsua has answered it 200 before
anyone looked): :meth:`Texting.received` screens the sender like a caller and
asks the pure :class:`texts.consultation.ConsultationLine` what it is: dropped,
with the sentence why, or a consultation, stored in its thread together with
its automatic reply (outside the reply hours when operators answer, 110, and
the advice for the scam it names; inside them a short acknowledgement). A
blocked sender's text is stored with its decision and gets no reply.

Every text out (replies, operators' answers, warning texts) is a row of the
text store first; :meth:`Texting._pump` sends the pending ones through a
worker (:class:`TextSender`: SIP MESSAGE to the trunk today; an SMPP or CMPP
gateway would be another sender) and records the far end's status. A text
another process queued is heard through the store's watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, Protocol

from callflow import Notice
from dialer import Catalog, Task
from hotline import OperatorHours
from screening import Decision, ServiceNumber, normalize
from sip_config import Config
from softphone import protocol as p
from stores import StoreError, StoreUnavailable, TaskStore, TextStore
from texts import Message, TextBook
from texts.consultation import ConsultationLine, Dropped, Incoming

from .clock import Clock
from .membership import StoreHealth
from .trunk import dial_uri
from .workers import Worker, WorkerPool

__all__ = ["SipTextSender", "TextNotice", "TextSender", "Texting"]

log = logging.getLogger("engine.texts")

IN_FLIGHT = 32  # texts waiting for their answer at once
ANSWER_S = 60.0  # a text sent this long ago without an answer is recorded as failed (408)


@dataclass(frozen=True)
class TextNotice(Notice):
    """A text came in or went out (the contract's ``sms/event``)."""

    KIND: ClassVar[str] = "sms"
    NUMBERS: ClassVar[tuple[str, ...]] = ("number",)
    sms_event: str  # received, blocked, auto_replied, replied, warning_sent, failed
    id: int  # the text's row in the text store
    number: str
    kind: str  # consultation, auto_reply, reply, warning
    thread: str | None = None
    task: str | None = None
    status: int | None = None
    fraud_type: str = ""
    when: float = 0.0

    def payload(self, full_numbers: bool = False) -> dict[str, Any]:
        record = self.record(full_numbers)
        out: dict[str, Any] = {"id": self.id, "event": self.sms_event, "number": record["number"],
                               "at": datetime.fromtimestamp(self.when, UTC).isoformat(
                                   timespec="milliseconds"), "kind": self.kind}
        for key in ("thread", "task", "status"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.fraud_type:
            out["fraud_type"] = self.fraud_type
        return out


@dataclass(frozen=True)
class TextDropped(Notice):
    """A MESSAGE that is no consultation: not stored, not answered."""

    KIND: ClassVar[str] = "text_dropped"
    sender: str  # masked already: whatever the From held
    why: str
    source: str


_OUT_EVENTS = {"auto_reply": "auto_replied", "reply": "replied", "warning": "warning_sent"}


class TextSender(Protocol):
    """Sends one text; the answer comes back through :meth:`Texting.answered`."""

    async def send(self, text_id: str, number: str, body: str, sender: str) -> bool:
        """False when it cannot send now (no worker up): the text stays pending."""
        ...

    def lost(self, text_id: str) -> bool:
        """What carried the text has gone since (a worker exited): no answer will come."""
        ...

    def forget(self, text_id: str) -> None: ...


class SipTextSender:
    """Texts as SIP MESSAGE from a worker to ``sip:<number>@<trunk>``, the workers in turn."""

    def __init__(self, pool: WorkerPool, trunk_uri: str) -> None:
        self.pool = pool
        self.trunk_uri = trunk_uri
        self._next = 0
        self._via: dict[str, tuple[Worker, int]] = {}  # text id → its worker, and its restarts

    async def send(self, text_id: str, number: str, body: str, sender: str) -> bool:
        workers = [w for w in self.pool.workers if w.ready.is_set()]
        if not workers:
            return False
        worker = workers[self._next % len(workers)]
        self._next += 1
        if not await worker.send(p.SendText(text_id, dial_uri(number, self.trunk_uri), body,
                                            sender)):
            return False
        self._via[text_id] = (worker, worker.restarts)
        return True

    def lost(self, text_id: str) -> bool:
        via = self._via.get(text_id)
        return via is not None and via[0].restarts != via[1]

    def forget(self, text_id: str) -> None:
        self._via.pop(text_id, None)


class Texting:
    def __init__(self, config: Config, clock: Clock, tz: tzinfo, store: TextStore,
                 tasks: TaskStore, catalog: Catalog, book: TextBook, hotline: ServiceNumber,
                 screen: Callable[[str], Decision], pool: WorkerPool,
                 notice: Callable[[Notice], None], health: StoreHealth | None = None) -> None:
        self.clock = clock
        self.health = health or StoreHealth()
        self.tz = tz
        self.tasks = tasks
        self.screen = screen
        self.pool = pool
        self.notice = notice
        self.store = store
        self.reconfigure(config, catalog, book, hotline)
        self.sender: TextSender = SipTextSender(pool, config.sip.trunk.uri)
        self.in_flight: dict[str, tuple[int, float]] = {}  # "t<id>" → (row id, sent at)
        self._late: dict[str, p.TextStatus] = {}  # answers the store could not take yet
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def reconfigure(self, config: Config, catalog: Catalog, book: TextBook,
                    hotline: ServiceNumber) -> None:
        """The SMS line's settings, text book and hours, and the warning texts' cadence (at
        start, and for a reloaded configuration)."""
        self.config = config
        self.catalog = catalog
        self.sms = config.sms
        self.texts = config.dialer.texts
        area = config.hotline.area_code or ""
        self.sender_id = self.sms.number if self.sms else config.sip.trunk.caller_id
        hours = OperatorHours.from_config(config.hotline)
        if self.sms is not None and self.sms.reply_hours is not None:
            hours = replace(hours, usual=self.sms.reply_hours)
        self.consultations = ConsultationLine(
            ServiceNumber(self.sms.number, area) if self.sms else None, hotline,
            self.sms.max_chars if self.sms else 1000, config.screening.country, book, hours,
            config.dialer.center_name, self.tz)
        sender = getattr(self, "sender", None)
        if isinstance(sender, SipTextSender):
            sender.trunk_uri = config.sip.trunk.uri

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        again = self.store.recover()
        if again:
            log.warning("%d text(s) sent before a stop got no answer; sending them again", again)
        self.store.watch.subscribe(self.wake)  # this process's replies: at once
        self._tasks = [asyncio.create_task(self._run(), name="texts"),
                       asyncio.create_task(self._listen(), name="texts-watch")]
        self.pool.on_slot_freed(self.wake)  # a worker that comes up may send

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------ in

    def on_worker(self, worker: Worker, event: p.TextReceived | p.TextStatus) -> None:
        if isinstance(event, p.TextStatus):
            self.answered(event)
        else:
            self.received(event)

    def received(self, event: p.TextReceived) -> None:
        sender = normalize(event.sender)
        text = Incoming(event.sender, event.to, event.body, event.content_type, event.problem)
        taken = self.consultations.take(text, self.screen(event.sender))
        if isinstance(taken, Dropped):
            log.warning("a text from %s (%s) was dropped: %s", sender.masked, event.source,
                        taken.why)
            self.notice(TextDropped(event.text, sender.masked, taken.why, event.source))
            return
        now = self.clock.now()

        def reply(opened: bool) -> tuple[str, str] | None:
            return ("auto_reply", self.consultations.reply(now, taken.advice)) if opened else None

        try:
            incoming, answer = self.store.receive(
                taken.number, taken.body, now, thread_s=self.sms.thread_s if self.sms else 600,
                rule=taken.rule, blocked=taken.blocked, fraud_type=taken.fraud_type,
                source=event.source, reply=reply)
        except StoreError as exc:
            log.error("a text from %s was lost: %s", sender.masked, exc)
            return
        self.notice(TextNotice(event.text, "blocked" if taken.blocked else "received",
                               incoming.id, taken.number, "consultation", incoming.thread_id,
                               fraud_type=taken.fraud_type, when=now))
        if answer is not None:
            self.wake()

    # ------------------------------------------------------------ warning texts

    def warn(self, task: Task, now: float) -> Message | None:
        """Queue a warning text for a task whose call did not reach the person."""
        config = self.config
        body = self.catalog.warning_text(task.fraud_type, center=config.dialer.center_name,
                                         caller_id=config.sip.trunk.caller_id)
        try:
            message = self.store.queue("warning", task.dial, body, now, task_id=task.id)
        except StoreError as exc:
            log.error("the warning text for task %s was not stored: %s", task.id, exc)
            return None
        self.wake()
        return message

    def texts_of(self, task_id: str) -> list[Message]:
        return self.store.of_task(task_id)

    # ------------------------------------------------------------ out

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                for event in list(self._late.values()):  # answers the store could not take
                    self.answered(event)
                await self._pump()
                self._expire(self.clock.now())
                self.health.answered()
            except StoreUnavailable as exc:  # said once; the texts wait in the store
                self.health.failed(exc)
            except Exception:
                log.exception("sending texts")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _listen(self) -> None:
        """Another process queued a text (``sms reply``, the console): it goes out."""
        while True:
            try:
                if await self.store.watch.wait():
                    self.wake()
            except StoreUnavailable as exc:
                self.health.failed(exc)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("reading the text store")
                await asyncio.sleep(1.0)

    async def _pump(self) -> None:
        room = IN_FLIGHT - len(self.in_flight)
        if room <= 0:
            return
        for message in self.store.pending(room):
            text_id = f"t{message.id}"
            if text_id in self.in_flight:
                continue
            if message.task_id is not None and not self._task_open(message.task_id):
                self.store.drop(message.id, "the task was closed first", self.clock.now())
                continue  # acknowledged, cancelled or finished while the text waited
            self.store.sending(message.id)
            self.in_flight[text_id] = (message.id, self.clock.now())
            if not await self.sender.send(text_id, message.number, message.body, self.sender_id):
                del self.in_flight[text_id]
                self.store.unsend(message.id)
                return  # no worker is up: a worker's start wakes us

    def _task_open(self, task_id: str) -> bool:
        try:
            return self.tasks.task(task_id).state.open
        except StoreError:
            return False

    def _expire(self, now: float) -> None:
        for text_id, (message_id, sent) in list(self.in_flight.items()):
            if text_id in self._late:
                continue
            if self.sender.lost(text_id):  # its worker exited: the text goes out again
                log.warning("text %d was in flight on a worker that exited; sending it again",
                            message_id)
                del self.in_flight[text_id]
                self.sender.forget(text_id)
                self.store.unsend(message_id)
                self.wake()
            elif now - sent > ANSWER_S:
                self.answered(p.TextStatus(text_id, 408, "no answer from the worker"))

    def answered(self, event: p.TextStatus) -> None:
        entry = self.in_flight.get(event.text)
        if entry is None:
            return  # answered after it was given up
        now = self.clock.now()
        try:
            message = self.store.answered(entry[0], event.status, event.reason, now)
        except StoreError as exc:  # kept, and tried again: else a restart sends it twice
            if event.text not in self._late:
                log.error("the answer %d to text %s was not stored (%s); trying again",
                          event.status, event.text, exc)
            self._late[event.text] = event
            return
        self._late.pop(event.text, None)
        del self.in_flight[event.text]
        self.sender.forget(event.text)
        ok = 200 <= event.status < 300
        if not ok:
            log.warning("a text (%s) to %s was refused: %d %s", message.kind, message.masked,
                        event.status, event.reason)
            if message.kind == "reply" and message.thread_id:
                with contextlib.suppress(StoreError):  # the operator sees it waiting again
                    self.store.reply_failed(message.thread_id)
        self.notice(TextNotice(event.text, _OUT_EVENTS[message.kind] if ok else "failed",
                                      message.id, message.number, message.kind, message.thread_id,
                                      message.task_id, event.status, when=now))
        self.wake()
