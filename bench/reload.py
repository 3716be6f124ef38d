"""Live changes benchmark: reload time and the engine's longest loop pause; drain-workers.

    python bench/reload.py [--reloads 20] [--hold-s 30]

1. **Reload of the shipped configuration** (``sip_config/dialer.yaml``, on free loopback
   ports, its voice menu answering): four SIPp callers talk in the voice menu while
   ``run_dialer.py reload`` is run ``--reloads`` times, each with a real change
   (``dialer.retry.busy_cap_s`` one way, then back). Figures: the engine's own time from
   the signal to the new configuration in force (p50, max), the command's wall time, and
   the longest pause of the engine's event loop during each reload (the engine measures
   it: a 2 ms sleep, again and again, and how late it came back). Target < 20 ms: no RTP
   or digit handling delayed.
2. **drain-workers on 4 workers each holding 4 calls** of about ``--hold-s`` seconds (SIPp
   callers sending speech through the Kamailio front, 16 calls, the most 4 workers hold;
   each call in the voice menu until the caller's BYE): the command's total
   time, the calls dropped (SIPp's failed calls, and calls the engine ended itself),
   every worker's pid before and after. Target: 0 dropped.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from enginectl import EngineProcess, free_port_run, hours, read_events, wait_events
from workerproc import Sipp

console = Console(width=None if sys.stdout.isatty() else 150)
SHIPPED = ROOT / "sip_config" / "dialer.yaml"


def shipped_config(work: Path, workers: int = 1) -> Path:
    """The shipped example on free ports, its data in ``work/var``, the voice menu answering
    (operator hours that do not hold the present moment). For a load generator that is one
    caller: loopback exempt from the flood ban and the per-caller rate rule raised (it sends
    16 INVITEs at once from one number), and the shipped voice menu with a 60 s wait for a
    digit (its callers only listen)."""
    work.mkdir(parents=True, exist_ok=True)
    menus = (ROOT / "hotline" / "menus.yaml").read_text(encoding="utf-8")
    (work / "menus.yaml").write_text(menus.replace("timeout_s: 10", "timeout_s: 60", 1),
                                     encoding="utf-8")
    text = SHIPPED.read_text(encoding="utf-8")
    sip_port = free_port_run(workers + 1)
    rtp_port = free_port_run(workers * 2, step=100, even=True)
    replacements = {
        "data_dir: ../var": "data_dir: var",
        "workers: 1 ": f"workers: {workers} ",
        "port: 5060 ": f"port: {sip_port} ",
        "rtp_port: 40000": f"rtp_port: {rtp_port}",
        "flood_exempt: []": "flood_exempt: [127.0.0.1/32]",
        "file: lists/": f"file: {SHIPPED.parent}/lists/",
        'operator_hours: "08:00-22:00"': f'operator_hours: "{hours(inside_now=False)}"',
        "max_calls: 5\n": "max_calls: 1000\n",
        "hotline:": "hotline:\n  menus: menus.yaml",
    }
    for old, new in replacements.items():
        if old not in text:
            raise SystemExit(f"the shipped configuration has no {old!r} any more: update the bench")
        text = text.replace(old, new, -1 if old.startswith("file:") else 1)
    path = work / "dialer.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, check=True)


def status(config: Path) -> dict:
    return json.loads(cli(config, "status", "--json").stdout)


def wait_screened(config: Path, n: int, timeout: float = 20.0) -> None:
    if len(wait_events(config, lambda e: e["event"] == "screened", timeout, count=n)) < n:
        raise SystemExit(f"{n} calls did not reach the engine in {timeout:g} s")


def bench_reloads(work: Path, reloads: int) -> dict[str, float]:
    config = shipped_config(work / "reload")
    engine = EngineProcess(config)
    callers = None
    try:
        callers = Sipp("uac_speech_through_balancer.xml", config.parent, "-s", "961108",
                       "-key", "talk_loops", str(reloads + 10), "-l", "4", "-r", "4",
                       remote=engine.target, calls=4, timeout_s=reloads * 8 + 120)
        wait_screened(config, 4)
        took, wall, pauses = [], [], []
        for i in range(reloads):
            text = config.read_text(encoding="utf-8")
            old, new = ("busy_cap_s: 16", "busy_cap_s: 17") if i % 2 == 0 else \
                ("busy_cap_s: 17", "busy_cap_s: 16")
            config.write_text(text.replace(old, new), encoding="utf-8")
            started = time.perf_counter()
            said = cli(config, "reload").stdout
            wall.append(time.perf_counter() - started)
            if "dialer.retry.busy_cap_s" not in said:
                raise SystemExit(f"the reload did not apply the change: {said}")
            result = status(config)["engine"]["reload"]
            took.append(result["took_s"])
            pauses.append(result["loop_pause_ms"])
        calls_up = sum(w["calls"] for w in status(config)["engine"]["workers"])
    finally:
        if callers is not None:
            callers.kill()
        engine.stop()
    return {"reloads": reloads, "took_p50_ms": statistics.median(took) * 1000,
            "took_max_ms": max(took) * 1000, "wall_p50_ms": statistics.median(wall) * 1000,
            "pause_p50_ms": statistics.median(pauses), "pause_max_ms": max(pauses),
            "calls_up": calls_up}


def bench_drain(work: Path, hold_s: int) -> dict[str, object]:
    config = shipped_config(work / "drain", workers=4)
    engine = EngineProcess(config)
    try:
        calls = Sipp("uac_speech_through_balancer.xml", config.parent, "-s", "961108",
                     "-key", "talk_loops", str(talk_loops(hold_s)), "-l", "16", "-r", "16",
                     remote=engine.target, calls=16, timeout_s=hold_s * 3 + 60)
        wait_screened(config, 16)
        per_worker: dict[str, int] = {}
        for event in read_events(config):
            if event["event"] == "screened":
                per_worker[event["worker"]] = per_worker.get(event["worker"], 0) + 1
        started = time.perf_counter()
        out = cli(config, "drain-workers", "--timeout", str(hold_s * 3 + 60)).stdout
        total_s = time.perf_counter() - started
        sipp_code = calls.wait()
        failed = _failed_calls(calls.out_path) if sipp_code != 0 else 0
    finally:
        engine.stop()
    ended = [e for e in read_events(config) if e["event"] == "ended"]
    ended_here = sum(e["by"] != "remote" for e in ended)
    pids = re.findall(r"^(w\d+): pid (\d+) → (\d+)$", out, re.MULTILINE)
    return {"per_worker": per_worker, "total_s": total_s, "sipp_failed": failed,
            "ended_here": ended_here, "ended": len(ended), "replaced": len(pids),
            "pids_changed": all(before != after for _, before, after in pids)}


def talk_loops(hold_s: float) -> int:
    """How many times the 7.1 s speech pcap is sent for a call of about ``hold_s``."""
    return max(1, round(hold_s / 7.1))


def _failed_calls(out: Path) -> int:
    found = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out.read_text(errors="replace"))
    return int(found[-1]) if found else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--hold-s", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        work = Path(tmp)
        console.print(f"[bold]1. reload of the shipped configuration[/] ({args.reloads} reloads, "
                      "4 callers in the voice menu)")
        r = bench_reloads(work, args.reloads)
        table = Table("figure", "value", "target")
        table.add_row("reload, signal → new configuration in force (engine) p50 / max",
                      f"{r['took_p50_ms']:.0f} / {r['took_max_ms']:.0f} ms", "")
        table.add_row("run_dialer.py reload, wall time p50 (a new Python process)",
                      f"{r['wall_p50_ms']:.0f} ms", "")
        table.add_row("longest pause of the engine's event loop, p50 / max of the reloads",
                      f"{r['pause_p50_ms']:.1f} / {r['pause_max_ms']:.1f} ms", "< 20 ms")
        table.add_row("voice-menu calls still up after the reloads", f"{r['calls_up']} of 4", "4")
        console.print(table)
        console.print(f"[bold]2. drain-workers[/] (4 workers × 4 calls of "
                      f"{talk_loops(args.hold_s) * 7.1:.1f} s with speech, through the front)")
        d = bench_drain(work, args.hold_s)
        table = Table("figure", "value", "target")
        table.add_row("calls on each worker before", ", ".join(
            f"{name} {n}" for name, n in d["per_worker"].items()), "4 each")  # type: ignore[attr-defined]
        table.add_row("drain-workers total time", f"{d['total_s']:.1f} s", "")
        table.add_row("calls dropped (SIPp failed + ended by the engine)",
                      f"{d['sipp_failed']} + {d['ended_here']} of {d['ended']}", "0")
        table.add_row("workers replaced, every pid changed",
                      f"{d['replaced']}, {'yes' if d['pids_changed'] else 'NO'}", "4, yes")
        console.print(table)


if __name__ == "__main__":
    main()
