"""A new configuration for a running engine, without dropping a call: ``run_dialer.py reload``
or ``SIGHUP``.

:meth:`Reloader.reload` reads ``dialer.yaml`` and every file it names again and checks them
exactly as ``check-config`` does (in a thread: the event loop that carries the calls never
waits for the files); builds the new voice prompts beside the old ones (a prompt that is
playing finishes with its old audio); then applies everything that can change live in one
step on the loop (:meth:`engine.Engine.reconfigure`), reconnects the MQTT bus only if its
connection settings changed, and starts the console again with its new settings (its
sessions are in the store: nobody is signed out). What needs new workers or a new start
keeps its old value, one sentence per key, shown by ``status``. A file with a problem
changes nothing: the same ``FILE:LINE: key: problem`` lines as ``check-config``, in the log
and in ``status``.

Who asked is read from ``<data_dir>/reload.request`` when the command wrote it just before
its signal (``cli:<login>``), else ``signal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import audio
from engine.core import EngineEvent
from settings import Settings, load_settings
from sip_config import ConfigError
from sip_config.changes import Change, changes
from sip_config.schema import Config

if TYPE_CHECKING:
    from bus import Bus
    from console.child import ConsoleProcess
    from engine import Engine
    from ops.observer import Observer

__all__ = ["REQUEST_FILE", "LoopWatch", "Reloaded", "Reloader", "asker_of", "keep_old",
           "off_the_loop"]

log = logging.getLogger("engine.reload")
T = TypeVar("T")

REQUEST_FILE = "reload.request"
REQUEST_FRESH_S = 60.0
MQTT_CONNECTION = ("url", "client_id", "username", "password_env", "ca_file", "keepalive_s",
                   "topic_prefix")


@dataclass(frozen=True)
class Reloaded(EngineEvent):
    """The configuration was read again: applied, or refused."""

    KIND: ClassVar[str] = "reload"
    result: str  # applied, refused
    applied: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def asker_of(path: Path) -> str:
    """Who asked, as the command wrote it just before its signal; else ``signal``."""
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
        if time.time() - float(request["at"]) < REQUEST_FRESH_S:
            return str(request["by"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return "signal"


def keep_old(old: Config, new: Config, kept: Sequence[Change]) -> Config:
    """``new`` with the keys of ``kept`` at their old values (what cannot change live)."""
    config = new
    for change in kept:
        config = _set(config, change.key.split("."), _get(old, change.key.split(".")))
    return config


def _get(model: Any, path: list[str]) -> Any:
    for key in path:
        model = getattr(model, key)
    return model


def _set(model: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return model.model_copy(update={path[0]: value})
    inner = getattr(model, path[0])
    return model.model_copy(update={path[0]: _set(inner, path[1:], value)})


SWITCH_S = 0.0005
"""The GIL's switch interval while a reload reads its files in a thread (Python's default is
5 ms): the loop that carries the calls gets the interpreter back within half a millisecond,
not after 5 ms each time it wakes (measured: 24 ms pauses with the default)."""


async def off_the_loop(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a thread, the event loop kept responsive meanwhile."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, SWITCH_S))
    try:
        return await asyncio.to_thread(function, *args)
    finally:
        sys.setswitchinterval(before)


class LoopWatch:
    """The longest the event loop was held while this runs: a short sleep, again and again,
    and how late it came back (a reload must never delay a call's digits or prompts)."""

    TICK_S = 0.002

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._watch(), name="loop-watch")
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.sleep(self.TICK_S * 2)  # what the last step held up is seen too
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.TICK_S)
            self.worst = max(self.worst, loop.time() - before - self.TICK_S)


