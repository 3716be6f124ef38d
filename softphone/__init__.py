"""Softphone worker processes: one pjsua2 Endpoint (at most 4 calls) per process.

The engine spawns ``python -m softphone.worker`` and speaks the JSON-lines
protocol of :mod:`softphone.protocol`, re-exported here. Importing this
package does not import pjsua2.
"""

from softphone.protocol import (
    Command,
    Event,
    ProtocolError,
    decode_command,
    decode_event,
    encode,
)

MAX_CALLS_PER_WORKER = 4
"""PJSUA_MAX_CALLS compiled into the pjsua2 wheel."""

__all__ = [
    "MAX_CALLS_PER_WORKER",
    "Command",
    "Event",
    "ProtocolError",
    "decode_command",
    "decode_event",
    "encode",
]
