"""A number list on disk: a sorted snapshot shared through mmap, plus a journal.

Layout of one list directory::

    meta.json           commit point: generation, count, imported sources
    snapshot-<gen>.npy  sorted, unique uint64 keys (8 bytes a number)
    journal-<gen>.log   live edits since that snapshot: "+<key>" / "-<key>" lines

Opening a list maps the snapshot read-only (the page cache is shared by every
process that opens it, so start-up costs no parsing) and replays the journal,
which holds only the edits made since the last import. ``add`` and ``remove``
append to the journal with one ``write`` and an ``fsync``: they count at once in
this process, in every other process at its next :meth:`NumberStore.refresh`,
and after a restart, without rewriting the snapshot. An import folds the
journal into a new snapshot generation; ``meta.json`` is replaced last, by
rename, so a crash leaves either the old generation or the new one whole.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NumberStore", "StoreError"]


class StoreError(Exception):
    """The list directory is unusable (unreadable, corrupt, or not writable)."""


class NumberStore:
    def __init__(self, directory: Path, lenient: bool = False) -> None:
        """``lenient``: a list that cannot be read starts empty (``error`` says why) instead of
        raising; :meth:`refresh` keeps trying."""
        self.directory = Path(directory)
        self._snapshot: np.ndarray = np.empty(0, np.uint64)
        self._view: memoryview = self._snapshot.data
        self._added: set[int] = set()
        self._removed: set[int] = set()
        self._meta: dict[str, Any] = {"generation": 0, "count": 0, "sources": {}}
        self._meta_stamp: tuple[int, int] | None = None
        self._journal_offset = 0
        self.error: str | None = None
        try:
            self._load()
        except StoreError as exc:
            if not lenient:
                raise
            self.error = str(exc)

    # -- reading ---------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        if key in self._removed:
            return False
        if key in self._added:
            return True
        return self._in_snapshot(key)

    def __len__(self) -> int:
        return len(self._snapshot) + len(self._added) - len(self._removed)

    @property
    def generation(self) -> int:
        return int(self._meta["generation"])

    @property
    def sources(self) -> dict[str, Any]:
        return dict(self._meta.get("sources", {}))

    def disk_bytes(self) -> int:
        paths = [self._meta_path, self._snapshot_path(), self._journal_path()]
        return sum(p.stat().st_size for p in paths if p.exists())

    def refresh(self) -> None:
        """Pick up what other processes wrote: a new generation or journal lines.

        Raises :class:`StoreError` when the new generation cannot be read; the last good
        copy stays in use."""
        if self._stamp() != self._meta_stamp or self.error is not None:
            try:
                self._load()
            except StoreError as exc:
                self.error = str(exc)
                raise
            self.error = None
            return
        try:
            size = self._journal_path().stat().st_size
        except FileNotFoundError:
            return
        if size > self._journal_offset:
            self._replay_journal()

    # -- writing ---------------------------------------------------------------

    def add(self, keys: Iterable[int]) -> int:
        """Add keys; returns how many were not already in the list."""
        return self._append("+", keys)

    def remove(self, keys: Iterable[int]) -> int:
        """Remove keys; returns how many were in the list."""
        return self._append("-", keys)

    def merge(self, keys: np.ndarray, source: dict[str, Any] | None = None) -> int:
        """Fold the journal and ``keys`` (sorted, unique uint64) into a new snapshot."""
        with self._locked():
            self.refresh()
            current = self._current_keys()
            merged = sorted_union(current, keys)
            self._write_generation(merged, source)
        return len(merged) - len(current)

    def replace(self, keys: np.ndarray, source: dict[str, Any] | None = None) -> None:
        """Make the list exactly ``keys``: a new snapshot and an empty journal."""
        with self._locked():
            self.refresh()
            self._meta["sources"] = {}
            self._write_generation(keys, source)

    # -- internals ---------------------------------------------------------------

    @property
    def _meta_path(self) -> Path:
        return self.directory / "meta.json"

    def _snapshot_path(self, generation: int | None = None) -> Path:
        gen = self.generation if generation is None else generation
        return self.directory / f"snapshot-{gen}.npy"

    def _journal_path(self, generation: int | None = None) -> Path:
        gen = self.generation if generation is None else generation
        return self.directory / f"journal-{gen}.log"

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self._meta_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def _load(self) -> None:
        """Read the current generation; on failure nothing changes (the last good copy stays
        in use, and the next :meth:`refresh` tries again)."""
        stamp = self._stamp()
        if stamp is None and self._meta_stamp is not None:
            raise StoreError(f"cannot read the list in {self.directory}: meta.json has gone")
        if stamp is None:
            meta: dict[str, Any] = {"generation": 0, "count": 0, "sources": {}}
            snapshot = np.empty(0, np.uint64)
        else:
            try:
                meta = json.loads(self._meta_path.read_text())
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot read the list in {self.directory}: "
                                 f"{self._meta_path.name} is not valid ({exc})") from exc
            generation = meta.get("generation") if isinstance(meta, dict) else None
            if not isinstance(generation, int):
                raise StoreError(f"cannot read the list in {self.directory}: meta.json has no "
                                 "generation number")
            path = self.directory / f"snapshot-{generation}.npy"
            try:
                snapshot = np.load(path, mmap_mode="r") if path.exists() else np.empty(0, np.uint64)
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot read the list in {self.directory}: {path.name} is not "
                                 f"valid ({exc})") from exc
            if snapshot.dtype != np.uint64 or snapshot.ndim != 1:
                raise StoreError(f"{path} is not a list snapshot")
        self._meta, self._snapshot, self._meta_stamp = meta, snapshot, stamp
        self._added.clear()
        self._removed.clear()
        self._journal_offset = 0
        self._view = snapshot.data.cast("B").cast("Q") if len(snapshot) else memoryview(b"").cast("Q")
        self._replay_journal()

    def _replay_journal(self) -> None:
        try:
            with self._journal_path().open("rb") as journal:
                journal.seek(self._journal_offset)
                data = journal.read()
        except FileNotFoundError:
            return
        complete = data.rfind(b"\n") + 1  # a torn last line is read once it is whole
        for line in data[:complete].split(b"\n"):
            if len(line) > 1 and line[:1] in (b"+", b"-") and line[1:].isdigit():
                self._apply(line[:1].decode(), int(line[1:]))
        self._journal_offset += complete

    def _apply(self, op: str, key: int) -> bool:
        """Apply one edit to the in-memory view; True when it changed membership."""
        was = key in self
        if op == "+":
            self._removed.discard(key)
            if not self._in_snapshot(key):
                self._added.add(key)
        else:
            self._added.discard(key)
            if self._in_snapshot(key):
                self._removed.add(key)
        return was != (op == "+")

    def _in_snapshot(self, key: int) -> bool:
        # bisect over a memoryview: ~1 µs at 10M keys. ndarray.searchsorted with a
        # Python int promotes the whole array and costs ~50 µs per lookup at 100k.
        view = self._view
        index = bisect.bisect_left(view, key)
        return index < len(view) and view[index] == key

    def _append(self, op: str, keys: Iterable[int]) -> int:
        keys = [int(k) for k in keys]
        if not keys:
            return 0
        with self._locked():
            self.refresh()
            if self._stamp() is None:
                self._write_generation(np.empty(0, np.uint64), None)
            changed = sum(self._apply(op, key) for key in keys)
            record = "".join(f"{op}{key}\n" for key in keys).encode()
            fd = os.open(self._journal_path(), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                self._drop_torn_tail(fd)
                os.write(fd, record)
                os.fsync(fd)
                self._journal_offset = os.fstat(fd).st_size
            finally:
                os.close(fd)
        return changed

    def _drop_torn_tail(self, fd: int) -> None:
        """A crash mid-write can leave half a record: cut it off (readers never read it)."""
        size = os.fstat(fd).st_size
        tail = os.pread(fd, min(size, 64), max(0, size - 64))
        if tail and not tail.endswith(b"\n"):
            os.ftruncate(fd, size - len(tail) + tail.rfind(b"\n") + 1)

    def _current_keys(self) -> np.ndarray:
        keys = np.asarray(self._snapshot)
        if self._removed:
            keys = np.setdiff1d(keys, np.fromiter(self._removed, np.uint64), assume_unique=True)
        if self._added:
            keys = sorted_union(keys, np.fromiter(self._added, np.uint64))
        return keys.astype(np.uint64, copy=False)


    def _write_generation(self, keys: np.ndarray, source: dict[str, Any] | None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        old = self.generation if self._meta_stamp is not None else None
        generation = (old or 0) + 1
        snapshot = self._snapshot_path(generation)
        tmp = snapshot.with_suffix(".tmp")
        with tmp.open("wb") as out:
            np.save(out, np.ascontiguousarray(keys, dtype=np.uint64))
            out.flush()
            os.fsync(out.fileno())
        tmp.rename(snapshot)
        sources = dict(self._meta.get("sources", {}))
        if source:
            sources[source["path"]] = source
        meta = {"generation": generation, "count": len(keys), "sources": sources,
                "written_at": time.time()}
        meta_tmp = self._meta_path.with_suffix(".tmp")
        meta_tmp.write_text(json.dumps(meta, indent=1))
        with meta_tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        meta_tmp.rename(self._meta_path)
        if old is not None and old != generation:
            for path in (self._snapshot_path(old), self._journal_path(old)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        self._load()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = (self.directory / "lock").open("a")
        except OSError as exc:
            raise StoreError(f"cannot write the list in {self.directory}: {exc}") from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union of two sorted, unique uint64 arrays (np.union1d hashes: slower at 10M)."""
    if not len(a):
        return np.asarray(b, np.uint64)
    if not len(b):
        return np.asarray(a, np.uint64)
    both = np.concatenate([a, b])
    both.sort()
    keep = np.empty(len(both), bool)
    keep[0] = True
    np.not_equal(both[1:], both[:-1], out=keep[1:])
    return both[keep]
