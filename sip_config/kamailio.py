"""The Kamailio load balancer in front of the softphone workers, as text.

``run_dialer.py run`` (through :mod:`engine.front`) and ``run_dialer.py
kamailio-config`` write two files from ``dialer.yaml``: ``kamailio.cfg``
(routing logic) and ``dispatcher.list`` (the workers). Both are rendered here
by pure functions, without I/O, so that tests read the output line by line and
``kamailio -c`` checks the syntax.

Ports: the front listens on ``sip.listen.host:sip.listen.port``, the address
callers use; behind it worker N listens on ``sip.listen.port + N`` on the same
host (:func:`worker_ports`). Without ``sip.balancer`` worker N listens on
``sip.listen.port + N - 1``.

What the balancer does (Kamailio 5.6, ``dispatcher`` module, set 1):

- a new INVITE goes to one worker: ``round-robin`` is dispatcher algorithm 4,
  ``call-load`` is algorithm 10 (fewest calls, by ``duid``, at most
  ``maxload`` = 4 calls per worker; the load is counted by Call-ID and
  released on BYE or a failed INVITE, no dialog module needed);
- a worker answering 486/503/408, or not answering at all within
  ``fr_timer_ms``, hands the call to the next worker (``failure_route`` with
  ``ds_next_dst``); a silent worker is marked down at once;
- ``record_route`` keeps the balancer in the dialog: ACK, BYE, INFO and
  re-INVITE are loose-routed to the worker that took the call;
- every worker is pinged with OPTIONS; a dead one is skipped until it
  answers again;
- a text (SIP MESSAGE, RFC 3428) to the SMS line or the hotline, in any
  dialed form (:meth:`screening.ServiceNumber.dialed_forms`), goes to one
  worker in turn (algorithm 4 whatever ``algorithm`` is: a text is no call);
  the front refuses what it can see first: 404 for another number, 400 for
  an empty body, 415 for another type than ``text/plain``, 413 over
  ``sms.max_chars`` characters (pjsua answers every MESSAGE 200, so these
  refusals can only come from here). No record-route: a text has no dialog;
- only ``sip.allowed_sources`` (and the workers themselves) may send
  requests; others get 403. OPTIONS to the balancer get 200;
- before anything else, flood defence: a source address that sends more than
  ``flood_requests`` requests in ``flood_window_s`` (``pike``) is banned for
  ``ban_s`` (``htable`` ``ipban`` with autoexpire): everything it sends is
  dropped without a reply; requests from SIP scanners (by User-Agent) are
  dropped without a reply too. The workers and ``flood_exempt`` are never
  banned.
"""

from __future__ import annotations

import hashlib
import tempfile
import textwrap
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Literal

from screening import ServiceNumber
from softphone import MAX_CALLS_PER_WORKER

from .schema import Config

__all__ = [
    "ALGORITHMS",
    "WORKER_SET",
    "BalancerSetup",
    "WorkerAddress",
    "front_source",
    "message_numbers",
    "render_cfg",
    "render_dispatcher_list",
    "setup_from_config",
    "start_argv",
    "start_command",
    "worker_ports",
]

Algorithm = Literal["round-robin", "call-load"]

ALGORITHMS: dict[str, int] = {"round-robin": 4, "call-load": 10}
"""Config name of an algorithm → its number in ``ds_select_dst``."""

WORKER_SET = 1
"""The dispatcher set (group id) of the workers."""

FAILOVER_STATUSES = "486|503|408"
"""Final replies of a worker that send the call to the next worker."""

TEXT_FAILOVER_STATUSES = "503"
"""Final replies of a worker that send a text to the next worker (a silent worker too)."""

ROUND_ROBIN = ALGORITHMS["round-robin"]
"""Texts go to the workers in turn whatever the call algorithm: call-load counts calls."""

_PROBING = 8
"""dispatcher.list flag: ping this destination with OPTIONS."""

_UNSPECIFIED = {"0.0.0.0": "127.0.0.1", "::": "::1"}

_UTF8_MAX_BYTES = 4
"""Bytes of the longest UTF-8 character."""

_PV_BUFFER_SIZE = 8192
"""Kamailio's default ``pv_buffer_size``: a longer value fails to print, and pcre_match
of a body that does not fit matches nothing."""

