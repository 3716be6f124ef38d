"""The Kamailio balancer in front of the workers: rendered text, syntax, real calls.

Tiers: table-driven checks of the rendered ``kamailio.cfg`` and
``dispatcher.list``; ``kamailio -c`` on the generated files; the
``kamailio-config`` command; then Debian's Kamailio on loopback in front of
three real workers, with SIPp placing calls through it.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kamailioctl import KAMAILIO, Kamailio, options_status
from workerproc import Sipp, WorkerProcess, free_port_run, invite

from commands.main import main
from front import (
    BalancerSetup,
    render_cfg,
    render_dispatcher_list,
    setup_from_config,
    worker_ports,
)
from sip_config.schema import Config
from softphone import protocol as p

THROUGH_BALANCER = "uac_call_hold_bye_through_balancer.xml"


def config_of(workers: int = 3, algorithm: str = "call-load", port: int = 5060,
              sources: Sequence[str] = ("127.0.0.1/32",), host: str = "127.0.0.1",
              **balancer: Any) -> Config:
    """``port``: sip.listen.port, where the front listens; the workers take the next ports."""
    return Config.model_validate({
        "engine": {"workers": workers},
        "sip": {
            "listen": {"host": host, "port": port},
            "balancer": {"algorithm": algorithm, **balancer},
            "allowed_sources": list(sources),
        },
    })


def lines_of(text: str) -> list[str]:
    """Stripped lines; a trailing ``  # comment`` is cut from lines of code."""
    return [line.strip() if line.lstrip().startswith("#") else re.sub(r"\s+#\s.*$", "", line).strip()
            for line in text.splitlines()]


# ------------------------------------------------------------------ rendering

