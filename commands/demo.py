"""``demo``: the whole warning loop on loopback with simulated phones, no setup."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sip_config import LoadedConfig


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser("demo", parents=[common],
                          help="the engine calling simulated phones on loopback, with a live view")
    demo.add_argument("--dir", type=Path, help="where the demo keeps its files (default: a new "
                                               "temporary directory)")
    demo.add_argument("--timeout", type=float, default=240, help="stop after this many seconds")
    demo.set_defaults(handler=run, needs_config=False)


def run(args: argparse.Namespace, loaded: LoadedConfig | None) -> int:
    from demo import run_demo  # pulls in the engine

    return run_demo(args.dir, args.timeout)
