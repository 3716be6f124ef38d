"""The errors every store raises, whatever keeps its data: one sentence each, no backend's own.

:class:`StoreUnavailable` means the same call may work later (a lock, a full disk, a server
away): a caller that must not lose what it holds keeps it and tries again. The others are
final answers about what was asked.
"""

from __future__ import annotations

__all__ = ["NotFound", "Refused", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """A store cannot do what was asked; ``str()`` is one sentence."""


class NotFound(StoreError):
    """There is no such task, text, thread or message."""


class Refused(StoreError):
    """What was asked does not fit the record's state (a task already finished…)."""


class StoreUnavailable(StoreError):
    """The store cannot be read or written now; the same call may work later."""
