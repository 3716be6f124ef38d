"""The configured lists on disk, and the :class:`Screener` built from the config.

Each ``screening.lists`` entry has a store in ``<data_dir>/lists/<name>/``. Its
``file`` (if any) is imported when the store has not seen that file at its
current size and modification time; live edits (``blocklist add|remove``,
MQTT ``blocklist/update``) go to the store's journal and survive both restarts
and later imports of the same file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

from sip_config import LoadedConfig
from sip_config.schema import ScreeningConfig, VerdictConfig

from .decide import Action, NumberList, PrefixRule, RateRule, Rules, Screener, Verdict
from .fileparse import ParseResult, parse_file
from .store import NumberStore, StoreError

__all__ = ["ImportReport", "ListSet", "source_signature"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportReport:
    list_name: str
    file: Path
    parsed: ParseResult
    added: int
    seconds: float


def source_signature(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class ListSet:
    """The stores of every configured list, by name."""

    def __init__(self, loaded: LoadedConfig, lenient: bool = False) -> None:
        """``lenient`` (the engine): a list that cannot be read is served from its last good
        copy (or empty) and reported in :attr:`problems`, instead of raising."""
        self.loaded = loaded
        self.screening: ScreeningConfig = loaded.config.screening
        root = loaded.data_dir / "lists"
        self.stores = {lst.name: NumberStore(root / lst.name, lenient=lenient)
                       for lst in self.screening.lists}
        self.lenient = lenient

    def name_of(self, name: str | None) -> str:
        """The list meant by ``name``; without a name, the first ``reject`` list."""
        if name is None:
            for lst in self.screening.lists:
                if lst.action == "reject":
                    return lst.name
            raise KeyError("screening.lists has no list with action: reject")
        if name not in self.stores:
            known = ", ".join(self.stores) or "none configured"
            raise KeyError(f"there is no list named {name!r} in screening.lists (lists: {known})")
        return name

    def store(self, name: str | None) -> NumberStore:
        return self.stores[self.name_of(name)]

    def stale_sources(self) -> list[tuple[str, Path]]:
        """Configured list files the stores have not imported at their current version."""
        stale = []
        for lst in self.screening.lists:
            if lst.file is None:
                continue
            path = self.loaded.resolve(lst.file)
            signature = source_signature(path)
            if self.stores[lst.name].sources.get(str(signature["path"])) != signature:
                stale.append((lst.name, path))
        return stale

    def sync_sources(self, progress: Callable[[str, Path], Progress | None] | None = None) -> list[ImportReport]:
        """Import every configured list file that changed since the last import."""
        return [
            self.import_file(name, path, progress(name, path) if progress else None)
            for name, path in self.stale_sources()
        ]

    def parse_file(self, path: Path, progress: Progress | None = None) -> ParseResult:
        return parse_file(path, self.screening.country, progress)

    def import_file(self, name: str | None, path: Path, progress: Progress | None = None,
                    replace: bool = False) -> ImportReport:
        name = self.name_of(name)
        store = self.stores[name]
        started = time.perf_counter()
        parsed = self.parse_file(path, progress)
        signature = source_signature(path)
        before = len(store)
        if replace:
            store.replace(parsed.keys, signature)
        else:
            store.merge(parsed.keys, signature)
        added = len(store) - before
        return ImportReport(name, path, parsed, added, time.perf_counter() - started)

    def refresh(self) -> None:
        for store in self.stores.values():
            try:
                store.refresh()
            except StoreError:
                if not self.lenient:
                    raise

    @property
    def problems(self) -> dict[str, str]:
        """List name → why it cannot be read now (it is served from its last good copy)."""
        return {name: store.error for name, store in self.stores.items() if store.error}

    def screener(self) -> Screener:
        return Screener(build_rules(self.screening, self.stores))


def build_rules(screening: ScreeningConfig, stores: dict[str, NumberStore]) -> Rules:
    return Rules(
        home_country_code=phonenumbers.country_code_for_region(screening.country),
        region=screening.country,
        lists=tuple(
            NumberList(lst.name, Action(lst.action), stores[lst.name], lst.status, lst.reason)
            for lst in screening.lists
        ),
        prefixes=tuple(
            PrefixRule(p.prefix, Action(p.action), p.status, p.reason) for p in screening.prefixes
        ),
        official_numbers=frozenset(screening.official_numbers),
        spoof=_verdict(screening.spoof),
        overseas=_verdict(screening.overseas) if screening.overseas else None,
        anonymous=_verdict(screening.anonymous),
        invalid=_verdict(screening.invalid),
        rate=RateRule(
            screening.rate.max_calls,
            screening.rate.window_s,
            screening.rate.block_s,
            Action(screening.rate.action),
            screening.rate.status,
        )
        if screening.rate
        else None,
    )


def _verdict(config: VerdictConfig) -> Verdict:
    return Verdict(Action(config.action), config.status, config.reason)
