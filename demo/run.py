"""``run_dialer.py demo``: the warning dialer's whole loop on loopback, with nothing to set up.

The engine (in this process, its softphone workers beside it) and a simulated
carrier (:mod:`demo.carrier`, a separate process on pjsua2) on free loopback
ports; eight warning requests for eight people in eight situations (three of
them on a carrier that says busy or 空号 in early media, or plays a 彩铃, whose
announcements the demo adds to the center's library first); a live view while
the engine calls them; at the end a table of outcomes, how each was known, and
times to acknowledgement. Everything it writes stays in one directory (``--dir``, by
default a new temporary one): config, task store, recordings, logs.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

import audio
from audio.library import Library
from center import Actor
from demo.loopback import free_udp_run
from dialer import Task, TaskState, known_by
from dialer.call import NetworkSaid
from engine import Engine, TaskNotice
from engine.texting import TextNotice
from screening import mask
from settings import load_settings

__all__ = ["PHONES", "Phone", "run_demo"]

DEMO = Actor("demo", "demo")


@dataclass(frozen=True)
class Phone:
    number: str
    fraud_type: str
    script: str  # what the phone does, call by call (demo.carrier)
    story: str
    expected: TaskState


PHONES = (
    Phone("13800138001", "police_impersonation", "busy,busy,busy,ack@4",
          "on the phone with a fake policeman: busy, busy, busy, then listens and presses 1",
          TaskState.ACKNOWLEDGED),
    Phone("13900139002", "order_brushing", "busy,ack@6",
          "busy once, then listens and presses 1", TaskState.ACKNOWLEDGED),
    Phone("13700137003", "investment", "noanswer",
          "never picks up: escalated for a visit, called until the give-up time", TaskState.FAILED),
    Phone("13600136004", "romance", "machine,ack@5",
          "an answering machine first (a short message is left), then the person",
          TaskState.ACKNOWLEDGED),
    Phone("15800158005", "customer_service_refund", "officer@4",
          "presses 0 and talks to the duty officer", TaskState.TRANSFERRED),
    Phone("13500135006", "loan", "said-busy,said-busy,ack@4",
          "busy, and the network says so in early media (no 486): cancelled at once, called "
          "again in seconds, then presses 1", TaskState.ACKNOWLEDGED),
    Phone("13300133007", "investment", "caling@4",
          "rings with a 彩铃 (music before the answer), then picks up and presses 1",
          TaskState.ACKNOWLEDGED),
    Phone("13100131008", "general", "said-invalid",
          "no such number (空号), said in early media: failed after one call", TaskState.FAILED),
)
GREETING = "您好，我现在不方便接听电话。请在提示音后留言，我会尽快给您回电。谢谢。"
ANNOUNCEMENTS = {  # what the simulated carrier says, and the center learned from it
    "busy": "您拨打的电话正在通话中，请稍后再拨。",
    "invalid": "您拨打的号码是空号，请查证后再拨。",
}
ANNOUNCER_RATE = 260  # espeak-ng words a minute: a carrier announcer's brisk pace
OFFICER = "您好，我是反诈中心值班民警。请您千万不要转账，我们马上联系您当地的派出所。"


def write_config(directory: Path) -> tuple[Path, int, int]:
    sip = free_udp_run(2)
    carrier = free_udp_run(2)
    rtp = free_udp_run(4, step=100, even=True)
    path = directory / "dialer.yaml"
    path.write_text(f"""\
# Written by run_dialer.py demo: the engine on loopback, the simulated carrier as its trunk.
engine: {{data_dir: var, timezone: Asia/Shanghai, workers: 2, log_level: info}}
sip:
  listen: {{host: 127.0.0.1, port: {sip}, rtp_port: {rtp}}}
  trunk: {{uri: "sip:127.0.0.1:{carrier}", caller_id: "96110", max_channels: 3, max_cps: 5}}
dialer:
  ring_timeout_s: 5
  retry: {{busy_s: 3, busy_growth: 1.0, busy_cap_s: 3, rang_out_s: 2, no_answer_s: 5,
          unacknowledged_s: 10, machine_s: 6, trunk_s: 2, trunk_cap_s: 10, jitter: 0.1}}
  max_attempts: 4
  escalate_after_attempts: 3
  give_up_after_s: 60  # a demo minute; 4 h in the field
  officer_uri: sip:duty@127.0.0.1:{carrier + 1}
  record: true
  texts: {{every_s: 15, max_per_task: 2}}  # warning texts beside the calls, to the carrier
