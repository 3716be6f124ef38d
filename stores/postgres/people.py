"""The console's users, their sessions and sign-in failures, and the audit trail, on
PostgreSQL: the SQLite stores' contract, shared by every node.

As on SQLite: users with their Argon2id hashes, sessions by the hash of their token, failed
sign-ins for the lock-out (a day's worth), each user's remembered filters; and every change,
whoever asked, in the audit log, newest first by its id. What the database adds: a change to
a user locks its row, so two supervisors on two nodes change a user one after the other;
a user's sessions, failures and filters are seen by every node at once. Remembered filters
and an entry's details are ``JSON`` (not ``JSONB``): they come back with their keys in the
order they were written, as the SQLite text does. User names sort bytewise, as on SQLite.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.json import Json

from people import AuditEntry, Role, Session, User

from ..errors import NotFound, Refused
from .db import Database, PgWatch

__all__ = ["AUDIT_MIGRATIONS", "USERS_MIGRATIONS", "PgAuditLog", "PgUserStore"]

USERS_MIGRATIONS: list[str] = ["""
    CREATE TABLE users (
        name TEXT COLLATE "C" PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor')),
        password_hash TEXT NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        "user" TEXT COLLATE "C" NOT NULL REFERENCES users (name),
        csrf TEXT NOT NULL,
        address TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX sessions_user ON sessions ("user");
    CREATE INDEX sessions_seen ON sessions (seen_at);
    CREATE TABLE sign_in_failures (
        name TEXT NOT NULL,
        address TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX sign_in_failures_name ON sign_in_failures (name, at);
    CREATE INDEX sign_in_failures_address ON sign_in_failures (address, at);
    CREATE INDEX sign_in_failures_at ON sign_in_failures (at);
    CREATE TABLE prefs (
        "user" TEXT NOT NULL,
        key TEXT NOT NULL,
        value JSON NOT NULL,
        PRIMARY KEY ("user", key)
    )
"""]
AUDIT_MIGRATIONS: list[str] = ["""
    CREATE TABLE audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL DEFAULT '',
        detail JSON NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_at ON audit (at, id);
    CREATE INDEX audit_actor ON audit (actor, id);
    CREATE INDEX audit_action ON audit (action, id)
"""]
_USER = "name, role, password_hash, disabled, created_at, updated_at"
_SESSION = 'token_hash, "user", csrf, address, created_at, seen_at'
_dumps = functools.partial(json.dumps, ensure_ascii=False)


class _Pg:
    store = ""
    what = ""

    def __init__(self, db: Database, migrations: list[str]) -> None:
        self.db = db
        db.migrate(self.store, migrations)
        self.watch: PgWatch = db.watch(self.store)

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.db.writing(self.what, self.store, self.watch) as cur:
            yield cur

    def _rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(self.what, statement, args)

    def close(self) -> None:
        """The connection is the :class:`Database`'s, closed with it."""


class PgUserStore(_Pg):
    store = "users"
    what = "the console's users"

    def __init__(self, db: Database) -> None:
        super().__init__(db, USERS_MIGRATIONS)

    # users
    def add(self, name: str, role: Role, password_hash: str, now: float) -> User:
        with self._write() as cur:
            cur.execute(f"INSERT INTO users ({_USER}) VALUES (%s, %s, %s, FALSE, %s, %s) "
                        "ON CONFLICT (name) DO NOTHING",
                        (name, role.value, password_hash, now, now))
            if cur.rowcount != 1:
                raise Refused(f"there is a user {name} already")
        return self.get(name)

    def get(self, name: str) -> User:
        rows = self._rows(f"SELECT {_USER} FROM users WHERE name = %s", (name,))
        if not rows:
            raise NotFound(f"there is no user {name}")
        return _user_of(rows[0])

    def list(self) -> builtins.list[User]:
        return [_user_of(r) for r in self._rows(f"SELECT {_USER} FROM users ORDER BY name")]

    def _locked(self, cur: psycopg.Cursor[Any], name: str) -> User:
        row = cur.execute(f"SELECT {_USER} FROM users WHERE name = %s FOR UPDATE",
                          (name,)).fetchone()
        if row is None:
            raise NotFound(f"there is no user {name}")
        return _user_of(row)

    def set_password(self, name: str, password_hash: str, now: float) -> User:
        """A new password; every session of the user ends."""
        with self._write() as cur:
            self._locked(cur, name)
            cur.execute("UPDATE users SET password_hash = %s, updated_at = %s WHERE name = %s",
                        (password_hash, now, name))
            cur.execute('DELETE FROM sessions WHERE "user" = %s', (name,))
        return self.get(name)

    def set_disabled(self, name: str, disabled: bool, now: float) -> User:
        with self._write() as cur:
            user = self._locked(cur, name)
            if user.disabled == disabled:
                raise Refused(f"user {name} is {'disabled' if disabled else 'enabled'} already")
            cur.execute("UPDATE users SET disabled = %s, updated_at = %s WHERE name = %s",
                        (disabled, now, name))
            if disabled:
                cur.execute('DELETE FROM sessions WHERE "user" = %s', (name,))
        return self.get(name)

    # sessions
    def start_session(self, session: Session) -> None:
        with self._write() as cur:
            cur.execute(f"INSERT INTO sessions ({_SESSION}) VALUES (%s, %s, %s, %s, %s, %s)",
                        (session.token_hash, session.user, session.csrf, session.address,
                         session.created_at, session.seen_at))

    def session(self, token_hash: str) -> Session | None:
        rows = self._rows(f"SELECT {_SESSION} FROM sessions WHERE token_hash = %s",
                          (token_hash,))
        return None if not rows else Session(*rows[0])

    def touch_session(self, token_hash: str, now: float) -> None:
        with self._write() as cur:
            cur.execute("UPDATE sessions SET seen_at = %s WHERE token_hash = %s",
                        (now, token_hash))

    def end_session(self, token_hash: str) -> None:
        with self._write() as cur:
            cur.execute("DELETE FROM sessions WHERE token_hash = %s", (token_hash,))

    def end_idle_sessions(self, seen_before: float) -> int:
        with self._write() as cur:
            cur.execute("DELETE FROM sessions WHERE seen_at < %s", (seen_before,))
            return int(cur.rowcount)

    # sign-in failures
    def sign_in_failed(self, name: str, address: str, now: float) -> None:
        with self._write() as cur:
            cur.execute("INSERT INTO sign_in_failures (name, address, at) VALUES (%s, %s, %s)",
                        (name, address, now))
            cur.execute("DELETE FROM sign_in_failures WHERE at < %s", (now - 86400,))

    def failures(self, name: str, address: str,
                 since: float) -> tuple[builtins.list[float], builtins.list[float]]:
        """Times of failed sign-ins since ``since``: for this name, and from this address."""
        with self.db.transaction(self.what) as cur:
            by_name = [r[0] for r in cur.execute(
                "SELECT at FROM sign_in_failures WHERE name = %s AND at >= %s ORDER BY at",
                (name, since)).fetchall()]
            by_address = [r[0] for r in cur.execute(
                "SELECT at FROM sign_in_failures WHERE address = %s AND at >= %s ORDER BY at",
                (address, since)).fetchall()]
        return by_name, by_address

    def forget_failures(self, name: str) -> None:
        """A good sign-in clears the name's failures (not the address's)."""
        with self._write() as cur:
            cur.execute("DELETE FROM sign_in_failures WHERE name = %s", (name,))

    # remembered filters
    def prefs(self, user: str, key: str) -> dict[str, Any]:
        rows = self._rows('SELECT value FROM prefs WHERE "user" = %s AND key = %s', (user, key))
        return {} if not rows else dict(rows[0][0])

    def set_prefs(self, user: str, key: str, value: dict[str, Any]) -> None:
        with self._write() as cur:
            cur.execute('INSERT INTO prefs ("user", key, value) VALUES (%s, %s, %s) ON CONFLICT '
                        '("user", key) DO UPDATE SET value = EXCLUDED.value',
                        (user, key, Json(value, _dumps)))


class PgAuditLog(_Pg):
    store = "audit"
    what = "the audit log"

    def __init__(self, db: Database) -> None:
        super().__init__(db, AUDIT_MIGRATIONS)

    def add(self, entry: AuditEntry) -> AuditEntry:
        with self._write() as cur:
            row = cur.execute(
                "INSERT INTO audit (at, actor, action, target, address, detail) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (entry.at, entry.actor, entry.action, entry.target, entry.address,
                 Json(entry.detail, _dumps))).fetchone()
            assert row is not None
        return AuditEntry(entry.at, entry.actor, entry.action, entry.target, entry.address,
                          entry.detail, int(row[0]))

    def page(self, before: int | None = None, limit: int = 50, actor: str = "",
             action: str = "") -> list[AuditEntry]:
        """Newest first; ``before``: the id of the last entry of the previous page."""
        where: list[str] = ["TRUE"]
        args: list[object] = []
        if before is not None:
            where.append("id < %s")
            args.append(before)
        if actor:
            where.append("actor = %s")
            args.append(actor)
        if action:
            where.append("action = %s")
            args.append(action)
        rows = self._rows(
            "SELECT at, actor, action, target, address, detail, id FROM audit "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s", (*args, limit))
        return [AuditEntry(at, who, what, target, address, detail, i)
                for at, who, what, target, address, detail, i in rows]


def _user_of(row: Sequence[Any]) -> User:
    name, role, password_hash, disabled, created_at, updated_at = row
    return User(name, Role(role), password_hash, bool(disabled), created_at, updated_at)
