"""``kamailio.cfg``'s routing script: what the Kamailio front does with each request.

Rendered by pure functions of a :class:`~front.setup.BalancerSetup`, without I/O;
:func:`front.cfg.render_cfg` puts the routes after the global and module parameters.

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

from ipaddress import ip_network

from .setup import ALGORITHMS, BalancerSetup

__all__ = [
    "FAILOVER_STATUSES",
    "ROUND_ROBIN",
    "TEXT_FAILOVER_STATUSES",
    "UTF8_MAX_BYTES",
    "render_routes",
    "subnets",
]

FAILOVER_STATUSES = "486|503|408"
"""Final replies of a worker that send the call to the next worker."""

TEXT_FAILOVER_STATUSES = "503"
"""Final replies of a worker that send a text to the next worker (a silent worker too)."""

ROUND_ROBIN = ALGORITHMS["round-robin"]
"""Texts go to the workers in turn whatever the call algorithm: call-load counts calls."""

UTF8_MAX_BYTES = 4
"""Bytes of the longest UTF-8 character."""


def render_routes(setup: BalancerSetup) -> str:
    """The routing logic, from ``request_route`` to the worker events."""
    call_load = setup.algorithm == "call-load"
    parts = [
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
    exempt = (f' || is_in_subnet("$si", "{subnets(setup.flood_exempt)}")'
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


_NO_WORKER_LEFT = """\
	if (t_check_status("503") || (t_branch_timeout() && !t_branch_replied())) {
		# every worker shed it or was silent: our own 503 (tm turns a relayed 503 into 500,
		# RFC 3261 16.7), and when to try again; a call that rang out keeps its 408
		append_to_reply("Retry-After: 1\\r\\n");
		t_reply("503", "No worker available");
	}
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
{_NO_WORKER_LEFT}}}
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
	# {UTF8_MAX_BYTES} bytes, so over {UTF8_MAX_BYTES * limit} bytes is too long; else PCRE counts: in UTF-8
	# mode (*UTF8) a dot is one character, (?s) takes line ends too. A body that is
	# not UTF-8 never matches: the engine drops it.
	if ($(rb{{s.len}}) > {UTF8_MAX_BYTES * limit} || pcre_match("$rb", "(*UTF8)(?s)^.{{{limit + 1}}}")) {{
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
{_NO_WORKER_LEFT}}}
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


def _scanner_regex(agents: tuple[str, ...]) -> str:
    """``a|b|c`` for ``$ua =~``; a dot is put in brackets (no backslashes in cfg strings)."""
    return "|".join(agent.replace(".", "[.]") for agent in agents)


def subnets(cidrs: tuple[str, ...]) -> str:
    """``is_in_subnet`` list; a host address gets its /32 or /128."""
    if not cidrs:
        return "255.255.255.255/32"  # nobody but the workers
    return ",".join(str(ip_network(c, strict=False)) for c in cidrs)
