"""``screen`` and ``blocklist import|add|remove``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from center import Actor
from screening import ImportReport, ListSet, StoreError
from settings import Settings
from sip_config import LoadedConfig

from .errors import CommandError
from .warn import center_of

_PROGRESS_FROM_BYTES = 4 << 20  # show a bar for files bigger than this
_SHOW_MALFORMED = 20


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    screen = sub.add_parser("screen", parents=[common], help="the screening decision for a caller number")
    screen.add_argument("number")
    screen.add_argument("--json", action="store_true", help="print the decision as JSON")
    screen.set_defaults(handler=screen_number)

    blocklist = sub.add_parser("blocklist", help="import, add or remove numbers of a list")
    ops = blocklist.add_subparsers(dest="op", metavar="OP", required=True)
    imp = ops.add_parser("import", parents=[common], help="import a text/CSV file of numbers")
    imp.add_argument("file", type=Path)
    imp.add_argument("--list", dest="list_name", help="list name (default: the first reject list)")
    imp.add_argument("--replace", action="store_true",
                     help="make the list exactly this file (drops earlier imports and live edits)")
    imp.set_defaults(handler=import_file, takes_settings=True)
    for name, verb in (("add", "add numbers to"), ("remove", "remove numbers from")):
        op = ops.add_parser(name, parents=[common], help=f"{verb} a list, at once")
        op.add_argument("numbers", nargs="+", metavar="NUMBER")
        op.add_argument("--list", dest="list_name", help="list name (default: the first reject list)")
        op.set_defaults(handler=edit_numbers, op_name=name, takes_settings=True)


def open_lists(loaded: LoadedConfig) -> ListSet:
    try:
        lists = ListSet(loaded)
        lists.sync_sources(_progress_for)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    return lists


def screen_number(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    screener = open_lists(loaded).screener()
    decision = screener.decide(args.number, time.time())
    if args.json:
        print(json.dumps(decision.as_dict(), ensure_ascii=False))
    else:
        status = f" {decision.status}" if decision.status else ""
        print(f"{decision.action.value}{status}  {decision.number.masked}  "
              f"[{decision.rule}] {decision.reason}")
    return 0


def import_file(args: argparse.Namespace, settings: Settings) -> int:
    center = center_of(settings)
    center.lists.sync_sources(_progress_for)
    if not args.file.is_file():
        raise CommandError(f"there is no file {args.file} to import")
    progress = _progress_for(center.list_name(args.list_name), args.file)
    report = center.import_list(args.file, args.list_name, Actor.cli(), replace=args.replace,
                                progress=progress)
    _print_report(report)
    return 0 if report.parsed.accepted or not report.parsed.malformed_count else 1


def edit_numbers(args: argparse.Namespace, settings: Settings) -> int:
    center = center_of(settings)
    center.lists.sync_sources(_progress_for)
    edit = center.edit_list(args.op_name, args.numbers, args.list_name, Actor.cli())
    verb = "added to" if args.op_name == "add" else "removed from"
    print(f"{edit.changed} of {edit.asked} numbers {verb} list {edit.list_name}"
          + (f" ({edit.asked - edit.changed} unchanged)" if edit.changed != edit.asked else ""))
    for raw, _ in edit.refused:
        print(f"error: {raw!r} is not a phone number; it was not {verb.split()[0]}", file=sys.stderr)
    return 1 if edit.refused else 0


def _print_report(report: ImportReport) -> None:
    parsed = report.parsed
    print(f"imported {report.file} into list {report.list_name}: {parsed.lines:,} lines, "
          f"{len(parsed.keys):,} distinct numbers, {report.added:,} new, "
          f"{parsed.malformed_count:,} malformed, in {report.seconds:.1f} s")
    for line, text in parsed.malformed[:_SHOW_MALFORMED]:
        print(f"{report.file}:{line}: not a phone number: {text!r}", file=sys.stderr)
    hidden = parsed.malformed_count - min(len(parsed.malformed), _SHOW_MALFORMED)
    if hidden > 0:
        print(f"{report.file}: {hidden:,} more malformed lines not shown", file=sys.stderr)


def _progress_for(name: str, path: Path) -> Callable[[int, int], None] | None:
    if path.stat().st_size < _PROGRESS_FROM_BYTES:
        return None
    return _bar(f"importing {path.name} into {name}")


def _bar(label: str) -> Callable[[int, int], None]:
    console = Console(stderr=True)
    progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                        TimeRemainingColumn(), console=console, transient=True)
    task = progress.add_task(label, total=None)
    progress.start()

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)
        if done >= total:
            progress.stop()

    return update
