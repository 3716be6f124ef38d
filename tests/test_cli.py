"""The command line, run as an operator runs it: a subprocess per command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORMS = ["13800137490", "+86 138 0013 7490", "008613800137490", "8613800137490", "138-0013-7490"]


def run(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    (tmp_path / "fraud.txt").write_text("# case 2026-0412\n17000001111\n")
    (tmp_path / "allow.txt").write_text("96110\n")
    path = tmp_path / "dialer.yaml"
    path.write_text(
        "engine:\n  data_dir: var\n"
        "screening:\n  lists:\n"
        "    - {name: fraud, file: fraud.txt, action: reject}\n"
        "    - {name: trusted, file: allow.txt, action: allow}\n"
    )
    return path


def test_check_config_accepts_the_example() -> None:
    result = run("check-config", config=ROOT / "sip_config" / "dialer.yaml")
    assert result.returncode == 0, result.stderr


def test_check_config_rejects_with_file_line_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dialer:\n  max_attempts: -1\n")
    result = run("check-config", config=bad)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{bad}:2: dialer.max_attempts: input should be greater than or equal to 1 (got -1)"
    ]
    assert "Traceback" not in result.stderr


def test_every_form_of_a_blocklisted_number_gets_the_same_decision(config: Path) -> None:
    added = run("blocklist", "add", "+86 138 0013 7490", config=config)
    assert added.returncode == 0, added.stderr
    for form in FORMS:
        result = run("screen", form, "--json", config=config)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {
            "action": "reject", "status": 603, "rule": "list:fraud", "reason": "on list fraud",
            "number": "138****7490", "kind": "e164",
        }, form


def test_list_file_is_imported_and_live_edits_survive(config: Path) -> None:
    assert "list:fraud" in run("screen", "170-0000-1111", config=config).stdout
    assert run("blocklist", "remove", "17000001111", config=config).returncode == 0
    assert "default" in run("screen", "17000001111", config=config).stdout
    assert "list:trusted" in run("screen", "96110", config=config).stdout


def test_import_reports_malformed_lines(config: Path, tmp_path: Path) -> None:
    source = tmp_path / "national.csv"
    source.write_text("number,case\n13900001111,a\nnot a number,b\n+8613900002222,c\n12345678901234567890,d\n")
    result = run("blocklist", "import", str(source), config=config)
    assert result.returncode == 0, result.stderr
    assert "5 lines, 2 distinct numbers, 2 new, 2 malformed" in result.stdout
    assert f"{source}:3: not a phone number: 'not a number'" in result.stderr
    assert f"{source}:5: not a phone number: '12345678901234567890'" in result.stderr
    assert "list:fraud" in run("screen", "13900002222", config=config).stdout


def test_bad_input_gets_one_sentence(config: Path, tmp_path: Path) -> None:
    result = run("blocklist", "add", "call-me", config=config)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: 'call-me' is not a phone number; it was not added"
    missing = run("blocklist", "import", str(tmp_path / "absent.txt"), config=config)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    unknown = run("blocklist", "add", "13800137490", "--list", "nope", config=config)
    assert unknown.returncode == 1 and "no list named 'nope'" in unknown.stderr
    assert "Traceback" not in result.stderr + missing.stderr + unknown.stderr


def test_screen_masks_numbers(config: Path) -> None:
    result = run("screen", "13812345678", config=config)
    assert "138****5678" in result.stdout and "13812345678" not in result.stdout


def test_config_option_before_or_after_the_subcommand(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dialer: [\n")
    for args in (["-c", str(bad), "check-config"], ["check-config", "-c", str(bad)]):
        result = subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), *args],
                                capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
        assert result.returncode == 2 and str(bad) in result.stderr, args