RENDER_CASES = [
    pytest.param(
        config_of(workers=2, algorithm="round-robin",
                  nodes=[{"name": "n2", "host": "10.0.0.2", "port": 5060, "workers": 2}]),
        ["listen=udp:127.0.0.1:5060"],
        ["1 sip:127.0.0.1:5061 8 0 duid=w1;maxload=4", "1 sip:127.0.0.1:5062 8 0 duid=w2;maxload=4",
         "1 sip:10.0.0.2:5061 8 0 duid=n2-w1;maxload=4",
         "1 sip:10.0.0.2:5062 8 0 duid=n2-w2;maxload=4"],
        [],
        id="another-nodes-workers-too",
    ),
    pytest.param(
        config_of(workers=1, algorithm="round-robin"),
        ["#!define ALGORITHM 4", '#!define ALLOWED_SOURCES "127.0.0.1/32"',
         "listen=udp:127.0.0.1:5060",
         'modparam("pike", "sampling_time_unit", 2)',
         'modparam("pike", "reqs_density_per_unit", 16)',
         'modparam("pike", "remove_latency", 4)',
         'modparam("htable", "htable", "ipban=>size=8;autoexpire=300;")',
         "if (ds_is_from_list(WORKERS)) {",
         ('if ($ua =~ "friendly-scanner|sipvicious|sipcli|sip-scan|VaxSIPUserAgent|pplsip|'
          'sundayddr|iWar") {'),
         'while (pl_check("$du", "TAILDROP", 25) != 1) {'],
        ["1 sip:127.0.0.1:5061 8 0 duid=w1;maxload=4"],
        ["ds_load_update();", "ds_load_unset();", "ds_hash_size", "sip:127.0.0.1:5060 8"],
        id="one-worker-round-robin",
    ),
    pytest.param(
        config_of(workers=3, algorithm="call-load", sources=("127.0.0.1", "10.0.0.0/8")),
        ["#!define ALGORITHM 10", '#!define ALLOWED_SOURCES "127.0.0.1/32,10.0.0.0/8"',
         'modparam("dispatcher", "ds_hash_size", 8)', "ds_load_update();",
         "ds_load_unset();", 't_on_reply("WORKER_REPLY");'],
        ["1 sip:127.0.0.1:5061 8 0 duid=w1;maxload=4",
         "1 sip:127.0.0.1:5062 8 0 duid=w2;maxload=4",
         "1 sip:127.0.0.1:5063 8 0 duid=w3;maxload=4"],
        ["pl_check("],
        id="three-workers-call-load",
    ),
    pytest.param(
        config_of(workers=2, algorithm="round-robin", port=6000, host="192.168.1.2",
                  sources=("192.168.1.7/24", "127.0.0.1/32")),
        ['#!define ALLOWED_SOURCES "192.168.1.0/24,127.0.0.1/32"',
         "listen=udp:192.168.1.2:6000",
         'modparam("dispatcher", "ds_ping_from", "sip:balancer@192.168.1.2")'],
        ["1 sip:192.168.1.2:6001 8 0 duid=w1;maxload=4",
         "1 sip:192.168.1.2:6002 8 0 duid=w2;maxload=4"],
        ["sip:192.168.1.2:6003", "sip:192.168.1.2:6000 8"],
        id="network-normalized-other-ports",
    ),
    pytest.param(
        config_of(workers=2, host="0.0.0.0"),
        ["listen=udp:0.0.0.0:5060",
         'modparam("dispatcher", "ds_ping_from", "sip:balancer@127.0.0.1")'],
        ["1 sip:127.0.0.1:5061 8 0 duid=w1;maxload=4",
         "1 sip:127.0.0.1:5062 8 0 duid=w2;maxload=4"],
        ["sip:0.0.0.0"],
        id="workers-on-any-address-reached-on-loopback",
    ),
    pytest.param(
        config_of(workers=1, host="::1", sources=("::1",)),
        ["listen=udp:[::1]:5060", '#!define ALLOWED_SOURCES "::1/128"'],
        ["1 sip:[::1]:5061 8 0 duid=w1;maxload=4"],
        [],
        id="ipv6",
    ),
    pytest.param(
        config_of(workers=1, algorithm="round-robin", flood_requests=40, flood_window_s=4,
                  ban_s=60, flood_exempt=["10.0.0.0/8", "192.168.1.7"],
                  scanner_agents=["evil.scan", "x-bot/2"], new_calls_per_worker_s=10),
        ['modparam("pike", "sampling_time_unit", 4)',
         'modparam("pike", "reqs_density_per_unit", 40)',
         'modparam("pike", "remove_latency", 8)',
         'modparam("htable", "htable", "ipban=>size=8;autoexpire=60;")',
         'if (ds_is_from_list(WORKERS) || is_in_subnet("$si", "10.0.0.0/8,192.168.1.7/32")) {',
         'if ($ua =~ "evil[.]scan|x-bot/2") {',
         'while (pl_check("$du", "TAILDROP", 10) != 1) {'],
        [],
        ["friendly-scanner"],
        id="flood-settings",
    ),
    pytest.param(
        config_of(workers=1, scanner_agents=[]),
        [],
        [],
        ["$ua =~", "SIP scanners"],
        id="no-scanner-list",
    ),
]

EVERY_CFG_HAS = [
    "#!KAMAILIO",
    "#!define WORKERS 1",
    'loadmodule "dispatcher.so"',
    'loadmodule "sanity.so"',
    'loadmodule "pike.so"',
    'loadmodule "htable.so"',
    "route(FLOOD);",
    "route[FLOOD] {",
    "if ($sht(ipban=>$si) != $null) {",
    "if (!pike_check_req()) {",
    "$sht(ipban=>$si) = 1;",
    'modparam("dispatcher", "flags", 2)',
    'modparam("dispatcher", "ds_probing_mode", 1)',
    'modparam("dispatcher", "ds_ping_method", "OPTIONS")',
    'modparam("dispatcher", "ds_ping_interval", 5)',
    'modparam("tm", "fr_timer", 2000)',
    'modparam("pipelimit", "load_fetch", 0)',  # else it reads /proc each second: 1.4 % idle
    't_reply("503", "No worker available");',
    'if (!mf_process_maxfwd_header("10")) {',
    'if (!sanity_check("1511", "7")) {',
    'if (is_in_subnet("$si", ALLOWED_SOURCES) || ds_is_from_list(WORKERS)) {',
    'sl_send_reply("403", "Forbidden");',
    'if (is_method("OPTIONS") && uri == myself) {',
    'sl_send_reply("200", "OK");',
    "record_route();",
    "if (loose_route()) {",
    "if (!ds_select_dst(WORKERS, ALGORITHM)) {",
    't_on_failure("NEXT_WORKER");',
    "failure_route[NEXT_WORKER] {",
    '} else if (t_check_status("486|503|408")) {',
    "if (t_branch_timeout() && !t_branch_replied()) {",
    'ds_mark_dst("ip");',
    "if (ds_next_dst()) {",
]