hotline: {{number: "961108", operator_hours: "08:00-22:00", operator_uri: "sip:duty@127.0.0.1:{carrier + 1}"}}
""", encoding="utf-8")
    return path, carrier, rtp + 200


class Demo:
    def __init__(self, directory: Path, console: Console, timeout_s: float) -> None:
        self.directory = directory
        self.console = console
        self.timeout_s = timeout_s
        self.lines: collections.deque[str] = collections.deque(maxlen=10)
        self.started = time.time()
        self.ids: dict[str, str] = {}  # number → task id
        self._carrier_ready = asyncio.Event()

    def line(self, text: str) -> None:
        stamp = f"{time.time() - self.started:5.1f}s"
        self.lines.append(f"{stamp}  {text}")
        if not self.console.is_terminal:
            self.console.print(f"{stamp}  {text}", highlight=False)

    async def run(self) -> int:
        config_path, carrier_port, carrier_rtp = write_config(self.directory)
        settings = load_settings(config_path)
        loaded = settings.loaded
        logs = loaded.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        sounds = self.directory / "sounds"
        audio.build(sounds, [audio.Prompt("greeting", GREETING), audio.Prompt("officer", OFFICER)],
                    rate=180)
        audio.build(sounds, [audio.Prompt(f"announcement-{what}", text)
                             for what, text in ANNOUNCEMENTS.items()], rate=ANNOUNCER_RATE)
        library = Library.of(loaded.data_dir)
        for what in ANNOUNCEMENTS:  # the center adds its carrier's announcements to the library
            library.add(audio.path_of(sounds, f"announcement-{what}"), what, "the demo's carrier",
                        time.time())
        caling = write_caling(sounds / "caling.wav")
        carrier = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "demo.carrier", "--port", str(carrier_port),
            "--officer-port", str(carrier_port + 1), "--rtp-port", str(carrier_rtp),
            "--greeting", str(audio.path_of(sounds, "greeting")),
            "--officer-says", str(audio.path_of(sounds, "officer")), "--log-dir", str(logs),
            *[a for what in ANNOUNCEMENTS for a in (
                "--announcement", f"{what}={audio.path_of(sounds, f'announcement-{what}')}")],
            "--caling", str(caling),
            *[a for phone in PHONES for a in ("--phone", f"{phone.number}={phone.script}")],
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
        reader = asyncio.create_task(self._carrier_lines(carrier))
        engine = Engine(settings)
        try:
            await self._wait_for_carrier()
            await engine.start()
            notices = engine.subscribe()
            for phone in PHONES:
                request = engine.center.request(phone.number, phone.fraud_type, "high",
                                                f"DEMO-{phone.number[-3:]}", source="demo")
                self.ids[phone.number] = engine.center.warn(request, DEMO).task.id
            tasks = await self._watch(engine, notices)
            texts = {t.id: sum(m.state == "sent" for m in engine.texting.texts_of(t.id))
                     for t in tasks}
            known = {t.id: known_by(attempts[-1].how) if (attempts := engine.store.attempts(t.id))
                     else "" for t in tasks}
        finally:
            await engine.stop()
            if carrier.returncode is None:
                carrier.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(carrier.wait(), 10)
                except TimeoutError:
                    carrier.kill()
            reader.cancel()
        self.console.print(self._final(tasks, texts, known))
        self.console.print(f"Everything is in {self.directory}: dialer.yaml, var/tasks.sqlite, "
                           f"var/recordings/, var/events.jsonl, var/logs/. "
                           f"See one task with: python run_dialer.py task show "
                           f"{self.ids[PHONES[0].number]} -c {config_path}", highlight=False)
        return 0 if all(t.state is p.expected for t, p in zip(tasks, PHONES, strict=True)) else 1

    async def _carrier_lines(self, carrier: asyncio.subprocess.Process) -> None:
        assert carrier.stdout is not None
        async for raw in carrier.stdout:
            text = raw.decode("utf-8", "replace").rstrip()
            if text.startswith("carrier ready"):
                self._carrier_ready.set()
            self.line(f"[phone] {text}")

    async def _wait_for_carrier(self) -> None:
        try:
            await asyncio.wait_for(self._carrier_ready.wait(), 30)
        except TimeoutError:
            raise RuntimeError("the simulated carrier did not start in 30 s") from None

    async def _watch(self, engine: Engine, notices: asyncio.Queue) -> list[Task]:
        deadline = time.monotonic() + self.timeout_s
        with Live(self._view(engine), console=self.console, refresh_per_second=4,
                  transient=True) if self.console.is_terminal else _NoLive() as live:
            while time.monotonic() < deadline:
                while not notices.empty():
                    notice = notices.get_nowait()
                    if isinstance(notice, TaskNotice) and notice.task_event not in ("attempt_ended",):
                        self.line(f"[engine] {mask(notice.number)} {notice.task_event}"
                                  + (f" ({notice.outcome})" if notice.outcome else ""))
                    elif isinstance(notice, NetworkSaid):
                        number = engine.store.task(notice.task).dial
                        how = ("the busy tone" if notice.by == "tone" and notice.what == "busy"
                               else f"the {notice.what} {notice.by}")
                        self.line(f"[engine] {mask(number)} the network said: {how} "
                                  f"({notice.after_s:g} s); the call is cancelled")
                    elif isinstance(notice, TextNotice) and notice.kind == "warning":
                        self.line(f"[engine] {mask(notice.number)} warning text "
                                  + ("delivered" if notice.sms_event == "warning_sent"
                                     else f"refused ({notice.status})"))
                tasks = [engine.store.task(self.ids[p.number]) for p in PHONES]
                live.update(self._view(engine))
                if all(not t.state.open for t in tasks):
                    return tasks
                await asyncio.sleep(0.25)
        self.line(f"the demo's time ({self.timeout_s:.0f} s) is up")
        return [engine.store.task(self.ids[p.number]) for p in PHONES]

    def _view(self, engine: Engine) -> Group:
        table = Table(title="warning calls (Ctrl-C stops the demo)", title_justify="left")
        for column in ("number", "fraud type", "the phone", "state", "attempts", "last outcome"):
            table.add_column(column)
        for phone in PHONES:
            task_id = self.ids.get(phone.number)
            task = engine.store.task(task_id) if task_id else None
            table.add_row(mask(phone.number), phone.fraud_type, phone.story,
                          task.state.value if task else "", str(task.tries) if task else "",
                          task.last_outcome.value if task and task.last_outcome else "")
        return Group(table, Text("\n".join(self.lines)))

    def _final(self, tasks: list[Task], texts: dict[str, int], known: dict[str, str]) -> Table:
        table = Table(title="outcomes", title_justify="left")
        for column in ("number", "fraud type", "outcome", "known by", "attempts",
                       "warning texts", "to acknowledgement", "escalated", "as expected"):
            table.add_column(column)
        for phone, task in zip(PHONES, tasks, strict=True):
            reach = task.time_to_reach_s
            to_ack = f"{reach:.1f} s" if reach is not None else "-"
            reason = task.reason.split(" (")[0]  # how it was known has a column of its own
            table.add_row(task.masked, phone.fraud_type, task.state.value + (
                f" ({reason})" if task.state is TaskState.FAILED else ""),
                known.get(task.id, ""), str(task.tries),
                str(texts.get(task.id, 0)), to_ack,
                "yes" if task.escalated_at else "no", "yes" if task.state is phone.expected else "NO")
        return table


def write_caling(path: Path) -> Path:
    """Ring-back music (a 彩铃): a little tune of plucked notes with harmonics, 8 kHz."""
    rate, tune = 8000, [523.3, 659.3, 784.0, 659.3, 587.3, 523.3, 440.0, 523.3]
    t = np.arange(round(0.3 * rate)) / rate
    notes = [sum(a * np.sin(2 * np.pi * hz * k * t) for k, a in ((1, 1.0), (2, 0.5), (3, 0.25)))
             * np.exp(-4 * t) for hz in tune]
    samples = (np.concatenate(notes) / 1.75 * 12000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


class _NoLive:
    """Without a terminal: the lines are printed as they come, no live table."""

    def __enter__(self) -> _NoLive:  # noqa: PYI034 - a stand-in for rich's Live
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, view: object) -> None:
        return None


def run_demo(directory: Path | None, timeout_s: float) -> int:
    work = directory or Path(tempfile.mkdtemp(prefix="antifraud-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, filename=str(work / "engine.log"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(width=None if sys.stdout.isatty() else 130)
    console.print(f"demo: the engine and a simulated carrier on loopback, in {work}", highlight=False)
    return asyncio.run(Demo(work, console, timeout_s).run())
