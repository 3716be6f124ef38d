"""What every page of the console uses: the stores (its own connections), the
:class:`~center.Center` every change goes through, the :class:`~center.Views` every page
reads, the sessions, the live watcher, the templates."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from center import Center, Views
from settings import Settings
from stores import open_stores

from .auth import Sessions
from .live import Live

__all__ = ["STATUS_FILE", "TEMPLATES", "Console"]

STATUS_FILE = "status.json"
TEMPLATES = Path(__file__).resolve().parent / "templates"


class Console:
    def __init__(self, settings: Settings) -> None:
        loaded = settings.loaded
        config = loaded.config.console
        assert config is not None, "the console needs a console section"
        self.settings = settings
        self.loaded = loaded
        self.config = config
        self.language = config.language
        self.tz = ZoneInfo(loaded.config.engine.timezone)
        self.data_dir = loaded.data_dir
        self.stores = open_stores(loaded)
        self.center = Center(loaded, settings.catalog, self.stores)
        self.views = Views(self.stores, loaded.data_dir)
        self.sessions = Sessions(self.stores.users, self.center, config.session_idle_s)
        self.live = Live(self.stores, loaded.data_dir / STATUS_FILE)
        self.env = Environment(loader=FileSystemLoader(TEMPLATES),
                               autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True)
        self.secure = config.tls_cert is not None

    def close(self) -> None:
        self.stores.close()
