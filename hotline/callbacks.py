"""Messages left on the hotline for a callback: the morning shift's list.

SQLite (``<data_dir>/callbacks.sqlite``, WAL, ``synchronous=FULL``) with a
schema version and migrations, like the task store. A message's row is
committed before the caller hears "thank you"; its WAV is already closed by
then (the worker says so). The full number stays here; people see it masked.
"""

from __future__ import annotations

import builtins
import enum
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from screening import mask
from sqlitefile import open_file

__all__ = ["TRANSITIONS", "Callback", "CallbackError", "CallbackState", "CallbackStore"]

FILE_NAME = "callbacks.sqlite"


class CallbackError(Exception):
    """The list of callbacks cannot do what was asked; ``str()`` is one sentence."""


class CallbackState(enum.StrEnum):
    WAITING = "waiting"  # for an operator to call back
    DONE = "done"


TRANSITIONS: dict[CallbackState, frozenset[CallbackState]] = {
    CallbackState.WAITING: frozenset({CallbackState.DONE}),
    CallbackState.DONE: frozenset(),
}
"""A message is answered once."""


@dataclass(frozen=True)
class Callback:
    id: str
    caller: str
    at: float
    file: str
    duration_s: float
    path: str  # the menus the caller went through
    state: CallbackState
    done_at: float | None
    note: str
    done_by: str = ""  # who marked it answered (cli:<user>, mqtt:<client>…)

    @property
    def masked(self) -> str:
        return mask(self.caller) if self.caller else "withheld"


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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]
_COLUMNS = "id, caller, at, file, duration_s, path, state, done_at, note"


class CallbackStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME  # callers' numbers: owner only
        self.db = open_file(self.path, MIGRATIONS, "the list of callbacks", CallbackError)

    def close(self) -> None:
        self.db.close()

    def add(self, caller: str, at: float, file: str, duration_s: float, path: str) -> Callback:
        callback_id = "m" + secrets.token_hex(4)
        self.db.execute(f"INSERT INTO callbacks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'waiting', "
                        "NULL, '')", (callback_id, caller, at, file, duration_s, path))
        return self.get(callback_id)

    def get(self, callback_id: str) -> Callback:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM callbacks WHERE id = ?",
                              (callback_id,)).fetchone()
        if row is None:
            raise CallbackError(f"there is no message {callback_id}")
        return Callback(*row)

    def list(self, state: str | None = None) -> list[Callback]:
        query = f"SELECT {_COLUMNS} FROM callbacks"
        args: tuple[str, ...] = ()
        if state:
            query += " WHERE state = ?"
            args = (state,)
        return [Callback(*row) for row in self.db.execute(query + " ORDER BY at", args)]

    def after(self, at: float, callback_id: str, limit: int = 1000) -> builtins.list[Callback]:
        """Messages left after ``(at, callback_id)``, in the order they were left."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM callbacks WHERE (at, id) > (?, ?) "
                               "ORDER BY at, id LIMIT ?", (at, callback_id, limit))
        return [Callback(*row) for row in rows]

    def done(self, callback_id: str, at: float, note: str = "") -> Callback:
        callback = self.get(callback_id)
        if callback.state == "done":
            raise CallbackError(f"message {callback_id} was already marked answered")
        self.db.execute("UPDATE callbacks SET state = 'done', done_at = ?, note = ? WHERE id = ?",
                        (at, note, callback_id))
        return self.get(callback_id)
