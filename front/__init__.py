"""The Kamailio front: Debian's Kamailio as the SIP load balancer and flood defence that
``run_dialer.py run`` starts in front of the softphone workers when ``sip.balancer`` is set.
:func:`setup_from_config` turns ``dialer.yaml`` into a :class:`BalancerSetup` (where the front
listens, the workers' ports behind it, :func:`behind_front` for their specs);
:func:`render_cfg` and :func:`render_dispatcher_list` write it as ``kamailio.cfg`` and
``dispatcher.list`` without I/O (the ``kamailio-config`` command prints them); :class:`Front`
starts Kamailio with them, waits until it answers, restarts it when it dies and stops it with
the engine, which owns it. This package reads the config schema (``sip_config``) and knows
nothing of the engine.
"""

from .cfg import render_cfg
from .dispatcher import WORKER_SET, render_dispatcher_list
from .setup import (
    ALGORITHMS,
    UNSPECIFIED_HOSTS,
    BalancerSetup,
    WorkerAddress,
    WorkerFields,
    behind_front,
    front_source,
    host_for_uri,
    message_numbers,
    setup_from_config,
    start_argv,
    start_command,
    worker_ports,
)
from .supervisor import KAMAILIO, Front, FrontError, FrontExited, FrontStarted

__all__ = [
    "ALGORITHMS",
    "KAMAILIO",
    "UNSPECIFIED_HOSTS",
    "WORKER_SET",
    "BalancerSetup",
    "Front",
    "FrontError",
    "FrontExited",
    "FrontStarted",
    "WorkerAddress",
    "WorkerFields",
    "behind_front",
    "front_source",
    "host_for_uri",
    "message_numbers",
    "render_cfg",
    "render_dispatcher_list",
    "setup_from_config",
    "start_argv",
    "start_command",
    "worker_ports",
]
