"""The cluster of one: an engine alone on its data directory (SQLite files).

``engine.lock`` already makes it the only engine there, so it always holds its leases, no
other node can die under it, and the trunk's limits are its own :class:`engine.trunk.Pacer`'s.
"""

from __future__ import annotations

import time

from dialer.model import Attempt

from .model import NodeInfo, TrunkLimits

__all__ = ["SoloCluster"]


class SoloCluster:
    shared = False

    def __init__(self) -> None:
        self._node: NodeInfo | None = None
        self._renewed = 0.0

    def join(self, node: str, lease_s: float, info: dict[str, object]) -> int:
        self._node = NodeInfo(node, 1, "alive", 0.0, lease_s, 0, dict(info))
        self._renewed = time.monotonic()
        return 1

    def renew(self, node: str, generation: int, info: dict[str, object]) -> bool:
        if self._node is not None:
            n = self._node
            self._node = NodeInfo(n.name, n.generation, n.state, 0.0, n.lease_s, n.beats + 1,
                                  dict(info))
            self._renewed = time.monotonic()
        return True

    def leave(self, node: str, generation: int) -> None:
        if self._node is not None:
            n = self._node
            self._node = NodeInfo(n.name, n.generation, "left", 0.0, n.lease_s, n.beats, n.info)

    def nodes(self) -> list[NodeInfo]:
        if self._node is None:
            return []
        n = self._node
        return [NodeInfo(n.name, n.generation, n.state, time.monotonic() - self._renewed,
                         n.lease_s, n.beats, n.info)]

    def reap(self, node: str, generation: int, now: float) -> list[Attempt] | None:
        return None

    def hold(self, lease: str, node: str, lease_s: float) -> bool:
        return True

    def lease(self, lease: str) -> tuple[str, float] | None:
        return None

    def release(self, lease: str, node: str) -> None:
        pass

    def pace(self, limits: TrunkLimits) -> None:
        pass

    def close(self) -> None:
        pass
