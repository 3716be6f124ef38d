"""The engine nodes sharing one database: their leases, the takeover of a dead node's calls,
named leases for one node's work (the MQTT bus), and the trunk's limits across all nodes.

A lease is judged by the database's clock (``now()``), never a node's: nodes whose clocks
differ agree on who is late. Declaring a node dead moves its generation on and interrupts
its open attempts in the same transaction as the task store writes it (their tasks are due
at once), so exactly one node takes them over and the dead node's later writes are refused
(:class:`~stores.postgres.tasks.PgTaskStore` checks the generation of each claim and the
end of an attempt already ended).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from dialer.model import Attempt

from ..model import NodeInfo, TrunkLimits
from .db import Database
from .tasks import PgTaskStore

__all__ = ["PgCluster"]

WHAT = "the cluster's leases"


class PgCluster:
    shared = True

    def __init__(self, db: Database, tasks: PgTaskStore) -> None:
        self.db = db
        self.tasks = tasks  # its migrations made the tables

    def join(self, node: str, lease_s: float, info: dict[str, object]) -> int:
        """This node (again): a new generation, so nothing it held before can be acted on."""
        with self.db.transaction(WHAT) as cur:
            row = cur.execute(
                "INSERT INTO nodes (name, generation, state, lease_s, renewed_at, joined_at, "
                "info) VALUES (%s, 1, 'alive', %s, now(), now(), %s) ON CONFLICT (name) DO "
                "UPDATE SET generation = nodes.generation + 1, state = 'alive', "
                "lease_s = EXCLUDED.lease_s, renewed_at = now(), joined_at = now(), beats = 0, "
                "info = EXCLUDED.info RETURNING generation",
                (node, lease_s, Jsonb(info))).fetchone()
        assert row is not None
        self.tasks.lease = int(row[0])
        return int(row[0])

    def renew(self, node: str, generation: int, info: dict[str, object]) -> bool:
        """False: the lease was taken (this node was declared dead meanwhile)."""
        with self.db.transaction(WHAT) as cur:
            row = cur.execute(
                "UPDATE nodes SET renewed_at = now(), beats = beats + 1, info = %s "
                "WHERE name = %s AND generation = %s AND state = 'alive' RETURNING 1",
                (Jsonb(info), node, generation)).fetchone()
        return row is not None

    def leave(self, node: str, generation: int) -> None:
        with self.db.transaction(WHAT) as cur:
            cur.execute("UPDATE nodes SET state = 'left', renewed_at = now() "
                        "WHERE name = %s AND generation = %s", (node, generation))
            cur.execute("DELETE FROM leases WHERE holder = %s", (node,))

    def nodes(self) -> list[NodeInfo]:
        rows = self.db.query(WHAT, "SELECT name, generation, state, "
                             "EXTRACT(EPOCH FROM now() - renewed_at)::float8, lease_s, beats, "
                             "info FROM nodes ORDER BY name")
        return [NodeInfo(r[0], int(r[1]), r[2], float(r[3]), float(r[4]), int(r[5]),
                         dict(r[6])) for r in rows]

    def reap(self, node: str, generation: int, now: float) -> list[Attempt] | None:
        """Declare ``node`` dead if it is still at ``generation`` and its lease has lapsed by
        the database's clock: its open attempts are interrupted and their tasks due now.
        None when another node did it first, or the node renewed after all."""
        with self.tasks._write() as tx:
            row = tx.execute(
                "UPDATE nodes SET state = 'dead', generation = generation + 1 WHERE name = %s "
                "AND generation = %s AND state = 'alive' AND "
                "renewed_at < now() - lease_s * interval '1 second' RETURNING 1",
                (node, generation)).fetchone()
            if row is None:
                return None
            tx.execute("DELETE FROM leases WHERE holder = %s", (node,))
            rows = self.tasks.interrupt(tx, node, now, None, "node_lost",
                                        f"node {node} stopped answering during the call")
        return self.tasks._attempts_at(rows)

    def hold(self, lease: str, node: str, lease_s: float) -> bool:
        """Take or keep the named lease: True while this node holds it."""
        with self.db.transaction(WHAT) as cur:
            row: Any = cur.execute(
                "INSERT INTO leases (name, holder, generation, lease_s, renewed_at) "
                "VALUES (%s, %s, 1, %s, now()) ON CONFLICT (name) DO UPDATE SET "
                "holder = EXCLUDED.holder, lease_s = EXCLUDED.lease_s, renewed_at = now(), "
                "generation = CASE WHEN leases.holder = EXCLUDED.holder THEN leases.generation "
                "ELSE leases.generation + 1 END "
                "WHERE leases.holder = EXCLUDED.holder "
                "OR leases.renewed_at < now() - leases.lease_s * interval '1 second' "
                "RETURNING holder", (lease, node, lease_s)).fetchone()
        return row is not None

    def lease(self, lease: str) -> tuple[str, float] | None:
        """Who holds the named lease and when it was last renewed (epoch seconds by the
        database's clock: it moves at every renewal); None if nobody ever took it."""
        rows = self.db.query(WHAT, "SELECT holder, EXTRACT(EPOCH FROM renewed_at)::float8 "
                             "FROM leases WHERE name = %s", (lease,))
        return (rows[0][0], float(rows[0][1])) if rows else None

    def release(self, lease: str, node: str) -> None:
        with self.db.transaction(WHAT) as cur:
            cur.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (lease, node))

    def pace(self, limits: TrunkLimits) -> None:
        self.tasks.pace(limits)

    def close(self) -> None:
        """The connection is the :class:`Database`'s."""
