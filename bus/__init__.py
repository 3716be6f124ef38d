"""The MQTT bus: a plug-in at the edge of the engine (see :mod:`bus.bus`)."""

from .bus import Bus, BusError, Counters
from .messages import BadMessage, ListUpdate
from .outbox import Outbox, OutboxError

__all__ = ["BadMessage", "Bus", "BusError", "Counters", "ListUpdate", "Outbox", "OutboxError"]
