"""The warning dialer inside the engine, over fake workers and a fake clock: whole campaigns
(busy, busy, answered and acknowledged) in milliseconds of real time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from enginectl import TZ, write_config
from fakeworker import (
    ACK,
    ACK_INFO,
    BUSY,
    MACHINE,
    NOT_FOUND,
    OFFICER,
    RANG_OUT,
    SILENT,
    TRUNK_503,
    FakeWorker,
)

from center import Actor
from dialer import Outcome, Task, TaskState, validate
from dialer.catalog import REQUIRED_TYPES
from engine import Engine, FakeClock
from settings import load_settings
from sip_config import load_config
from softphone import protocol as p

TEST = Actor("test", "engine")
START = datetime(2027, 1, 15, 16, 20, tzinfo=ZoneInfo(TZ)).timestamp()  # not in quiet hours
Scenario = Callable[[Engine, FakeClock, FakeWorker], Awaitable[Any]]


def run(config: Path, scenario: Scenario, start: float = START) -> Any:
    async def main() -> Any:
        clock = FakeClock(start)
        engine = Engine(load_config(config), worker_type=FakeWorker, clock=clock)
        engine.dialing.rng = lambda: 0.5  # no jitter: waits are exact
        await engine.start()
        try:
            return await asyncio.wait_for(scenario(engine, clock, engine.pool.workers[0]), 20)  # type: ignore[arg-type]
        finally:
            await engine.stop()

    return asyncio.run(main())


async def settle(engine: Engine) -> None:
    for _ in range(200):
        await asyncio.sleep(0)
        if engine.pool.inbox.empty():
            await asyncio.sleep(0)
            if engine.pool.inbox.empty():
                return


async def until_done(engine: Engine, clock: FakeClock, *task_ids: str, jumps: int = 2000) -> list[Task]:
    """Let time run (timer to timer) until every task is final."""
    for _ in range(jumps):
        await settle(engine)
        tasks = [engine.store.task(t) for t in task_ids]
        if all(not t.state.open for t in tasks):
            return tasks
        if not clock.jump():
            await asyncio.sleep(0.001)
    raise AssertionError(f"not done: {[engine.store.task(t) for t in task_ids]}")


async def answered(engine: Engine, task_id: str) -> None:
    for _ in range(200):
        await settle(engine)
        live = engine.dialing.live.get(task_id)
        if live is not None and live.flow.answered_at is not None:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"task {task_id} was not answered")


def submit(engine: Engine, number: str, **fields: Any) -> str:
    request = validate(number, known_types=REQUIRED_TYPES, **fields)
    return engine.center.warn(request, TEST).task.id


DIALER = """\
  retry: {busy_s: 15, busy_growth: 1.0, busy_cap_s: 15, rang_out_s: 10, no_answer_s: 60,
          unacknowledged_s: 120, machine_s: 300, trunk_s: 5, trunk_cap_s: 40, jitter: 0}
  max_attempts: 4
  escalate_after_attempts: 3
  officer_uri: sip:duty@127.0.0.1:5090
