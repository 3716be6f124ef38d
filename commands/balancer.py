"""``kamailio-config``: write the Kamailio front's files for the workers.

``run`` writes the same files into ``<engine.data_dir>/kamailio`` and starts
Kamailio itself (:class:`front.Front`); this command is for looking at them, or
for running Kamailio by other means.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from front import render_cfg, render_dispatcher_list, setup_from_config, start_command
from sip_config import LoadedConfig

from .errors import CommandError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "kamailio-config", parents=[common],
        help="write kamailio.cfg and dispatcher.list for the SIP front (sip.balancer; "
             "`run` starts it itself)")
    cmd.add_argument("-o", "--out", type=Path, metavar="DIR",
                     help="directory for the two files (default: <engine.data_dir>/kamailio)")
    cmd.set_defaults(handler=write_kamailio_config)


def write_kamailio_config(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    if loaded.config.sip.balancer is None:
        raise CommandError(f"{loaded.path} has no sip.balancer section, so there is no "
                           "balancer to configure (add sip.balancer, e.g. sip.balancer.algorithm: "
                           "round-robin)")
    out_dir: Path = (args.out if args.out is not None else loaded.data_dir / "kamailio").absolute()
    try:
        setup = setup_from_config(loaded.config, out_dir, source=str(loaded.path))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / "kamailio.cfg"
    setup.list_file.write_text(render_dispatcher_list(setup), encoding="utf-8")
    cfg_path.write_text(render_cfg(setup), encoding="utf-8")
    print(f"wrote {cfg_path}")
    print(f"wrote {setup.list_file}")
    workers = setup.workers
    print(f"{len(workers)} worker(s) on {workers[0].host} ports {workers[0].port}-{workers[-1].port}, "
          f"{setup.algorithm}, listening on udp {setup.host}:{setup.port}; a source over "
          f"{setup.flood_requests} requests in {setup.flood_window_s} s is banned for {setup.ban_s} s")
    print(f"check: kamailio -c -f {cfg_path}")
    print(f"start: {start_command(cfg_path)}   (`run_dialer.py run` starts it itself)")
    return 0
