"""Every change to the center's records goes through here, whoever asks for it.

The command line, the MQTT bus, the console and the engine itself call :class:`Center` and
nothing else to accept (or merge) a warning request, cancel a task, call it again now or raise
its risk, answer a text, mark a callback message answered, and edit or import a list. Each
operation validates its input once (one sentence when it is wrong: :class:`Invalid`), commits
once in the store, whose rows are the events every reader publishes, and records who asked
(``cli:<user>``, ``mqtt:<client>``, ``console:<login>``) beside the change. A running engine
hears of the commit through the store's watch, in this process or another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from dialer import Catalog, Policy, RequestError, WarningRequest, parse_csv, validate
from dialer.model import Task
from dialer.requests import RowError
from hotline.callbacks import Callback
from screening import ImportReport, ListSet, NumberKind, normalize
from sip_config import LoadedConfig
from stores import Stores, Submitted
from texts.model import Message
from texts.words import clean_reply

from .actor import Actor

__all__ = ["Center", "Invalid", "ListEdit"]

log = logging.getLogger("center")


class Invalid(ValueError):
    """What was asked cannot be accepted as written; ``str()`` is one sentence."""


@dataclass(frozen=True)
class ListEdit:
    list_name: str
    op: str  # add, remove
    changed: int  # numbers added (or removed) now
    asked: int  # valid numbers asked for
    refused: list[tuple[str, str]] = field(default_factory=list)  # (entry, why)


class Center:
    def __init__(self, loaded: LoadedConfig, catalog: Catalog, stores: Stores,
                 clock: Callable[[], float] = time.time, lists: ListSet | None = None) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.catalog = catalog
        self.stores = stores
        self.clock = clock
        self.policy = Policy(self.config.dialer, ZoneInfo(self.config.engine.timezone))
        self._lists = lists

    @property
    def lists(self) -> ListSet:
        """The screening lists (opened when first needed; the engine passes its own)."""
        if self._lists is None:
            self._lists = ListSet(self.loaded)
        return self._lists

    # ------------------------------------------------------------ warnings

    def request(self, number: object, fraud_type: object = None, risk: object = None,
                case_id: object = None, note: object = None, request_id: object = None, *,
                source: str) -> WarningRequest:
        """A warning request validated as every source's is (:class:`Invalid` if not)."""
        try:
            return validate(number, fraud_type, risk, case_id, note, request_id,
                            known_types=self.catalog.known(), source=source,
                            country=self.config.screening.country)
        except RequestError as exc:
            raise Invalid(str(exc)) from None

    def warn(self, request: WarningRequest, actor: Actor) -> Submitted:
        """Accept a request: a new task, or merged into the number's open one; on disk when
        this returns."""
        now = self.clock()
        submitted = self.stores.tasks.submit(request, now, self.policy.not_before(request.risk, now),
                                             by=str(actor))
        log.info("%s (by %s)", submitted.sentence(), actor)
        return submitted

    def warn_many(self, requests: Sequence[WarningRequest], actor: Actor) -> list[Submitted]:
        """Many requests in one commit: all on disk, or none."""
        now = self.clock()
        submitted = self.stores.tasks.submit_many(
            [(r, self.policy.not_before(r.risk, now)) for r in requests], now, by=str(actor))
        log.info("%d warning requests accepted (by %s)", len(submitted), actor)
        return submitted

    def warn_csv(self, text: str, actor: Actor
                 ) -> tuple[list[tuple[int, Submitted]], list[RowError]]:
        """A CSV of requests (``number,fraud_type,risk,case_id,note,request_id``): the good rows
        accepted in one commit, each bad one named by its line."""
        good, bad = parse_csv(text, known_types=self.catalog.known(),
                              country=self.config.screening.country)
        submitted = self.warn_many([request for _, request in good], actor) if good else []
        return [(line, s) for (line, _), s in zip(good, submitted, strict=True)], bad

    def cancel(self, task_id: str, actor: Actor, reason: str = "") -> Task:
        task = self.stores.tasks.cancel(task_id, self.clock(), reason, by=str(actor))
        log.info("task %s (%s) cancelled by %s%s", task.id, task.masked, actor,
                 f": {reason}" if reason else "")
        return task

    def requeue(self, task_id: str, actor: Actor) -> Task:
        """Call again now (an officer learned the line is free)."""
        task = self.stores.tasks.requeue(task_id, self.clock(), by=str(actor))
        log.info("task %s (%s) to be called now, asked by %s", task.id, task.masked, actor)
        return task

    def raise_risk(self, task_id: str, actor: Actor) -> Task:
        task = self.stores.tasks.raise_risk(task_id, self.clock(), by=str(actor))
        log.info("task %s (%s) raised to high risk by %s", task.id, task.masked, actor)
        return task

    # ------------------------------------------------------------ texts and callbacks

    def reply(self, thread_id: str, text: str, actor: Actor,
              request_id: str | None = None) -> Message:
        """An operator's answer to a thread of texts; the engine sends it."""
        try:
            body = clean_reply(text)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        message = self.stores.texts.reply(thread_id, body, self.clock(), request_id, by=str(actor))
        log.info("reply %d to thread %s queued by %s", message.id, thread_id, actor)
        return message

    def callback_done(self, callback_id: str, actor: Actor, note: str = "") -> Callback:
        if len(note) > 500:
            raise Invalid(f"the note has {len(note)} characters; at most 500")
        callback = self.stores.callbacks.done(callback_id, self.clock(), note, by=str(actor))
        log.info("message %s (%s) marked answered by %s", callback.id, callback.masked, actor)
        return callback

    # ------------------------------------------------------------ lists

    def edit_list(self, op: str, entries: Iterable[str], list_name: str | None,
                  actor: Actor) -> ListEdit:
        """Add numbers to a list, or remove them, at once; entries that are no phone number
        are refused one by one (the others are applied)."""
        keys, refused = [], []
        for raw in entries:
            number = normalize(raw, self.config.screening.country)
            if number.key is None or number.kind is NumberKind.INVALID:
                refused.append((raw, "not a phone number"))
            else:
                keys.append(number.key)
        edit = self.edit_list_keys(op, keys, list_name, actor)
        return ListEdit(edit.list_name, op, edit.changed, edit.asked, refused)

    def edit_list_keys(self, op: str, keys: Sequence[int], list_name: str | None,
                       actor: Actor) -> ListEdit:
        """The same with numbers already normalised to their keys."""
        if op not in ("add", "remove"):
            raise Invalid(f"{op!r} is neither add nor remove")
        name = self._list_name(list_name)
        store = self.lists.stores[name]
        changed = store.add(keys) if op == "add" else store.remove(keys)
        log.info("list %s: %d of %d numbers %s by %s", name, changed, len(keys),
                 "added" if op == "add" else "removed", actor)
        return ListEdit(name, op, changed, len(keys))

    def import_list(self, path: Path, list_name: str | None, actor: Actor, *,
                    replace: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> ImportReport:
        if not path.is_file():
            raise Invalid(f"there is no file {path} to import")
        report = self.lists.import_file(self._list_name(list_name), path, progress,
                                        replace=replace)
        log.info("list %s: %s imported by %s (%d numbers, %d new)", report.list_name, path.name,
                 actor, len(report.parsed.keys), report.added)
        return report

    def list_name(self, list_name: str | None) -> str:
        """The list a name (or none: the first reject list) means."""
        return self._list_name(list_name)

    def _list_name(self, list_name: str | None) -> str:
        try:
            return self.lists.name_of(list_name)
        except KeyError as exc:
            raise Invalid(str(exc.args[0])) from None
