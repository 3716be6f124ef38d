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
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from dialer import Catalog, Policy, RequestError, WarningRequest, parse_csv, validate
from dialer.model import Task, TaskState
from dialer.requests import RowError
from hotline.callbacks import Callback
from people import AuditEntry, Role, User, password_problem
from screening import ImportReport, ListSet, NumberKind, mask, normalize
from screening.lists import source_signature
from screening.numbers import SHORT_BASE
from sip_config import LoadedConfig
from stores import StoreError, Stores, Submitted
from texts.model import Message
from texts.words import clean_reply

from .actor import Actor
from .lists import ListSync
from .passwords import hash_password

__all__ = ["Center", "Invalid", "ListEdit"]

log = logging.getLogger("center")


class Invalid(ValueError):
    """What was asked cannot be accepted as written; ``str()`` is one sentence, ``field`` the
    part of the request it is about ("" when it is the whole).

    The sentence is ``template`` (an English ``str.format`` pattern, and the message the
    console's catalog translates) filled with ``values``; ``words`` names the values that
    are words of the catalog themselves (a task's state), translated with it."""

    def __init__(self, template: str, field: str = "", *, words: tuple[str, ...] = (),
                 **values: object) -> None:
        super().__init__(template.format(**values) if values else template)
        self.field = field
        self.template = template
        self.values = values
        self.words = words

    @classmethod
    def of(cls, error: RequestError) -> Invalid:
        invalid = cls(str(error), error.field)
        invalid.template, invalid.values = error.template, error.values
        return invalid


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
        self._list_sync: ListSync | None = None

    @property
    def lists(self) -> ListSet:
        """The screening lists (opened when first needed; the engine passes its own)."""
        if self._lists is None:
            self._lists = ListSet(self.loaded)
        return self._lists

    @property
    def list_sync(self) -> ListSync | None:
        """With a shared store: this node's copies of the lists kept in step with the
        cluster's journal of changes; None on one machine."""
        if self._list_sync is None and self.stores.shared:
            journal = self.stores.lists
            assert journal is not None
            self._list_sync = ListSync(self.lists, journal, self.loaded.data_dir / "lists")
        return self._list_sync

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
            raise Invalid.of(exc) from None

    def warn(self, request: WarningRequest, actor: Actor) -> Submitted:
        """Accept a request: a new task, or merged into the number's open one; on disk when
        this returns."""
        tasks = self.stores.tasks  # opened first: the request's time is its commit's
        now = self.clock()
        submitted = tasks.submit(request, now, self.policy.not_before(request.risk, now),
                                 by=str(actor))
        log.info("%s (by %s)", submitted.sentence(), actor)
        self._audit(actor, "warn", submitted.task.id, number=submitted.task.masked,
                    fraud_type=request.fraud_type, risk=request.risk.value,
                    merged=submitted.merged, duplicate=submitted.duplicate)
        return submitted

    def warn_many(self, requests: Sequence[WarningRequest], actor: Actor) -> list[Submitted]:
        """Many requests in one commit: all on disk, or none."""
        tasks = self.stores.tasks  # opened first: the requests' time is their commit's
        now = self.clock()
        submitted = tasks.submit_many(
            [(r, self.policy.not_before(r.risk, now)) for r in requests], now, by=str(actor))
        log.info("%d warning requests accepted (by %s)", len(submitted), actor)
        if submitted:
            self._audit(actor, "warn_many", "", count=len(submitted),
                        tasks=[s.task.id for s in submitted][:1000])
        return submitted

    def warn_csv(self, text: str, actor: Actor
                 ) -> tuple[list[tuple[int, Submitted]], list[RowError]]:
        """A CSV of requests (``number,fraud_type,risk,case_id,note,request_id``): the good rows
        accepted in one commit, each bad one named by its line."""
        good, bad = parse_csv(text, known_types=self.catalog.known(),
                              country=self.config.screening.country)
        submitted = self.warn_many([request for _, request in good], actor) if good else []
        return [(line, s) for (line, _), s in zip(good, submitted, strict=True)], bad

    def cancel(self, task_id: str, actor: Actor, reason: str = "", seen: str | None = None) -> Task:
        """Stop a task (the person was reached another way). ``seen``: the state the asker
        saw; if the task has moved since, nothing changes (:class:`Invalid`)."""
        if len(reason) > 500:
            raise Invalid("the reason has {count} characters; at most {most}", "reason",
                          count=len(reason), most=500)
        self._unchanged(task_id, seen)
        task = self.stores.tasks.cancel(task_id, self.clock(), reason, by=str(actor))
        log.info("task %s (%s) cancelled by %s%s", task.id, task.masked, actor,
                 f": {reason}" if reason else "")
        self._audit(actor, "cancel", task.id, number=task.masked, reason=reason)
        return task

    def requeue(self, task_id: str, actor: Actor, seen: str | None = None) -> Task:
        """Call again now (an officer learned the line is free)."""
        self._unchanged(task_id, seen)
        task = self.stores.tasks.requeue(task_id, self.clock(), by=str(actor))
        log.info("task %s (%s) to be called now, asked by %s", task.id, task.masked, actor)
        self._audit(actor, "requeue", task.id, number=task.masked)
        return task

    def raise_risk(self, task_id: str, actor: Actor, seen: str | None = None) -> Task:
        self._unchanged(task_id, seen)
        task = self.stores.tasks.raise_risk(task_id, self.clock(), by=str(actor))
        log.info("task %s (%s) raised to high risk by %s", task.id, task.masked, actor)
        self._audit(actor, "raise_risk", task.id, number=task.masked)
        return task

    def assign(self, task_id: str, assignee: str, note: str, actor: Actor,
               seen: str | None = None) -> Task:
        """Who takes an escalated task over (a station, an officer), with a note."""
        assignee, note = assignee.strip(), note.strip()
        if len(assignee) > 100:
            raise Invalid("'assigned to' has {count} characters; at most {most}", "assignee",
                          count=len(assignee), most=100)
        if len(note) > 500:
            raise Invalid("the note has {count} characters; at most {most}", "note",
                          count=len(note), most=500)
        self._unchanged(task_id, seen)
        task = self.stores.tasks.assign(task_id, self.clock(), assignee, note, by=str(actor))
        log.info("task %s (%s) assigned to %r by %s", task.id, task.masked, assignee, actor)
        self._audit(actor, "assign", task.id, number=task.masked, assigned_to=assignee, note=note)
        return task

    def reveal(self, task_id: str, actor: Actor) -> str:
        """A task's full number, for a supervisor; every reveal is in the audit trail."""
        task = self.stores.tasks.task(task_id)
        self._audit(actor, "reveal", task.id, number=task.masked)
        log.info("task %s: full number shown to %s", task.id, actor)
        return task.dial

    def _unchanged(self, task_id: str, seen: str | None) -> None:
        """Refuses a change asked of a task that closed (or reopened) since the asker looked;
        an open task going between calling and waiting is not a change that matters here."""
        if seen is None:
            return
        task = self.stores.tasks.task(task_id)
        try:
            was_open = TaskState(seen).open
        except ValueError:
            raise Invalid("{seen!r} is not a task state", seen=seen) from None
        if was_open != task.state.open or (not was_open and task.state.value != seen):
            raise Invalid("task {task} is {state} now, not {seen} as when this page was "
                          "loaded; nothing was changed: look again", task=task_id,
                          state=task.state.value, seen=seen, words=("state", "seen"))

    # ------------------------------------------------------------ texts and callbacks

    def reply(self, thread_id: str, text: str, actor: Actor,
              request_id: str | None = None) -> Message:
        """An operator's answer to a thread of texts; the engine sends it."""
        if not text.strip():
            raise Invalid("the reply is empty", "text")
        try:
            body = clean_reply(text)
        except ValueError as exc:
            raise Invalid(str(exc), "text") from None
        limit = self.config.sms.max_chars if self.config.sms else len(body)
        if len(body) > limit:
            raise Invalid("the reply has {count} characters; at most {most} (sms.max_chars)",
                          "text", count=len(body), most=limit)
        message = self.stores.texts.reply(thread_id, body, self.clock(), request_id, by=str(actor))
        log.info("reply %d to thread %s queued by %s", message.id, thread_id, actor)
        self._audit(actor, "reply", thread_id, number=message.masked, text=body)
        return message

    def callback_done(self, callback_id: str, actor: Actor, note: str = "") -> Callback:
        if len(note) > 500:
            raise Invalid("the note has {count} characters; at most {most}", "note",
                          count=len(note), most=500)
        callback = self.stores.callbacks.done(callback_id, self.clock(), note, by=str(actor))
        log.info("message %s (%s) marked answered by %s", callback.id, callback.masked, actor)
        self._audit(actor, "callback_done", callback.id, number=callback.masked, note=note)
        return callback

    # ------------------------------------------------------------ lists

    def edit_list(self, op: str, entries: Iterable[str], list_name: str | None,
                  actor: Actor, reason: str = "") -> ListEdit:
        """Add numbers to a list, or remove them, at once; entries that are no phone number
        are refused one by one (the others are applied)."""
        keys, refused = [], []
        for raw in entries:
            number = normalize(raw, self.config.screening.country)
            if number.key is None or number.kind is NumberKind.INVALID:
                refused.append((raw, "not a phone number"))
            else:
                keys.append(number.key)
        edit = self.edit_list_keys(op, keys, list_name, actor, reason)
        return ListEdit(edit.list_name, op, edit.changed, edit.asked, refused)

    def edit_list_keys(self, op: str, keys: Sequence[int], list_name: str | None,
                       actor: Actor, reason: str = "") -> ListEdit:
        """The same with numbers already normalised to their keys."""
        if op not in ("add", "remove"):
            raise Invalid("{op!r} is neither add nor remove", op=op)
        if len(reason) > 500:
            raise Invalid("the reason has {count} characters; at most {most}", "reason",
                          count=len(reason), most=500)
        name = self._list_name(list_name)
        store = self.lists.stores[name]
        sync = self.list_sync
        if sync is None:
            changed = store.add(keys) if op == "add" else store.remove(keys)
        else:  # the cluster's journal first, then this node's copy (the others follow)
            before = sum(k in store for k in keys)
            self.stores.lists.append(name, op, keys, self.clock(), by=str(actor))  # type: ignore[union-attr]
            sync.sync()
            after = sum(k in store for k in keys)
            changed = after - before if op == "add" else before - after
        log.info("list %s: %d of %d numbers %s by %s", name, changed, len(keys),
                 "added" if op == "add" else "removed", actor)
        self._audit(actor, f"list_{op}", name, changed=changed, asked=len(keys),
                    numbers=[_masked_key(k) for k in keys[:100]], reason=reason)
        return ListEdit(name, op, changed, len(keys))

    def import_list(self, path: Path, list_name: str | None, actor: Actor, *,
                    replace: bool = False, reason: str = "",
                    progress: Callable[[int, int], None] | None = None) -> ImportReport:
        if not path.is_file():
            raise Invalid("there is no file {path} to import", path=str(path))
        name = self._list_name(list_name)
        sync = self.list_sync
        if sync is None:
            report = self.lists.import_file(name, path, progress, replace=replace)
        else:  # parsed here, the keys through the cluster's journal, then this node's copy
            started = time.perf_counter()
            parsed = self.lists.parse_file(path, progress)
            before = len(self.lists.stores[name])
            self.stores.lists.append(name, "replace" if replace else "merge",  # type: ignore[union-attr]
                                     parsed.keys, self.clock(), source_signature(path),
                                     by=str(actor))
            sync.sync()
            report = ImportReport(name, path, parsed, len(self.lists.stores[name]) - before,
                                  time.perf_counter() - started)
        log.info("list %s: %s imported by %s (%d numbers, %d new)", report.list_name, path.name,
                 actor, len(report.parsed.keys), report.added)
        self._audit(actor, "list_import", report.list_name, file=path.name, replace=replace,
                    numbers=len(report.parsed.keys), added=report.added, reason=reason)
        return report

    # ------------------------------------------------------------ the console's users

    def add_user(self, name: str, role: str, password: str, actor: Actor) -> User:
        name = name.strip()
        if not _USER_NAME.fullmatch(name):
            raise Invalid("{name!r} cannot be a user name: 1 to 32 letters, digits, '.', '_' "
                          "or '-'", "name", name=name)
        try:
            chosen = Role(role)
        except ValueError:
            raise Invalid("{role!r} is not a role: officer or supervisor", "role",
                          role=role) from None
        _check_password(password)
        user = self.stores.users.add(name, chosen, hash_password(password), self.clock())
        log.info("console user %s (%s) added by %s", name, chosen.value, actor)
        self._audit(actor, "user_add", name, role=chosen.value)
        return user

    def set_password(self, name: str, password: str, actor: Actor) -> User:
        """A new password; the user's sessions end."""
        _check_password(password)
        user = self.stores.users.set_password(name, hash_password(password), self.clock())
        log.info("console user %s: password changed by %s", name, actor)
        self._audit(actor, "user_password", name)
        return user

    def set_user_disabled(self, name: str, disabled: bool, actor: Actor) -> User:
        """A disabled user cannot sign in, and their sessions end at once."""
        user = self.stores.users.set_disabled(name, disabled, self.clock())
        action = "user_disable" if disabled else "user_enable"
        log.info("console user %s %s by %s", name, "disabled" if disabled else "enabled", actor)
        self._audit(actor, action, name)
        return user

    # ------------------------------------------------------------ the audit trail

    def _audit(self, actor: Actor, action: str, target: str, **detail: object) -> None:
        """After the change is committed: a failure to write the trail is said in the log and
        does not undo the change."""
        entry = AuditEntry(self.clock(), str(actor), action, target, actor.address, detail)
        try:
            self.stores.audit.add(entry)
        except StoreError as exc:
            log.error("the audit trail missed %s of %s by %s: %s", action, target, actor, exc)

    def record(self, actor: Actor, action: str, target: str = "", **detail: object) -> None:
        """Something that changes no record but belongs in the trail (signing in and out)."""
        self._audit(actor, action, target, **detail)

    def list_name(self, list_name: str | None) -> str:
        """The list a name (or none: the first reject list) means."""
        return self._list_name(list_name)

    def _list_name(self, list_name: str | None) -> str:
        try:
            return self.lists.name_of(list_name)
        except KeyError as exc:
            raise Invalid(str(exc.args[0])) from None


_USER_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")


def _check_password(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)


def _masked_key(key: int) -> str:
    """A list key as people read it, masked: national for Chinese numbers."""
    if key >= SHORT_BASE:  # a short service number: not personal
        return str(key % SHORT_BASE).zfill(key // SHORT_BASE)
    digits = str(key)
    return mask(digits[2:]) if digits.startswith("86") else mask("+" + digits)
