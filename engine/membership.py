"""This engine among the nodes sharing the stores: its lease renewed, the dead found and their
calls taken over, its own lease lost and what follows, the store's health said once.

Every ``engine.lease_s / 5`` the node renews its lease and looks at the others. Another node
is declared dead (:meth:`stores.Cluster.reap`: its open attempts interrupted, their tasks
due at once) only when two things agree: the database's clock says its lease lapsed, and
*this* node, while its own renewals kept succeeding, saw the other's renewals stand still for
a whole lease (:class:`Watchdog`). The second keeps a database that was away for a while
from making every node look dead to the first one back: after its own failed renewal a node
starts watching afresh.

If this node's lease was taken (it was away longer than its lease: a stall, a cut network),
the others have interrupted its calls and may be placing them again: it hangs up every
warning call it still carries at once (never two calls to one person), and joins again with
a new generation. On one machine (SQLite) the cluster is this engine alone and nothing of
this ever happens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from dialer.model import Attempt
from stores import Cluster, NodeInfo, StoreError, StoreUnavailable

__all__ = ["Membership", "StoreHealth", "Watchdog"]

log = logging.getLogger("engine.cluster")

RENEWALS_PER_LEASE = 5
SETTLE_S = 2.0
"""Just after the store answers again, a part of the engine whose own connection waits out
its retry pause (a second) may still report the old error: not a second outage."""


class StoreHealth:
    """Whether the stores answer, said once when they stop and once when they are back."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.back_at: float | None = None
        self.last_error = ""

    def failed(self, exc: StoreError) -> None:
        if self.down_since is None and self.back_at is not None \
                and time.time() - self.back_at < SETTLE_S:
            return  # another part of the engine still holds the error of a moment ago
        if self.down_since is None:
            self.down_since = time.time()
            self.last_error = str(exc)
            log.error("the store is unreachable: %s; calls in progress go on, new requests are "
                      "refused until it is back", exc)

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("the store answers again after %.1f s", time.time() - self.down_since)
            self.down_since = None
            self.back_at = time.time()
            self.last_error = ""

    @property
    def up(self) -> bool:
        return self.down_since is None


@dataclass
class _Seen:
    generation: int
    beats: int
    since: float  # this node's monotonic time when it first saw these beats


class Watchdog:
    """Which other nodes look dead from here (pure: the caller passes the time)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.seen: dict[str, _Seen] = {}

    def observe(self, nodes: list[NodeInfo], now: float) -> list[NodeInfo]:
        """The nodes whose renewals stood still for a whole lease while this node watched,
        and whose lease the store's clock says lapsed."""
        dead: list[NodeInfo] = []
        alive = {n.name for n in nodes if n.state == "alive" and n.name != self.node}
        for name in [k for k in self.seen if k not in alive]:
            del self.seen[name]
        for n in nodes:
            if n.name not in alive:
                continue
            seen = self.seen.get(n.name)
            if seen is None or (seen.generation, seen.beats) != (n.generation, n.beats):
                self.seen[n.name] = _Seen(n.generation, n.beats, now)
                continue
            if now - seen.since >= n.lease_s and n.age_s >= n.lease_s:
                dead.append(n)
        return dead

    def blind(self) -> None:
        """This node could not look for a while: what it saw before proves nothing."""
        self.seen.clear()


class Membership:
    def __init__(self, cluster: Cluster, node: str, lease_s: float, health: StoreHealth,
                 info: Callable[[], dict[str, object]], now: Callable[[], float],
                 on_lost: Callable[[], object],
                 on_taken: Callable[[str, list[Attempt]], object]) -> None:
        self.cluster = cluster
        self.node = node
        self.lease_s = lease_s
        self.health = health
        self.info = info
        self.now = now
        self.on_lost = on_lost
        self.on_taken = on_taken
        self.generation = 0
        self.watchdog = Watchdog(node)
        self._task: asyncio.Task[None] | None = None

    @property
    def every_s(self) -> float:
        return self.lease_s / RENEWALS_PER_LEASE

    def join(self) -> None:
        """Join (raises :class:`StoreError` when the store cannot be reached at start)."""
        self.generation = self.cluster.join(self.node, self.lease_s, self.info())
        if self.cluster.shared:
            log.info("node %s joined the cluster (generation %d, lease %.0f s)", self.node,
                     self.generation, self.lease_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="membership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            self.cluster.leave(self.node, self.generation)
        except StoreError as exc:
            log.warning("node %s could not say it left: %s (the others will find out)",
                        self.node, exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                self.beat()
            except Exception:  # the heartbeat must go on whatever one beat met
                log.exception("renewing node %s's lease", self.node)

    def beat(self) -> None:
        """One renewal and one look at the others."""
        try:
            kept = self.cluster.renew(self.node, self.generation, self.info())
        except StoreUnavailable as exc:
            self.watchdog.blind()
            self.health.failed(exc)
            return
        self.health.answered()
        if not kept:
            log.error("node %s lost its lease (it did not renew it within %.0f s); its calls "
                      "were taken over by the others: hanging up what it still carries and "
                      "joining again", self.node, self.lease_s)
            self.watchdog.blind()
            self.on_lost()
            self.join()
            return
        if not self.cluster.shared:
            return
        try:
            others = self.cluster.nodes()
            for dead in self.watchdog.observe(others, time.monotonic()):
                taken = self.cluster.reap(dead.name, dead.generation, self.now())
                self.watchdog.seen.pop(dead.name, None)
                if taken is None:  # another node was first, or it renewed after all
                    continue
                log.warning("node %s stopped renewing its lease %.1f s ago: declared dead; "
                            "%d of its calls interrupted, their tasks due now", dead.name,
                            dead.age_s, len(taken))
                self.on_taken(dead.name, taken)
        except StoreUnavailable as exc:
            self.watchdog.blind()
            self.health.failed(exc)