_MAX_SOCKET_PATH = 100
"""A Unix socket path longer than this (the kernel's limit is 107 bytes) moves to /tmp."""


@dataclass(frozen=True)
class WorkerAddress:
    name: str
    """``w1`` … ``wN``: the engine's worker names, used as dispatcher ``duid``."""
    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"sip:{_host_for_uri(self.host)}:{self.port}"


@dataclass(frozen=True)
class BalancerSetup:
    """Everything the two files depend on; build it with :func:`setup_from_config`."""

    host: str
    """Address the balancer listens on (UDP): sip.listen.host."""
    port: int
    """sip.listen.port: the address callers use."""
    algorithm: Algorithm
    workers: tuple[WorkerAddress, ...]
    allowed_sources: tuple[str, ...]
    """CIDRs that may send requests (the workers are always allowed)."""
    list_file: Path
    """Absolute path of ``dispatcher.list`` as written into ``kamailio.cfg``."""
    control_socket: Path
    """Unix socket of the ``ctl`` module, for ``kamcmd -s unix:PATH dispatcher.list``."""
    max_calls: int = MAX_CALLS_PER_WORKER
    """Calls one worker carries (``maxload`` of call-load balancing)."""
    new_calls_per_worker_s: int = 25
    """New INVITEs and texts one worker is given a second (round-robin only). pjsua opens two
    media sockets per INVITE and frees them 500 ms after the call, later when the
    CPU is busy; at 30-60 INVITEs a second its 64-slot I/O queue runs out and the
    worker aborts with its live calls. Past this rate the next worker takes the
    call; when every worker is over it, the caller gets 503 with Retry-After."""
    fr_timer_ms: int = 2000
    """A worker that sends no reply at all to an INVITE in this time is taken as dead."""
    fr_inv_timer_ms: int = 120000
    """A ringing call (the worker sent 1xx) waits this long for the final reply."""
    ping_interval_s: int = 5
    """OPTIONS pings to every worker, this often."""
    ping_failures: int = 2
    """Unanswered pings in a row before a worker is marked down."""
    flood_requests: int = 16
    """Requests one source may send in ``flood_window_s`` before it is banned (pike)."""
    flood_window_s: int = 2
    ban_s: int = 300
    """How long a flooding source is banned (htable ``ipban`` autoexpire)."""
    flood_exempt: tuple[str, ...] = ()
    """CIDRs never counted or banned (besides the workers)."""
    scanner_agents: tuple[str, ...] = ()
    """User-Agent parts whose requests are dropped without a reply."""
    message_numbers: tuple[str, ...] = ()
    """Request-URI user parts a text (SIP MESSAGE) may go to: the hotline and the SMS
    line in every dialed form. A text to any other gets 404; none: every text gets 404."""
    message_max_chars: int = 1000
    """A text over this many characters (of its UTF-8 body, not bytes) gets 413."""
    source: str = ""
    """Where the setup came from (a config file), for the header comment."""

    @property
    def algorithm_number(self) -> int:
        return ALGORITHMS[self.algorithm]


def worker_ports(config: Config) -> tuple[int, ...]:
    """SIP port of each worker: behind the front (``sip.balancer``) worker N takes
    ``sip.listen.port + N``, because the front holds ``sip.listen.port``; without it, worker N
    takes ``sip.listen.port + N - 1``."""
    first = config.sip.listen.port + (1 if config.sip.balancer is not None else 0)
    return tuple(first + i for i in range(config.engine.workers))


def front_source(config: Config) -> str:
    """The address the front's requests reach the workers from (a host, no port)."""
    host = config.sip.listen.host
    return _UNSPECIFIED.get(host, host)


