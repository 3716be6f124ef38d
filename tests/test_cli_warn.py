"""``warn``, ``tasks``, ``task show`` and ``demo`` as operators run them: a process per command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dialerctl import cli, store_of
from workerproc import ROOT

from stores import open_stores


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "dialer.yaml"
    path.write_text("engine:\n  data_dir: var\n")
    return path


def test_warn_queues_a_task_with_no_engine_running_and_prints_its_id(config: Path) -> None:
    result = cli(config, "warn", "+86 138 0013 7490", "--fraud-type", "loan", "--case-id", "FZ-9",
                 "--note", "transfer of 30,000 seen at 21:40")
    task_id = result.stdout.strip()
    assert task_id.startswith("t") and len(result.stdout.splitlines()) == 1
    assert f"queued task {task_id} for 138****7490 (loan, risk high)" in result.stderr
    store = store_of(config)
    task = store.task(task_id)
    assert (task.number, task.case_ids, task.note) == ("8613800137490", ("FZ-9",),
                                                       "transfer of 30,000 seen at 21:40")
    store.close()


def test_a_second_request_for_the_number_merges_and_says_so(config: Path) -> None:
    first = cli(config, "warn", "13800137490", "--risk", "normal", "--case-id", "A").stdout.strip()
    second = cli(config, "warn", "138-0013-7490", "--risk", "high", "--case-id", "B")
    assert second.stdout.strip() == first
    assert "merged into task" in second.stderr and "cases A, B" in second.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["110"], "error: 110 is a short service number, not a person's phone"),
    (["13800137490", "--fraud-type", "lottery"], "error: 'lottery' is not a fraud type"),
    (["+44 20 7946 0958"], "is a foreign number (+44)"),
    ([], "error: give one number to call"),
    (["cancel"], "error: write: warn cancel TASK_ID"),
    (["cancel", "t00000000"], "error: there is no task t00000000"),
])
def test_bad_requests_get_one_sentence(config: Path, args: list[str], message: str) -> None:
    result = cli(config, "warn", *args, check=False)
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_warn_file_accepts_good_rows_and_names_bad_lines(config: Path, tmp_path: Path) -> None:
    requests = tmp_path / "requests.csv"
    requests.write_text("number,fraud_type,risk,case_id\n13800137490,investment,high,C-1\n"
                        "garbage,general,high,C-2\n13900001111,general,normal,C-3\n"
                        "13800137490,loan,high,C-4\n")
    result = cli(config, "warn", "--file", str(requests), check=False)
    assert result.returncode == 1
    assert f"{requests}:3: 'garbage' is not a phone number" in result.stderr
    assert "3 requests accepted (2 queued, 1 merged, 0 already accepted), 1 refused" in result.stderr
    assert len(result.stdout.splitlines()) == 3
    tasks = [json.loads(line) for line in cli(config, "tasks", "--json").stdout.splitlines()]
    assert sorted(t["number"] for t in tasks) == ["138****7490", "139****1111"]
    assert next(t for t in tasks if t["number"] == "138****7490")["case_ids"] == ["C-1", "C-4"]


def test_cancel_then_tasks_by_state_and_task_show(config: Path) -> None:
    task_id = cli(config, "warn", "13800137490").stdout.strip()
    assert "cancelled task" in cli(config, "warn", "cancel", task_id, "--reason", "reached").stdout
    assert cli(config, "tasks", "--json", "--state", "open").stdout == ""
    [row] = [json.loads(line) for line in cli(config, "tasks", "--json", "--state", "cancelled")
             .stdout.splitlines()]
    assert (row["task_id"], row["state"], row["reason"]) == (task_id, "cancelled", "reached")
    shown = json.loads(cli(config, "task", "show", task_id, "--json").stdout)
    assert shown["history"] == [] and shown["number"] == "138****7490"
    table = cli(config, "tasks").stdout
    assert task_id in table and "138****7490" in table and "13800137490" not in table


def test_demo_runs_to_its_final_table(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), "demo", "--dir",
                             str(tmp_path / "demo"), "--timeout", "150"], capture_output=True,
                            text=True, timeout=240, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = result.stdout[result.stdout.index("outcomes"):]
    assert table.count("│ yes         │") == 8
    for outcome in ("acknowledged", "failed", "transferred"):
        assert outcome in table
    # the carrier that says busy and 空号 in early media: cancelled at once, and said so
    assert "the network said: the busy announcement" in result.stdout
    assert "the network said: the invalid announcement" in result.stdout
    assert "(cancelled, not 30 s later)" in result.stdout
    assert "carrier's" in table and "the digit 1" in table  # how each outcome was known
    assert "warning text delivered" in result.stdout  # beside the calls, to the carrier's phones
    store = open_stores(tmp_path / "demo" / "var").texts
    warnings = [m for m in store.between(0, 1e12) if m.kind == "warning"]
    store.close()
    assert warnings and all(m.state == "sent" and m.status == 200 for m in warnings)
