"""Who asked for a change: recorded beside it in the task's history, a text, a callback."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass

__all__ = ["ENGINE", "Actor"]

_NAME = re.compile(r"[^\w.@:+-]")


@dataclass(frozen=True)
class Actor:
    kind: str  # cli, mqtt, console, engine
    name: str
    address: str = ""  # where a console user's request came from (for the audit trail)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def cli(cls) -> Actor:
        """The person at the command line (their login name)."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container)
            user = "unknown"
        return cls("cli", _clean(user))

    @classmethod
    def mqtt(cls, sender: object) -> Actor:
        """A system on the bus; it names itself in the message's ``by`` (else ``unknown``)."""
        return cls("mqtt", _clean(sender) if isinstance(sender, str) and sender.strip()
                   else "unknown")

    @classmethod
    def console(cls, login: str, address: str = "") -> Actor:
        return cls("console", _clean(login), address)


ENGINE = Actor("engine", "screening")
"""The engine on its own behalf (a blocked fraud call made a warning for its callee)."""


def _clean(name: str) -> str:
    """At most 64 characters a log line can hold: no spaces, no control characters."""
    return _NAME.sub("_", name.strip())[:64] or "unknown"