def setup_from_config(config: Config, out_dir: Path, *, source: str = "",
                      ping_interval_s: int = 5, fr_timer_ms: int = 2000) -> BalancerSetup:
    """The balancer of ``config`` whose files live in ``out_dir``.

    Raises ``ValueError`` when ``sip.balancer`` is not configured, or when the workers'
    ports would run past 65535.
    """
    balancer = config.sip.balancer
    if balancer is None:
        raise ValueError("sip.balancer is not configured")
    listen = config.sip.listen
    ports = worker_ports(config)
    if ports[-1] > 65535:
        raise ValueError(f"the workers behind the front need SIP ports {ports[0]}-{ports[-1]} "
                         f"(sip.listen.port + 1 and up), past 65535: lower sip.listen.port")
    worker_host = _UNSPECIFIED.get(listen.host, listen.host)
    workers = tuple(WorkerAddress(f"w{i + 1}", worker_host, port) for i, port in enumerate(ports))
    out_dir = out_dir.absolute()
    return BalancerSetup(
        host=listen.host, port=listen.port, algorithm=balancer.algorithm,
        workers=workers, allowed_sources=config.sip.allowed_sources,
        list_file=out_dir / "dispatcher.list", control_socket=_control_socket(out_dir),
        new_calls_per_worker_s=balancer.new_calls_per_worker_s,
        ping_interval_s=ping_interval_s, fr_timer_ms=fr_timer_ms,
        flood_requests=balancer.flood_requests, flood_window_s=balancer.flood_window_s,
        ban_s=balancer.ban_s, flood_exempt=balancer.flood_exempt,
        scanner_agents=balancer.scanner_agents, source=source,
        message_numbers=message_numbers(config),
        message_max_chars=config.sms.max_chars if config.sms is not None else 1000,
    )


def message_numbers(config: Config) -> tuple[str, ...]:
    """Every form of ``hotline.number`` and, when configured, ``sms.number`` (both behind
    ``hotline.area_code``) that a text's Request-URI may carry."""
    area = config.hotline.area_code or ""
    lines = [config.hotline.number, config.sms.number if config.sms is not None else None]
    forms = (form for number in lines if number
             for form in ServiceNumber(number, area).dialed_forms())
    return tuple(dict.fromkeys(forms))


def start_argv(cfg_path: Path, run_dir: Path | None = None, binary: str = "kamailio") -> list[str]:
    """Kamailio in the foreground (``-DD``), logging to stderr (``-E``); ``run_dir`` is a
    private runtime directory (``-Y``) instead of /run/kamailio."""
    argv = [binary, "-DD", "-E", "-f", str(cfg_path)]
    return [*argv, "-Y", str(run_dir)] if run_dir is not None else argv


def start_command(cfg_path: Path) -> str:
    """The command that runs Kamailio in the foreground, logging to stderr."""
    return " ".join(start_argv(cfg_path))


def render_dispatcher_list(setup: BalancerSetup) -> str:
    """``dispatcher.list``: one line per worker in set 1."""
    lines = [
        "# Dispatcher set 1: the softphone workers behind the balancer.",
        f"# Generated by `run_dialer.py run` or `kamailio-config`{_from(setup)}; regenerate rather than edit.",
        "#",
        "# setid  destination  flags  priority  attributes",
        "#   flags 8: probing, i.e. active from the start and pinged with OPTIONS",
        "#            (kamcmd dispatcher.list shows AP: active, probing; IP: down);",
        "#   duid: the worker's name, used to count its calls (call-load balancing);",
        f"#   maxload: calls one worker carries ({setup.max_calls}); a full worker gets no new call.",
    ]
    for worker in setup.workers:
        lines.append(f"{WORKER_SET} {worker.uri} {_PROBING} 0 "
                     f"duid={worker.name};maxload={setup.max_calls}")
    return "\n".join(lines) + "\n"


def render_cfg(setup: BalancerSetup) -> str:
    """``kamailio.cfg``: the whole routing logic, commented for operators."""
    call_load = setup.algorithm == "call-load"
    parts = [
        _header(setup),
        _globals(setup),
        _modules(setup, call_load),
        _request_route(),
        _flood(setup),
        _checks(),
        _in_dialog(call_load),
        _dispatch(setup, call_load),
        _failover(call_load),
        _texts(),
        _text_body(setup),
        _dispatch_text(setup, call_load),
        _text_failover(),
        _events(),
    ]
    return "\n".join(parts)


# ----------------------------------------------------------------------- parts


