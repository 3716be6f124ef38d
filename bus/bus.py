"""The MQTT plug-in: the engine's notices out to a broker, requests and list updates in.

The engine knows nothing of MQTT: :class:`Bus` subscribes to its notices, like
baresip's ``mqtt`` module to its core's events. Two things run side by side,
broker or not:

- the collector turns notices into messages in the :class:`~bus.outbox.Outbox`
  (task events and callback messages are copied from their stores behind a
  cursor, so nothing the stores hold is skipped, even what was stored while
  the engine or the bus was down);
- the connection, with jittered exponential backoff: while connected it takes
  ``warning/request``, ``warning/cancel``, ``blocklist/update``, ``sms/reply`` and
  ``hotline/callback_done`` (QoS 1, acknowledged to the broker only once stored or
  applied, every one through :class:`center.Center` as the command line's are),
  drains the outbox in order, and keeps ``engine/status`` retained (the last will
  says ``down``).

The broker acknowledgement of a request waits for the task store's commit
(paho's manual acknowledgement: aiomqtt 2.5 has no switch for it, so the
underlying paho client is set before connecting, as aiomqtt's issue #345
advises). A crash between receipt and commit leaves the message unacknowledged
and the broker sends it again to the persistent session.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiomqtt

from center import Actor, Invalid
from engine.core import CallScreened, EngineEvent, EngineStatus
from engine.dialing import TaskNotice, notice_of
from engine.texting import TextNotice
from hotline.ivr import MessageLeft
from screening import StoreError as ListStoreError
from screening import mask
from sip_config import LoadedConfig
from sip_config.schema import MqttConfig
from stores import NotFound, Refused, StoreError, StoreUnavailable, open_stores

from .messages import (
    BadMessage,
    callback_done,
    dumps,
    list_update,
    parse_object,
    sender,
    sms_reply,
    warning_cancel,
    warning_request,
)

if TYPE_CHECKING:
    from engine.core import Engine

__all__ = ["Bus", "BusError", "Counters"]

log = logging.getLogger("bus")

STATUS_EVERY_S = 10.0
BATCH = 500  # requests stored in one transaction, messages published in one go
FIRST_BACKOFF_S = 0.5
PUBLISH_TIMEOUT_S = 30.0
REQUEST = "warning/request"
CANCEL = "warning/cancel"
UPDATE = "blocklist/update"
SMS_REPLY = "sms/reply"
CALLBACK_DONE = "hotline/callback_done"
TAKEN = (REQUEST, CANCEL, UPDATE, SMS_REPLY, CALLBACK_DONE)
STORE_RETRY_S = 1.0  # while the store is away: how often the outbox is tried again
BUS_LEASE = "bus"  # with a shared store: the node that speaks for the cluster
_STORE_ERRORS = (StoreUnavailable, ListStoreError, OSError)
"""A store that cannot write now (locked, disk full): the batch is tried again, unacknowledged."""


class BusError(Exception):
    """The bus cannot start as configured; ``str()`` is one sentence."""


@dataclass
class Counters:
    """What the bus did since the engine started (for metrics and the status view)."""

    received: int = 0
    stored: int = 0
    refused: int = 0
    published: int = 0
    connects: int = 0
    dropped: int = 0  # screening events dropped past mqtt.outbox_max_events
    last_error: str = ""


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


class Bus:
    def __init__(self, engine: Engine, loaded: LoadedConfig,
                 rng: Callable[[], float] = random.random) -> None:
        config = loaded.config.mqtt
        if config is None:
            raise BusError("the configuration has no mqtt section")
        self.config: MqttConfig = config
        self.engine = engine
        self.clock = engine.clock.now
        self.loaded = loaded
        self.rng = rng
        self.prefix = config.topic_prefix.rstrip("/")
        self.full = config.full_numbers
        url = urlsplit(config.url)
        self.tls = url.scheme == "mqtts"
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (8883 if self.tls else 1883)
        self.password: str | None = None
        if config.password_env:
            self.password = os.environ.get(config.password_env)
            if self.password is None:
                raise BusError(f"the environment variable {config.password_env} (mqtt.password_env) "
                               "holding the broker password is not set")
        self.stores = open_stores(loaded)  # of its own: they outlive the engine's
        self.shared = self.stores.shared
        self.holding = not self.shared  # of the bus lease: on one machine, always
        self.outbox = self.stores.outbox
        self.tasks = self.stores.tasks
        self.callbacks = self.stores.callbacks
        self.notices = engine.subscribe()
        self.counters = Counters()
        self.connected = False
        self._client: aiomqtt.Client | None = None
        self._queued = asyncio.Event()  # the outbox has rows
        self._status_now = asyncio.Event()
        self._run: asyncio.Task[None] | None = None
        self._said_waiting = ""
        self._said_dropped = -60.0

    @property
    def center(self) -> Any:
        """The engine's center (a reload gives the engine a new one)."""
        return self.engine.center

    @property
    def known_types(self) -> list[str]:
        """The fraud types of the warning catalog as it is now (a reload may add one)."""
        return self.engine.dialing.catalog.known()

    @property
    def country(self) -> str:
        return str(self.engine.config.screening.country)

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}/{suffix}"

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        if not self.shared:
            self._catch_up()
        self._run = asyncio.create_task(self._main(), name="bus")

    async def stop(self) -> None:
        """After the engine stopped: what it said last goes into the outbox, the broker gets
        what it can in a second or two, and ``down`` (retained)."""
        self._collect_now()
        client = self._client
        if client is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                async with asyncio.timeout(2.0):
                    while self.outbox.depth() and self.connected:
                        await asyncio.sleep(0.02)
                    await client.publish(self.topic("engine/status"), self._status("down", "stopped"),
                                         qos=1, retain=True)
        if self._run is not None:
            self._run.cancel()
            await asyncio.gather(self._run, return_exceptions=True)
        self.stores.close()

    async def _main(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._collect(), name="bus-collect")
            if self.shared:
                group.create_task(self._take_turns(), name="bus-lease")
            else:
                group.create_task(self._connection(), name="bus-connection")

    async def _take_turns(self) -> None:
        """With a shared store, one node's bus speaks for the cluster: the one holding the
        ``bus`` lease connects to the broker (with the one client id: the broker's persistent
        session follows it), takes the requests, copies the task and callback events into the
        shared outbox and publishes it, in order. The others only add their own notices to the
        outbox; when the holder stops renewing, the next takes the lease and goes on from the
        outbox and the cursors where it stopped."""
        cluster = self.stores.cluster
        engine = self.loaded.config.engine
        node, lease_s = engine.node_name, engine.lease_s
        connection: asyncio.Task[None] | None = None
        seen: tuple[tuple[str, float] | None, float] | None = None  # (the lease, since)
        try:
            while True:
                try:
                    if connection is not None:  # ours: renew it (True unless it was taken)
                        held = cluster.hold(BUS_LEASE, node, lease_s)
                    else:
                        # another node's: taken only once this node, while it could look,
                        # saw it stand still for a whole lease (a database that was away
                        # makes every lease look old to the first one back)
                        now_seen = cluster.lease(BUS_LEASE)
                        if now_seen is None or now_seen[0] == node:
                            held = cluster.hold(BUS_LEASE, node, lease_s)
                        elif seen is None or seen[0] != now_seen:
                            seen, held = (now_seen, time.monotonic()), False
                        elif time.monotonic() - seen[1] >= lease_s:
                            held = cluster.hold(BUS_LEASE, node, lease_s)
                        else:
                            held = False
                except StoreUnavailable:
                    seen = None  # blind meanwhile
                    held = connection is not None  # nobody can take it meanwhile
                if connection is not None and connection.done():  # it failed: say why, again
                    if not connection.cancelled() and connection.exception() is not None:
                        log.error("the MQTT connection stopped: %s", connection.exception())
                    connection = None
                if held and connection is None:
                    log.info("node %s speaks for the cluster on the MQTT bus", node)
                    self.holding = True
                    with contextlib.suppress(StoreUnavailable):
                        self._catch_up()
                    connection = asyncio.create_task(self._connection(), name="bus-connection")
                elif not held and connection is not None:
                    log.warning("node %s no longer holds the MQTT bus's lease: it leaves the "
                                "broker to the node that does", node)
                    self.holding = False
                    connection.cancel()
                    await asyncio.gather(connection, return_exceptions=True)
                    connection = None
                await asyncio.sleep(lease_s / 5)
        finally:
            if connection is not None:
                connection.cancel()
                await asyncio.gather(connection, return_exceptions=True)
            self.holding = False
            with contextlib.suppress(StoreError):
                cluster.release(BUS_LEASE, node)

    # ------------------------------------------------------------ notices → outbox

    async def _collect(self) -> None:
        while True:
            notice = await self.notices.get()
            self.notices.put_nowait(notice)  # back at the head of what _collect_now takes: the
            await asyncio.sleep(0)           # only reader; a burst becomes one transaction
            try:
                self._collect_now()
            except Exception:  # a fault here must not stop the bus: the cursors catch up later
                log.exception("collecting events for the MQTT broker")

    def _collect_now(self) -> None:
        """Everything the engine said since the last call, into the outbox."""
        rows: list[tuple[str, str]] = []
        tasks = callbacks = False
        now = self.clock()
        while not self.notices.empty():
            notice = self.notices.get_nowait()
            if isinstance(notice, TaskNotice):
                tasks = True
            elif isinstance(notice, MessageLeft):
                callbacks = True
            elif isinstance(notice, CallScreened):
                rows.append(("screening/event", dumps(self._screened(notice, now))))
            elif isinstance(notice, TextNotice):
                rows.append(("sms/event", dumps(notice.payload(self.full))))
            elif isinstance(notice, EngineStatus):
                self._status_now.set()
            elif isinstance(notice, EngineEvent):
                rows.append(("engine/event", dumps(notice.payload(
                    self.loaded.config.engine.node_name, iso(now)))))
        try:
            if rows:
                self.outbox.put(rows, now)
                self._trim()
            if tasks and self.holding:
                self._copy_tasks(now)
            if callbacks and self.holding:
                self._copy_callbacks(now)
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop the engine: say it
            log.error("events could not be queued for the MQTT broker: %s", exc)
            return
        if rows or tasks or callbacks:
            self._queued.set()

    def _trim(self) -> None:
        dropped = self.outbox.trim(self.config.outbox_max_events, "screening/event")
        if dropped:
            self.counters.dropped += dropped
        if dropped and time.monotonic() - self._said_dropped >= 60:  # a line a minute at most
            self._said_dropped = time.monotonic()
            log.warning("the outbox holds %d events (mqtt.outbox_max_events) while the broker is "
                        "away: the %d oldest screening events were dropped", self.outbox.depth(),
                        dropped)

    def _catch_up(self) -> None:
        """What the stores hold that the broker has not been given (stored while the engine was
        down, or by ``warn`` in another process)."""
        now = self.clock()
        self._copy_tasks(now)
        self._copy_callbacks(now)
        if self.outbox.depth():
            log.info("%d events wait in the outbox for the MQTT broker", self.outbox.depth())
            self._queued.set()

    def _copy_tasks(self, now: float) -> None:
        cursor = self.outbox.cursor("tasks")
        if cursor is None:  # the first run with a bus: the last day's history, not all of it
            old = [e for e in self.tasks.events() if e.at < now - 86_400]
            after = old[-1].seq if old else 0
        else:
            after = int(cursor)
        events = self.tasks.events(after=after)
        if not events:
            if cursor is None:
                self.outbox.put([], now, ("tasks", str(after)))
            return
        numbers: dict[str, str] = {}
        rows = []
        for event in events:
            if event.task_id not in numbers:
                try:
                    numbers[event.task_id] = self.tasks.task(event.task_id).dial
                except StoreError:
                    numbers[event.task_id] = ""
            payload = notice_of(event, numbers[event.task_id]).payload(self.full)
            rows.append(("warning/event", dumps(payload)))
        self.outbox.put(rows, now, ("tasks", str(events[-1].seq)))

    def _copy_callbacks(self, now: float) -> None:
        cursor = self.outbox.cursor("callbacks")
        at, last = (now - 86_400, "") if cursor is None else cursor.split(" ", 1)
        left = self.callbacks.after(float(at), last)
        if not left:
            if cursor is None:
                self.outbox.put([], now, ("callbacks", f"{float(at)!r} "))
            return
        rows = [("hotline/callback", dumps({
            "id": c.id, "event": "message_left",
            "number": c.caller if self.full or not c.caller else mask(c.caller),
            "at": iso(c.at), "duration_s": round(c.duration_s, 1), "menu_path": c.path,
            "file": c.file})) for c in left]
        self.outbox.put(rows, now, ("callbacks", f"{left[-1].at!r} {left[-1].id}"))

    def _screened(self, notice: Any, now: float) -> dict[str, Any]:
        record = notice.record(self.full)
        return {"id": secrets.token_hex(8), "call": notice.call, "number": record["number"],
                "kind": notice.kind, "callee": record["callee"], "action": notice.action,
                "status": notice.status, "rule": notice.rule, "reason": notice.reason,
                "route": notice.route, "worker": notice.worker, "decision_us": notice.decision_us,
                **({"error": notice.error} if notice.error else {}), "at": iso(now)}

    # ------------------------------------------------------------ the connection

    def _new_client(self) -> aiomqtt.Client:
        tls = None
        if self.tls:
            ca = str(self.loaded.resolve(self.config.ca_file)) if self.config.ca_file else None
            tls = aiomqtt.TLSParameters(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED,
                                        tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client = aiomqtt.Client(
            self.host, self.port, username=self.config.username, password=self.password,
            identifier=self.config.client_id, clean_session=False, keepalive=self.config.keepalive_s,
            will=aiomqtt.Will(self.topic("engine/status"), self._status("down", "lost"), qos=1,
                              retain=True),
            tls_params=tls, timeout=10, logger=logging.getLogger("bus.mqtt"),
            # without it, an event after a PUBACK waits for the broker's delayed ACK (40 ms)
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        client._client.manual_ack_set(True)  # acknowledge a request once it is stored (see above)
        return client

    async def _connection(self) -> None:
        delay = FIRST_BACKOFF_S
        while True:
            client = self._new_client()
            try:
                async with client:
                    self._client = client
                    self.connected = True
                    self.counters.connects += 1
                    delay = FIRST_BACKOFF_S
                    log.info("connected to the MQTT broker at %s:%d%s", self.host, self.port,
                             f"; {self.outbox.depth()} events to send" if self.outbox.depth() else "")
                    self._said_waiting = ""
                    await client.subscribe([(self.topic(topic), 1) for topic in TAKEN])
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._receive(client), name="bus-receive")
                        group.create_task(self._publish(client), name="bus-publish")
                        group.create_task(self._keep_status(client), name="bus-status")
            except* aiomqtt.MqttError as group:
                self._waiting(group.exceptions[0])
            finally:
                self.connected = False
                self._client = None
            wait = delay * (0.5 + self.rng())  # jitter: many engines do not come back at once
            delay = min(delay * 2, self.config.reconnect_max_s)
            log.debug("next attempt to reach the MQTT broker in %.1f s", wait)
            await asyncio.sleep(wait)

    def _waiting(self, error: BaseException) -> None:
        reason = _reason(error)
        self.counters.last_error = reason
        if reason == self._said_waiting:
            return
        if "authoriz" in reason.lower() or "password" in reason.lower():
            log.error("the MQTT broker at %s:%d refused the connection: %s; check mqtt.username and "
                      "the password in $%s; trying again with backoff", self.host, self.port, reason,
                      self.config.password_env or "(no mqtt.password_env)")
        else:
            log.warning("waiting for the MQTT broker at %s:%d (%s); warning calls go on, events "
                        "wait in the outbox", self.host, self.port, reason)
        self._said_waiting = reason

    # ------------------------------------------------------------ in

    async def _receive(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        async for message in messages:
            batch = [message]
            while len(messages) and len(batch) < BATCH:
                batch.append(await anext(messages))
            await self._take(client, batch)

    async def _take(self, client: aiomqtt.Client, batch: list[aiomqtt.Message]) -> None:
        """Store or apply a batch, then acknowledge it; a store that cannot write now is tried
        again (nothing acknowledged: a crash meanwhile means the broker sends them again)."""
        delay = 0.05
        tries = 0
        done: set[int] = set()  # messages applied already (a retry must not apply them twice)
        while True:
            try:
                self._apply(batch, done)
                break
            except _STORE_ERRORS as exc:  # locked, full, away: said once, tried again
                tries += 1
                (log.error if tries == 1 else log.debug)(
                    "MQTT requests could not be stored (%s); trying again, unacknowledged", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if tries:
            log.info("MQTT requests stored after %d tries", tries + 1)
        for message in batch:
            client._client.ack(message.mid, message.qos)

    def _apply(self, batch: list[aiomqtt.Message], done: set[int]) -> None:
        now = self.clock()
        replies: list[tuple[str, str]] = []
        requests: list[tuple[Actor, Any]] = []
        for index, message in enumerate(batch):
            if index in done:
                continue
            topic = message.topic.value
            try:
                obj = parse_object(message.payload if isinstance(message.payload, bytes | str)
                                   else b"" if message.payload is None else str(message.payload))
                actor = Actor.mqtt(sender(obj))
                if topic == self.topic(REQUEST):
                    requests.append((actor, warning_request(obj, known_types=self.known_types,
                                                            country=self.country)))
                    continue
                if topic == self.topic(UPDATE):
                    replies.append(("blocklist/result", dumps(self._update(obj, actor, now))))
                elif topic == self.topic(SMS_REPLY):
                    thread, text, reply_id = sms_reply(obj)
                    self._through_center(self.center.reply, thread, text, actor, reply_id)
                elif topic == self.topic(CANCEL):
                    task_id, reason = warning_cancel(obj)
                    self._through_center(self.center.cancel, task_id, actor, reason)
                    self._copy_tasks(now)
                elif topic == self.topic(CALLBACK_DONE):
                    message_id, note = callback_done(obj)
                    self._through_center(self.center.callback_done, message_id, actor, note)
                else:
                    raise BadMessage("this topic takes no messages")
                done.add(index)  # on disk: a retry of the batch must not apply it twice
            except _STORE_ERRORS:
                raise  # the store, not the message: the batch is tried again
            except Exception as exc:
                why = exc if isinstance(exc, BadMessage) else BadMessage(
                    f"the message could not be handled ({type(exc).__name__}: {exc})")
                if not isinstance(exc, BadMessage):
                    log.exception("MQTT message on %s", topic)
                self.counters.refused += 1
                log.warning("MQTT message on %s refused: %s", topic, why)
                replies.append(("error", dumps({"topic": topic, "error": str(why),
                                                "id": secrets.token_hex(8), "at": iso(now)})))
        self.counters.received += len(batch)
        if requests:
            for actor, group in itertools.groupby(requests, key=lambda r: r[0]):
                submitted = self.center.warn_many([request for _, request in group], actor)
                self.counters.stored += len(submitted)
                for s in submitted:
                    if s.duplicate:
                        log.info("MQTT request for task %s was already taken", s.task.id)
            self._copy_tasks(now)  # their queued events leave now, not at the dialer's next look
            self._queued.set()
        if replies:
            self.outbox.put(replies, now)
            self._queued.set()

    @staticmethod
    def _through_center(change: Callable[..., object], *args: Any) -> None:
        """A change through the center: what it refuses is the message's fault (an ``error``
        answer); a store that cannot write now is tried again with the batch."""
        try:
            change(*args)
        except StoreUnavailable:
            raise
        except (Invalid, NotFound, Refused, StoreError) as exc:
            raise BadMessage(str(exc)) from None

    def _update(self, obj: dict[str, Any], actor: Actor, now: float) -> dict[str, Any]:
        update = list_update(obj, self.country)
        try:
            edit = self.center.edit_list_keys(update.op, list(update.keys), update.list, actor)
        except Invalid as exc:
            raise BadMessage(str(exc)) from None
        return {"id": update.id, "op": update.op, "list": edit.list_name, "applied": edit.changed,
                "unchanged": len(update.keys) - edit.changed,
                "refused": [{"entry": e, "reason": r} for e, r in update.refused], "at": iso(now)}

    # ------------------------------------------------------------ out

    async def _publish(self, client: aiomqtt.Client) -> None:
        while True:
            try:
                rows = self.outbox.peek(BATCH)
            except StoreUnavailable:  # the store is away (said by the engine): wait for it
                await asyncio.sleep(STORE_RETRY_S)
                continue
            if not rows:
                self._queued.clear()
                await self._queued.wait()
                continue
            await asyncio.gather(*(client.publish(self.topic(r.topic), r.payload, qos=1,
                                                  timeout=PUBLISH_TIMEOUT_S) for r in rows))
            while True:  # published: marked sent as soon as the store can (else once more)
                try:
                    self.outbox.done([r.id for r in rows])
                    break
                except StoreUnavailable:
                    await asyncio.sleep(STORE_RETRY_S)
            self.counters.published += len(rows)

    async def _keep_status(self, client: aiomqtt.Client) -> None:
        while True:
            await client.publish(self.topic("engine/status"), self._status("up"), qos=1, retain=True)
            self._status_now.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._status_now.wait(), STATUS_EVERY_S)

    def _status(self, state: str, reason: str = "") -> str:
        out: dict[str, Any] = {"state": state}
        if reason != "lost":  # the last will is written at connect time: no moment to give
            out["at"] = iso(self.clock())
        if state == "up":
            status = self.engine.status()
            try:
                depth = self.outbox.depth()
            except StoreUnavailable:
                depth = -1  # the store is away
            out.update(workers_alive=status.workers_ready, workers=status.workers,
                       calls=status.calls, tasks_due=status.tasks_due,
                       lists_unreadable=status.lists_unreadable, outbox=depth)
        else:
            out["reason"] = reason
        return dumps(out)


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if isinstance(error, aiomqtt.MqttCodeError) and "[code:" in text:
        text = text.split("]", 1)[-1].strip() or text
    return text
