"""Deciding an inbound call, whatever happens: screening with a defined answer on failure.

:meth:`Gate.decide` refreshes the lists and screens the caller. It never
raises: a list that cannot be read is served from its last good copy (and
reported once, in one sentence naming the list and its directory, until it is
mended); any other fault while deciding gives the ``screening.on_error``
answer: ``allow`` (the hotline stays reachable) or ``reject`` (503), and the
decision says that it failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from callflow import Notice
from screening import Action, Decision, ListSet, normalize
from sip_config import LoadedConfig

__all__ = ["Gate", "ListMended", "ListUnreadable"]

log = logging.getLogger("engine.screening")

ON_ERROR_STATUS = 503  # screening.on_error: reject


@dataclass(frozen=True)
class ListUnreadable(Notice):
    KIND: ClassVar[str] = "list_unreadable"
    list: str
    error: str


@dataclass(frozen=True)
class ListMended(Notice):
    KIND: ClassVar[str] = "list_mended"
    list: str


class Gate:
    def __init__(self, loaded: LoadedConfig, notice: Callable[[Notice], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.config = loaded.config.screening
        self.lists = ListSet(loaded, lenient=True)
        self.screener = self.lists.screener()
        self._notice = notice
        self._reported: dict[str, str] = {}

    def reconfigure(self, loaded: LoadedConfig) -> None:
        """A reloaded configuration: its rules and lists, for the next call."""
        self.config = loaded.config.screening
        self.lists = ListSet(loaded, lenient=True)
        self.screener = self.lists.screener()

    @property
    def problems(self) -> dict[str, str]:
        return self.lists.problems

    def check_lists(self) -> None:
        """Refresh every list; say once when one becomes unreadable, and when it is mended."""
        self.lists.refresh()
        problems = self.lists.problems
        for name, error in problems.items():
            if self._reported.get(name) != error:
                log.error("list %s cannot be read; calls are screened with its last good copy: %s",
                          name, error)
                self._notice(ListUnreadable("", name, error))
        for name in set(self._reported) - set(problems):
            log.info("list %s can be read again", name)
            self._notice(ListMended("", name))
        self._reported = dict(problems)

    def decide(self, caller: str) -> tuple[Decision, str]:
        """The decision, and "" or the sentence saying why no decision could be made."""
        try:
            self.check_lists()
            return self.screener.decide(caller, self.clock()), ""
        except Exception as exc:
            log.exception("screening of a call failed")
            return self.undecided(caller, exc), f"{type(exc).__name__}: {exc}"

    def undecided(self, caller: str, error: BaseException) -> Decision:
        reason = f"no decision could be made ({type(error).__name__})"
        if self.config.on_error == "reject":
            return Decision(Action.REJECT, "error", reason, normalize(caller), ON_ERROR_STATUS)
        return Decision(Action.ALLOW, "error", reason, normalize(caller))
