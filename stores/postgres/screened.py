"""Every node's screened calls in one table, for the cluster's report.

A node decides each call from memory and writes nothing on the call's path: its observer
adds what it screened here in batches, every few seconds (:mod:`ops.observer`), and
``report`` counts the calls of every node from here when the store is shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .db import Database

__all__ = ["PgScreenedLog"]

STORE = "screened"
WHAT = "the screened calls' log"

MIGRATIONS: list[str] = ["""
    CREATE TABLE screened (
        id BIGSERIAL PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        node TEXT NOT NULL,
        rule TEXT NOT NULL,
        action TEXT NOT NULL,
        route TEXT NOT NULL
    );
    CREATE INDEX screened_at ON screened (at)
"""]


class PgScreenedLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(STORE, MIGRATIONS)

    def add_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        """``records``: ``{at, rule, action, route}`` each, from this node."""
        if not records:
            return
        with self.db.transaction(WHAT) as cur:
            cur.executemany("INSERT INTO screened (at, node, rule, action, route) "
                            "VALUES (%s, %s, %s, %s, %s)",
                            [(float(r["at"]), self.db.node, str(r.get("rule", "")),
                              str(r.get("action", "")), str(r.get("route", "")))
                             for r in records])

    def between(self, since: float, until: float) -> list[dict[str, Any]]:
        rows = self.db.query(WHAT, "SELECT at, node, rule, action, route FROM screened "
                             "WHERE at >= %s AND at < %s ORDER BY at", (since, until))
        return [{"at": r[0], "node": r[1], "rule": r[2], "action": r[3], "route": r[4]}
                for r in rows]

    def close(self) -> None:
        """The connection is the :class:`Database`'s."""
