"""Reading ``dialer.yaml`` and the files it names, together; every problem of each is kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dialer.catalog import Catalog, CatalogError, load_catalog
from hotline.menus import DEFAULT_MENUS, MenuBook, MenuError, load_menus
from sip_config import Config, ConfigError, LoadedConfig, read_config
from texts.words import TextBook, TextBookError, load_text_book
from yamlfile import Problem

__all__ = ["Settings", "load_settings", "settings_for"]


@dataclass(frozen=True)
class Settings:
    """The configuration and the files it names, read and checked."""

    loaded: LoadedConfig
    """``dialer.yaml`` and where it lies (its paths are relative to it)."""
    catalog: Catalog
    """The warning catalog: ``dialer.catalog``, or the shipped ``dialer/warnings.yaml``."""
    menus: MenuBook
    """The hotline's voice menus: ``hotline.menus``, or the shipped ``hotline/menus.yaml``."""
    book: TextBook
    """The SMS line's replies and advice: the ``texts:`` section of the menus file (the
    shipped one's when that file has none)."""

    @property
    def config(self) -> Config:
        return self.loaded.config

    @property
    def path(self) -> Path:
        """The config file."""
        return self.loaded.path

    @property
    def data_dir(self) -> Path:
        return self.loaded.data_dir


def load_settings(path: Path) -> Settings:
    """Read the config file at ``path`` and the files it names; raises
    :class:`~sip_config.ConfigError` with every problem of every file."""
    loaded, problems = read_config(path)
    if loaded is None:
        raise ConfigError(problems)
    return _settings(loaded, problems)


def settings_for(loaded: LoadedConfig) -> Settings:
    """The settings of a config already read alone (:func:`sip_config.load_config`): the
    files it names read and checked; raises :class:`~sip_config.ConfigError`."""
    return _settings(loaded, [])


def _settings(loaded: LoadedConfig, own: list[Problem]) -> Settings:
    """``own``: the problems already found in ``dialer.yaml`` itself."""
    named: list[Problem] = []
    catalog = _catalog(loaded, named)
    menus = _menus(loaded, named)
    book = _book(loaded, named)
    # as check-config has always listed them: the named files' problems after those of
    # dialer.yaml's screening and dialer sections, before those of its sip and mqtt sections
    at = next((i for i, p in enumerate(own) if p.path.startswith(("sip.", "mqtt."))), len(own))
    problems = [*own[:at], *named, *own[at:]]
    if problems or catalog is None or menus is None or book is None:
        raise ConfigError(problems)
    return Settings(loaded, catalog, menus, book)


def _catalog(loaded: LoadedConfig, problems: list[Problem]) -> Catalog | None:
    """The warning catalog; its fault is a problem of ``dialer.catalog``."""
    name = loaded.config.dialer.catalog
    if name is not None and not loaded.resolve(name).is_file():
        problems.append(loaded.problem(("dialer", "catalog"),
                                       f"no such file: {loaded.resolve(name)}"))
        return None
    try:
        return load_catalog(loaded.resolve(name) if name else None)
    except CatalogError as exc:
        problems.append(loaded.problem(("dialer", "catalog"), str(exc)))
        return None


def _menus(loaded: LoadedConfig, problems: list[Problem]) -> MenuBook | None:
    """The voice menus; each problem names the menus file, its line and key."""
    name = loaded.config.hotline.menus
    try:
        return load_menus(loaded.resolve(name) if name else None)
    except MenuError as exc:
        problems.extend(exc.problems)
        return None


def _book(loaded: LoadedConfig, problems: list[Problem]) -> TextBook | None:
    """The text book of the menus file. With no SMS line (``sms:`` absent) nothing reads it
    and its problems are not the config's: the shipped book stands in for a broken one."""
    name = loaded.config.hotline.menus
    sources = [loaded.resolve(name) if name else DEFAULT_MENUS]
    if loaded.config.sms is None and sources[0] != DEFAULT_MENUS:
        sources.append(DEFAULT_MENUS)
    found: list[Problem] = []
    for source in sources:
        try:
            return load_text_book(source, DEFAULT_MENUS)
        except TextBookError as exc:
            found = found or exc.problems
    problems.extend(found)
    return None
