"""``run``: the engine, until SIGINT or SIGTERM; and ``prompts build``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
import time
from typing import Any

from rich.console import Console

import audio
from settings import Settings, load_settings
from stores import StoreError

from .errors import CommandError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="run the engine (the default command)")
    run.set_defaults(handler=run_engine, takes_settings=True)
    prompts = sub.add_parser("prompts", help="voice prompts")
    ops = prompts.add_subparsers(dest="op", metavar="OP", required=True)
    build = ops.add_parser("build", parents=[common], help="make every missing prompt WAV from its text")
    build.add_argument("--force", action="store_true", help="make them all again")
    build.set_defaults(handler=build_prompts, takes_settings=True)


def run_engine(args: argparse.Namespace, settings: Settings) -> int:
    from engine import Engine  # the engine pulls in more than the other commands need
    from ops.observer import ErrorLog, Observer
    from ops.reload import Reloader

    loaded = settings.loaded
    logging.basicConfig(level=loaded.config.engine.log_level.upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    errors = ErrorLog()  # the last warnings and errors, for ``status``
    logging.getLogger().addHandler(errors)

    def make_bus(engine: Any, loaded: Any) -> Any:
        from bus import Bus

        return Bus(engine, loaded)

    def make_console(loaded: Any) -> Any:
        from console.child import ConsoleProcess
        from engine.workers import RESTART_BACKOFF_S

        return ConsoleProcess(loaded.path, loaded.data_dir / "logs" / "console.log",
                              RESTART_BACKOFF_S)

    async def serve() -> None:
        try:
            engine = Engine(settings)
        except StoreError as exc:
            raise CommandError(str(exc)) from None
        bus = None
        if loaded.config.mqtt is not None:  # subscribed before the engine says anything
            from bus import Bus, BusError

            try:
                bus = Bus(engine, loaded)
            except (BusError, StoreError) as exc:
                raise CommandError(str(exc)) from None
        observer = Observer(engine, bus, errors)
        console = None
        if loaded.config.console is not None:
            from console.child import ConsoleProcess
            from engine.workers import RESTART_BACKOFF_S

            console = ConsoleProcess(loaded.path, loaded.data_dir / "logs" / "console.log",
                                     RESTART_BACKOFF_S)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reloader = Reloader(engine, observer, bus, console, make_bus, make_console)
        reloads: set[asyncio.Task[Any]] = set()

        def reload() -> None:  # SIGHUP, as daemons do: read the configuration again
            task = loop.create_task(reloader.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)

        async def graceful() -> None:  # stop --graceful: calls finish, then the stop
            from ops.reload import REQUEST_FILE, asker_of
            engine.start_draining(asker_of(engine.loaded.data_dir / REQUEST_FILE))
            deadline = loop.time() + engine.config.engine.drain_s
            while engine.calls_left() and loop.time() < deadline:
                await asyncio.sleep(0.2)
            if engine.calls_left():
                logging.getLogger("engine").warning(
                    "engine.drain_s (%g s) is over: stopping with %d calls in progress",
                    engine.config.engine.drain_s, engine.calls_left())
            stop.set()

        async def drain_workers() -> None:  # drain-workers: new processes, one at a time
            from engine.core import pool_specs
            from ops.reload import REQUEST_FILE, asker_of, off_the_loop
            try:
                fresh = await off_the_loop(load_settings, engine.loaded.path)
                specs = pool_specs(fresh.loaded)
                await engine.drain_workers(specs, asker_of(engine.loaded.data_dir /
                                                           REQUEST_FILE), fresh.loaded)
                reloader.workers_replaced(fresh)
                reloader.tell()
            except Exception as exc:  # noqa: BLE001 - said, and the engine goes on
                logging.getLogger("engine").error("drain-workers failed: %s", exc)
                engine.worker_drain = {"at": time.time(), "result": "failed", "error": str(exc)}

        def start(job: Any) -> None:
            task = loop.create_task(job())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGUSR1, lambda: start(graceful))
        loop.add_signal_handler(signal.SIGUSR2, lambda: start(drain_workers))
        try:
            await engine.start()
            if bus is not None:
                bus.start()
            observer.start()
            if console is not None:
                console.start()
            # what the start loaded (rules, lists, catalogs, phone-number metadata) stays for
            # the engine's life: out of the collector's sight, a full collection is a
            # fraction of a millisecond, not 20-30 ms of a held event loop (bench/reload.py)
            gc.collect()
            gc.freeze()
        except (RuntimeError, audio.PromptError) as exc:
            await engine.stop()
            if bus is not None:
                await bus.stop()
            raise CommandError(str(exc)) from None
        listen, web = loaded.config.sip.listen, loaded.config.console
        logging.getLogger("engine").info(
            "engine running: %d workers from sip:%s:%d, hotline %s%s%s; Ctrl-C stops it",
            len(engine.pool.workers), listen.host, listen.port, loaded.config.hotline.number,
            f", MQTT {loaded.config.mqtt.url}" if loaded.config.mqtt else "",
            f", console on {'https' if web.tls_cert else 'http'}://{web.host}:{web.port}/"
            if web else "")
        await stop.wait()
        logging.getLogger("engine").info("stopping")
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            loop.remove_signal_handler(sig)
        for task in list(reloads):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        bus, console = reloader.bus, reloader.console  # a reload may have replaced them
        if console is not None:
            await console.stop()
        await engine.stop()
        if bus is not None:
            await bus.stop()
        await observer.stop()

    asyncio.run(serve())
    return 0


def build_prompts(args: argparse.Namespace, settings: Settings) -> int:
    """Make every missing or changed prompt (built-in, voice menus, warnings), with a bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from engine.prompt_sets import prompt_dir, prompt_sets

    directory = prompt_dir(settings.loaded)
    sets = prompt_sets(settings)
    total = sum(len(prompts) for _, prompts, _ in sets)
    todo = sum(len(audio.stale_prompts(directory, prompts, args.force)) for _, prompts, _ in sets)
    started = time.perf_counter()
    made = 0
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                  disable=todo == 0) as progress:
        bar = progress.add_task("making voice prompts", total=todo)
        for what, prompts, rate in sets:
            progress.update(bar, description=f"making {what} prompts")
            try:
                written = audio.build(directory, prompts, force=args.force, rate=rate,
                                      progress=lambda *_: progress.advance(bar))
            except audio.PromptError as exc:
                raise CommandError(str(exc)) from None
            made += len(written)
    print(f"{total} prompts in {directory}: {made} made, {total - made} already up to date "
          f"({time.perf_counter() - started:.1f} s)")
    return 0
