"""The MQTT bus: a plug-in at the edge of the engine (see :mod:`bus.bus`)."""

from .bus import Bus, BusError, Counters
from .messages import BadMessage, ListUpdate

__all__ = ["BadMessage", "Bus", "BusError", "Counters", "ListUpdate"]
