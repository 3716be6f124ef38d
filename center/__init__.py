"""The anti-fraud center's records as people act on them and read them.

:class:`Center` is the one way in for every change (a warning request, a cancel, a reply to
a text, a callback answered, a list edited), whoever asks: the command line, the MQTT bus,
the console, the engine. :class:`Views` are the typed, paged reads every reader shares.
"""

from .actions import Center, Invalid, ListEdit
from .actor import ENGINE, Actor
from .views import (
    EngineSnapshot,
    HistoryEntry,
    Page,
    StatusView,
    TaskDetail,
    Views,
    attempt_record,
    read_events,
    task_record,
)

__all__ = ["ENGINE", "Actor", "Center", "EngineSnapshot", "HistoryEntry", "Invalid", "ListEdit",
           "Page", "StatusView", "TaskDetail", "Views", "attempt_record", "read_events",
           "task_record"]
