"""``status`` and ``report``: a running engine at a glance, and the center's figures.

``status`` reads what the engine writes every 2 s (``status.json``) and the
stores themselves, so it works without a broker and says plainly when no
engine is running. ``report`` reads the task store, the engine's event file
and the list of callbacks for a period.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from rich.console import Console
from rich.table import Table

from center import Actor, EngineSnapshot, Views
from center.report import Figures, Report, to_csv
from dialer import TaskState
from ops.observer import EVERY_S
from ops.reload import REQUEST_FILE
from settings import load_settings
from sip_config import DEFAULT_CONFIG, ConfigError, LoadedConfig, read_config
from stores import NodeInfo, open_stores

from .errors import CommandError
from .shown import duration


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    status = sub.add_parser("status", parents=[common], help="a running engine at a glance")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=status_command)
    report = sub.add_parser("report", parents=[common],
                            help="warnings and screened calls of a period, for the center's report")
    report.add_argument("--since", metavar="DATE", help="first day, YYYY-MM-DD (default: 30 days "
                                                         "ago)")
    report.add_argument("--until", metavar="DATE", help="last day, YYYY-MM-DD (default: today)")
    report.add_argument("--csv", type=Path, metavar="FILE", help="also write the figures as CSV")
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=report_command)
    nodes = sub.add_parser("nodes", parents=[common],
                           help="the engine nodes sharing the store (engine.store)")
    nodes.add_argument("--json", action="store_true")
    nodes.set_defaults(handler=nodes_command)
    reload = sub.add_parser("reload", parents=[common],
                            help="the running engine reads its configuration again (SIGHUP)")
    reload.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="how long to wait for the engine's answer (default 60)")
    reload.set_defaults(handler=reload_command, needs_config=False)
    stop = sub.add_parser("stop", parents=[common], help="stop the running engine")
    stop.add_argument("--graceful", action="store_true",
                      help="take no new call or task, let calls finish (engine.drain_s), then "
                           "stop; a plain stop afterwards stops at once")
    stop.add_argument("--timeout", type=float, default=None, metavar="S",
                      help="how long to wait for it to exit (default: engine.drain_s + 30)")
    stop.set_defaults(handler=stop_command)
    drain = sub.add_parser("drain-workers", parents=[common],
                           help="replace the workers one at a time without dropping a call")
    drain.add_argument("--timeout", type=float, default=3600.0, metavar="S")
    drain.set_defaults(handler=drain_workers_command)


# ------------------------------------------------------------------ status


def _ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    seconds = (now - datetime.fromisoformat(iso)).total_seconds()
    return duration(max(0.0, seconds)) + " ago"



def _local(iso: str | None, tz: ZoneInfo) -> str:
    return "-" if not iso else datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def status_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    stores = open_stores(loaded)
    try:
        view = Views(stores, loaded.data_dir).status(time.time(), EVERY_S, tz)
        cluster = stores.cluster.nodes() if stores.shared else None
    finally:
        stores.close()
    now = datetime.now(tz)
    status, counts, due, next_at = view.engine, view.tasks, view.tasks_due, view.next_due_at
    if args.json:
        print(json.dumps({"running": view.running, "engine": status.raw if status else None,
                          "tasks": {s.value: counts[s] for s in TaskState}, "tasks_due": due,
                          "callbacks_waiting": view.callbacks_waiting,
                          "texts_waiting": view.texts_waiting or 0,
                          "nodes": None if cluster is None else [_node_json(n) for n in cluster]},
                         ensure_ascii=False))
        return 0 if view.running else 3
    out: list[str] = []
    if view.running and status:
        out.append(f"engine      running, pid {status.pid}, since "
                   f"{_local(status.started_at, tz)} (updated {_ago(status.updated_at, now)})")
        workers = status.workers
        ready = sum(w.ready for w in workers)
        out.append(f"workers     {ready} of {len(workers)} ready: " + ", ".join(
            f"{w.name} {w.calls} call{'s' if w.calls != 1 else ''}"
            + ("" if w.ready else " (down)") for w in workers))
        out.append(f"calls       {status.calls} in progress; warning calls hold "
                   f"{status.trunk_in_use} of {status.trunk_channels} trunk channels")
        if status.front_running is not None:
            out.append(f"front       Kamailio {'running' if status.front_running else 'DOWN'}"
                       f", {status.front_restarts} restarts")
        problems = status.lists_unreadable
        out.append("lists       all readable" if not problems else "lists       " + "; ".join(
            f"{name} CANNOT BE READ (served from its last good copy): {why}"
            for name, why in problems.items()))
        mqtt = status.mqtt
        if mqtt is None:
            out.append("mqtt        not configured")
        else:
            state = "connected" if mqtt.connected else f"WAITING for the broker ({mqtt.last_error})"
            out.append(f"mqtt        {state} at {mqtt.url}; {mqtt.outbox} events in the outbox; "
                       f"{mqtt.stored} requests taken, {mqtt.refused} refused, "
                       f"{mqtt.published} published"
                       + (f", {mqtt.dropped} screening events DROPPED (outbox full)"
                          if mqtt.dropped else ""))
    else:
        seen = f" (last seen {_local(status.updated_at, tz)})" if status else ""
        out.append(f"engine      NOT RUNNING{seen}; requests are kept and dialled when it starts")
    draining = status.raw.get("draining") if view.running and status else None
    if draining:
        out.append(f"draining    {draining['calls_left']} calls left (a graceful stop since "
                   f"{_local(draining['since'], tz)}): no new call or task")
    reload = status.raw.get("reload") if view.running and status else None
    if reload:
        when = datetime.fromtimestamp(float(reload["at"]), tz).strftime("%Y-%m-%d %H:%M:%S")
        if reload["result"] == "refused":
            out.append(f"reload      REFUSED {when} (asked by {reload['by']}): the engine keeps "
                       "its configuration")
            out += [f"            {line}" for line in reload["problems"]]
        else:
            out.append(f"reload      applied {when} (asked by {reload['by']}): "
                       f"{len(reload['applied'])} changes")
            out += [f"            waiting: {sentence}" for sentence in reload["waiting"]]
    if cluster is not None:
        out += _node_lines(cluster, "nodes       ")
    open_counts = ", ".join(f"{counts[s]} {s.value}" for s in TaskState if s.open)
    when = "" if next_at is None or due else \
        f"; next at {datetime.fromtimestamp(next_at, tz).strftime('%H:%M:%S')}"
    out.append(f"tasks       {due} due now{when}; open: {open_counts}")
    out.append("            done: " + ", ".join(f"{counts[s]} {s.value}" for s in TaskState
                                                 if not s.open))
    waiting = view.callbacks_waiting
    out.append(f"hotline     {waiting} message{'s' if waiting != 1 else ''} waiting for a callback")
    texts = view.texts_waiting
    if texts is not None:
        out.append(f"sms         {texts} thread{'s' if texts != 1 else ''} "
                   f"waiting for an operator's reply (sms list --state waiting)")
    errors = status.last_errors if status else []
    if errors:
        out.append("last errors")
        for e in errors[-5:]:
            out.append(f"  {_local(e.at, tz)} {e.level:<7} {e.message}")
    print("\n".join(out))
    return 0 if view.running else 3


# ------------------------------------------------------------------ nodes


def _node_json(node: NodeInfo) -> dict[str, Any]:
    return {"node": node.name, "state": node.state, "lease_age_s": round(node.age_s, 1),
            "lease_s": node.lease_s, "generation": node.generation, **node.info}


def _node_lines(nodes: list[NodeInfo], first: str) -> list[str]:
    out = []
    for i, n in enumerate(nodes):
        lapsed = n.state == "alive" and n.age_s > n.lease_s
        state = "LEASE LAPSED" if lapsed else n.state
        info = n.info
        out.append(f"{first if i == 0 else ' ' * len(first)}{n.name:<12} {state:<12} lease "
                   f"{n.age_s:5.1f} s of {n.lease_s:g} s; {info.get('calls', 0)} calls "
                   f"({info.get('warning_calls', 0)} warning), workers "
                   f"{info.get('workers', 0)} of {info.get('of', 0)}, {info.get('sip', '')} on "
                   f"{info.get('host', '?')}")
    return out or [first + "none has joined yet"]


def nodes_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    stores = open_stores(loaded)
    try:
        if not stores.shared:
            raise CommandError("the store is this machine's own (no engine.store): one node, "
                               "shown by status")
        nodes = stores.cluster.nodes()
    finally:
        stores.close()
    if args.json:
        print(json.dumps([_node_json(n) for n in nodes], ensure_ascii=False))
    else:
        print("\n".join(_node_lines(nodes, "")))
    alive = [n for n in nodes if n.state == "alive" and n.age_s <= n.lease_s]
    return 0 if alive else 3


# ------------------------------------------------------------------ reload


def reload_command(args: argparse.Namespace, _: object) -> int:
    """Ask the running engine to read its configuration again, and say what it did. A file
    with a problem: the problems (as check-config says them), and the engine keeps what it
    has; it is asked anyway when it can be found, so that its log says so too."""
    path = Path(getattr(args, "config", DEFAULT_CONFIG))
    data_dir = _data_dir_of(path)
    if data_dir is None:  # not even YAML: no engine to find from it
        _, problems = read_config(path)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    snapshot = EngineSnapshot.read(data_dir)
    pid = snapshot.pid if snapshot is not None and snapshot.running else None
    if pid is None or not _alive(pid):
        try:
            load_settings(path)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 2
        print("the engine is not running: the configuration is valid and is read at its "
              "next start", file=sys.stderr)
        return 3
    asked = _ask(data_dir, pid, signal.SIGHUP)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = EngineSnapshot.read(data_dir)
        result = now.raw.get("reload") if now is not None else None
        # a reload that began after the signal read the files as they are now; one that
        # began before it (a refusal a moment ago) is not the answer to this request
        if result and float(result.get("at", 0)) >= asked:
            return _said(result)
    raise CommandError(f"the engine (pid {pid}) did not say within {args.timeout:g} s whether "
                       "it took the configuration; see its log")


def _data_dir_of(path: Path) -> Path | None:
    """The data directory a configuration file names, read even when the file has problems
    the engine would refuse (None: not a YAML mapping at all)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(raw, dict):
        return None
    engine = raw.get("engine")
    data = engine.get("data_dir", "var") if isinstance(engine, dict) else "var"
    data = Path(str(data)).expanduser()
    return data if data.is_absolute() else path.parent / data


