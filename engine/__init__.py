"""The engine: screening, hotline routing and warning calls over softphone workers."""

from .clock import Clock, FakeClock, SystemClock
from .core import CallScreened, Engine, EngineStarted, FlowFailed, SourceRefused, worker_specs
from .dialing import Dialing, TaskNotice
from .lock import DataDirLock, EngineRunning
from .trunk import AlreadyCalling, Pacer, dial_uri, trunk_target
from .workers import LOST, Worker, WorkerPool, WorkerSpec

__all__ = [
    "LOST",
    "AlreadyCalling",
    "CallScreened",
    "Clock",
    "DataDirLock",
    "Dialing",
    "Engine",
    "EngineRunning",
    "EngineStarted",
    "FakeClock",
    "FlowFailed",
    "Pacer",
    "SourceRefused",
    "SystemClock",
    "TaskNotice",
    "Worker",
    "WorkerPool",
    "WorkerSpec",
    "dial_uri",
    "trunk_target",
    "worker_specs",
]
