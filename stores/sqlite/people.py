"""The console's users, their sessions and sign-in failures, and the audit trail, on SQLite.

Two files under ``engine.data_dir``: ``users.sqlite`` (users with their Argon2id hashes,
sessions by the hash of their token, failed sign-ins for the lock-out, each user's remembered
filters) and ``audit.sqlite`` (every change, whoever asked). WAL, ``synchronous=FULL``, owner
only, like every store.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from people import AuditEntry, Role, Session, User
from sqlitefile import open_file, transaction

from ..errors import NotFound, Refused, StoreError, StoreUnavailable
from ..watch import SqliteWatch

__all__ = ["AUDIT_FILE", "USERS_FILE", "SqliteAuditLog", "SqliteUserStore"]

USERS_FILE = "users.sqlite"
AUDIT_FILE = "audit.sqlite"


def _users_v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor')),
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""")
    db.execute("""CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users (name),
        csrf TEXT NOT NULL,
        address TEXT NOT NULL,
        created_at REAL NOT NULL,
        seen_at REAL NOT NULL)""")
    db.execute("CREATE INDEX sessions_user ON sessions (user)")
    db.execute("""CREATE TABLE failures (
        name TEXT NOT NULL,
        address TEXT NOT NULL,
        at REAL NOT NULL)""")
    db.execute("CREATE INDEX failures_name ON failures (name, at)")
    db.execute("CREATE INDEX failures_address ON failures (address, at)")
    db.execute("""CREATE TABLE prefs (
        user TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (user, key))""")


def _audit_v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}')""")
    db.execute("CREATE INDEX audit_at ON audit (at, id)")


USERS_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_users_v1]
AUDIT_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_audit_v1]
_USER = "name, role, password_hash, disabled, created_at, updated_at"
_SESSION = "token_hash, user, csrf, address, created_at, seen_at"


class _Sqlite:
    what = ""

    def __init__(self, path: Path, migrations: list[Callable[[sqlite3.Connection], None]]) -> None:
        self.path = path
        self.db = open_file(path, migrations, self.what, StoreError, foreign_keys=True)
        self.watch = SqliteWatch(self.db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.what} {self.path} cannot be written now: {exc}") from None
        self.watch.touched()

    def close(self) -> None:
        self.watch.close()
        self.db.close()


