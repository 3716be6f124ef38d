"""The one way this project keeps a SQLite file: WAL, ``synchronous=FULL``, a schema version.

Every store (tasks, texts, callbacks, the MQTT outbox) is a file under
``engine.data_dir`` that the engine and the command line open at once. Each
is opened by :func:`open_file`: created readable by its owner only (full
phone numbers, what people wrote), in WAL mode so readers never wait for the
writer, ``synchronous=FULL`` so a commit is on disk when it returns, and
brought up to date by its list of migrations (``PRAGMA user_version``: a file
newer than the program is refused in one sentence). :func:`transaction`
takes the write lock at once (``BEGIN IMMEDIATE``: no lock upgrade deadlock);
:class:`Changes` tells cheaply whether another connection committed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Changes", "Migration", "open_file", "transaction"]

Migration = Callable[[sqlite3.Connection], None]
"""``migrations[i]`` brings a file of version ``i`` to ``i + 1``, inside the open transaction."""


def open_file(path: Path, migrations: Sequence[Migration], what: str,
              error: type[Exception], *, foreign_keys: bool = False) -> sqlite3.Connection:
    """The connection to ``path`` (``what``: "the task store", for the sentences of
    ``error``), created and migrated as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)  # the WAL files follow its mode
    try:
        db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        with transaction(db):
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(migrations):
                raise error(f"{what} {path} has schema version {version}, newer than this "
                            f"program's {len(migrations)}; update the program")
            for step in migrations[version:]:
                step(db)
            if version != len(migrations):
                db.execute(f"PRAGMA user_version = {len(migrations)}")
    except sqlite3.DatabaseError as exc:
        raise error(f"{what} {path} cannot be opened: {exc}") from None
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction, taken for writing at once."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Changes:
    """Whether another connection committed since the last look (``PRAGMA data_version``:
    no file read)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._version = self._now()

    def _now(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def __call__(self) -> bool:
        version = self._now()
        if version != self._version:
            self._version = version
            return True
        return False
