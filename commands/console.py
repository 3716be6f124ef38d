"""``console``: the duty officers' web console, served alone; ``console users …``: who may
sign in to it.

``console`` serves the pages against the same stores as the engine (``run`` serves them
itself when ``console.port`` is set; the board then shows the engine's state). ``console
users add NAME --role officer|supervisor`` reads the password from standard input (asked
twice at a terminal, else the first line), never from the command line where ``ps`` would
show it; ``users password NAME`` the same; ``users disable NAME`` / ``enable NAME``;
``users list``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from center import Actor
from settings import Settings

from .errors import CommandError
from .shown import iso
from .warn import center_of


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    console = sub.add_parser("console", parents=[common],
                             help="the duty officers' web console (serve it, or manage its users)")
    console.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    console.set_defaults(handler=serve_command, takes_settings=True)
    ops = console.add_subparsers(dest="console_op", metavar="OP")
    users = ops.add_parser("users", help="who may sign in to the console")
    user_ops = users.add_subparsers(dest="users_op", metavar="OP", required=True)
    add = user_ops.add_parser("add", parents=[common], help="a new user (password on stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=("officer", "supervisor"), required=True)
    add.set_defaults(handler=add_user, takes_settings=True)
    listing = user_ops.add_parser("list", parents=[common], help="every user")
    listing.add_argument("--json", action="store_true", help="one JSON object per user")
    listing.set_defaults(handler=list_users, takes_settings=True)
    for op, helptext in (("disable", "stop a user signing in (their sessions end)"),
                         ("enable", "let a disabled user sign in again"),
                         ("password", "set a user's password (from stdin; their sessions end)")):
        parser = user_ops.add_parser(op, parents=[common], help=helptext)
        parser.add_argument("name")
        parser.set_defaults(handler=change_user, takes_settings=True, change=op)


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from console import serve

    if settings.loaded.config.console is None:
        raise CommandError(f"{settings.path} has no console section: set console.port to "
                           "serve the console")
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(settings, supervised=args.supervised)


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CommandError("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandError("no password on standard input; nothing was changed")
    return line.rstrip("\r\n")


def add_user(args: argparse.Namespace, settings: Settings) -> int:
    user = center_of(settings).add_user(args.name, args.role, _password(), Actor.cli())
    print(f"user {user.name} ({user.role.value}) added", file=sys.stderr)
    return 0


def change_user(args: argparse.Namespace, settings: Settings) -> int:
    center = center_of(settings)
    if args.change == "password":
        center.set_password(args.name, _password(), Actor.cli())
        print(f"user {args.name}: password changed; their sessions ended", file=sys.stderr)
    else:
        center.set_user_disabled(args.name, args.change == "disable", Actor.cli())
        print(f"user {args.name} {args.change}d", file=sys.stderr)
    return 0


def list_users(args: argparse.Namespace, settings: Settings) -> int:
    tz = ZoneInfo(settings.loaded.config.engine.timezone)
    users = center_of(settings).stores.users.list()
    if args.json:
        for u in users:
            print(json.dumps({"name": u.name, "role": u.role.value, "disabled": u.disabled,
                              "created": iso(u.created_at, tz)}, ensure_ascii=False))
        return 0
    table = Table(title=f"{len(users)} console users", title_justify="left")
    for column in ("name", "role", "state", "created"):
        table.add_column(column)
    for u in users:
        table.add_row(u.name, u.role.value, "disabled" if u.disabled else "active",
                      iso(u.created_at, tz) or "")
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    return 0