class Reloader:
    def __init__(self, engine: Engine, observer: Observer, bus: Bus | None,
                 console: ConsoleProcess | None,
                 make_bus: Callable[[Engine, Any], Bus],
                 make_console: Callable[[Any], ConsoleProcess]) -> None:
        self.engine = engine
        self.observer = observer
        self.bus = bus
        self.console = console
        self.make_bus = make_bus
        self.make_console = make_console
        self._lock = asyncio.Lock()

    def asker(self) -> str:
        return asker_of(self.engine.loaded.data_dir / REQUEST_FILE)

    async def reload(self, by: str | None = None) -> dict[str, Any]:
        async with self._lock:
            return await self._reload(by or self.asker())

    async def _reload(self, by: str) -> dict[str, Any]:
        async with LoopWatch() as watch:
            result = await self._read_and_apply(by)
        result["loop_pause_ms"] = round(watch.worst * 1000, 1)
        self.engine.last_reload = result  # status and the reload command read it from here
        self.tell()
        return result

    def tell(self) -> None:
        """The status file written now, not at its next turn: the command waiting for the
        answer reads it there."""
        try:
            self.observer.write(running=True)
        except Exception:  # the status view must never stop the engine
            log.exception("writing the status after a reload")

    async def _read_and_apply(self, by: str) -> dict[str, Any]:
        engine = self.engine
        started = time.time()
        path = engine.loaded.path
        try:
            settings = await off_the_loop(load_settings, path)
            await off_the_loop(build_prompts, engine.prompt_dir, settings)
        except ConfigError as exc:
            return self._refused(by, started, [str(problem) for problem in exc.problems])
        except audio.PromptError as exc:
            return self._refused(by, started, [f"{path}: voice prompts: {exc}"])
        old = engine.settings
        found = changes(old.loaded.config, settings.loaded.config)
        later = [c for c in found if c.effect != "now"]
        config = keep_old(old.loaded.config, settings.loaded.config, later)
        applied = replace(settings, loaded=replace(settings.loaded, config=config))
        engine.reconfigure(applied, by)  # one step: no await between old and new
        await self._bus(old, applied)
        await self._console(old, applied)
        now_keys = [c.key for c in found if c.effect == "now"]
        waiting = [c.sentence() for c in later]
        result: dict[str, Any] = {"at": started, "result": "applied", "by": by,
                                  "applied": now_keys, "waiting": waiting, "problems": [],
                                  "took_s": round(time.time() - started, 3)}
        for sentence in waiting:
            log.warning("reload: %s", sentence)
        log.info("configuration reloaded by %s in %.2f s: %d changes applied%s", by,
                 result["took_s"], len(now_keys),
                 f", {len(later)} waiting" if later else "")
        engine.notice(Reloaded("", by, "applied", now_keys, waiting))
        return result

    def _refused(self, by: str, started: float, problems: list[str]) -> dict[str, Any]:
        for line in problems:
            log.error("reload refused: %s", line)
        log.error("reload asked by %s refused: the engine keeps its configuration", by)
        result: dict[str, Any] = {"at": started, "result": "refused", "by": by, "applied": [],
                                  "waiting": [], "problems": problems,
                                  "took_s": round(time.time() - started, 3)}
        self.engine.notice(Reloaded("", by, "refused", problems=problems))
        return result

    def workers_replaced(self, fresh: Settings) -> list[str]:
        """After ``drain-workers``: the worker settings of ``fresh`` (what each worker was
        started with, and how many) are the engine's now, and ``status`` no longer names them
        as waiting. Returns their keys."""
        engine = self.engine
        found = [c for c in changes(engine.config, fresh.loaded.config) if c.effect == "workers"]
        if not found:
            return []
        config = keep_old(fresh.loaded.config, engine.config, found)  # fresh values, those keys
        engine.settings = replace(engine.settings, loaded=replace(engine.loaded, config=config))
        engine.loaded, engine.config = engine.settings.loaded, config
        keys = [c.key for c in found]
        if engine.last_reload:
            engine.last_reload["waiting"] = [
                s for s in engine.last_reload["waiting"] if s.split(":", 1)[0] not in keys]
        return keys

    async def _bus(self, old: Settings, new: Settings) -> None:
        before, after = old.loaded.config.mqtt, new.loaded.config.mqtt
        if before == after:
            return
        connection = (before is None or after is None or any(
            getattr(before, key) != getattr(after, key) for key in MQTT_CONNECTION))
        if not connection and self.bus is not None and after is not None:
            self.bus.config = after  # the same connection: its other settings at once
            self.bus.full = after.full_numbers
            return
        if self.bus is not None:
            await self.bus.stop()
            self.bus = None
        if after is not None:
            self.bus = self.make_bus(self.engine, new.loaded)
            self.bus.start()
        self.observer.bus = self.bus

    async def _console(self, old: Settings, new: Settings) -> None:
        if self.console is not None:
            await self.console.stop()  # its sessions are in the store: nobody signs in again
            self.console = None
        if new.loaded.config.console is not None:
            self.console = self.make_console(new.loaded)
            self.console.start()


def build_prompts(directory: Path, settings: Settings) -> None:
    """Every prompt the new settings name, made beside the old ones before anything changes."""
    from engine.prompt_sets import prompt_sets

    for _, prompts, rate in prompt_sets(settings):
        audio.build(directory, prompts, rate=rate)
