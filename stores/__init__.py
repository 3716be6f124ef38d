"""Where tasks, texts, callback messages, the MQTT outbox, the console's users and the audit
trail are kept, behind interfaces.

:func:`open_stores` builds them from the configuration (each opened when first used); the
engine, the command line, the bus and the console see only :mod:`stores.interfaces` and the
errors of :mod:`stores.errors`. The rules the stores apply (how requests merge, which
events an attempt's end writes, which thread a text joins, where a state may move) are the
domain's, in :mod:`dialer.history` and :mod:`texts.model`: a second backend shares them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import NotFound, Refused, StoreError, StoreUnavailable
from .interfaces import (
    AuditLog,
    CallbackStore,
    Cluster,
    ListJournal,
    Outbox,
    TaskStore,
    TextStore,
    UserStore,
)
from .model import Claim, NodeInfo, Pending, Submitted, TaskQuery, TrunkLimits
from .solo import SoloCluster
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

if TYPE_CHECKING:
    from sip_config import LoadedConfig

    from .postgres import Database

__all__ = ["AuditLog", "CallbackStore", "Claim", "Cluster", "ListJournal", "NodeInfo", "NotFound", "Outbox", "Pending", "Refused", "StoreError",
           "StoreUnavailable", "Stores", "Submitted", "TaskQuery", "TaskStore", "TextStore",
           "TrunkLimits", "UserStore", "Watch", "open_stores"]

RECORDINGS = "recordings"


class Stores:
    """Every store of one data directory (SQLite files there) or, with ``url``, of one
    PostgreSQL database shared by several nodes; each opened when first asked for.
    Recordings stay files under ``data_dir`` in both cases."""

    def __init__(self, data_dir: Path, url: str | None = None, password: str | None = None,
                 node: str = "", media_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self.recordings = (media_dir or data_dir) / RECORDINGS
        self.url = url
        self.node = node
        self._password = password
        self._database: Database | None = None
        self._open: dict[str, Any] = {}

    @property
    def shared(self) -> bool:
        """Whether the stores are a database that other nodes share."""
        return self.url is not None

    @property
    def database(self) -> Database:
        assert self.url is not None
        if self._database is None:
            from .postgres import Database

            self._database = Database(self.url, self._password, self.node)
        return self._database

    def _get(self, name: str, make: Any) -> Any:
        if name not in self._open:
            self._open[name] = make()
        return self._open[name]

    @property
    def tasks(self) -> TaskStore:
        if self.shared:
            from .postgres import PgTaskStore

            return self._get("tasks", lambda: PgTaskStore(self.database, self.recordings))
        return self._get("tasks", lambda: SqliteTaskStore(self.data_dir / _tasks.FILE_NAME,
                                                          self.recordings))

    @property
    def texts(self) -> TextStore:
        if self.shared:
            from .postgres import PgTextStore

            return self._get("texts", lambda: PgTextStore(self.database))
        return self._get("texts", lambda: SqliteTextStore(self.data_dir / _texts.FILE_NAME))

    @property
    def callbacks(self) -> CallbackStore:
        if self.shared:
            from .postgres import PgCallbackStore

            return self._get("callbacks", lambda: PgCallbackStore(self.database))
        return self._get("callbacks",
                         lambda: SqliteCallbackStore(self.data_dir / _callbacks.FILE_NAME))

    @property
    def outbox(self) -> Outbox:
        if self.shared:
            from .postgres import PgOutbox

            return self._get("outbox", lambda: PgOutbox(self.database))
        return self._get("outbox", lambda: SqliteOutbox(self.data_dir / _outbox.FILE_NAME))

    @property
    def users(self) -> UserStore:
        if self.shared:
            from .postgres import PgUserStore

            return self._get("users", lambda: PgUserStore(self.database))
        return self._get("users", lambda: SqliteUserStore(self.data_dir / _people.USERS_FILE))

    @property
    def audit(self) -> AuditLog:
        if self.shared:
            from .postgres import PgAuditLog

            return self._get("audit", lambda: PgAuditLog(self.database))
        return self._get("audit", lambda: SqliteAuditLog(self.data_dir / _people.AUDIT_FILE))

    @property
    def lists(self) -> ListJournal | None:
        """The lists' shared journal; None on one machine."""
        if not self.shared:
            return None
        from .postgres.lists import PgListJournal

        return self._get("lists", lambda: PgListJournal(self.database))  # type: ignore[no-any-return]

    @property
    def screened(self) -> Any:
        """Every node's screened calls (:class:`~stores.postgres.screened.PgScreenedLog`);
        None on one machine, where the engine's event file holds them."""
        if not self.shared:
            return None
        from .postgres.screened import PgScreenedLog

        return self._get("screened", lambda: PgScreenedLog(self.database))

    @property
    def cluster(self) -> Cluster:
        if self.shared:
            from .postgres.cluster import PgCluster

            tasks = self.tasks
            return self._get("cluster", lambda: PgCluster(self.database, tasks))  # type: ignore[arg-type]
        return self._get("cluster", SoloCluster)

    def exists(self, name: str) -> bool:
        """Whether the store ``name`` holds anything yet (a report need not create it)."""
        if self.shared:
            return True
        files = {"tasks": _tasks.FILE_NAME, "texts": _texts.FILE_NAME,
                 "callbacks": _callbacks.FILE_NAME, "outbox": _outbox.FILE_NAME,
                 "users": _people.USERS_FILE, "audit": _people.AUDIT_FILE}
        return name in self._open or (self.data_dir / files[name]).exists()

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()
        if self._database is not None:
            self._database.close()
            self._database = None


def open_stores(where: Path | LoadedConfig, *, url: str | None = None,
                password: str | None = None, node: str = "") -> Stores:
    """The stores of a configuration (``engine.store``: a PostgreSQL URL, else the SQLite
    files of ``engine.data_dir``), or of a data directory (with ``url``: that database)."""
    if isinstance(where, Path):
        return Stores(where, url, password, node)
    engine = where.config.engine
    if engine.store is None:
        return Stores(where.data_dir, node=engine.node_name, media_dir=where.media_dir)
    password = None
    if engine.store_password_env:
        password = os.environ.get(engine.store_password_env)
        if password is None:
            raise StoreError(f"engine.store_password_env names {engine.store_password_env}, "
                             "which is not set in the environment")
    return Stores(where.data_dir, engine.store, password, engine.node_name, where.media_dir)