@pytest.mark.parametrize(("config", "cfg_has", "list_has", "absent"), RENDER_CASES)
def test_rendered_files(config: Config, cfg_has: list[str], list_has: list[str],
                        absent: list[str], tmp_path: Path) -> None:
    setup = setup_from_config(config, tmp_path)
    cfg, dispatchers = render_cfg(setup), render_dispatcher_list(setup)
    cfg_lines, list_lines = lines_of(cfg), lines_of(dispatchers)
    for line in [*EVERY_CFG_HAS, *cfg_has]:
        assert line in cfg_lines, f"missing in kamailio.cfg: {line}"
    assert f'modparam("dispatcher", "list_file", "{tmp_path / "dispatcher.list"}")' in cfg_lines
    for line in list_has:
        assert line in list_lines, f"missing in dispatcher.list: {line}"
    entries = [line for line in list_lines if line and not line.startswith("#")]
    assert config.sip.balancer is not None
    assert len(entries) == config.engine.workers + sum(n.workers for n in config.sip.balancer.nodes)
    for text in absent:
        assert text not in cfg and text not in dispatchers
    assert "password" not in cfg.lower()
    # floods and scanners are dropped before anything answers them
    assert cfg.index("route(FLOOD);") < cfg.index("route(CHECKS);")


PORT_CASES = [
    # (workers, balancer, expected worker ports): sip.listen.port is 5060
    (1, False, (5060,)),
    (3, False, (5060, 5061, 5062)),
    (1, True, (5061,)),
    (3, True, (5061, 5062, 5063)),
]


@pytest.mark.parametrize(("workers", "balancer", "ports"), PORT_CASES)
def test_worker_ports(workers: int, balancer: bool, ports: tuple[int, ...]) -> None:
    """Behind the front the workers leave sip.listen.port to it and take the next ones."""
    config = Config.model_validate({"engine": {"workers": workers}, "sip": {
        "listen": {"port": 5060}, **({"balancer": {}} if balancer else {})}})
    assert worker_ports(config) == ports


def test_worker_ports_past_65535_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="past 65535"):
        setup_from_config(config_of(workers=3, port=65534), tmp_path)


def test_no_balancer_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sip.balancer"):
        setup_from_config(Config(), tmp_path)


# ----------------------------------------------------------- kamailio -c, CLI


