"""The list of messages left for a callback, on SQLite: the morning shift's list.

One file under ``engine.data_dir`` (``callbacks.sqlite``), WAL, ``synchronous=FULL``. A
message's row is committed before the caller hears "thank you"; its WAV is already closed by
then (the worker says so). A message moves only along
:data:`hotline.callbacks.TRANSITIONS`. The full number stays here; people see it masked.
"""

from __future__ import annotations

import builtins
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hotline.callbacks import TRANSITIONS, Callback, CallbackState
from sqlitefile import open_file, transaction

from ..errors import NotFound, Refused, StoreError, StoreUnavailable
from ..watch import SqliteWatch

__all__ = ["FILE_NAME", "MIGRATIONS", "SqliteCallbackStore"]

FILE_NAME = "callbacks.sqlite"


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE callbacks (
        id TEXT PRIMARY KEY,
        caller TEXT NOT NULL,
        at REAL NOT NULL,
        file TEXT NOT NULL,
        duration_s REAL NOT NULL,
        path TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'done')),
        done_at REAL,
        note TEXT NOT NULL DEFAULT '')""")
    db.execute("CREATE INDEX callbacks_state ON callbacks (state, at)")


def _v2(db: sqlite3.Connection) -> None:
    """Who marked a message answered (``cli:<user>``, ``mqtt:<client>``…)."""
    db.execute("ALTER TABLE callbacks ADD COLUMN done_by TEXT NOT NULL DEFAULT ''")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2]
_COLUMNS = "id, caller, at, file, duration_s, path, state, done_at, note, done_by"


class SqliteCallbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path  # callers' numbers: owner only
        self.db = open_file(self.path, MIGRATIONS, "the list of callbacks", StoreError)
        self.watch = SqliteWatch(self.db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the list of callbacks {self.path} cannot be written now: "
                                   f"{exc}") from None
        self.watch.touched()

    def close(self) -> None:
        self.watch.close()
        self.db.close()

    def add(self, caller: str, at: float, file: str, duration_s: float, path: str) -> Callback:
        callback_id = "m" + secrets.token_hex(4)
        with self._write() as db:
            db.execute(f"INSERT INTO callbacks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'waiting', "
                       "NULL, '', '')", (callback_id, caller, at, file, duration_s, path))
        return self.get(callback_id)

    def get(self, callback_id: str) -> Callback:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM callbacks WHERE id = ?",
                              (callback_id,)).fetchone()
        if row is None:
            raise NotFound(f"there is no message {callback_id}")
        return _callback_of(row)

    def list(self, state: str | None = None) -> builtins.list[Callback]:
        query = f"SELECT {_COLUMNS} FROM callbacks"
        args: tuple[str, ...] = ()
        if state:
            query += " WHERE state = ?"
            args = (state,)
        return [_callback_of(row) for row in self.db.execute(query + " ORDER BY at", args)]

    def page(self, state: str | None, before: tuple[float, str] | None,
             limit: int) -> builtins.list[Callback]:
        """Messages newest first, ``limit`` after the cursor ``before`` (at, id)."""
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if state:
            where.append("state = ?")
            args.append(state)
        if before is not None:
            where.append("(at, id) < (?, ?)")
            args += [before[0], before[1]]
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM callbacks WHERE {' AND '.join(where)} "
                               "ORDER BY at DESC, id DESC LIMIT ?", (*args, limit))
        return [_callback_of(row) for row in rows]

    def after(self, at: float, callback_id: str, limit: int = 1000) -> builtins.list[Callback]:
        """Messages left after ``(at, callback_id)``, in the order they were left."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM callbacks WHERE (at, id) > (?, ?) "
                               "ORDER BY at, id LIMIT ?", (at, callback_id, limit))
        return [_callback_of(row) for row in rows]

    def done(self, callback_id: str, at: float, note: str = "", by: str = "") -> Callback:
        with self._write() as db:
            callback = self.get(callback_id)
            if CallbackState.DONE not in TRANSITIONS[callback.state]:
                raise Refused(f"message {callback_id} was already marked answered")
            db.execute("UPDATE callbacks SET state = 'done', done_at = ?, note = ?, done_by = ? "
                       "WHERE id = ?", (at, note, by, callback_id))
        return self.get(callback_id)


def _callback_of(row: tuple[Any, ...]) -> Callback:
    values = list(row)
    values[6] = CallbackState(values[6])
    return Callback(*values)
