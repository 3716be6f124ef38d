"""The block lists' changes shared by every node: one journal in the database.

Each node still decides from its own copy of each list (a memory-mapped snapshot and its
journal under ``data_dir/lists``: microseconds, no database on the call's path). What goes
through the database is every change to a list, in order: edits (``add``, ``remove``: the
numbers' keys) and imports (``merge``, ``replace``: every key of the file, with its
signature). A node applies the changes it has not applied yet to its copy, at start and
whenever another node's change is announced (``LISTEN``), so an edit made anywhere counts
everywhere within a moment, and a node that was down catches up when it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from .db import Database, PgWatch, notify

__all__ = ["ListChange", "PgListJournal"]

STORE = "lists"
WHAT = "the lists' journal"

MIGRATIONS: list[str] = ["""
    CREATE TABLE list_changes (
        seq BIGSERIAL PRIMARY KEY,
        list TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('add', 'remove', 'merge', 'replace')),
        keys BYTEA NOT NULL,
        count INTEGER NOT NULL,
        source JSONB NOT NULL DEFAULT '{}',
        at DOUBLE PRECISION NOT NULL,
        node TEXT NOT NULL DEFAULT '',
        by TEXT NOT NULL DEFAULT ''
    )
"""]


@dataclass(frozen=True)
class ListChange:
    seq: int
    list: str
    op: str  # add, remove, merge, replace
    keys: np.ndarray  # uint64 number keys
    source: dict[str, Any]  # an import's file signature
    at: float
    node: str


class PgListJournal:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(STORE, MIGRATIONS)
        self.watch: PgWatch = db.watch(STORE)

    def append(self, list_name: str, op: str, keys: Sequence[int] | np.ndarray, at: float,
               source: dict[str, Any] | None = None, by: str = "") -> int:
        """Record a change (committed when this returns); its sequence number."""
        packed = np.asarray(keys, dtype="<u8").tobytes()
        with self.db.transaction(WHAT) as cur:
            # one writer at a time: a reader that keeps the last number it applied never
            # misses a change committed after it looked
            cur.execute("LOCK TABLE list_changes IN EXCLUSIVE MODE")
            row: Any = cur.execute(
                "INSERT INTO list_changes (list, op, keys, count, source, at, node, by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                (list_name, op, packed, len(packed) // 8, Jsonb(source or {}), at, self.db.node,
                 by)).fetchone()
            notify(cur, STORE)
        self.watch.touched()
        return int(row[0])

    def after(self, seq: int, limit: int = 100) -> list[ListChange]:
        rows = self.db.query(WHAT, "SELECT seq, list, op, keys, source, at, node FROM "
                             "list_changes WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit))
        return [ListChange(int(r[0]), r[1], r[2], np.frombuffer(bytes(r[3]), dtype="<u8"),
                           dict(r[4]), float(r[5]), r[6]) for r in rows]

    def last(self) -> int:
        rows = self.db.query(WHAT, "SELECT COALESCE(MAX(seq), 0) FROM list_changes")
        return int(rows[0][0])

    def close(self) -> None:
        """The connection is the :class:`Database`'s."""
