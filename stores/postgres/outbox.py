"""The outbox on PostgreSQL: every message for the broker, kept until the broker has taken it.

The SQLite outbox's contract: rows leave in the order they came in (their id) and are
deleted only after the broker acknowledged them; named cursors (how far another store's
history has been copied in) move in the transaction that stores the copy. Several nodes may
write to it; one publisher reads it at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from ..model import Pending
from .db import Database

__all__ = ["MIGRATIONS", "PgOutbox"]

STORE = "outbox"
WHAT = "the outbox"

MIGRATIONS: list[str] = ["""
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX outbox_topic ON outbox (topic, id);
    CREATE TABLE outbox_cursors (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
"""]


class PgOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(STORE, MIGRATIONS)

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.db.writing(WHAT, STORE) as cur:
            yield cur

    def _rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(WHAT, statement, args)

    def close(self) -> None:
        """The connection is the :class:`Database`'s, closed with it."""

    def put(self, messages: Iterable[tuple[str, str]], now: float,
            cursor: tuple[str, str] | None = None) -> int:
        """Queue ``(topic, payload)`` messages, and move ``cursor`` (name, value), at once."""
        rows = [(topic, payload, now) for topic, payload in messages]
        with self._write() as cur:
            if rows:
                cur.executemany("INSERT INTO outbox (topic, payload, at) VALUES (%s, %s, %s)",
                                rows)
            if cursor is not None:
                cur.execute("INSERT INTO outbox_cursors (name, value) VALUES (%s, %s) "
                            "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", cursor)
        return len(rows)

    def cursor(self, name: str) -> str | None:
        rows = self._rows("SELECT value FROM outbox_cursors WHERE name = %s", (name,))
        return None if not rows else str(rows[0][0])

    def peek(self, limit: int) -> list[Pending]:
        """The oldest ``limit`` messages, oldest first."""
        rows = self._rows("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT %s", (limit,))
        return [Pending(int(i), str(t), str(p)) for i, t, p in rows]

    def done(self, ids: Sequence[int]) -> None:
        """The broker has these: forget them."""
        if not ids:
            return
        with self._write() as cur:
            cur.execute("DELETE FROM outbox WHERE id = ANY(%s)", ([int(i) for i in ids],))

    def trim(self, keep: int, topic: str) -> int:
        """Past ``keep`` messages, the oldest of ``topic`` go (a broker down for days must not
        fill the disk); returns how many. Other topics are never dropped here."""
        if self.depth() - keep <= 0:
            return 0
        with self._write() as cur:
            row = cur.execute("SELECT count(*) FROM outbox").fetchone()
            over = int(row[0] if row else 0) - keep
            if over <= 0:
                return 0
            cur.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE "
                        "topic = %s ORDER BY id LIMIT %s)", (topic, over))
            return int(cur.rowcount)

    def depth(self) -> int:
        return int(self._rows("SELECT count(*) FROM outbox")[0][0])

    def oldest_at(self) -> float | None:
        rows = self._rows("SELECT min(at) FROM outbox")
        return None if rows[0][0] is None else float(rows[0][0])
