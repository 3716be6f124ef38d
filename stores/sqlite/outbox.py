"""The outbox on SQLite: every message for the broker, on disk until the broker has taken it.

One file under ``engine.data_dir`` (``outbox.sqlite``), WAL, ``synchronous=FULL``. Rows leave
in the order they came in and are deleted only after the broker acknowledged them (QoS 1),
so a broker outage or an engine restart delays messages and loses none; a message may leave
twice (its payload carries an ``id`` for consumers to drop repeats).

Beside the rows, named cursors: how far another store's history has been copied in (the
task store's event ``seq``, the last callback). A copy and its cursor move in one
transaction, so a crash between them copies nothing twice and skips nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlitefile import open_file, transaction

from ..errors import StoreError, StoreUnavailable
from ..model import Pending

__all__ = ["FILE_NAME", "MIGRATIONS", "SqliteOutbox"]

FILE_NAME = "outbox.sqlite"


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        at REAL NOT NULL)""")
    db.execute("CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]


class SqliteOutbox:
    def __init__(self, path: Path) -> None:
        self.path = path  # events may carry full numbers (mqtt.full_numbers)
        self.db = open_file(self.path, MIGRATIONS, "the outbox", StoreError)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the outbox {self.path} cannot be written now: "
                                   f"{exc}") from None

    def close(self) -> None:
        self.db.close()

    def put(self, messages: Iterable[tuple[str, str]], now: float,
            cursor: tuple[str, str] | None = None) -> int:
        """Queue ``(topic, payload)`` messages, and move ``cursor`` (name, value), at once."""
        with self._write() as db:
            rows = [(topic, payload, now) for topic, payload in messages]
            db.executemany("INSERT INTO outbox (topic, payload, at) VALUES (?, ?, ?)", rows)
            if cursor is not None:
                db.execute("INSERT INTO cursors (name, value) VALUES (?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value", cursor)
        return len(rows)

    def cursor(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def peek(self, limit: int) -> list[Pending]:
        """The oldest ``limit`` messages, oldest first."""
        rows = self.db.execute("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?",
                               (limit,)).fetchall()
        return [Pending(int(i), str(t), str(p)) for i, t, p in rows]

    def done(self, ids: Sequence[int]) -> None:
        """The broker has these: forget them."""
        with self._write() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def trim(self, keep: int, topic: str) -> int:
        """Past ``keep`` messages, the oldest of ``topic`` go (a broker down for days must not
        fill the disk); returns how many. Other topics are never dropped here."""
        over = self.depth() - keep
        if over <= 0:
            return 0
        with self._write() as db:
            return db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE "
                              "topic = ? ORDER BY id LIMIT ?)", (topic, over)).rowcount

    def depth(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def oldest_at(self) -> float | None:
        row = self.db.execute("SELECT min(at) FROM outbox").fetchone()
        return None if row[0] is None else float(row[0])