def _running_pid(data_dir: Path) -> int:
    snapshot = EngineSnapshot.read(data_dir)
    pid = snapshot.pid if snapshot is not None and snapshot.running else None
    if pid is None or not _alive(pid):
        raise CommandError("the engine is not running")
    return pid


def _ask(data_dir: Path, pid: int, sig: signal.Signals) -> float:
    """Say who asks (the engine reads it when the signal comes), then send the signal."""
    asked = time.time()
    (data_dir / REQUEST_FILE).write_text(json.dumps({"by": str(Actor.cli()), "at": asked}),
                                         encoding="utf-8")
    os.kill(pid, sig)
    return asked


def stop_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    pid = _running_pid(loaded.data_dir)
    if args.graceful:
        _ask(loaded.data_dir, pid, signal.SIGUSR1)
    else:
        os.kill(pid, signal.SIGTERM)
    timeout = args.timeout if args.timeout is not None else \
        loaded.config.engine.drain_s + 30 if args.graceful else 30
    deadline = time.monotonic() + timeout
    said = -1
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
        now = EngineSnapshot.read(loaded.data_dir)
        draining = now.raw.get("draining") if now is not None else None
        if draining and draining["calls_left"] != said:
            said = draining["calls_left"]
            print(f"draining: {said} calls left", file=sys.stderr)
    if _alive(pid):
        raise CommandError(f"the engine (pid {pid}) is still running after {timeout:g} s; "
                           "`stop` without --graceful stops it at once")
    print(f"the engine (pid {pid}) stopped")
    return 0


