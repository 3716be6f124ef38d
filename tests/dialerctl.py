"""Test-side handles on the warning dialer: a config with short prompts, requests by the
command line as operators make them, and the task store read directly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from enginectl import write_config
from workerproc import ROOT

from dialer import REQUIRED_TYPES, Attempt, Task
from stores import TaskStore, open_stores

FAST_RETRIES = ("{busy_s: 1, busy_growth: 1.0, busy_cap_s: 1, rang_out_s: 1, no_answer_s: 1, "
                "unacknowledged_s: 2, machine_s: 120, trunk_s: 1, trunk_cap_s: 2, jitter: 0}")


def short_catalog(directory: Path) -> Path:
    """Every contract type with a warning of about two seconds, so calls end quickly."""
    types = "".join(f"  {t}:\n    name: {t}\n    warning: 请注意，这是反诈测试。\n" for t in REQUIRED_TYPES)
    path = directory / "short-warnings.yaml"
    path.write_text(
        "types:\n" + types + "messages:\n"
        "  intro: 您好。\n  keys: 请按{ack}。\n  thanks: 谢谢。\n  goodbye: 再见。\n"
        "  machine: 这里是{center}，请回电{callback}。\n  connecting: 请稍候。\n"
        "  officer_unreachable: 请继续听。\n", encoding="utf-8")
    return path


def dialer_config(directory: Path, trunk: str, *, workers: int = 1, max_channels: int = 30,
                  max_cps: float = 50, ring_timeout_s: float = 8, max_attempts: int = 10,
                  escalate_after: int = 3, retries: str = FAST_RETRIES, short_prompts: bool = True,
                  extra: str = "", texts: str = "{enabled: false}") -> Path:
    """``texts``: ``dialer.texts`` (off by default: a SIPp victim scenario takes INVITEs only)."""
    path = write_config(directory, workers=workers, trunk=f"sip:{trunk}", max_channels=max_channels,
                        max_cps=max_cps)
    catalog = short_catalog(directory) if short_prompts else None
    text = path.read_text().replace("dialer:\n  ring_timeout_s: 10\n", f"""\
dialer:
  ring_timeout_s: {ring_timeout_s}
  retry: {retries}
  max_attempts: {max_attempts}
  escalate_after_attempts: {escalate_after}
  repeats: 2
  ack_wait_s: 4
{f"  catalog: {catalog.name}" if catalog else ""}
  texts: {texts}
{extra}""")
    path.write_text(text)
    return path


def cli(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), *args, "-c", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{args}: exit {result.returncode}: {result.stderr}")
    return result


def warn(config: Path, number: str, *args: str) -> str:
    return cli(config, "warn", number, *args).stdout.strip()


def store_of(config: Path) -> TaskStore:
    """The task store of a test's config (another connection: close it)."""
    return open_stores(config.parent / "var").tasks


def attempts_of(config: Path, task_id: str) -> list[Attempt]:
    """A task's attempts, read from the store as it is now."""
    store = store_of(config)
    try:
        return store.attempts(task_id)
    finally:
        store.close()


def wait_tasks(config: Path, task_ids: list[str], done: Any = None, timeout: float = 60) -> list[Task]:
    """Until every task satisfies ``done`` (default: it is final)."""
    done = done or (lambda t: not t.state.open)
    store = store_of(config)
    deadline = time.monotonic() + timeout
    try:
        while True:
            tasks = [store.task(t) for t in task_ids]
            if all(done(t) for t in tasks):
                return tasks
            if time.monotonic() > deadline:
                raise AssertionError(f"tasks not done in {timeout} s: {tasks}")
            time.sleep(0.1)
    finally:
        store.close()
