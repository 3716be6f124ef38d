"""The console as a web application: its routes, and how it is served.

:func:`make_app` builds the Starlette application around a :class:`~console.state.Console`
(what every page uses); :func:`serve` runs it with uvicorn until SIGTERM, SIGINT or, when the
engine started it, the engine going away (its standard input closes). Started by the engine,
it runs at a lower CPU priority (:data:`NICE`): when the machine is busy, the calls come
first and a report waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from settings import Settings

from .pages import routes
from .state import Console
from .web import SecurityHeaders

__all__ = ["Console", "make_app", "serve"]

log = logging.getLogger("console")

STATIC = Path(__file__).resolve().parent / "static"
NICE = 19
"""How much lower than the engine's the console's CPU priority is when ``run`` starts it."""


def make_app(console: Console, extra: list[BaseRoute] | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(console.live.run())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = Starlette(routes=[*routes(), *(extra or []),
                            Mount("/static", StaticFiles(directory=STATIC), name="static")],
                    middleware=[Middleware(SecurityHeaders)], lifespan=lifespan,
                    max_body_size=64 * 1024 * 1024)
    app.state.console = console
    return app


def serve(settings: Settings, *, supervised: bool = False) -> int:
    """Serve the console until stopped; ``supervised``: also stop when standard input closes
    (the engine that started it went away)."""
    config = settings.loaded.config.console
    assert config is not None
    console = Console(settings)
    app = make_app(console)
    options: dict[str, object] = {}
    if config.tls_cert and config.tls_key:
        options = {"ssl_certfile": str(settings.loaded.resolve(config.tls_cert)),
                   "ssl_keyfile": str(settings.loaded.resolve(config.tls_key)),
                   "ssl_version": ssl.PROTOCOL_TLS_SERVER}
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level="warning", access_log=False,
        proxy_headers=False, server_header=False, date_header=True, timeout_graceful_shutdown=2,
        **options))  # type: ignore[arg-type]
    if supervised:
        # beside the engine, a page or a report gives way to the calls for the CPU
        with contextlib.suppress(OSError):
            os.nice(NICE)

        def watch_stdin() -> None:
            for _ in sys.stdin:
                pass
            server.should_exit = True  # the engine is gone

        threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
    scheme = "https" if options else "http"
    log.info("console on %s://%s:%d/ (%s)", scheme, config.host, config.port, config.language)
    try:
        server.run()
    finally:
        console.close()
    return 0 if server.started else 1