"""


def config(tmp_path: Path, channels: int = 30, cps: float = 50, extra: str = "") -> Path:
    path = write_config(tmp_path, max_channels=channels, max_cps=cps)
    text = path.read_text().replace("dialer:\n", "dialer:\n" + DIALER + extra)
    path.write_text(text)
    return path


def outcomes(engine: Engine, task_id: str) -> list[str]:
    return [a.outcome.value for a in engine.store.attempts(task_id) if a.outcome]


def test_busy_twice_then_acknowledged_after_exactly_three_attempts(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [BUSY, BUSY, ACK]
        task_id = submit(engine, "+86 138 0013 7490", fraud_type="police_impersonation")
        [task] = await until_done(engine, clock, task_id)
        starts = [a.started_at - START for a in engine.store.attempts(task_id)]
        return task, outcomes(engine, task_id), starts, engine.store.events(task_id)

    task, seen, starts, events = run(config(tmp_path), scenario)
    assert task.state is TaskState.ACKNOWLEDGED
    assert task.tries == 3 and task.attempts == 2  # the acknowledged attempt is not a failure
    assert seen == ["busy", "busy", "acknowledged"]
    assert starts == [0.0, 15.0, 30.0]  # busy_s after each busy
    kinds = [e.event for e in events]
    assert kinds[0] == "queued" and kinds[-3:] == ["acknowledged", "attempt_ended", "completed"]
    assert task.reached_at is not None and task.time_to_reach_s == 30.0
    assert kinds.count("attempt") == 3 and kinds.count("answered") == 1


def test_sip_info_digit_acknowledges_too(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [ACK_INFO]
        task_id = submit(engine, "13800137490")
        [task] = await until_done(engine, clock, task_id)
        return task, engine.store.attempts(task_id)

    task, attempts = run(config(tmp_path), scenario)
    assert task.state is TaskState.ACKNOWLEDGED
    assert attempts[0].digits == "1" and attempts[0].answered_at is not None


def test_never_acknowledges_escalates_then_stops_at_max_attempts(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [SILENT]  # answers, listens, never presses the digit
        queue = engine.subscribe()
        task_id = submit(engine, "13800137490", case_id="FZ-2026-1201")
        [task] = await until_done(engine, clock, task_id)
        notices = []
        while not queue.empty():
            notices.append(queue.get_nowait())
        return task, outcomes(engine, task_id), notices

    task, seen, notices = run(config(tmp_path), scenario)
    assert task.state is TaskState.FAILED and task.reason == "no acknowledgement after 4 attempts"
    assert seen == ["answered_no_ack"] * 4
    [escalated] = [n for n in notices if getattr(n, "task_event", "") == "escalated"]
    assert escalated.attempt == 3
    assert escalated.payload()["case_ids"] == ["FZ-2026-1201"]
    assert escalated.payload()["number"] == "138****7490"


def test_a_waiting_call_that_always_rings_out_is_escalated_and_called_until_give_up(
        tmp_path: Path) -> None:
    """Call waiting: the person talks to the scammer and lets our call ring out, every time.
    The line is in use, as when busy: escalated after 3, then called past max_attempts (4)
    until give_up_after_s."""
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [RANG_OUT]
        queue = engine.subscribe()
        task_id = submit(engine, "13800137490", case_id="FZ-2026-1202")
        [task] = await until_done(engine, clock, task_id)
        notices = []
        while not queue.empty():
            notices.append(queue.get_nowait())
        return task, outcomes(engine, task_id), notices

    task, seen, notices = run(config(tmp_path, extra="  give_up_after_s: 100\n"), scenario)
    assert task.state is TaskState.FAILED and task.reason == (
        "gave up after 1.67 min without an acknowledgement")
    assert seen == ["rang_out"] * 11  # every 10 s (rang_out_s), never stopped at 4
    [escalated] = [n for n in notices if getattr(n, "task_event", "") == "escalated"]
    assert escalated.attempt == 3


def test_not_found_fails_after_one_attempt(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800000404"] = [NOT_FOUND]
        task_id = submit(engine, "13800000404")
        [task] = await until_done(engine, clock, task_id)
        return task

    task = run(config(tmp_path), scenario)
    assert task.state is TaskState.FAILED and task.tries == 1


def test_trunk_errors_back_off_and_do_not_count(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [TRUNK_503, TRUNK_503, TRUNK_503, ACK]
        task_id = submit(engine, "13800137490")
        [task] = await until_done(engine, clock, task_id)
        return task, [a.started_at - START for a in engine.store.attempts(task_id)]

    task, starts = run(config(tmp_path), scenario)
    assert task.state is TaskState.ACKNOWLEDGED and task.attempts == 0
    assert starts == [0.0, 5.0, 15.0, 35.0]  # 5, 10, 20: doubling


def test_answering_machine_gets_the_short_message_and_the_task_stays_open(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [MACHINE, ACK]
        task_id = submit(engine, "13800137490")
        [task] = await until_done(engine, clock, task_id)
        first = [c for c in worker.sent if getattr(c, "call", "") == f"{task_id}-1"]
        return task, outcomes(engine, task_id), first, engine.store.attempts(task_id)

    task, seen, first, attempts = run(config(tmp_path), scenario)
    assert task.state is TaskState.ACKNOWLEDGED
    assert seen == ["machine", "acknowledged"]
    assert attempts[1].started_at - attempts[0].ended_at == 300  # machine_s
    plays = [Path(c.file).stem for c in first if isinstance(c, p.Play)]
    assert plays == ["warn-general", "warn-machine"]
    assert any(isinstance(c, p.DetectMachine) for c in first)
    assert attempts[0].amd == "machine"


def test_zero_reaches_the_duty_officer(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [OFFICER]
        task_id = submit(engine, "13800137490")
        for _ in range(200):
            await settle(engine)
            if any(isinstance(c, p.Bridge) for c in worker.sent):
                break
            await asyncio.sleep(0.005)
        worker.hang_up_remote(f"{task_id}-1")  # the person hangs up after talking
        [task] = await until_done(engine, clock, task_id)
        return task, list(worker.sent)

    task, sent = run(config(tmp_path), scenario)
    assert task.state is TaskState.TRANSFERRED
    [officer] = [c for c in sent if isinstance(c, p.Dial) and c.call.endswith("-officer")]
    assert officer.uri == "sip:duty@127.0.0.1:5090"
    assert sent[-1] == p.Hangup(officer.call)  # the officer's leg ends with the person's


def test_officer_unreachable_the_warning_resumes(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [OFFICER]
        worker.officer = BUSY
        task_id = submit(engine, "13800137490")
        [task] = await until_done(engine, clock, task_id)
        return task, [Path(c.file).stem for c in worker.of_call(f"{task_id}-1") if isinstance(c, p.Play)]

    task, plays = run(config(tmp_path), scenario)
    assert plays[:4] == ["warn-general", "warn-connecting", "warn-officer-unreachable", "warn-general"]
    assert task.last_outcome is Outcome.UNACKNOWLEDGED  # it went on silent, then goodbye


def test_silence_repeats_the_warning_then_retries_later(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [SILENT, ACK]
        task_id = submit(engine, "13800137490")
        [task] = await until_done(engine, clock, task_id)
        plays = [Path(c.file).stem for c in worker.of_call(f"{task_id}-1") if isinstance(c, p.Play)]
        return task, plays, engine.store.attempts(task_id)

    task, plays, attempts = run(config(tmp_path), scenario)
    assert plays == ["warn-general"] * 3 + ["warn-goodbye"]
    assert attempts[0].outcome is Outcome.UNACKNOWLEDGED
    assert attempts[1].started_at - attempts[0].ended_at == 120  # unacknowledged_s
    assert task.state is TaskState.ACKNOWLEDGED


def test_a_lost_worker_is_not_counted_and_the_task_is_retried(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [SILENT, ACK]
        task_id = submit(engine, "13800137490")
        await answered(engine, task_id)
        worker.die()
        [task] = await until_done(engine, clock, task_id)
        return task, outcomes(engine, task_id), engine.dialing.pacer.active

    task, seen, active = run(config(tmp_path), scenario)
    assert seen == ["lost", "acknowledged"]
    assert task.attempts == 0 and active == 0


def test_one_open_task_per_number_merges_requests(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [BUSY]
        first = engine.center.warn(validate("13800137490", risk="normal", case_id="A-1",
                                            known_types=REQUIRED_TYPES), TEST)
        second = engine.center.warn(validate("+8613800137490", risk="high", case_id="B-2",
                                             fraud_type="loan", known_types=REQUIRED_TYPES), TEST)
        again = engine.center.warn(validate("13800137490", request_id="mq-7",
                                            known_types=REQUIRED_TYPES), TEST)
        repeat = engine.center.warn(validate("13800137490", request_id="mq-7",
                                             known_types=REQUIRED_TYPES), TEST)
        return first, second, again, repeat, engine.store.tasks()

    first, second, again, repeat, tasks = run(config(tmp_path), scenario)
    assert len(tasks) == 1
    assert second.merged and second.task.id == first.task.id
    assert second.task.risk.value == "high" and second.task.case_ids == ("A-1", "B-2")
    assert second.task.fraud_type == "loan"  # a general task learns its type
    assert again.merged and repeat.duplicate and repeat.task.id == first.task.id
    assert "already accepted" in repeat.sentence()


def test_channels_are_shared_and_never_two_calls_to_one_number(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        numbers = [f"1390000{1000 + i}" for i in range(6)]
        for number in numbers:
            worker.phones[number] = [BUSY, BUSY, ACK]
        ids = [submit(engine, n) for n in numbers]
        busiest = 0
        for _ in range(500):
            await settle(engine)
            busiest = max(busiest, engine.dialing.pacer.active)
            numbers_live = [lv.key for lv in engine.dialing.live.values()]
            assert len(numbers_live) == len(set(numbers_live))
            if all(not engine.store.task(t).state.open for t in ids):
                break
            if not clock.jump():
                await asyncio.sleep(0.001)
        return [engine.store.task(t) for t in ids], busiest

    tasks, busiest = run(config(tmp_path, channels=2), scenario)
    assert all(t.state is TaskState.ACKNOWLEDGED and t.tries == 3 for t in tasks)
    assert busiest <= 2


def test_high_risk_goes_first_then_the_oldest(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.answers.update({n: ACK for n in ("13900001001", "13900001002", "13900001003")})
        a = submit(engine, "13900001001", risk="normal")
        b = submit(engine, "13900001002", risk="high")
        c = submit(engine, "13900001003", risk="normal")
        await until_done(engine, clock, a, b, c)
        return worker.dialled

    # one channel, so the order of the queue is the order of the calls
    assert run(config(tmp_path, channels=1), scenario) == ["13900001002", "13900001001", "13900001003"]


def test_normal_risk_waits_out_the_quiet_hours(tmp_path: Path) -> None:
    night = datetime(2027, 1, 16, 0, 20, tzinfo=ZoneInfo(TZ)).timestamp()

    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.answers.update({"13900001001": ACK, "13900001002": ACK})
        normal = submit(engine, "13900001001", risk="normal")
        high = submit(engine, "13900001002", risk="high")
        await until_done(engine, clock, normal, high)
        return [engine.store.attempts(t)[0].started_at - night for t in (normal, high)]

    normal_at, high_at = run(config(tmp_path, extra='  quiet_hours: "22:00-08:00"\n'), scenario,
                             start=night)
    assert high_at == 0.0
    assert normal_at == 7 * 3600 + 40 * 60  # 08:00


def test_cancel_stops_a_task(tmp_path: Path) -> None:
    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [BUSY]
        task_id = submit(engine, "13800137490")
        for _ in range(200):
            await settle(engine)
            if engine.store.attempts(task_id):
                break
            await asyncio.sleep(0.005)
        engine.store.cancel(task_id, clock.now(), "reached by the local station")
        clock.advance(3600)
        await settle(engine)
        return engine.store.task(task_id), len(engine.store.attempts(task_id))

    task, attempts = run(config(tmp_path), scenario)
    assert task.state is TaskState.CANCELLED and attempts == 1


def test_a_reload_brings_forward_the_retries_planned_later_than_its_policy(tmp_path: Path) -> None:
    path = config(tmp_path)

    async def scenario(engine: Engine, clock: FakeClock, worker: FakeWorker) -> Any:
        worker.phones["13800137490"] = [BUSY, ACK]
        worker.phones["13900139002"] = [TRUNK_503, ACK]
        busy, rang = submit(engine, "13800137490"), submit(engine, "13900139002")
        while not all(engine.store.task(t).state is TaskState.WAITING for t in (busy, rang)):
            await settle(engine)
            if not clock.jump():  # to the trunk's next setup (max_cps)
                await asyncio.sleep(0.001)
        planned = {t: engine.store.task(t).next_at for t in (busy, rang)}
        path.write_text(path.read_text().replace("busy_s: 15, busy_growth: 1.0, busy_cap_s: 15",
                                                 "busy_s: 3, busy_growth: 1.0, busy_cap_s: 3"))
        engine.reconfigure(load_settings(path), "cli:duty")
        while engine.store.task(busy).next_at == planned[busy]:  # the pass over waiting tasks
            await asyncio.sleep(0.001)
        for _ in range(1000):  # timer to timer, each given the time to be acted on
            await asyncio.sleep(0.02)
            if all(not engine.store.task(t).state.open for t in (busy, rang)):
                break
            clock.jump()
        starts = {t: [a.started_at - START for a in engine.store.attempts(t)] for t in (busy, rang)}
        return planned, starts, engine.store.events(busy)

    planned, starts, events = run(path, scenario)
    assert [round(at - START, 2) for at in planned.values()] == [15.0, 5.02]  # busy_s, trunk_s
    # the new busy_s; trunk_s as it was
    assert [[round(s, 2) for s in each] for each in starts.values()] == [[0.0, 3.0], [0.02, 5.02]]
    [moved] = [e for e in events if e.event == "rescheduled"]
    assert moved.detail["was"] - START == 15.0 and moved.detail["by"] == "reload:cli:duty"