def _header(setup: BalancerSetup) -> str:
    workers = ", ".join(f"{w.name}={w.uri}" for w in setup.workers)
    how = {
        "round-robin": "round-robin (dispatcher algorithm 4): the workers in turn",
        "call-load": (f"call-load (dispatcher algorithm 10): the worker with the fewest calls, "
                      f"at most {setup.max_calls} each"),
    }[setup.algorithm]
    return f"""#!KAMAILIO
#
# SIP front (load balancer and flood defence) of the anti-fraud softphone workers.
# Generated by `run_dialer.py run` or `kamailio-config`{_from(setup)}.
# Change dialer.yaml (sip.balancer, sip.listen, engine.workers, sip.allowed_sources,
# hotline.number, hotline.area_code, sms) and generate again rather than editing this file;
# `run_dialer.py run` writes it again and starts Kamailio itself.
#
# Start it:   {start_command(Path("<this file>"))}   (add -Y DIR for a runtime dir
#             other than /run/kamailio)
# Look at it: kamcmd -s unix:{setup.control_socket} dispatcher.list
# Bans:       kamcmd -s unix:{setup.control_socket} htable.dump ipban
#             (lift one: htable.delete ipban ADDRESS)
#
# - listens on udp:{_host_for_uri(setup.host)}:{setup.port} (sip.listen: the address callers use)
# - a source sending more than {setup.flood_requests} requests in {setup.flood_window_s} s (pike) is banned
#   for {setup.ban_s} s: whatever it sends is dropped without a reply{_exempt_note(setup)}{_scanner_note(setup)}
# - new calls (INVITE) go to one of {len(setup.workers)} worker(s): {workers}
#   chosen by {how}
# - a worker that answers {FAILOVER_STATUSES.replace("|", "/")}, or does not answer within
#   {setup.fr_timer_ms} ms, hands the call to the next worker
# - ACK, BYE, INFO and re-INVITE follow the call to its worker (record-route)
# - texts (SIP MESSAGE, RFC 3428) to the SMS line or the hotline go to one worker,
#   the workers in turn, no record-route; refused here first: 404 another number,
#   400 an empty body, 415 not text/plain, 413 over {setup.message_max_chars} characters (not bytes)
{_texts_note(setup)}
# - workers are pinged with OPTIONS every {setup.ping_interval_s} s; a dead worker is skipped
#   until it answers again
# - only sip.allowed_sources and the workers may send requests (others: 403)
# - OPTIONS keepalives to the balancer itself are answered 200
#
# No secrets live in this file.

#!define WORKERS {WORKER_SET}
#!define ALGORITHM {setup.algorithm_number}
#!define ALLOWED_SOURCES "{_subnets(setup.allowed_sources)}"
#!define TEXT_NUMBERS "{",".join(setup.message_numbers)}"
"""


def _globals(setup: BalancerSetup) -> str:
    return f"""####### Global parameters #########

debug=2                  # 2: info (calls and failovers are logged at info)
log_stderror=no          # -E on the command line logs to stderr instead of syslog
log_facility=LOG_LOCAL0
log_prefix="{{$mt $hdr(CSeq) $ci}} "
children=4
disable_tcp=yes          # the workers and the trunk speak UDP
auto_aliases=no
listen=udp:{_host_for_uri(setup.host)}:{setup.port}
server_header="Server: antifraud-balancer"
user_agent_header="User-Agent: antifraud-balancer"
pv_buffer_size={_pv_buffer_size(setup)}      # room for a text's body: route TEXT_BODY counts its characters
"""


