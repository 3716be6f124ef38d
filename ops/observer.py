"""What the people on duty see of a running engine: ``status.json`` and Prometheus metrics.

An :class:`Observer` subscribes to the engine's notices (like the bus) and,
every :data:`EVERY_S` seconds on the engine's loop, writes
``<data_dir>/status.json`` (atomically: ``run_dialer.py status`` reads it
from another process) and sets the gauges. With ``engine.metrics_port`` it
serves the metrics over HTTP (prometheus-client's own thread; it only reads
values set here, never the stores).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from dialer import TaskState
from engine.core import CallScreened
from engine.dialing import TaskNotice
from stores import StoreError, open_stores

if TYPE_CHECKING:
    from bus import Bus
    from engine.core import Engine

__all__ = ["EVERY_S", "STATUS_FILE", "ErrorLog", "Observer"]

log = logging.getLogger("ops")

EVERY_S = 2.0
STATUS_FILE = "status.json"
SCREENED_KEPT = 100_000  # screened calls kept for the shared log while the store is away
disable_created_metrics()  # no *_created series: one figure per metric
ACK_BUCKETS = (10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)


class ErrorLog(logging.Handler):
    """The last warnings and errors of the engine's log (already masked), for the status view."""

    def __init__(self, keep: int = 10) -> None:
        super().__init__(logging.WARNING)
        self.records: collections.deque[dict[str, str]] = collections.deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.records.append({"at": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="seconds"), "level": record.levelname.lower(),
                "message": record.getMessage()[:300]})


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.calls = Counter("antifraud_calls", "Calls by route and outcome (inbound: the screening "
                             "action; warning calls: the attempt's outcome)", ["route", "outcome"],
                             registry=r)
        self.decisions = Counter("antifraud_screening_decisions", "Screening decisions by rule",
                                 ["rule", "action"], registry=r)
        self.attempts = Counter("antifraud_warning_attempts", "Warning calls placed", registry=r)
        self.to_ack = Histogram("antifraud_time_to_acknowledgement_seconds",
                                "From the warning request to the person acknowledging it (or "
                                "talking to the duty officer)", buckets=ACK_BUCKETS, registry=r)
        self.tasks = Gauge("antifraud_tasks", "Warning tasks by state", ["state"], registry=r)
        self.due = Gauge("antifraud_tasks_due", "Warning tasks due now", registry=r)
        self.workers = Gauge("antifraud_workers_alive", "Softphone workers ready", registry=r)
        self.in_progress = Gauge("antifraud_calls_in_progress", "Calls up now", registry=r)
        self.channels = Gauge("antifraud_trunk_channels_in_use", "Warning calls holding a trunk "
                              "channel", registry=r)
        self.mqtt = Gauge("antifraud_mqtt_connected", "1 when the MQTT broker is connected",
                          registry=r)
        self.outbox = Gauge("antifraud_mqtt_outbox_depth", "Events waiting for the broker",
                            registry=r)


