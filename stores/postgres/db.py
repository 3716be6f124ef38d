"""The one way this project keeps its data in PostgreSQL: a connection that comes back, numbered
migrations applied once however many nodes start together, and what changed heard by
``LISTEN``.

:class:`Database` is one process's connection to the cluster's database (psycopg 3), shared
by that process's stores the way a SQLite file is shared by its connection: every call of a
store is one short statement or transaction on it. When the server goes away (a restart, a
failover, the network), the call in flight raises :class:`~stores.errors.StoreUnavailable`
in one sentence and the next one connects again; while the server stays away a new
connection is tried at most every :data:`RETRY_S`, so a store that cannot answer answers at
once instead of holding its caller. A statement never runs longer than
:data:`STATEMENT_TIMEOUT_MS`.

Each store's schema is a list of SQL migrations; :meth:`Database.migrate` applies the missing
ones in one transaction under an advisory lock, so two nodes starting together migrate once.
Writers ``NOTIFY`` their store's channel inside their transaction (sent at commit);
:class:`PgWatch` hears it on a second connection that only listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ..errors import StoreError, StoreUnavailable
from ..watch import next_look, settle, settled

__all__ = ["CHANNEL_PREFIX", "RETRY_S", "STATEMENT_TIMEOUT_MS", "Database", "PgWatch"]

RETRY_S = 1.0
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 10_000
CHANNEL_PREFIX = "afc_"


def _lock_key(name: str) -> int:
    """A stable advisory lock number for ``name`` (a signed 64-bit value)."""
    return zlib.crc32(f"afc:{name}".encode()) - (1 << 31)


class Database:
    """A connection to ``url`` (``password`` apart: never in the URL) for this process."""

    def __init__(self, url: str, password: str | None = None, node: str = "") -> None:
        self.url = url
        self.password = password
        self.node = node
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()
        self._failed_at: float | None = None
        self._last_error = ""
        self._listener: _Listener | None = None
        self.where = _where(url)

    # ------------------------------------------------------------ connections

    def connect(self, **extra: Any) -> psycopg.Connection[Any]:
        """A new connection (autocommit: each transaction is asked for)."""
        options = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                   "application_name": f"afc {self.node}"[:63],
                   "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                   "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                   "keepalives_count": 3, **extra}
        if self.password is not None:
            options["password"] = self.password
        try:
            return psycopg.connect(self.url, **options)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"the database at {self.where} cannot be reached: "
                                   f"{_first_line(exc)}") from None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_S:
            raise StoreUnavailable(self._last_error)
        try:
            self._conn = self.connect()
        except StoreUnavailable as exc:
            self._failed_at, self._last_error = time.monotonic(), str(exc)
            raise
        self._failed_at = None
        return self._conn

    def _lost(self, exc: psycopg.Error) -> StoreUnavailable:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
        self._failed_at = time.monotonic()
        self._last_error = f"the database at {self.where} went away: {_first_line(exc)}"
        return StoreUnavailable(self._last_error)

    @contextmanager
    def transaction(self, what: str) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction; ``what`` names the store in the sentence of an error."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if conn.closed or conn.broken:
                    raise self._lost(exc) from None
                raise StoreUnavailable(f"{what} cannot be written now: "
                                       f"{_first_line(exc)}") from None
            except psycopg.errors.QueryCanceled as exc:
                raise StoreUnavailable(f"{what} did not answer in time: "
                                       f"{_first_line(exc)}") from None
            except psycopg.errors.SerializationFailure as exc:
                raise StoreUnavailable(f"{what} is busy: {_first_line(exc)}") from None
            except psycopg.Error as exc:
                raise StoreError(f"{what}: {_first_line(exc)}") from None

    @contextmanager
    def writing(self, what: str, store: str,
                watch: PgWatch | None = None) -> Iterator[psycopg.Cursor[Any]]:
        """One write transaction of ``store``: every listener hears of it at commit, and
        ``watch`` (this process's own) at once after."""
        with self.transaction(what) as cur:
            yield cur
            notify(cur, store)
        if watch is not None:
            watch.touched()

    def query(self, what: str, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read."""
        with self.transaction(what) as cur:
            cur.execute(statement, args)  # type: ignore[arg-type]
            return cur.fetchall()

    def close(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if self._conn is not None:
                try:
                    self._conn.close()
                except psycopg.Error:
                    pass
                self._conn = None

    # ------------------------------------------------------------ schema

    def migrate(self, store: str, migrations: Sequence[str | Callable[[psycopg.Cursor[Any]],
                                                                       None]]) -> None:
        """Bring ``store``'s tables to ``len(migrations)``: once, under an advisory lock."""
        what = f"the {store} store"
        with self.transaction(what) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("migrate"),))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_versions (store TEXT PRIMARY KEY, "
                        "version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM schema_versions WHERE store = %s", (store,))
            row = cur.fetchone()
            version = row[0] if row else 0
            if version > len(migrations):
                raise StoreError(f"{what} at {self.where} has schema version {version}, newer "
                                 f"than this program's {len(migrations)}; update the program")
            for step in migrations[version:]:
                if callable(step):
                    step(cur)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            cur.execute(statement)  # type: ignore[call-overload]
            if version != len(migrations):
                cur.execute("INSERT INTO schema_versions (store, version) VALUES (%s, %s) "
                            "ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version",
                            (store, len(migrations)))

    # ------------------------------------------------------------ changes

    def watch(self, store: str) -> PgWatch:
        with self._lock:
            if self._listener is None:
                self._listener = _Listener(self)
        return PgWatch(self._listener, CHANNEL_PREFIX + store)


