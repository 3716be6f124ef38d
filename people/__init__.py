"""The console's users and the center's audit trail: the records, their rules. Pure.

A user has a role: an ``officer`` watches warnings go out, answers texts and callbacks and
acts on tasks; a ``supervisor`` may also reveal full numbers (each reveal audited), manage
the lists and the users. A disabled user cannot sign in and their sessions end.

Every change to the center's records, whoever asks, leaves an :class:`AuditEntry`: who (the
:class:`~center.actor.Actor`), from which address, what (an action name), on what (a task,
a list, a thread…) and its details, numbers masked.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_PASSWORD", "AuditEntry", "Role", "Session", "User", "password_problem"]

MIN_PASSWORD = 10


class Role(enum.StrEnum):
    OFFICER = "officer"
    SUPERVISOR = "supervisor"

    def may(self, what: str) -> bool:
        """What a role may do beyond reading (``reveal``, ``lists``, ``users``, ``audit``)."""
        return self is Role.SUPERVISOR or what not in _SUPERVISORS_ONLY


_SUPERVISORS_ONLY = frozenset({"reveal", "lists", "users", "audit"})


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str
    disabled: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its token is kept hashed; ``csrf`` goes in every form."""

    token_hash: str
    user: str
    csrf: str
    address: str
    created_at: float
    seen_at: float


@dataclass(frozen=True)
class AuditEntry:
    at: float
    actor: str  # cli:<login>, mqtt:<sender>, console:<login>, engine:screening
    action: str  # warn, cancel, requeue, raise_risk, assign, reply, callback_done, list_add…
    target: str = ""  # a task, a thread, a message, a list, a user
    address: str = ""  # where a console user's request came from
    detail: dict[str, Any] = field(default_factory=dict)
    id: int = 0  # the log's own sequence number, once stored


def password_problem(password: str) -> str | None:
    """Why a password cannot be used (one sentence), or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password has {len(password)} characters; at least {MIN_PASSWORD}"
    if len(password) > 1024:
        return "the password is longer than 1024 characters"
    if password != password.strip():
        return "the password begins or ends with a space"
    return None