def drain_workers_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    pid = _running_pid(loaded.data_dir)
    asked = _ask(loaded.data_dir, pid, signal.SIGUSR2)
    deadline = time.monotonic() + args.timeout
    said = ""
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = EngineSnapshot.read(loaded.data_dir)
        drain = now.raw.get("drain_workers") if now is not None else None
        if not drain or float(drain.get("at", 0)) < asked:  # an earlier drain is not this one
            continue
        if drain["result"] == "failed":
            raise CommandError(f"drain-workers failed: {drain['error']}")
        if drain["result"] == "done":
            counts = {"replaced": 0, "started": 0, "stopped": 0}
            for name, (before, after) in drain["pids"].items():
                if before is None:
                    print(f"{name}: started, pid {after}")
                    counts["started"] += 1
                elif after is None:
                    print(f"{name}: stopped, pid {before}")
                    counts["stopped"] += 1
                else:
                    print(f"{name}: pid {before} → {after}")
                    counts["replaced"] += 1
            done = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
            print(f"workers: {done} in {drain['took_s']:g} s, no call dropped")
            return 0
        line = f"draining {drain['worker']}: {drain['calls_left']} calls left"
        if line != said:
            said = line
            print(line, file=sys.stderr)
    raise CommandError(f"drain-workers did not finish within {args.timeout:g} s; see the "
                       "engine's log")


