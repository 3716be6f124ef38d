"""The warning dialer: requests, the task store, the retry policy and the warning call (pure).

``engine.dialing`` wires these to the softphone workers; nothing here does I/O
but the store.
"""

from .call import Stage, WarningCall, WarningScript
from .catalog import DEFAULT_CATALOG, REQUIRED_TYPES, Catalog, CatalogError, FraudType, load_catalog
from .model import (
    OPEN,
    Attempt,
    Outcome,
    Task,
    TaskEvent,
    TaskState,
    known_by,
    outcome_of_heard,
    outcome_of_status,
)
from .policy import History, Plan, Policy
from .requests import RequestError, Risk, RowError, WarningRequest, parse_csv, validate
from .store import SqliteTaskStore, StoreError, Submitted, TaskStore, open_store

__all__ = [
    "DEFAULT_CATALOG",
    "OPEN",
    "REQUIRED_TYPES",
    "Attempt",
    "Catalog",
    "CatalogError",
    "FraudType",
    "History",
    "Outcome",
    "Plan",
    "Policy",
    "RequestError",
    "Risk",
    "RowError",
    "SqliteTaskStore",
    "Stage",
    "StoreError",
    "Submitted",
    "Task",
    "TaskEvent",
    "TaskState",
    "TaskStore",
    "WarningCall",
    "WarningRequest",
    "WarningScript",
    "known_by",
    "load_catalog",
    "open_store",
    "outcome_of_heard",
    "outcome_of_status",
    "parse_csv",
    "validate",
]
