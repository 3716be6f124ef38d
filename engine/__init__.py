"""The engine: screening, hotline routing and outbound calls over softphone workers."""

from .core import AlreadyCalling, Engine, OutboundCall, worker_specs
from .hotline import InboundCall, Notice, Prompts, Route, route_for
from .trunk import Pacer, dial_uri, trunk_target
from .workers import LOST, Worker, WorkerPool, WorkerSpec

__all__ = [
    "LOST",
    "AlreadyCalling",
    "Engine",
    "InboundCall",
    "Notice",
    "OutboundCall",
    "Pacer",
    "Prompts",
    "Route",
    "Worker",
    "WorkerPool",
    "WorkerSpec",
    "dial_uri",
    "route_for",
    "trunk_target",
    "worker_specs",
]
