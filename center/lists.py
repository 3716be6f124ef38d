"""This node's copies of the block lists kept in step with the cluster's journal of changes.

With a shared store (``engine.store``), a change to a list is written to the journal in the
database first (:class:`stores.ListJournal`), then applied to the node's own copy under
``data_dir/lists`` by :meth:`ListSync.sync`, which every process of the node may call (the
command line after its edit, the engine when the journal announces another node's): the
copy's cursor file says up to which change it holds, and a lock on it makes two processes
take turns. Every change is safe to apply twice (an add of a number already there, an
import merged again), so a crash between applying and moving the cursor costs nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from screening import ListSet
from stores import ListJournal

__all__ = ["ListSync"]

log = logging.getLogger("center.lists")

CURSOR = "cluster.cursor"
BATCH = 100


class ListSync:
    def __init__(self, lists: ListSet, journal: ListJournal, lists_dir: Path) -> None:
        self.lists = lists
        self.journal = journal
        self.path = lists_dir / CURSOR
        self._unknown: set[str] = set()

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / (CURSOR + ".lock")).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def applied(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write(self, seq: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{seq}\n")
        os.replace(tmp, self.path)

    def sync(self) -> int:
        """Apply every change this node's copy does not hold yet; how many were applied.
        Raises :class:`stores.StoreError` when the journal cannot be read (the copy stays as
        it is, and decisions go on from it)."""
        applied = 0
        with self._turn():
            seq = self.applied()
            while True:
                changes = self.journal.after(seq, BATCH)
                if not changes:
                    break
                for change in changes:
                    self._apply(change.list, change.op, change.keys, change.source)
                    seq = change.seq
                    applied += 1
                self._write(seq)
        return applied

    def _apply(self, name: str, op: str, keys: np.ndarray, source: dict[str, object]) -> None:
        store = self.lists.stores.get(name)
        if store is None:  # a list another node's configuration has and this one's lacks
            if name not in self._unknown:
                self._unknown.add(name)
                log.warning("list %s is changed by other nodes but not configured here "
                            "(screening.lists); its changes are skipped", name)
            return
        if op == "add":
            store.add(int(k) for k in keys)
        elif op == "remove":
            store.remove(int(k) for k in keys)
        elif op == "merge":
            store.merge(np.asarray(keys, dtype=np.uint64), source or None)
        elif op == "replace":
            store.replace(np.asarray(keys, dtype=np.uint64), source or None)
