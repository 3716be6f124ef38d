"""The stores as SQLite files under ``engine.data_dir``: one machine, one engine (the
embedded default; nothing to install or run beside the product)."""

from .callbacks import SqliteCallbackStore
from .outbox import SqliteOutbox
from .people import SqliteAuditLog, SqliteUserStore
from .tasks import SqliteTaskStore
from .texts import SqliteTextStore

__all__ = ["SqliteAuditLog", "SqliteCallbackStore", "SqliteOutbox", "SqliteTaskStore", "SqliteTextStore",
           "SqliteUserStore"]
