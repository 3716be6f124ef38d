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
from .policy import History, Plan, Policy, history_of
from .requests import RequestError, Risk, RowError, WarningRequest, parse_csv, validate

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
    "Stage",
    "Task",
    "TaskEvent",
    "TaskState",
    "WarningCall",
    "WarningRequest",
    "WarningScript",
    "history_of",
    "known_by",
    "load_catalog",
    "outcome_of_heard",
    "outcome_of_status",
    "parse_csv",
    "validate",
]
