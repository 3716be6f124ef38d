"""``run``: the engine."""

from __future__ import annotations

import argparse
from typing import Any

from sip_config import LoadedConfig

from .errors import CommandError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="run the engine (the default command)")
    run.set_defaults(handler=run_engine)


def run_engine(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    raise CommandError("the engine is not available in this build yet")