def _modules(setup: BalancerSetup, call_load: bool) -> str:
    load = "\n".join(f'loadmodule "{m}.so"' for m in (
        "ctl", "tm", "tmx", "sl", "rr", "pv", "maxfwd", "sanity", "textops", "siputils",
        "xlog", "ipops", "dispatcher", "pipelimit", "pike", "htable", "regex",
    ))
    call_load_params = f"""
# call-load: count calls per worker by Call-ID (no dialog module needed)
modparam("dispatcher", "ds_hash_size", 8)
modparam("dispatcher", "ds_hash_expire", 7200)      # forget a call without BYE after 2 h
modparam("dispatcher", "ds_hash_initexpire", {max(setup.fr_inv_timer_ms // 1000 + 30, 60)})"""
    return f"""####### Modules #########

{load}

# kamcmd talks to this socket
modparam("ctl", "binrpc", "unix:{setup.control_socket}")

# a worker is on the local network: no reply at all within fr_timer means it is gone
modparam("tm", "fr_timer", {setup.fr_timer_ms})
modparam("tm", "fr_inv_timer", {setup.fr_inv_timer_ms})
modparam("tm", "failure_reply_mode", 3)   # the caller sees the reply of the last worker tried

# ACK, BYE, INFO and re-INVITE come back through the balancer
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 0)

# new calls and texts a second per worker: a pipe per worker, counted over 1 s windows
modparam("pipelimit", "timer_interval", 1)

# floods: requests per source address (pike), and the sources banned for a while
modparam("pike", "sampling_time_unit", {setup.flood_window_s})
modparam("pike", "reqs_density_per_unit", {setup.flood_requests})
modparam("pike", "remove_latency", {max(4, 2 * setup.flood_window_s)})
modparam("htable", "htable", "ipban=>size=8;autoexpire={setup.ban_s};")

# the workers: dispatcher set {WORKER_SET}
modparam("dispatcher", "list_file", "{setup.list_file}")
modparam("dispatcher", "flags", 2)                  # keep the other workers for failover
modparam("dispatcher", "xavp_dst", "_dsdst_")
modparam("dispatcher", "xavp_ctx", "_dsctx_")
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:balancer@{_host_for_uri(_UNSPECIFIED.get(setup.host, setup.host))}")
modparam("dispatcher", "ds_ping_interval", {setup.ping_interval_s})
modparam("dispatcher", "ds_probing_mode", 1)        # ping every worker, not only failed ones
modparam("dispatcher", "ds_probing_threshold", {setup.ping_failures})
modparam("dispatcher", "ds_inactive_threshold", 1)  # one answered ping brings a worker back
modparam("dispatcher", "ds_ping_reply_codes", "class=2"){call_load_params if call_load else ""}
"""


def _request_route() -> str:
    return """####### Routing logic #########

request_route {
	route(FLOOD);
	route(CHECKS);

	# CANCEL of a call being set up: to the worker that has it
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}

	# retransmissions are absorbed by the transaction
	if (!is_method("ACK")) {
		if (t_precheck_trans()) {
			t_check_trans();
			exit;
		}
		t_check_trans();
	}

	route(IN_DIALOG);

	# keepalives (OPTIONS) to the balancer itself
	if (is_method("OPTIONS") && uri == myself) {
		sl_send_reply("200", "OK");
		exit;
	}

	remove_hf("Route");
	if (is_method("MESSAGE")) {
		route(TEXT);
	}
	if (!is_method("INVITE")) {
		append_to_reply("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE\\r\\n");
		sl_send_reply("405", "Only calls and texts are balanced here");
		exit;
	}

	route(SOURCE_ADDRESS);
	record_route();
	route(DISPATCH);
}

# the sender's own address, for the engine's records (the workers see only the front);
# a header of that name from outside is never believed
route[SOURCE_ADDRESS] {
	remove_hf("X-Source-Address");
	append_hf("X-Source-Address: $si:$sp\\r\\n");
}

route[RELAY] {
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}
"""


def _flood(setup: BalancerSetup) -> str:
    exempt = (f' || is_in_subnet("$si", "{_subnets(setup.flood_exempt)}")'
              if setup.flood_exempt else "")
    scanners = f"""
	# SIP scanners: dropped without a reply (an answer tells them someone is here)
	if ($ua =~ "{_scanner_regex(setup.scanner_agents)}") {{
		xlog("L_NOTICE", "dropped $rm from scanner $si:$sp ($ua)\\n");
		exit;
	}}""" if setup.scanner_agents else ""
    return f"""# Floods and scanners, before anything else: dropped without a reply
route[FLOOD] {{
	# the workers (BYE and re-INVITE of their calls){" and sip.balancer.flood_exempt" if exempt else ""}
	# are never counted or banned
	if (ds_is_from_list(WORKERS){exempt}) {{
		return;
	}}
	if ($sht(ipban=>$si) != $null) {{
		exit;   # banned: every request dropped until the ban expires
	}}
	if (!pike_check_req()) {{
		$sht(ipban=>$si) = 1;
		xlog("L_ALERT", "flood from $si: over {setup.flood_requests} requests in {setup.flood_window_s} s ($rm from $fu), banned for {setup.ban_s} s\\n");
		exit;
	}}{scanners}
}}
"""


