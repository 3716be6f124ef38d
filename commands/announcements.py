"""``announcements``: the carrier's spoken announcements the dialer recognises in early media.

``add FILE --as CLASS [--carrier NAME]`` converts a recording (any format sox reads) and
adds it; ``add --from-heard ID --as CLASS`` adds a clip the dialer heard and kept; ``list``
and ``remove`` keep the library; ``heard`` lists the clips of early media that matched
nothing on a call that then failed. A running engine's workers load the library again at
their next warning call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from audio.library import Library, LibraryError
from sip_config import LoadedConfig
from softphone.outcome import ANNOUNCEMENT_CLASSES

from .errors import CommandError
from .shown import iso


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("announcements",
                           help="the carrier's announcements heard in early media (busy, off…)")
    ops = group.add_subparsers(dest="op", metavar="OP", required=True)
    add = ops.add_parser("add", parents=[common], help="add a recording of an announcement")
    add.add_argument("file", metavar="FILE", type=Path, nargs="?",
                     help="the recording (any format sox reads)")
    add.add_argument("--from-heard", metavar="ID", help="a clip from 'announcements heard'")
    add.add_argument("--as", dest="label", metavar="CLASS", required=True,
                     help=f"what it says: {', '.join(ANNOUNCEMENT_CLASSES)}")
    add.add_argument("--carrier", default="", help="whose announcement (for the list)")
    add.set_defaults(handler=add_command)
    listing = ops.add_parser("list", parents=[common], help="the library")
    listing.add_argument("--json", action="store_true", help="one JSON object per announcement")
    listing.set_defaults(handler=list_command)
    remove = ops.add_parser("remove", parents=[common], help="take one out of the library")
    remove.add_argument("id", metavar="ID")
    remove.set_defaults(handler=remove_command)
    heard = ops.add_parser("heard", parents=[common],
                           help="early media that matched nothing on calls that then failed")
    heard.add_argument("--json", action="store_true", help="one JSON object per clip")
    heard.set_defaults(handler=heard_command)


def add_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    library = Library.of(loaded.data_dir)
    if (args.file is None) == (args.from_heard is None):
        raise CommandError("name either a FILE or --from-heard ID, not both or neither")
    try:
        if args.file is not None:
            entry = library.add(args.file, args.label, args.carrier, time.time())
        else:
            entry = library.add_heard(args.from_heard, args.label, args.carrier, time.time())
    except LibraryError as exc:
        raise CommandError(f"nothing added: {exc}") from None
    print(entry.id)
    print(f"added announcement {entry.id} ({entry.label}, {entry.matchable_s:g} s usable of "
          f"{entry.seconds:g} s); the workers use it from their next warning call",
          file=sys.stderr)
    return 0


def list_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    entries = Library.of(loaded.data_dir).entries()
    if args.json:
        for entry in entries:
            fields = {k: v for k, v in asdict(entry).items() if k != "label"}
            print(json.dumps({"id": entry.id, "class": entry.label, **fields,
                              "added": iso(entry.added_at, tz)}, ensure_ascii=False))
        return 0
    table = Table(title=f"{len(entries)} announcements", title_justify="left")
    for column in ("id", "class", "carrier", "seconds", "usable", "added", "from"):
        table.add_column(column, no_wrap=column in ("id", "added"))
    for e in entries:
        table.add_row(e.id, e.label, e.carrier, f"{e.seconds:g}", f"{e.matchable_s:g}",
                      iso(e.added_at, tz), e.source)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def remove_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    try:
        entry = Library.of(loaded.data_dir).remove(args.id)
    except LibraryError as exc:
        raise CommandError(str(exc)) from None
    print(f"removed announcement {entry.id} ({entry.label})", file=sys.stderr)
    return 0


def heard_command(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    tz = ZoneInfo(loaded.config.engine.timezone)
    library = Library.of(loaded.data_dir)
    keep_days = loaded.config.dialer.progress.keep_heard_days
    library.prune_heard(time.time(), keep_days * 86400)
    clips = library.heard()
    if args.json:
        for clip in clips:
            print(json.dumps({**asdict(clip), "heard": iso(clip.at, tz),
                              "file": str(library.heard_dir / f"{clip.id}.wav")},
                             ensure_ascii=False))
        return 0
    table = Table(title=f"{len(clips)} clips of unknown early media (kept {keep_days:g} days); "
                        "add one with: announcements add --from-heard ID --as CLASS",
                  title_justify="left")
    for column in ("id", "heard", "final status", "seconds", "speech", "call"):
        table.add_column(column, no_wrap=True)
    for c in clips:
        table.add_row(c.id, iso(c.at, tz), str(c.status), f"{c.seconds:g}", f"{c.voiced_s:g}",
                      c.call)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0
