"""``callbacks``, ``hotline stats`` and the voice menus in ``check-config``, as operators run them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from dialerctl import cli

from hotline import DEFAULT_MENUS
from stores import open_stores


def config_at(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "dialer.yaml"
    path.write_text("engine:\n  data_dir: var\n" + extra)
    return path


def test_callbacks_are_listed_masked_and_marked_done(tmp_path: Path) -> None:
    config = config_at(tmp_path)
    store = open_stores(tmp_path / "var").callbacks
    left = store.add("13800137490", time.time(), str(tmp_path / "m.wav"), 12.5, "main>3>message")
    store.close()
    table = cli(config, "callbacks").stdout
    assert "138****7490" in table and "13800137490" not in table and "1 waiting" in table
    assert "marked answered" in cli(config, "callbacks", "done", left.id, "--note", "called back").stdout
    [row] = [json.loads(line) for line in cli(config, "callbacks", "--json").stdout.splitlines()]
    assert (row["state"], row["note"], row["number"]) == ("done", "called back", "138****7490")
    again = cli(config, "callbacks", "done", left.id, check=False)
    assert again.returncode == 1 and "already marked answered" in again.stderr


def test_hotline_stats_from_the_event_file(tmp_path: Path) -> None:
    config = config_at(tmp_path)
    (tmp_path / "var").mkdir()
    events = [
        {"at": "2026-12-01T23:05:00+08:00", "event": "screened", "call": "a", "route": "ivr"},
        {"at": "2026-12-01T23:05:00+08:00", "event": "ivr", "call": "a"},
        {"at": "2026-12-01T23:05:30+08:00", "event": "ivr_prompt", "call": "a", "prompt": "t",
         "fraud_type": "investment", "path": "main>1>categories>4>cat_invest>1"},
        {"at": "2026-12-01T23:20:00+08:00", "event": "screened", "call": "b", "route": "ivr"},
        {"at": "2026-12-01T23:20:00+08:00", "event": "ivr", "call": "b"},
        {"at": "2026-12-01T23:20:03+08:00", "event": "ivr_ended", "call": "b", "path": "main",
         "by": "remote", "how": "hung_up"},
        {"at": "2026-12-02T10:00:00+08:00", "event": "screened", "call": "c", "route": "operator"},
        {"at": "2026-12-02T10:00:01+08:00", "event": "queued", "call": "c", "ahead": 0},
        {"at": "2026-12-02T10:00:09+08:00", "event": "operator_answered", "call": "c"},
        {"at": "2026-12-02T10:30:00+08:00", "event": "screened", "call": "d", "route": "reject"},
    ]
    (tmp_path / "var" / "events.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in events) + "not an event\n")
    figures = json.loads(cli(config, "hotline", "stats", "--json").stdout)
    assert figures["calls"] == 4 and figures["abandoned"] == 1
    assert figures["by_hour"] == {"10:00": 2, "23:00": 2}
    assert figures["by_route"] == {"operator": 1, "waited in the queue": 1,
                                   "queue gave up (voice menu)": 0, "voice menu": 2,
                                   "message left": 0, "refused by screening": 1}
    assert figures["fraud_types_asked"] == {"investment": 1}
    later = json.loads(cli(config, "hotline", "stats", "--json", "--since", "2026-12-02").stdout)
    assert later["calls"] == 2


def test_check_config_rejects_a_menu_that_names_a_missing_prompt(tmp_path: Path) -> None:
    menus = tmp_path / "menus.yaml"
    text = DEFAULT_MENUS.read_text(encoding="utf-8")
    menus.write_text(text.replace("greeting_long: cat_invest_long", "greeting_long: cat_invest_longer"),
                     encoding="utf-8")
    config = config_at(tmp_path, "hotline:\n  menus: menus.yaml\n")
    result = cli(config, "check-config", check=False)
    assert result.returncode == 2
    line = next(i for i, ln in enumerate(menus.read_text().splitlines(), 1) if "cat_invest_longer" in ln)
    assert result.stderr.strip() == (f"{menus}:{line}: menus.cat_invest.greeting_long: "
                                     "there is no prompt 'cat_invest_longer'")


def test_check_config_rejects_a_menu_no_path_reaches(tmp_path: Path) -> None:
    menus = tmp_path / "menus.yaml"
    text = DEFAULT_MENUS.read_text(encoding="utf-8")
    menus.write_text(text.replace('"4": {menu: cat_invest}', '"4": {say: six_rules}'), encoding="utf-8")
    result = cli(config_at(tmp_path, "hotline:\n  menus: menus.yaml\n"), "check-config", check=False)
    assert result.returncode == 2
    assert "menus.cat_invest: no path from the 'main' menu reaches this menu" in result.stderr