def _checks() -> str:
    return """# Sanity first, then who may talk to us
route[CHECKS] {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (!sanity_check("1511", "7")) {
		xlog("L_WARN", "malformed SIP message from $si:$sp dropped\\n");
		exit;
	}
	# the workers send BYE and re-INVITE of their calls
	if (is_in_subnet("$si", ALLOWED_SOURCES) || ds_is_from_list(WORKERS)) {
		return;
	}
	xlog("L_NOTICE", "refused $rm from $si:$sp: not in sip.allowed_sources\\n");
	if (!is_method("ACK")) {
		sl_send_reply("403", "Forbidden");
	}
	exit;
}
"""


def _in_dialog(call_load: bool) -> str:
    release = """
		if (is_method("BYE")) {
			ds_load_update();   # call-load: the worker has one call less
		}""" if call_load else ""
    return f"""# ACK, BYE, INFO, re-INVITE, MESSAGE: follow the Route set to the worker of the call
route[IN_DIALOG] {{
	if (!has_totag()) {{
		return;
	}}
	if (is_method("MESSAGE")) {{
		route(TEXT_BODY);   # a text inside a call is refused like any other
	}}
	if (loose_route()) {{{release}
		route(RELAY);
	}}
	if (is_method("ACK")) {{
		# ACK of a failed INVITE: hop by hop, through its transaction
		if (t_check_trans()) {{
			route(RELAY);
		}}
		exit;
	}}
	sl_send_reply("404", "Not here");
	exit;
}}
"""


def _dispatch(setup: BalancerSetup, call_load: bool) -> str:
    reply_route = """
	t_on_reply("WORKER_REPLY");""" if call_load else ""
    on_reply = """
# call-load: the call counts for its worker once answered
onreply_route[WORKER_REPLY] {
	if (status =~ "^2[0-9][0-9]$") {
		ds_load_update();
	}
}
""" if call_load else ""
    guard = _flood_guard(setup, "call") if not call_load else _NO_FLOOD_GUARD
    full = (f"every worker is down or has {setup.max_calls} calls"
            if call_load else "every worker is down")
    return f"""# New calls: pick a worker of set WORKERS with ALGORITHM
route[DISPATCH] {{
	if (!ds_select_dst(WORKERS, ALGORITHM)) {{
		# {full}
		if (ds_is_active(WORKERS)) {{
			xlog("L_WARN", "call $ci from $fU to $rU: every worker is busy\\n");
			sl_send_reply("486", "Busy Here");
		}} else {{
			xlog("L_ERR", "call $ci from $fU to $rU: no worker is up\\n");
			sl_send_reply("503", "No worker available");
		}}
		exit;
	}}
{guard}	xlog("L_INFO", "call $ci from $fU to $rU -> $du\\n");
	t_on_failure("NEXT_WORKER");{reply_route}
	route(RELAY);
}}
{on_reply}"""


_NO_FLOOD_GUARD = """\
	# no flood guard with call-load: moving a call to the next worker in
	# request_route leaked call-load counts until every worker looked full
	# (measured: 486 to every caller). Use round-robin where floods happen.
"""


_NO_TEXT_FLOOD_GUARD = """\
	# no flood guard with call-load, as for calls (pike still bans a flooding source)
"""


def _flood_guard(setup: BalancerSetup, what: str) -> str:
    """A worker over its budget passes the ``what`` (call, text) on; calls and texts
    share one pipe per worker."""
    limit = setup.new_calls_per_worker_s
    return f"""\
	# flood guard: a worker over {limit} new calls and texts a second passes the {what} on;
	# when every worker is over it, the sender is asked to come back in 1 s
	while (pl_check("$du", "TAILDROP", {limit}) != 1) {{
		if (!ds_next_dst()) {{
			xlog("L_WARN", "{what} $ci from $fU: every worker is over {limit} new calls and texts a second\\n");
			append_to_reply("Retry-After: 1\\r\\n");
			sl_send_reply("503", "Too many new {what}s");
			exit;
		}}
	}}
"""