class Observer:
    def __init__(self, engine: Engine, bus: Bus | None = None,
                 errors: ErrorLog | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self.errors = errors or ErrorLog()
        self.path = engine.loaded.data_dir / STATUS_FILE
        self.stores = open_stores(engine.loaded)  # of its own: it writes after the engine
        self.store = self.stores.tasks
        self.metrics = Metrics()
        self.notices = engine.subscribe()
        self.started_at = engine.clock.now()
        self._tasks: list[asyncio.Task[None]] = []
        self._screened: list[dict[str, Any]] = []  # for the shared log, not yet written
        self.port = engine.config.engine.metrics_port

    def start(self) -> None:
        if self.port is not None:
            host = self.engine.config.engine.metrics_host
            try:
                start_http_server(self.port, addr=host, registry=self.metrics.registry)
            except OSError as exc:
                raise RuntimeError(f"metrics cannot be served on {host}:{self.port} "
                                   f"(engine.metrics_host, metrics_port): {exc.strerror}") from None
            log.info("metrics on http://%s:%d/metrics", host, self.port)
        self._tasks = [asyncio.create_task(self._count(), name="ops-count"),
                       asyncio.create_task(self._every(), name="ops-status")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._share_screened()
        self.write(running=False)
        self.stores.close()

    async def _count(self) -> None:
        m = self.metrics
        while True:
            notice = await self.notices.get()
            try:
                if isinstance(notice, CallScreened):
                    m.calls.labels(notice.route, notice.action).inc()
                    m.decisions.labels(notice.rule, notice.action).inc()
                    if self.stores.shared and len(self._screened) < SCREENED_KEPT:
                        self._screened.append({"at": self.engine.clock.now(),
                                               "rule": notice.rule, "action": notice.action,
                                               "route": notice.route})
                elif isinstance(notice, TaskNotice):
                    if notice.task_event == "attempt":
                        m.attempts.inc()
                    elif notice.task_event == "attempt_ended":
                        m.calls.labels("warning", notice.outcome or "").inc()
                    elif notice.task_event in ("acknowledged", "transferred"):
                        task = self.store.task(notice.task_id)
                        m.to_ack.observe(max(0.0, notice.when - task.created_at))
            except (StoreError, ValueError) as exc:
                log.debug("metrics: %s", exc)

    async def _every(self) -> None:
        while True:
            try:
                self.write(running=True)
            except Exception:  # the status view must never stop the engine
                log.exception("writing %s", self.path)
            self._share_screened()
            await asyncio.sleep(EVERY_S)

    def _share_screened(self) -> None:
        """This node's screened calls into the shared log (the cluster's report), in one
        batch; while the store is away they wait here (up to SCREENED_KEPT)."""
        if not self._screened:
            return
        batch, self._screened = self._screened, []
        try:
            self.stores.screened.add_many(batch)
        except StoreError as exc:
            self.engine.health.failed(exc)
            self._screened = (batch + self._screened)[:SCREENED_KEPT]

    def snapshot(self, running: bool) -> dict[str, Any]:
        engine = self.engine
        now = engine.clock.now()
        workers: list[dict[str, Any]] = [
            {"name": w.name, "ready": w.ready.is_set(), "calls": len(w.calls),
             "sip_port": w.spec.sip_port} for w in engine.pool.workers]
        try:
            counts = self.store.count_by_state()
            due = self.store.due_count(now)
            next_due = self.store.next_due_at()
            store_error = ""
        except StoreError as exc:  # said once by the engine; the rest of the view still goes out
            engine.health.failed(exc)
            counts, due, next_due, store_error = {s: 0 for s in TaskState}, 0, None, str(exc)
        pacer = engine.dialing.pacer
        out: dict[str, Any] = {
            "running": running, "pid": os.getpid(), "started_at": _iso(self.started_at),
            "updated_at": _iso(engine.clock.now()), "workers": workers,
            "calls": sum(w["calls"] for w in workers),
            "trunk": {"in_use": pacer.active, "max_channels": pacer.max_channels},
            "tasks": {s.value: counts[s] for s in TaskState}, "tasks_due": due,
            "next_due_at": _iso(next_due), "store_error": store_error,
            "reload": engine.last_reload,
            "draining": None if engine.draining_since is None else {
                "since": _iso(engine.draining_since), "calls_left": engine.calls_left()},
            "drain_workers": engine.worker_drain,
            "lists_unreadable": dict(engine.gate.problems),
            "front": None if engine.front is None else {
                "running": engine.front.process is not None
                and engine.front.process.returncode is None, "restarts": engine.front.restarts},
            "mqtt": None, "last_errors": list(self.errors.records),
            "queue": [{"caller": caller, "since": _iso(since)}
                      for caller, since in engine.desk.waiting_now()],
        }
        if self.bus is not None:
            c = self.bus.counters
            try:
                depth = self.bus.outbox.depth()
            except StoreError as exc:
                engine.health.failed(exc)
                depth = -1
            out["mqtt"] = {"url": self.bus.config.url, "connected": self.bus.connected,
                           "outbox": depth, "received": c.received,
                           "stored": c.stored, "refused": c.refused, "published": c.published,
                           "dropped": c.dropped,
                           "last_error": c.last_error}
        m = self.metrics
        for state in TaskState:
            m.tasks.labels(state.value).set(counts[state])
        m.due.set(due)
        m.workers.set(sum(bool(w["ready"]) for w in workers))
        m.in_progress.set(out["calls"])
        m.channels.set(pacer.active)
        m.mqtt.set(1 if out["mqtt"] and out["mqtt"]["connected"] else 0)
        m.outbox.set(out["mqtt"]["outbox"] if out["mqtt"] else 0)
        return out

    def write(self, running: bool) -> None:
        data = json.dumps(self.snapshot(running), ensure_ascii=False, indent=1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, self.path)


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