class SqliteUserStore(_Sqlite):
    what = "the console's users"

    def __init__(self, path: Path) -> None:
        super().__init__(path, USERS_MIGRATIONS)

    # users
    def add(self, name: str, role: Role, password_hash: str, now: float) -> User:
        with self._write() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise Refused(f"there is a user {name} already")
            db.execute(f"INSERT INTO users ({_USER}) VALUES (?, ?, ?, 0, ?, ?)",
                       (name, role.value, password_hash, now, now))
        return self.get(name)

    def get(self, name: str) -> User:
        row = self.db.execute(f"SELECT {_USER} FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"there is no user {name}")
        return _user_of(row)

    def list(self) -> builtins.list[User]:
        return [_user_of(r) for r in self.db.execute(f"SELECT {_USER} FROM users ORDER BY name")]

    def set_password(self, name: str, password_hash: str, now: float) -> User:
        """A new password; every session of the user ends."""
        with self._write() as db:
            self.get(name)
            db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?",
                       (password_hash, now, name))
            db.execute("DELETE FROM sessions WHERE user = ?", (name,))
        return self.get(name)

    def set_disabled(self, name: str, disabled: bool, now: float) -> User:
        with self._write() as db:
            user = self.get(name)
            if user.disabled == disabled:
                raise Refused(f"user {name} is {'disabled' if disabled else 'enabled'} already")
            db.execute("UPDATE users SET disabled = ?, updated_at = ? WHERE name = ?",
                       (int(disabled), now, name))
            if disabled:
                db.execute("DELETE FROM sessions WHERE user = ?", (name,))
        return self.get(name)

    # sessions
    def start_session(self, session: Session) -> None:
        with self._write() as db:
            db.execute(f"INSERT INTO sessions ({_SESSION}) VALUES (?, ?, ?, ?, ?, ?)",
                       (session.token_hash, session.user, session.csrf, session.address,
                        session.created_at, session.seen_at))

    def session(self, token_hash: str) -> Session | None:
        row = self.db.execute(f"SELECT {_SESSION} FROM sessions WHERE token_hash = ?",
                              (token_hash,)).fetchone()
        return None if row is None else Session(*row)

    def touch_session(self, token_hash: str, now: float) -> None:
        with self._write() as db:
            db.execute("UPDATE sessions SET seen_at = ? WHERE token_hash = ?", (now, token_hash))

    def end_session(self, token_hash: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def end_idle_sessions(self, seen_before: float) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM sessions WHERE seen_at < ?", (seen_before,)).rowcount

    # sign-in failures
    def sign_in_failed(self, name: str, address: str, now: float) -> None:
        with self._write() as db:
            db.execute("INSERT INTO failures (name, address, at) VALUES (?, ?, ?)",
                       (name, address, now))
            db.execute("DELETE FROM failures WHERE at < ?", (now - 86400,))

    def failures(self, name: str, address: str,
                 since: float) -> tuple[builtins.list[float], builtins.list[float]]:
        """Times of failed sign-ins since ``since``: for this name, and from this address."""
        by_name = [r[0] for r in self.db.execute(
            "SELECT at FROM failures WHERE name = ? AND at >= ? ORDER BY at", (name, since))]
        by_address = [r[0] for r in self.db.execute(
            "SELECT at FROM failures WHERE address = ? AND at >= ? ORDER BY at", (address, since))]
        return by_name, by_address

    def forget_failures(self, name: str) -> None:
        """A good sign-in clears the name's failures (not the address's)."""
        with self._write() as db:
            db.execute("DELETE FROM failures WHERE name = ?", (name,))

    # remembered filters
    def prefs(self, user: str, key: str) -> dict[str, Any]:
        row = self.db.execute("SELECT value FROM prefs WHERE user = ? AND key = ?",
                              (user, key)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def set_prefs(self, user: str, key: str, value: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute("INSERT INTO prefs (user, key, value) VALUES (?, ?, ?) ON CONFLICT "
                       "(user, key) DO UPDATE SET value = excluded.value",
                       (user, key, json.dumps(value, ensure_ascii=False)))


class SqliteAuditLog(_Sqlite):
    what = "the audit log"

    def __init__(self, path: Path) -> None:
        super().__init__(path, AUDIT_MIGRATIONS)

    def add(self, entry: AuditEntry) -> AuditEntry:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO audit (at, actor, action, target, address, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (entry.at, entry.actor, entry.action, entry.target, entry.address,
                 json.dumps(entry.detail, ensure_ascii=False)))
        return AuditEntry(entry.at, entry.actor, entry.action, entry.target, entry.address,
                          entry.detail, int(cursor.lastrowid or 0))

    def page(self, before: int | None = None, limit: int = 50, actor: str = "",
             action: str = "") -> list[AuditEntry]:
        """Newest first; ``before``: the id of the last entry of the previous page."""
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if before is not None:
            where.append("id < ?")
            args.append(before)
        if actor:
            where.append("actor = ?")
            args.append(actor)
        if action:
            where.append("action = ?")
            args.append(action)
        rows = self.db.execute(
            "SELECT at, actor, action, target, address, detail, id FROM audit "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [AuditEntry(at, who, what, target, address, json.loads(detail), i)
                for at, who, what, target, address, detail, i in rows]


def _user_of(row: tuple[Any, ...]) -> User:
    name, role, password_hash, disabled, created_at, updated_at = row
    return User(name, Role(role), password_hash, bool(disabled), created_at, updated_at)
