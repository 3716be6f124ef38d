"""check-config: the example is valid; each broken file gets its line, key and problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sip_config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "sip_config" / "dialer.yaml"

BASE = """\
engine:
  data_dir: var
sip:
  trunk:
    uri: sip:127.0.0.1:5070
screening:
  lists:
    - name: fraud
      file: fraud.txt
      action: reject
dialer:
  ring_timeout_s: 30
hotline:
  operator_hours: "08:00-22:00"
"""

# (name, yaml text, expected line, expected key path, a phrase of the message)
BROKEN = [
    ("wrong type", BASE.replace("ring_timeout_s: 30", "ring_timeout_s: soon"),
     12, "dialer.ring_timeout_s", "valid number"),
    ("unknown key with suggestion", BASE.replace("ring_timeout_s: 30", "ring_timout_s: 30"),
     12, "dialer.ring_timout_s", "did you mean 'ring_timeout_s'"),
    ("unknown section", BASE + "dailer:\n  max_attempts: 3\n",
     15, "dailer", "did you mean 'dialer'"),
    ("negative interval", BASE.replace("ring_timeout_s: 30", "retry:\n    busy_s: -5"),
     13, "dialer.retry.busy_s", "greater than 0"),
    ("hours out of range", BASE.replace("08:00-22:00", "25:00-08:00"),
     14, "hotline.operator_hours", "25:00"),
    ("hours without dash", BASE.replace("08:00-22:00", "8am to 10pm"),
     14, "hotline.operator_hours", "time window"),
    ("bad SIP URI", BASE.replace("uri: sip:127.0.0.1:5070", "uri: http://127.0.0.1:5070"),
     5, "sip.trunk.uri", "not a SIP URI"),
    ("SIP port out of range", BASE.replace("uri: sip:127.0.0.1:5070", "uri: sip:127.0.0.1:99999"),
     5, "sip.trunk.uri", "outside 1-65535"),
    ("missing list file", BASE.replace("file: fraud.txt", "file: nowhere.txt"),
     9, "screening.lists[0].file", "no such file"),
    ("password in clear", BASE.replace("    uri: sip:127.0.0.1:5070", "    uri: sip:127.0.0.1:5070\n    password: hunter2"),
     6, "sip.trunk.password", "password_env"),
    ("duplicate list names", BASE.replace("dialer:", "    - name: fraud\n      action: tag\ndialer:"),
     11, "screening.lists[1].name", "already used"),
    ("YAML syntax error", BASE.replace("  data_dir: var", "  data_dir: [var"),
     3, "(yaml)", "YAML syntax error"),
    ("empty file", "", 1, "(file)", "empty"),
    ("only comments", "# nothing here\n", 1, "(file)", "no settings"),
    ("not a mapping", "- engine\n- sip\n", 1, "(file)", "mapping"),
    ("unknown action", BASE.replace("action: reject", "action: block"),
     10, "screening.lists[0].action", "'reject'"),
    ("bad time zone", BASE.replace("  data_dir: var", "  data_dir: var\n  timezone: Mars/Olympus"),
     3, "engine.timezone", "unknown time zone"),
    ("duplicate key", BASE.replace("  data_dir: var", "  data_dir: var\n  data_dir: other"),
     3, "engine.data_dir", "given twice"),
    ("escalation after the last attempt", BASE.replace("ring_timeout_s: 30", "max_attempts: 2\n  escalate_after_attempts: 5"),
     13, "dialer.escalate_after_attempts", "more than dialer.max_attempts"),
    ("ack digit is the officer digit", BASE.replace("ring_timeout_s: 30", "ack_digit: '0'"),
     12, "dialer.ack_digit", "duty officer"),
    ("bad allowed source", BASE.replace("sip:\n", "sip:\n  allowed_sources: [10.0.0.300/8]\n"),
     4, "sip.allowed_sources[0]", "not an address"),
    ("status on a non-reject list", BASE.replace("action: reject", "action: tag\n      status: 486"),
     11, "screening.lists[0].status", "only used with action: reject"),
    ("mqtt url", BASE + "mqtt:\n  url: tcp://broker\n", 16, "mqtt.url", "pattern"),
    ("store not PostgreSQL", BASE.replace("  data_dir: var", "  data_dir: var\n  store: mysql://db/afc"),
     3, "engine.store", "postgresql://"),
    ("store URL with a password", BASE.replace("  data_dir: var", "  data_dir: var\n  store: postgresql://afc:hunter2@db/afc"),
     3, "engine.store", "store_password_env"),
    ("lease too short", BASE.replace("  data_dir: var", "  data_dir: var\n  lease_s: 1"),
     3, "engine.lease_s", "greater than or equal to 3"),
    ("workers not a number", BASE.replace("  data_dir: var", "  data_dir: var\n  workers: many"),
     3, "engine.workers", "valid integer"),
]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "fraud.txt").write_text("13800137490\n")
    path = tmp_path / "dialer.yaml"
    path.write_text(text)
    return path


def test_example_is_valid() -> None:
    loaded = load_config(EXAMPLE)
    assert loaded.config.hotline.number == "961108"
    assert str(loaded.config.hotline.operator_hours) == "08:00-22:00"


def test_base_of_the_table_is_valid(tmp_path: Path) -> None:
    load_config(write(tmp_path, BASE))


@pytest.mark.parametrize(("text", "line", "key", "phrase"),
                         [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_config(tmp_path: Path, text: str, line: int, key: str, phrase: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    rendered = [str(p) for p in caught.value.problems]
    assert any(r.startswith(f"{path}:{line}: {key}: ") and phrase in r for r in rendered), rendered


def test_every_error_is_reported_not_only_the_first(tmp_path: Path) -> None:
    text = BASE.replace("ring_timeout_s: 30", "ring_timeout_s: -1\n  max_attempts: 0")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert {p.path for p in caught.value.problems} == {"dialer.ring_timeout_s", "dialer.max_attempts"}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.yaml")


def test_hours_wrap_past_midnight() -> None:
    from datetime import time

    from sip_config.schema import parse_hours

    night = parse_hours("22:00-08:00")
    assert night.contains(time(23, 30)) and night.contains(time(7, 59))
    assert not night.contains(time(8, 0)) and not night.contains(time(12, 0))
    day = parse_hours("08:00-22:00")
    assert day.contains(time(8, 0)) and not day.contains(time(22, 0))


def test_config_objects_are_frozen() -> None:
    from pydantic import ValidationError

    config = load_config(EXAMPLE).config
    with pytest.raises(ValidationError):
        config.dialer.max_attempts = 99  # type: ignore[misc]


def test_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, textwrap.dedent(BASE)))
    assert loaded.data_dir == tmp_path / "var"