def _said(result: dict[str, Any]) -> int:
    if result["result"] == "refused":
        for line in result["problems"]:
            print(line, file=sys.stderr)
        print("refused: the engine keeps its configuration", file=sys.stderr)
        return 2
    applied = result["applied"]
    pause = result.get("loop_pause_ms")
    held = f" (calls held up at most {pause:g} ms)" if pause is not None else ""
    print(f"reloaded in {result['took_s']:.2f} s{held}: "
          + (f"{len(applied)} changes applied ({', '.join(applied)})" if applied
             else "no change to dialer.yaml (its files read again)"))
    for sentence in result["waiting"]:
        print(f"  {sentence}")
    return 0


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (an exited process its parent has not reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


# ------------------------------------------------------------------ report


def _day(text: str | None, default: date, what: str) -> date:
    if text is None:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{what} {text!r} is not a date; write it as YYYY-MM-DD") from None


def report_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    today = datetime.now(tz).date()
    first = _day(args.since, today - timedelta(days=29), "--since")
    last = _day(args.until, today, "--until")
    if last < first:
        raise CommandError(f"--until {last} is before --since {first}")
    since = datetime.combine(first, datetime.min.time(), tz).timestamp()
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).timestamp()
    data = loaded.data_dir
    stores = open_stores(loaded)
    report = Views(stores, data).report(since, until)
    stores.close()
    if args.csv:
        args.csv.write_text(to_csv(report), encoding="utf-8")
    if args.json:
        print(json.dumps(_as_json(report), ensure_ascii=False))
    else:
        _print(report, first, last)
        if args.csv:
            print(f"\nwritten to {args.csv}")
    return 0


def _as_json(report: Report) -> dict[str, Any]:
    def fig(f: Figures) -> dict[str, Any]:
        return {**f.__dict__, "reach_rate": f.reach_rate}

    return {"since": report.since, "until": report.until, "warnings": fig(report.total),
            "by_fraud_type": {k: fig(v) for k, v in report.by_type.items()},
            "by_risk": {k: fig(v) for k, v in report.by_risk.items()},
            "screened": [{"rule": r, "action": a, "calls": n}
                         for (r, a), n in report.screened.items()],
            "inbound_by_route": report.routes, "messages_left": report.messages_left,
            "texts": report.texts}


def _t(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _print(report: Report, first: date, last: date) -> None:
    console = Console(width=None if sys.stdout.isatty() else 120)
    t = report.total
    console.print(f"[bold]Warnings requested {first} to {last}[/bold]")
    lines = [
        ("requested", f"{t.requested:,}"),
        ("reached", (f"{t.reached:,} ({_pct(t.reach_rate)} of those finished): {t.acknowledged:,} "
                    f"acknowledged the warning, {t.transferred:,} talked to the duty officer")),
        ("escalated", f"{t.escalated:,} (handed to officers after unanswered calls)"),
        ("failed", f"{t.failed:,}"), ("cancelled", f"{t.cancelled:,}"),
        ("still open", f"{t.open:,}"), ("calls placed", f"{t.calls:,}"),
        ("request → acknowledged", (f"median {_t(t.to_ack_median_s)}, 90 % within "
                                   f"{_t(t.to_ack_p90_s)}")),
        ("first busy → answered", (f"median {_t(t.busy_to_answer_median_s)}, 90 % within "
                                  f"{_t(t.busy_to_answer_p90_s)} ({t.busy_first:,} people were "
                                  "on the phone at first)")),
    ]
    for name, value in lines:
        console.print(f"  {name:<24}{value}")
    for title, groups in (("by fraud type", report.by_type), ("by risk", report.by_risk)):
        if not groups:
            continue
        table = Table(title=title, title_justify="left")
        for column in (title.split()[-1], "requested", "reached", "rate", "escalated", "failed",
                       "median to ack", "p90 to ack"):
            table.add_column(column, justify="left" if column == title.split()[-1] else "right")
        for name, f in groups.items():
            table.add_row(name, f"{f.requested:,}", f"{f.reached:,}", _pct(f.reach_rate),
                          f"{f.escalated:,}", f"{f.failed:,}", _t(f.to_ack_median_s),
                          _t(f.to_ack_p90_s))
        console.print(table)
    table = Table(title=f"screened calls: {sum(report.screened.values()):,}", title_justify="left")
    for column in ("rule", "action", "calls"):
        table.add_column(column, justify="right" if column == "calls" else "left")
    for (rule, action), calls in report.screened.items():
        table.add_row(rule, action, f"{calls:,}")
    console.print(table)
    routes = ", ".join(f"{n:,} {r}" for r, n in report.routes.items()) or "none"
    console.print(f"inbound calls by route: {routes}; {report.messages_left:,} messages left for "
                  "callback")
    x = report.texts
    if x:
        console.print(f"texts to the SMS line: {x['texts_received']:,} in {x['threads']:,} threads, "
                      f"{x['replied']:,} replied (median {_t(x['reply_median_s'])}, 90 % within "
                      f"{_t(x['reply_p90_s'])}), {x['waiting']:,} waiting, {x['blocked']:,} from "
                      f"blocked numbers; warning texts: {x['warning_texts']:,} sent, "
                      f"{x['warning_texts_delivered']:,} delivered, {x['warning_texts_refused']:,} "
                      "refused")
