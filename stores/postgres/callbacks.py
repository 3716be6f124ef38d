"""The list of messages left for a callback, on PostgreSQL: the SQLite store's contract,
shared by every node.

A message's row is committed before the caller hears "thank you", and it moves only along
:data:`hotline.callbacks.TRANSITIONS`, as on SQLite. What the database adds: marking a
message answered locks its row, so two operators on two nodes cannot both mark it; ids
compare bytewise (``COLLATE "C"``, as SQLite compares them), so a page's cursor means the
same whatever the database's locale; ``ord`` keeps the order messages were stored in where
SQLite relied on its row ids.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from hotline.callbacks import TRANSITIONS, Callback, CallbackState

from ..errors import NotFound, Refused
from .db import Database, PgWatch

__all__ = ["MIGRATIONS", "PgCallbackStore"]

STORE = "callbacks"
WHAT = "the list of callbacks"

MIGRATIONS: list[str] = ["""
    CREATE TABLE callbacks (
        id TEXT COLLATE "C" PRIMARY KEY,
        caller TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        file TEXT NOT NULL,
        duration_s DOUBLE PRECISION NOT NULL,
        path TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'done')),
        done_at DOUBLE PRECISION,
        note TEXT NOT NULL DEFAULT '',
        done_by TEXT NOT NULL DEFAULT '',
        ord BIGSERIAL
    );
    CREATE INDEX callbacks_state ON callbacks (state, at);
    CREATE INDEX callbacks_at ON callbacks (at, id)
"""]
_COLUMNS = "id, caller, at, file, duration_s, path, state, done_at, note, done_by"


class PgCallbackStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(STORE, MIGRATIONS)
        self.watch: PgWatch = db.watch(STORE)

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.db.writing(WHAT, STORE, self.watch) as cur:
            yield cur

    def _rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(WHAT, statement, args)

    def close(self) -> None:
        """The connection is the :class:`Database`'s, closed with it."""

    def add(self, caller: str, at: float, file: str, duration_s: float, path: str) -> Callback:
        with self._write() as cur:
            while True:  # a new id: another message holding this one is a draw of 2**32
                callback_id = "m" + secrets.token_hex(4)
                cur.execute(f"INSERT INTO callbacks ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, "
                            "'waiting', NULL, '', '') ON CONFLICT (id) DO NOTHING",
                            (callback_id, caller, at, file, duration_s, path))
                if cur.rowcount == 1:
                    break
        return self.get(callback_id)

    def get(self, callback_id: str) -> Callback:
        rows = self._rows(f"SELECT {_COLUMNS} FROM callbacks WHERE id = %s", (callback_id,))
        if not rows:
            raise NotFound(f"there is no message {callback_id}")
        return _callback_of(rows[0])

    def list(self, state: str | None = None) -> builtins.list[Callback]:
        query = f"SELECT {_COLUMNS} FROM callbacks"
        args: tuple[str, ...] = ()
        if state:
            query += " WHERE state = %s"
            args = (state,)
        return [_callback_of(row) for row in self._rows(query + " ORDER BY at, ord", args)]

    def page(self, state: str | None, before: tuple[float, str] | None,
             limit: int) -> builtins.list[Callback]:
        """Messages newest first, ``limit`` after the cursor ``before`` (at, id)."""
        where: list[str] = ["TRUE"]
        args: list[object] = []
        if state:
            where.append("state = %s")
            args.append(state)
        if before is not None:
            where.append("(at, id) < (%s, %s)")
            args += [before[0], before[1]]
        rows = self._rows(f"SELECT {_COLUMNS} FROM callbacks WHERE {' AND '.join(where)} "
                          "ORDER BY at DESC, id DESC LIMIT %s", (*args, limit))
        return [_callback_of(row) for row in rows]

    def after(self, at: float, callback_id: str, limit: int = 1000) -> builtins.list[Callback]:
        """Messages left after ``(at, callback_id)``, in the order they were left."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM callbacks WHERE (at, id) > (%s, %s) "
                          "ORDER BY at, id LIMIT %s", (at, callback_id, limit))
        return [_callback_of(row) for row in rows]

    def done(self, callback_id: str, at: float, note: str = "", by: str = "") -> Callback:
        with self._write() as cur:
            row = cur.execute("SELECT state FROM callbacks WHERE id = %s FOR UPDATE",
                              (callback_id,)).fetchone()
            if row is None:
                raise NotFound(f"there is no message {callback_id}")
            if CallbackState.DONE not in TRANSITIONS[CallbackState(row[0])]:
                raise Refused(f"message {callback_id} was already marked answered")
            cur.execute("UPDATE callbacks SET state = 'done', done_at = %s, note = %s, "
                        "done_by = %s WHERE id = %s", (at, note, by, callback_id))
        return self.get(callback_id)


def _callback_of(row: Sequence[Any]) -> Callback:
    values = list(row)
    values[6] = CallbackState(values[6])
    return Callback(*values)