def _failover(call_load: bool) -> str:
    release = "\n\t\tds_load_unset();   # call-load: the call never reached a worker" \
        if call_load else ""
    release_answer = "\n\t\tds_load_unset();" if call_load else ""
    release_final = "\n\tds_load_unset();" if call_load else ""
    return f"""# A worker failed the call: the next worker, while there is one
failure_route[NEXT_WORKER] {{
	if (t_is_canceled()) {{{release}
		exit;
	}}
	if (t_branch_timeout() && !t_branch_replied()) {{
		xlog("L_WARN", "worker $xavp(_dsdst_=>uri) did not reply to call $ci: marked down\\n");
		ds_mark_dst("ip");   # inactive, and probed until it answers again
	}} else if (t_check_status("{FAILOVER_STATUSES}")) {{
		xlog("L_NOTICE", "worker $xavp(_dsdst_=>uri) answered $T_reply_code to call $ci\\n");
	}} else {{
		# any other answer (404, 603, ...) is the worker's decision: pass it on{release_answer}
		exit;
	}}
	if (ds_next_dst()) {{
		xlog("L_NOTICE", "call $ci fails over to $du\\n");
		t_on_failure("NEXT_WORKER");
		route(RELAY);
	}}
	xlog("L_WARN", "call $ci: no worker left to try\\n");{release_final}
}}
"""


def _texts() -> str:
    return """# Texts (SIP MESSAGE, RFC 3428) out of dialog. pjsua answers every MESSAGE 200 before
# the engine sees it, so what cannot be a consultation is refused here, before a worker
route[TEXT] {
	# the SMS line or the hotline, in a form people dial (TEXT_NUMBERS: sms.number and
	# hotline.number, with and without hotline.area_code)
	if (!in_list("$rU", TEXT_NUMBERS, ",")) {
		xlog("L_NOTICE", "text $ci from $fU to $rU refused: not our SMS line or hotline\\n");
		sl_send_reply("404", "Not Found");
		exit;
	}
	route(TEXT_BODY);
	route(SOURCE_ADDRESS);
	route(DISPATCH_TEXT);
}
"""


def _text_body(setup: BalancerSetup) -> str:
    limit = setup.message_max_chars
    return f"""# The text itself: UTF-8 text/plain of 1 to {limit} characters
route[TEXT_BODY] {{
	if (!has_body()) {{
		xlog("L_NOTICE", "text $ci from $fU refused: empty\\n");
		sl_send_reply("400", "Empty text");
		exit;
	}}
	# text/plain, with parameters or not (charset=UTF-8); =~ ignores case
	if (!($cT =~ "^text/plain[[:space:]]*(;.*)?$")) {{
		xlog("L_NOTICE", "text $ci from $fU refused: Content-Type $cT\\n");
		append_to_reply("Accept: text/plain\\r\\n");
		sl_send_reply("415", "Unsupported Media Type");
		exit;
	}}
	# characters, not bytes (a Chinese character is 3): a UTF-8 character is at most
	# {_UTF8_MAX_BYTES} bytes, so over {_UTF8_MAX_BYTES * limit} bytes is too long; else PCRE counts: in UTF-8
	# mode (*UTF8) a dot is one character, (?s) takes line ends too. A body that is
	# not UTF-8 never matches: the engine drops it.
	if ($(rb{{s.len}}) > {_UTF8_MAX_BYTES * limit} || pcre_match("$rb", "(*UTF8)(?s)^.{{{limit + 1}}}")) {{
		xlog("L_NOTICE", "text $ci from $fU refused: over {limit} characters\\n");
		sl_send_reply("413", "Text over {limit} characters");
		exit;
	}}
}}
"""


def _dispatch_text(setup: BalancerSetup, call_load: bool) -> str:
    guard = _flood_guard(setup, "text") if not call_load else _NO_TEXT_FLOOD_GUARD
    return f"""# A text to one worker: the workers in turn, whatever the algorithm for calls
route[DISPATCH_TEXT] {{
	if (!ds_select_dst(WORKERS, "{ROUND_ROBIN}")) {{
		xlog("L_ERR", "text $ci from $fU to $rU: no worker is up\\n");
		sl_send_reply("503", "No worker available");
		exit;
	}}
{guard}	xlog("L_INFO", "text $ci from $fU to $rU -> $du\\n");
	t_on_failure("NEXT_TEXT_WORKER");
	route(RELAY);
}}
"""