def notify(cur: psycopg.Cursor[Any], store: str) -> None:
    """Tell every listener that ``store`` changed (sent when the transaction commits)."""
    cur.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL_PREFIX + store)))


class _Listener:
    """One listening connection per :class:`Database`, shared by its watches."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.channels: set[str] = set()
        self.heard: dict[str, bool] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()
        self.waiters: set[asyncio.Future[bool]] = set()
        """One future per coroutine awaiting a watch: settled when the socket has something."""
        self._reading: tuple[asyncio.AbstractEventLoop, int] | None = None

    def add(self, channel: str) -> None:
        with self._lock:
            self.channels.add(channel)
            self.heard.setdefault(channel, False)
            if self._conn is not None:
                try:
                    self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                except psycopg.Error:
                    self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None

    def _connected(self) -> bool:
        """Listening (connecting again if needed); a new connection may have missed changes,
        so every channel counts as changed."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return True
        self._drop()
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_S:
            return False
        try:
            conn = self.db.connect()
            for channel in self.channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except (StoreUnavailable, psycopg.Error):
            self._failed_at = time.monotonic()
            return False
        self._failed_at = None
        self._conn = conn
        for channel in self.heard:
            self.heard[channel] = True
        return True

    def drain(self) -> None:
        with self._lock:
            if not self._connected():
                return
            assert self._conn is not None
            try:
                for note in self._conn.notifies(timeout=0):
                    if note.channel in self.heard:
                        self.heard[note.channel] = True
            except psycopg.Error:
                self._drop()
                for channel in self.heard:  # it may have been told: look again
                    self.heard[channel] = True

    def arm(self, loop: asyncio.AbstractEventLoop) -> bool:
        """The listening socket read by ``loop`` as soon as it has something (the watches'
        waiters are woken then); False while not listening (the caller waits a while)."""
        with self._lock:
            if not self._connected():
                return False
            assert self._conn is not None
            fd = self._conn.fileno()
        if self._reading != (loop, fd):
            self._disarm()
            loop.add_reader(fd, self._readable)
            self._reading = (loop, fd)
        return True

    def _disarm(self) -> None:
        if self._reading is not None:
            loop, fd = self._reading
            self._reading = None
            if not loop.is_closed():
                with contextlib.suppress(Exception):  # its connection may be closed already
                    loop.remove_reader(fd)

    def _readable(self) -> None:
        self.drain()  # the notifications read now: the socket is quiet again
        if self._conn is None:  # it broke: the next wait listens again on a new one
            self._disarm()
        for waiter in self.waiters:
            settle(waiter, True)

    def take(self, channel: str) -> bool:
        self.drain()
        with self._lock:
            heard, self.heard[channel] = self.heard.get(channel, False), False
            return heard

    def close(self) -> None:
        with self._lock:
            self._drop()


class PgWatch:
    """What a store of this process, or any other node, committed: heard by ``LISTEN``."""

    def __init__(self, listener: _Listener, channel: str) -> None:
        self._listener = listener
        self._channel = channel
        self._local = False
        self._subscribers: list[Callable[[], object]] = []
        listener.add(channel)

    def touched(self) -> None:
        """This process committed (the store calls this)."""
        self._local = True
        for callback in self._subscribers:
            callback()

    def subscribe(self, callback: Callable[[], object]) -> None:
        self._subscribers.append(callback)

    def changed(self) -> bool:
        local, self._local = self._local, False
        return self._listener.take(self._channel) or local

    async def wait(self, timeout: float | None = None) -> bool:
        """Until a notification for this store (its socket read the moment it has one), or
        ``timeout``; a look every IDLE_POLL_S besides, and every RETRY_S while the server
        cannot be reached."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            waiter: asyncio.Future[bool] = loop.create_future()
            self._listener.waiters.add(waiter)  # before the look: what comes after it wakes us
            try:
                if self.changed():
                    return True
                left = next_look(deadline)
                if left <= 0:
                    return False
                if not self._listener.arm(loop):
                    await asyncio.sleep(min(left, RETRY_S))
                    continue
                await settled(waiter, left)
            finally:
                self._listener.waiters.discard(waiter)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _where(url: str) -> str:
    """``host:port/db`` of a URL, for sentences (no user, no password)."""
    rest = url.split("://", 1)[-1]
    rest = rest.split("@", 1)[-1]
    return rest.split("?", 1)[0]
