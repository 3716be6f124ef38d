"""What a new ``dialer.yaml`` changes, and when each change can take effect (pure).

:func:`changes` compares two validated configurations key by key (a list is one value) and
says of every key that differs whether the running engine applies it at once (``now``:
hours, menus, the catalog, retry policy, screening, the trunk's limits, MQTT, the
console…), whether it needs new softphone worker processes (``workers``: what each worker
was started with, and how many there are; ``drain-workers`` replaces them one at a time),
or whether it waits for the next start (``restart``: where the engine listens, its data,
its store). The most specific rule wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .schema import Config

__all__ = ["RULES", "Change", "Effect", "changes", "effect_of"]

Effect = Literal["now", "workers", "restart"]

RULES: tuple[tuple[str, Effect], ...] = (
    ("engine.data_dir", "restart"),
    ("engine.media_dir", "restart"),
    ("engine.store", "restart"),
    ("engine.store_password_env", "restart"),
    ("engine.node", "restart"),
    ("engine.workers", "workers"),  # drain-workers starts, replaces or stops them
    ("engine.timezone", "restart"),
    ("engine.metrics_host", "restart"),
    ("engine.metrics_port", "restart"),
    ("engine.lease_s", "restart"),
    ("engine.log_level", "now"),
    ("engine.drain_s", "now"),
    ("sip.listen", "restart"),
    ("sip.balancer", "restart"),
    ("sip.allowed_sources", "workers"),
    ("sip.media_timeout_s", "workers"),
    ("sip.max_call_s", "workers"),
    ("sip.transaction_timeout_s", "workers"),
    ("sip.new_calls_per_worker_s", "workers"),
    ("sip.trunk.username", "workers"),
    ("sip.trunk.password_env", "workers"),
    ("sip.trunk.registrar", "workers"),
    ("sip.trunk", "now"),  # uri, caller_id, max_channels, max_cps: the next call
    ("screening", "now"),
    ("dialer", "now"),
    ("hotline", "now"),
    ("sms", "now"),
    ("mqtt", "now"),
    ("console", "now"),  # its process is started again with the new settings
)

_WHY: dict[Effect, str] = {
    "now": "applied now",
    "workers": "needs new worker processes: run_dialer.py drain-workers replaces them one at a "
               "time without dropping a call",
    "restart": "takes effect at the next start (set once when the engine starts)",
}


def effect_of(key: str) -> Effect:
    """The effect of a change to ``key`` (a dotted path): the most specific rule's."""
    best: tuple[int, Effect] = (-1, "restart")  # a key no rule knows: the safe answer
    for prefix, effect in RULES:
        if (key == prefix or key.startswith(prefix + ".")) and len(prefix) > best[0]:
            best = (len(prefix), effect)
    return best[1]


@dataclass(frozen=True)
class Change:
    key: str
    effect: Effect
    before: Any
    after: Any

    def sentence(self) -> str:
        return f"{self.key}: {_WHY[self.effect]}"


def changes(old: Config, new: Config) -> list[Change]:
    """Every key whose value differs, in the file's order, with its effect."""
    out: list[Change] = []
    _walk(old.model_dump(mode="json"), new.model_dump(mode="json"), "", out)
    return out


def _walk(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            _walk(a.get(key), b.get(key), f"{path}.{key}" if path else key, out)
        return
    if a != b:
        if isinstance(a, dict) or isinstance(b, dict):  # a section added or removed
            section = path
            out.append(Change(section, effect_of(section), a, b))
            return
        out.append(Change(path, effect_of(path), a, b))