def _text_failover() -> str:
    return f"""# A worker failed a text: the next worker, while there is one
failure_route[NEXT_TEXT_WORKER] {{
	if (t_branch_timeout() && !t_branch_replied()) {{
		xlog("L_WARN", "worker $xavp(_dsdst_=>uri) did not reply to text $ci: marked down\\n");
		ds_mark_dst("ip");   # inactive, and probed until it answers again
	}} else if (t_check_status("{TEXT_FAILOVER_STATUSES}")) {{
		xlog("L_NOTICE", "worker $xavp(_dsdst_=>uri) answered $T_reply_code to text $ci\\n");
	}} else {{
		exit;   # the worker's answer: pass it on
	}}
	if (ds_next_dst()) {{
		xlog("L_NOTICE", "text $ci fails over to $du\\n");
		t_on_failure("NEXT_TEXT_WORKER");
		route(RELAY);
	}}
	xlog("L_WARN", "text $ci: no worker left to try\\n");
}}
"""


def _events() -> str:
    return """# Worker state changes: found by the OPTIONS pings ($ru is the worker), or
# marked in failure_route (then $ru is the call's; the worker is in the xavp)
event_route[dispatcher:dst-down] {
	route(EVENT_WORKER);
	xlog("L_WARN", "worker $var(worker) is down\\n");
}

event_route[dispatcher:dst-up] {
	route(EVENT_WORKER);
	xlog("L_NOTICE", "worker $var(worker) is up\\n");
}

route[EVENT_WORKER] {
	if ($xavp(_dsdst_=>uri) != $null) {
		$var(worker) = $xavp(_dsdst_=>uri);
	} else {
		$var(worker) = $ru;
	}
}
"""


# --------------------------------------------------------------------- helpers


def _from(setup: BalancerSetup) -> str:
    return f" from {setup.source}" if setup.source else ""


def _host_for_uri(host: str) -> str:
    """IPv6 literals go in brackets in SIP URIs and listen lines."""
    try:
        if ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


def _exempt_note(setup: BalancerSetup) -> str:
    exempt = ", ".join(setup.flood_exempt)
    return f"\n#   (never banned: the workers{', ' + exempt if exempt else ''})"


def _texts_note(setup: BalancerSetup) -> str:
    """The numbers texts may go to, as comment lines."""
    if not setup.message_numbers:
        return "#   (no number configured: every text gets 404)"
    return textwrap.fill("our numbers (TEXT_NUMBERS): " + ", ".join(setup.message_numbers),
                         width=88, initial_indent="#   ", subsequent_indent="#     ",
                         break_on_hyphens=False)


def _scanner_note(setup: BalancerSetup) -> str:
    if not setup.scanner_agents:
        return ""
    return "\n# - requests from SIP scanners (by User-Agent) are dropped without a reply"


def _scanner_regex(agents: tuple[str, ...]) -> str:
    """``a|b|c`` for ``$ua =~``; a dot is put in brackets (no backslashes in cfg strings)."""
    return "|".join(agent.replace(".", "[.]") for agent in agents)


def _control_socket(out_dir: Path) -> Path:
    """``kamailio_ctl`` beside the files, or in /tmp when that path is too long for a socket."""
    path = out_dir / "kamailio_ctl"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"antifraud-kamailio-{digest}.ctl"


def _pv_buffer_size(setup: BalancerSetup) -> int:
    """Room for the longest body ``pcre_match`` counts (longer ones are refused by size)."""
    needed = _UTF8_MAX_BYTES * setup.message_max_chars + 1  # and the closing NUL
    return max(_PV_BUFFER_SIZE, (needed + 1023) // 1024 * 1024)


def _subnets(cidrs: tuple[str, ...]) -> str:
    """``is_in_subnet`` list; a host address gets its /32 or /128."""
    if not cidrs:
        return "255.255.255.255/32"  # nobody but the workers
    return ",".join(str(ip_network(c, strict=False)) for c in cidrs)