@pytest.mark.parametrize(("algorithm", "balancer"), [
    ("round-robin", {}),
    ("call-load", {}),
    ("round-robin", {"flood_exempt": ["10.0.0.0/8", "::1"], "scanner_agents": ["evil.scan"]}),
    ("round-robin", {"scanner_agents": []}),
])
def test_kamailio_accepts_the_generated_cfg(algorithm: str, balancer: dict[str, Any],
                                            tmp_path: Path) -> None:
    setup = setup_from_config(config_of(algorithm=algorithm, sources=("127.0.0.1", "::1"),
                                        **balancer), tmp_path)
    cfg = write_files(setup)
    done = subprocess.run([KAMAILIO, "-c", "-f", str(cfg)], capture_output=True, text=True,
                          timeout=20, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "config file ok" in done.stdout + done.stderr


# ---------------------------------------------------------------- texts

SMS_FORMS = ("121100130", "+86121100130", "0086121100130", "0591121100130", "86591121100130",
             "+86591121100130", "0086591121100130")
HOTLINE_FORMS = ("961108", "0591961108", "86591961108", "+86591961108", "0086591961108")


def texts_config(algorithm: str = "round-robin", sms: dict[str, Any] | None = None,
                 area_code: str | None = "0591") -> Config:
    return Config.model_validate({
        "engine": {"workers": 2},
        "hotline": {"number": "961108", "area_code": area_code},
        **({"sms": sms} if sms is not None else {}),
        "sip": {"listen": {"port": 5060}, "balancer": {"algorithm": algorithm},
                "allowed_sources": ["127.0.0.1/32"]},
    })


MESSAGE_NUMBERS = [
    # (sms, hotline.area_code, message_numbers)
    (None, None, ("961108",)),
    (None, "0591", HOTLINE_FORMS),
    ({"number": "121100130"}, "0591", HOTLINE_FORMS + SMS_FORMS),
    ({"number": "121100130"}, "591", HOTLINE_FORMS + SMS_FORMS),
    ({"number": "121100130"}, None, ("961108", "121100130", "+86121100130", "0086121100130")),
]


@pytest.mark.parametrize(("sms", "area_code", "numbers"), MESSAGE_NUMBERS)
def test_texts_go_to_the_hotline_and_the_sms_line_in_every_dialed_form(
        sms: dict[str, Any] | None, area_code: str | None, numbers: tuple[str, ...],
        tmp_path: Path) -> None:
    setup = setup_from_config(texts_config(sms=sms, area_code=area_code), tmp_path)
    assert setup.message_numbers == numbers
    assert f'#!define TEXT_NUMBERS "{",".join(numbers)}"' in lines_of(render_cfg(setup))


TEXT_CFG_HAS = [
    'loadmodule "regex.so"',
    'if (is_method("MESSAGE")) {',
    "route(TEXT);",
    "route[TEXT] {",
    'if (!in_list("$rU", TEXT_NUMBERS, ",")) {',
    'sl_send_reply("404", "Not Found");',
    "route[TEXT_BODY] {",
    "if (!has_body()) {",
    'sl_send_reply("400", "Empty text");',
    'if (!($cT =~ "^text/plain[[:space:]]*(;.*)?$")) {',
    'append_to_reply("Accept: text/plain\\r\\n");',
    'sl_send_reply("415", "Unsupported Media Type");',
    "route(SOURCE_ADDRESS);",
    'append_hf("X-Source-Address: $si:$sp\\r\\n");',
    "route[DISPATCH_TEXT] {",
    'if (!ds_select_dst(WORKERS, "4")) {',  # texts: round-robin whatever the call algorithm
    't_on_failure("NEXT_TEXT_WORKER");',
    "failure_route[NEXT_TEXT_WORKER] {",
    '} else if (t_check_status("503")) {',
    'append_to_reply("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE\\r\\n");',
    'sl_send_reply("405", "Only calls and texts are balanced here");',
]


@pytest.mark.parametrize(("sms", "max_chars", "pv_buffer"), [
    (None, 1000, 8192),
    ({"number": "121100130"}, 1000, 8192),
    ({"number": "121100130", "max_chars": 70}, 70, 8192),
    ({"number": "121100130", "max_chars": 10000}, 10000, 40960),
])
@pytest.mark.parametrize("algorithm", ["round-robin", "call-load"])
def test_the_text_route_is_rendered_and_kamailio_accepts_it(
        algorithm: str, sms: dict[str, Any] | None, max_chars: int, pv_buffer: int,
        tmp_path: Path) -> None:
    setup = setup_from_config(texts_config(algorithm, sms), tmp_path)
    assert setup.message_max_chars == max_chars
    cfg = render_cfg(setup)
    cfg_lines = lines_of(cfg)
    for line in [*TEXT_CFG_HAS,
                 (f'if ($(rb{{s.len}}) > {4 * max_chars} || '
                  f'pcre_match("$rb", "(*UTF8)(?s)^.{{{max_chars + 1}}}")) {{'),
                 f'sl_send_reply("413", "Text over {max_chars} characters");',
                 f"pv_buffer_size={pv_buffer}"]:
        assert line in cfg_lines, f"missing in kamailio.cfg: {line}"
    # texts are guarded as calls are: per worker with round-robin, not with call-load
    guard = 'while (pl_check("$du", "TAILDROP", 25) != 1) {'
    assert cfg_lines.count(guard) == (2 if algorithm == "round-robin" else 0)
    # a text has no dialog: record-route only for calls, after the text route left
    assert cfg_lines.count("record_route();") == 1
    assert cfg.index("route(TEXT);") < cfg.index("record_route();")
    done = subprocess.run([KAMAILIO, "-c", "-f", str(write_files(setup))], capture_output=True,
                          text=True, timeout=20, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "config file ok" in done.stdout + done.stderr


def test_command_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dialer.yaml"
    config.write_text("engine:\n  workers: 2\n  data_dir: data\n"
                      "sip:\n  listen: {port: 5071}\n  balancer: {algorithm: round-robin}\n",
                      encoding="utf-8")
    assert main(["kamailio-config", "-c", str(config)]) == 0
    out_dir = tmp_path / "data" / "kamailio"
    out = capsys.readouterr().out
    assert f"wrote {out_dir / 'kamailio.cfg'}" in out
    assert f"start: kamailio -DD -E -f {out_dir / 'kamailio.cfg'}" in out
    assert "on 127.0.0.1 ports 5072-5073, round-robin, listening on udp 127.0.0.1:5071" in out
    cfg = (out_dir / "kamailio.cfg").read_text()
    assert "#!define ALGORITHM 4" in cfg and "listen=udp:127.0.0.1:5071" in cfg
    dispatchers = (out_dir / "dispatcher.list").read_text()
    assert "sip:127.0.0.1:5072 8 0 duid=w1" in dispatchers
    assert "sip:127.0.0.1:5073 8 0 duid=w2" in dispatchers

    elsewhere = tmp_path / "elsewhere"
    assert main(["kamailio-config", "-c", str(config), "-o", str(elsewhere)]) == 0
    assert (elsewhere / "kamailio.cfg").is_file() and (elsewhere / "dispatcher.list").is_file()


def test_command_without_balancer_fails_in_one_sentence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dialer.yaml"
    config.write_text("engine:\n  workers: 2\n", encoding="utf-8")
    assert main(["kamailio-config", "-c", str(config), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "sip.balancer" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------- real peers


def write_files(setup: BalancerSetup) -> Path:
    setup.list_file.parent.mkdir(parents=True, exist_ok=True)
    setup.list_file.write_text(render_dispatcher_list(setup), encoding="utf-8")
    cfg = setup.list_file.parent / "kamailio.cfg"
    cfg.write_text(render_cfg(setup), encoding="utf-8")
    return cfg


@dataclass
class Answering:
    """Answers every ``incoming`` on every worker; tracks calls per worker."""

    workers: list[WorkerProcess]
    killed: set[str] = field(default_factory=set)
    """Workers the test killed on purpose; any other exit fails the test."""
    done: dict[str, int] = field(default_factory=dict)
    """Events already looked at, per worker."""
    active: dict[str, set[str]] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    incoming: dict[str, list[Any]] = field(default_factory=dict)
    hung_up: dict[str, Any] = field(default_factory=dict)

    def kill(self, worker: WorkerProcess) -> None:
        self.killed.add(worker.name)
        worker.kill()

    def poll(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.settle(0.02)
            elif worker.name not in self.killed:
                raise AssertionError(
                    f"worker {worker.name} died (exit {worker.proc.returncode}): a softphone "
                    f"crash, not a balancer fault; log {worker.log_path}:\n"
                    f"{worker.log_text()[-1500:]}")
            events = worker.events
            for event in events[self.done.get(worker.name, 0):]:
                active = self.active.setdefault(worker.name, set())
                if event.TYPE == "incoming":
                    self.incoming.setdefault(worker.name, []).append(event)
                    active.add(event.call)
                    worker.send(p.Answer(event.call))
                elif event.TYPE == "hung_up":
                    active.discard(event.call)
                    self.hung_up[event.call] = event
                self.peak[worker.name] = max(self.peak.get(worker.name, 0), len(active))
            self.done[worker.name] = len(events)

    def run_until(self, *sipps: Sipp, timeout: float = 25.0) -> None:
        """Answer calls until every SIPp run has ended and every call has hung up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if all(s.proc.poll() is not None for s in sipps) and not any(self.active.values()):
                return
        stuck = [e for w in self.workers for e in w.events
                 if any(getattr(e, "call", None) in calls for calls in self.active.values())]
        raise AssertionError(f"calls still up after {timeout}s: {self.active}; events {stuck}")

    def count(self, name: str) -> int:
        return len(self.incoming.get(name, []))


@dataclass
class Cluster:
    workers: list[WorkerProcess]
    balancer: Kamailio
    port: int
    work_dir: Path

    def call(self, calls: int, hold_ms: int, *, remote_port: int | None = None) -> Sipp:
        """SIPp placing ``calls`` calls at once (through the balancer by default)."""
        return Sipp(THROUGH_BALANCER, self.work_dir, "-s", "961108", "-r", "50",
                    "-l", str(calls), "-d", str(hold_ms),
                    remote=f"127.0.0.1:{remote_port or self.port}", calls=calls, timeout_s=20)

    def calls_succeed(self, answering: Answering, calls: int, hold_ms: int = 500) -> None:
        """``calls`` calls through the balancer, all answered by some worker and ended."""
        sipp = self.call(calls, hold_ms)
        try:
            answering.run_until(sipp)
            assert sipp.wait() == 0, report(self, sipp)
        finally:
            sipp.kill()

    def wait_in_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.balancer.log():
            assert time.monotonic() < deadline, f"no {text!r} in {timeout}s\n{report(self)}"
            time.sleep(0.1)


@contextlib.contextmanager
def cluster(tmp_path: Path, algorithm: str,
            worker_args: Sequence[str] = ()) -> Iterator[Cluster]:
    first = free_port_run(4)  # the balancer, then three workers
    # 127.0.0.1 plays the carrier here (every SIPp caller): never banned for its rate
    config = config_of(workers=3, algorithm=algorithm, port=first, flood_exempt=["127.0.0.1/32"])
    setup = setup_from_config(config, tmp_path / "kamailio", ping_interval_s=1, fr_timer_ms=1000)
    workers: list[WorkerProcess] = []
    balancer: Kamailio | None = None
    try:
        for address in setup.workers:
            workers.append(start_worker(address.name, address.port, tmp_path, worker_args))
        balancer = Kamailio(write_files(setup), setup.port, setup.control_socket)
        yield Cluster(workers, balancer, setup.port, tmp_path)
    finally:
        for worker in workers:
            worker.kill()
        if balancer is not None:
            balancer.stop()


def start_worker(name: str, port: int, log_dir: Path,
                 extra: Sequence[str] = ()) -> WorkerProcess:
    worker = WorkerProcess(name, log_dir,
                           ["--sip-port", str(port), "--allow", "127.0.0.0/8", *extra])
    assert worker.sip_port == port
    return worker


def report(c: Cluster, *sipps: Sipp) -> str:
    return "\n".join([*(s.report() for s in sipps), "--- kamailio log tail:",
                      c.balancer.log()[-4000:]])


@pytest.mark.parametrize("algorithm", ["round-robin", "call-load"])
def test_calls_spread_over_workers_and_bye_reaches_them(algorithm: str, tmp_path: Path) -> None:
    with cluster(tmp_path, algorithm) as c:
        answering = Answering(c.workers)
        c.calls_succeed(answering, 10, hold_ms=2000)  # 10 at once: SIPp saw 200 for each
        counts = {w.name: answering.count(w.name) for w in c.workers}
        assert sum(counts.values()) == 10, counts
        assert sum(1 for n in counts.values() if n) > 1, counts
        assert max(answering.peak.values()) <= 4, answering.peak
        assert max(answering.peak.values()) >= 3, answering.peak  # they were concurrent
        if algorithm == "round-robin":
            assert sorted(counts.values()) == [3, 3, 4], counts
        # every BYE went through the balancer to the worker that took the call
        calls = [e.call for events in answering.incoming.values() for e in events]
        assert sorted(answering.hung_up) == sorted(calls)
        assert {(h.by, h.status) for h in answering.hung_up.values()} == {("remote", 200)}
        # OPTIONS keepalives get 200; a source outside sip.allowed_sources gets 403
        assert options_status(c.port) == 200
        assert options_status(c.port, source="127.0.0.2") == 403


@pytest.mark.parametrize("algorithm", ["round-robin", "call-load"])
def test_call_to_a_full_worker_fails_over(algorithm: str, tmp_path: Path) -> None:
    with cluster(tmp_path, algorithm) as c:
        answering = Answering(c.workers)
        full = c.workers[0]
        # four calls straight to w1, behind the balancer's back: it is full, and
        # the balancer does not know (call-load counts only the calls it routed)
        direct = c.call(4, hold_ms=4000, remote_port=full.sip_port)
        through: Sipp | None = None
        try:
            deadline = time.monotonic() + 10
            while answering.peak.get(full.name, 0) < 4:
                assert time.monotonic() < deadline, f"{full.name} not full: {answering.peak}"
                answering.poll()
            through = c.call(3, hold_ms=1000)
            answering.run_until(direct, through)
            assert direct.wait() == 0, report(c, direct)
            assert through.wait() == 0, report(c, through)
        finally:
            direct.kill()
            if through is not None:
                through.kill()
        assert answering.count(full.name) == 4  # only the direct calls
        assert answering.count("w2") + answering.count("w3") == 3
        log = c.balancer.log()
        assert f"worker sip:127.0.0.1:{full.sip_port} answered 486" in log, report(c)
        assert "fails over to sip:127.0.0.1:" in log


@pytest.mark.parametrize("algorithm", ["round-robin", "call-load"])
def test_when_every_worker_sheds_a_call_the_caller_gets_503_and_when_to_retry(
        algorithm: str, tmp_path: Path) -> None:
    """A worker's guard answers 503 to an INVITE it has no room for; the front tries the
    others, and when all of them shed it the caller gets the front's own 503 with
    Retry-After (Kamailio turns a relayed 503 into 500, which a carrier takes as a fault)."""
    # a new call a thousand seconds: every worker sheds every INVITE
    with cluster(tmp_path, algorithm, ["--invite-rate", "0.001"]) as c:
        sock, _ = invite(c.port, "13700000001")
        sock.settimeout(5)
        final = b""
        while not final:
            data = sock.recv(65535)
            if int(data.split()[1]) >= 200:
                final = data
        assert final.startswith(b"SIP/2.0 503 "), final
        assert b"\r\nRetry-After: 1\r\n" in final, final
        refused = [e for w in c.workers for e in w.settle(0.3) if e.TYPE == "refused"]
        assert sorted(e.status for e in refused) == [503] * 3, refused  # each worker tried


def test_dead_worker_is_skipped_and_comes_back(tmp_path: Path) -> None:
    with cluster(tmp_path, "call-load") as c:
        answering = Answering(c.workers)
        _, w2, w3 = c.workers
        answering.kill(w2)
        # at once: an INVITE to w2 gets no reply within fr_timer, fails over, and
        # marks w2 down; the next calls skip it
        c.calls_succeed(answering, 4)
        assert f"worker sip:127.0.0.1:{w2.sip_port} did not reply" in c.balancer.log(), report(c)
        c.calls_succeed(answering, 2)
        assert c.balancer.log().count("did not reply") == 1, report(c)
        states = c.balancer.states()
        assert states[f"sip:127.0.0.1:{w2.sip_port}"] == "IP", states  # inactive, probing
        assert states[f"sip:127.0.0.1:{w3.sip_port}"] == "AP", states  # active, probing
        assert answering.count("w1") + answering.count("w3") == 6

        # a worker that dies idle is found by the OPTIONS pings, before any call
        answering.kill(w3)
        c.wait_in_log(f"worker sip:127.0.0.1:{w3.sip_port} is down", timeout=8)
        before = answering.count("w1")
        c.calls_succeed(answering, 2)
        assert answering.count("w1") == before + 2
        assert "did not reply" not in c.balancer.log().split(f"{w3.sip_port} is down", 1)[1]

        # a worker back on its port answers the pings and gets calls again
        again = start_worker("w2-again", w2.sip_port, tmp_path)
        c.workers.append(again)
        answering.workers.append(again)
        c.wait_in_log(f"worker sip:127.0.0.1:{w2.sip_port} is up", timeout=8)
        c.calls_succeed(answering, 2)
        assert answering.count("w2-again") >= 1, answering.incoming.keys()
