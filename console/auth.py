"""Signing in and out of the console, sessions, and who may do what.

- A password is checked against its Argon2id hash (:mod:`center.passwords`); a name that does
  not exist costs the same time as one that does.
- Five wrong passwords for one name, or from one address, within :data:`WINDOW_S` lock that
  name or address out for :data:`LOCK_S` from the fifth (:func:`locked_until`, pure); the page
  says until when.
- A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS); the
  store keeps only its SHA-256, with the session's CSRF token. A session unused for
  ``console.session_idle_s`` ends; signing out ends it on the server at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from center import Actor, Center
from center.passwords import verify_password
from people import Role, Session, User
from stores import NotFound, UserStore

from .i18n import N_

__all__ = ["COOKIE", "LOCK_AFTER", "LOCK_S", "WINDOW_S", "Refusal", "Sessions", "Signed",
           "locked_until", "token_hash"]

COOKIE = "afc_session"
LOCK_AFTER = 5
WINDOW_S = 600.0
LOCK_S = 600.0
TOUCH_EVERY_S = 15.0  # a session's last use is written at most this often
LOCKED = N_("Too many wrong passwords: signing in is locked until {time}.")


def locked_until(failures: Sequence[float], now: float) -> float | None:
    """When a lock-out made by these failed sign-ins ends (None: no lock now): any
    :data:`LOCK_AFTER` failures within :data:`WINDOW_S` lock for :data:`LOCK_S` from the last
    of them."""
    times = sorted(failures)
    until = None
    for i in range(len(times) - LOCK_AFTER + 1):
        last = times[i + LOCK_AFTER - 1]
        if last - times[i] <= WINDOW_S and last + LOCK_S > now:
            until = max(until or 0.0, last + LOCK_S)
    return until


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Signed:
    """Who a request comes from: the session and its user."""

    session: Session
    user: User

    @property
    def role(self) -> Role:
        return self.user.role

    def actor(self) -> Actor:
        return Actor.console(self.user.name, self.session.address)


@dataclass(frozen=True)
class Refusal:
    """Why signing in did not work: a message (English, translated on the page) and its
    values."""

    message: str
    until: float | None = None


class Sessions:
    def __init__(self, users: UserStore, center: Center, idle_s: float) -> None:
        self.users = users
        self.center = center
        self.idle_s = idle_s

    def sign_in(self, name: str, password: str, address: str,
                now: float) -> tuple[str, Signed] | Refusal:
        """A new session's token and who it is, or why not."""
        name = name.strip()[:64]
        by_name, by_address = self.users.failures(name, address, now - WINDOW_S - LOCK_S)
        lock = max(locked_until(by_name, now) or 0.0, locked_until(by_address, now) or 0.0)
        if lock:
            self.center.record(Actor("console", name or "unknown", address), "sign_in_locked",
                               name)
            return Refusal(LOCKED, lock)
        try:
            user: User | None = self.users.get(name)
        except NotFound:
            user = None
        if not verify_password(user.password_hash if user else None, password):
            self.users.sign_in_failed(name, address, now)
            self.center.record(Actor("console", name or "unknown", address), "sign_in_failed",
                               name)
            by_name.append(now)
            by_address.append(now)
            lock = max(locked_until(by_name, now) or 0.0, locked_until(by_address, now) or 0.0)
            if lock:
                return Refusal(LOCKED, lock)
            return Refusal(N_("Wrong name or password."))
        assert user is not None
        if user.disabled:
            return Refusal(N_("This user is disabled; a supervisor can enable it."))
        self.users.forget_failures(name)
        token = secrets.token_urlsafe(32)
        session = Session(token_hash(token), user.name, secrets.token_urlsafe(24), address, now,
                          now)
        self.users.start_session(session)
        signed = Signed(session, user)
        self.center.record(signed.actor(), "sign_in", user.name)
        return token, signed

    def current(self, token: str | None, now: float) -> Signed | None:
        """The session of a cookie, if it is alive (using it keeps it alive)."""
        if not token:
            return None
        session = self.users.session(token_hash(token))
        if session is None:
            return None
        if session.seen_at < now - self.idle_s:
            self.users.end_session(session.token_hash)
            return None
        try:
            user = self.users.get(session.user)
        except NotFound:
            return None
        if user.disabled:
            return None
        if now - session.seen_at > TOUCH_EVERY_S:
            self.users.touch_session(session.token_hash, now)
        return Signed(session, user)

    def peek(self, token: str | None, now: float) -> Signed | None:
        """The same without keeping it alive (a live stream is not someone at the desk)."""
        if not token:
            return None
        session = self.users.session(token_hash(token))
        if session is None or session.seen_at < now - self.idle_s:
            return None
        try:
            user = self.users.get(session.user)
        except NotFound:
            return None
        return None if user.disabled else Signed(session, user)

    def sign_out(self, signed: Signed) -> None:
        self.users.end_session(signed.session.token_hash)
        self.center.record(signed.actor(), "sign_out", signed.user.name)
