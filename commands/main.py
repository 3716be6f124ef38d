"""Argument parsing and the one rule of the command line: errors are one plain
sentence on stderr, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from center import Invalid
from settings import Settings, load_settings
from sip_config import DEFAULT_CONFIG, ConfigError, LoadedConfig
from stores import StoreError

from . import announcements, balancer, console, demo, hotline, lists, ops, run, texts, warn
from .errors import CommandError

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_dialer.py",
        description="Anti-fraud call screening, warning dialer and after-hours hotline.")
    parser.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"configuration file (default {DEFAULT_CONFIG})")
    # -c after the subcommand too; SUPPRESS keeps a -c given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS,
                        help=f"configuration file (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.add_parser(sub, common)
    sub.add_parser("check-config", parents=[common], help="validate the configuration file")
    lists.add_parsers(sub, common)
    balancer.add_parser(sub, common)
    warn.add_parsers(sub, common)
    demo.add_parser(sub, common)
    hotline.add_parsers(sub, common)
    ops.add_parsers(sub, common)
    texts.add_parsers(sub, common)
    announcements.add_parsers(sub, common)
    console.add_parsers(sub, common)
    return parser


def load(args: argparse.Namespace) -> Settings:
    """The config and the files it names, every one checked (also for commands that use less)."""
    return load_settings(args.config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "run"
    try:
        if command == "check-config":
            settings = load(args)
            print(f"{settings.path}: valid")
            return EXIT_OK
        handler: Any = args.handler if args.command else run.run_engine
        # a handler gets the Settings when its parser says takes_settings, else the config
        whole = getattr(args, "takes_settings", False) if args.command else True
        config: Settings | LoadedConfig | None = None
        if getattr(args, "needs_config", True) is not False:
            settings = load(args)
            config = settings if whole else settings.loaded
        return int(handler(args, config) or EXIT_OK)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    except (CommandError, KeyError, Invalid, StoreError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {exc.strerror or exc} ({exc.filename})" if exc.filename else f"error: {exc}",
              file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one sentence, no traceback
        if os.environ.get("ANTIFRAUD_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} "
              "(set ANTIFRAUD_DEBUG=1 for the details)", file=sys.stderr)
        return EXIT_ERROR
