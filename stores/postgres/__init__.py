"""The stores on PostgreSQL, for several engine nodes sharing one database: the same
interfaces and the same contract as the SQLite files (``tests/test_store_contract.py`` runs on
both). ``engine.store: postgresql://USER@HOST:PORT/DB`` chooses it."""

from .callbacks import PgCallbackStore
from .db import Database, PgWatch
from .outbox import PgOutbox
from .people import PgAuditLog, PgUserStore
from .tasks import PgTaskStore
from .texts import PgTextStore

__all__ = ["Database", "PgAuditLog", "PgCallbackStore", "PgOutbox", "PgTaskStore",
           "PgTextStore", "PgUserStore", "PgWatch"]
