"""What a new configuration changes, and when each change can take effect: a table of keys,
every key of the schema covered by a rule, and the diff of two real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sip_config import load_config
from sip_config.changes import RULES, changes, effect_of
from sip_config.schema import Config

ROOT = Path(__file__).resolve().parent.parent

TABLE = [
    ("engine.data_dir", "restart"), ("engine.store", "restart"), ("engine.node", "restart"),
    ("engine.workers", "workers"), ("engine.timezone", "restart"),
    ("engine.store_password_env", "restart"), ("engine.media_dir", "restart"),
    ("engine.metrics_port", "restart"), ("engine.lease_s", "restart"),
    ("engine.log_level", "now"),
    ("sip.listen.port", "restart"), ("sip.listen.host", "restart"),
    ("sip.listen.rtp_port", "restart"), ("sip.balancer.algorithm", "restart"),
    ("sip.balancer", "restart"),
    ("sip.allowed_sources", "workers"), ("sip.media_timeout_s", "workers"),
    ("sip.max_call_s", "workers"), ("sip.transaction_timeout_s", "workers"),
    ("sip.new_calls_per_worker_s", "workers"), ("sip.trunk.username", "workers"),
    ("sip.trunk.password_env", "workers"), ("sip.trunk.registrar", "workers"),
    ("sip.trunk.max_channels", "now"), ("sip.trunk.max_cps", "now"), ("sip.trunk.uri", "now"),
    ("sip.trunk.caller_id", "now"),
    ("screening.lists", "now"), ("screening.rate.max_calls", "now"),
    ("dialer.retry.busy_s", "now"), ("dialer.catalog", "now"), ("dialer.texts.every_s", "now"),
    ("hotline.operator_hours", "now"), ("hotline.operators", "now"), ("hotline.menus", "now"),
    ("hotline.holidays", "now"), ("sms.reply_hours", "now"),
    ("mqtt", "now"), ("mqtt.url", "now"), ("console", "now"), ("console.language", "now"),
    ("console.port", "now"),
    ("nonsense.key", "restart"),  # a key no rule knows: the safe answer
]


@pytest.mark.parametrize(("key", "effect"), TABLE)
def test_the_effect_of_each_key(key: str, effect: str) -> None:
    assert effect_of(key) == effect


def _leaves(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [k for key, v in value.items()
                for k in _leaves(v, f"{path}.{key}" if path else key)]
    return [path]


def test_every_key_of_the_schema_has_a_rule() -> None:
    full = Config.model_validate({"mqtt": {"url": "mqtt://127.0.0.1:1883"},
                                  "console": {"port": 8080}, "sms": {"number": "121100130"},
                                  "sip": {"balancer": {}}})
    keys = _leaves(full.model_dump(mode="json"))
    assert len(keys) > 100
    prefixes = [prefix for prefix, _ in RULES]
    unruled = [k for k in keys
               if not any(k == p or k.startswith(p + ".") for p in prefixes)]
    assert unruled == []


def test_the_diff_of_two_configurations() -> None:
    old = load_config(ROOT / "sip_config" / "dialer.yaml").config
    changed = old.model_dump(mode="json")
    changed["hotline"]["operator_hours"] = "07:00-23:00"
    changed["engine"]["workers"] = 2
    changed["sip"]["trunk"]["max_channels"] = 20
    changed["sip"]["media_timeout_s"] = 15
    changed["console"] = {"port": 8080}
    for removed in ("host", "port"):  # keys kept only to say they are gone
        changed["sip"]["balancer"].pop(removed)
    new = Config.model_validate(changed)
    found = [(c.key, c.effect, c.before, c.after) for c in changes(old, new)]
    assert found == [
        ("engine.workers", "workers", 1, 2),
        ("sip.trunk.max_channels", "now", 30, 20),
        ("sip.media_timeout_s", "workers", 10.0, 15.0),
        ("hotline.operator_hours.start", "now", "08:00:00", "07:00:00"),
        ("hotline.operator_hours.end", "now", "22:00:00", "23:00:00"),
        ("console", "now", None, new.console.model_dump(mode="json") if new.console else None),
    ]
    assert changes(old, old) == []
    assert changes(old, new)[0].sentence() == (
        "engine.workers: needs new worker processes: run_dialer.py drain-workers replaces them "
        "one at a time without dropping a call")
