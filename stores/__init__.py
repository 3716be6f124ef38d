"""Where tasks, texts, callback messages, the MQTT outbox, the console's users and the audit
trail are kept, behind interfaces.

:func:`open_stores` builds them from the configuration (each opened when first used); the
engine, the command line, the bus and the console see only :mod:`stores.interfaces` and the
errors of :mod:`stores.errors`. The rules the stores apply (how requests merge, which
events an attempt's end writes, which thread a text joins, where a state may move) are the
domain's, in :mod:`dialer.history` and :mod:`texts.model`: a second backend shares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import NotFound, Refused, StoreError, StoreUnavailable
from .interfaces import AuditLog, CallbackStore, Outbox, TaskStore, TextStore, UserStore
from .model import Claim, Pending, Submitted, TaskQuery
from .sqlite import (
    SqliteAuditLog,
    SqliteCallbackStore,
    SqliteOutbox,
    SqliteTaskStore,
    SqliteTextStore,
    SqliteUserStore,
)
from .sqlite import callbacks as _callbacks
from .sqlite import outbox as _outbox
from .sqlite import people as _people
from .sqlite import tasks as _tasks
from .sqlite import texts as _texts
from .watch import Watch

__all__ = ["AuditLog", "CallbackStore", "Claim", "NotFound", "Outbox", "Pending", "Refused", "StoreError",
           "StoreUnavailable", "Stores", "Submitted", "TaskQuery", "TaskStore", "TextStore",
           "UserStore", "Watch", "open_stores"]

RECORDINGS = "recordings"


class Stores:
    """Every store of one data directory, each opened when first asked for."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._open: dict[str, Any] = {}

    def _get(self, name: str, make: Any) -> Any:
        if name not in self._open:
            self._open[name] = make()
        return self._open[name]

    @property
    def tasks(self) -> TaskStore:
        return self._get("tasks", lambda: SqliteTaskStore(self.data_dir / _tasks.FILE_NAME,
                                                          self.data_dir / RECORDINGS))

    @property
    def texts(self) -> TextStore:
        return self._get("texts", lambda: SqliteTextStore(self.data_dir / _texts.FILE_NAME))

    @property
    def callbacks(self) -> CallbackStore:
        return self._get("callbacks",
                         lambda: SqliteCallbackStore(self.data_dir / _callbacks.FILE_NAME))

    @property
    def outbox(self) -> Outbox:
        return self._get("outbox", lambda: SqliteOutbox(self.data_dir / _outbox.FILE_NAME))

    @property
    def users(self) -> UserStore:
        return self._get("users", lambda: SqliteUserStore(self.data_dir / _people.USERS_FILE))

    @property
    def audit(self) -> AuditLog:
        return self._get("audit", lambda: SqliteAuditLog(self.data_dir / _people.AUDIT_FILE))

    def exists(self, name: str) -> bool:
        """Whether the store ``name`` holds anything yet (a report need not create it)."""
        files = {"tasks": _tasks.FILE_NAME, "texts": _texts.FILE_NAME,
                 "callbacks": _callbacks.FILE_NAME, "outbox": _outbox.FILE_NAME,
                 "users": _people.USERS_FILE, "audit": _people.AUDIT_FILE}
        return name in self._open or (self.data_dir / files[name]).exists()

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()


def open_stores(data_dir: Path) -> Stores:
    """The stores of ``engine.data_dir`` (SQLite files there)."""
    return Stores(data_dir)
