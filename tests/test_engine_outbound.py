"""Outbound calls and worker life cycle: the engine in this test's asyncio loop,
its workers as subprocesses, SIPp as the trunk."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

from enginectl import write_config
from workerproc import Sipp

from engine import LOST, AlreadyCalling, Engine
from sip_config import load_config
from softphone import protocol as p


def run(coro: object, timeout: float = 60) -> object:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


async def started(config: Path) -> Engine:
    engine = Engine(load_config(config))
    await engine.start()
    return engine


def test_busy_then_answered(tmp_path: Path) -> None:
    busy = Sipp("uas_busy_486.xml", tmp_path, timeout_s=15)
    config = write_config(tmp_path, trunk=f"sip:{busy.uri_host}")

    async def scenario() -> tuple[p.Event, p.Event, p.Event]:
        engine = await started(config)
        try:
            first = await engine.dial("13800137490", ring_timeout_s=5)
            busy_outcome = await asyncio.wait_for(first.outcome, 10)
            await asyncio.wait_for(first.ended, 10)
            assert busy.wait() == 0, busy.report()
            # the same trunk address now answers
            answer = Sipp("uas_answer_until_bye.xml", tmp_path, timeout_s=15, port=busy.port)
            await asyncio.sleep(0.3)
            second = await engine.dial("13800137490", ring_timeout_s=5)
            answered = await asyncio.wait_for(second.outcome, 10)
            await second.hangup()
            ended = await asyncio.wait_for(second.ended, 10)
            assert answer.wait() == 0, answer.report()
            return busy_outcome, answered, ended
        finally:
            await engine.stop()

    busy_outcome, answered, ended = run(scenario())  # type: ignore[misc]
    assert isinstance(busy_outcome, p.Busy) and busy_outcome.status == 486
    assert isinstance(answered, p.Answered)
    assert isinstance(ended, p.HungUp) and ended.by == "local"


def test_twelve_concurrent_calls_across_three_workers(tmp_path: Path) -> None:
    trunk = Sipp("uas_answer_until_bye.xml", tmp_path, "-l", "12", calls=12, timeout_s=40)
    config = write_config(tmp_path, workers=3, trunk=f"sip:{trunk.uri_host}", max_channels=12)

    async def scenario() -> tuple[Counter[str], list[p.Event], list[p.HungUp], int]:
        engine = await started(config)
        try:
            calls = [await engine.dial(f"1380013{7400 + i}") for i in range(12)]
            outcomes = await asyncio.wait_for(asyncio.gather(*(c.outcome for c in calls)), 20)
            held = sum(len(w.calls) for w in engine.pool.workers)
            spread = Counter(c.worker for c in calls)
            await asyncio.sleep(1.0)  # hold all twelve at once
            for call in calls:
                await call.hangup()
            ended = await asyncio.wait_for(asyncio.gather(*(c.ended for c in calls)), 20)
            return spread, list(outcomes), list(ended), held
        finally:
            await engine.stop()

    spread, outcomes, ended, held = run(scenario())  # type: ignore[misc]
    assert trunk.wait() == 0, trunk.report()
    assert held == 12
    assert sorted(spread.values()) == [4, 4, 4]
    assert all(isinstance(o, p.Answered) for o in outcomes), outcomes
    assert all(e.by == "local" and e.status == 200 for e in ended), ended


def test_killed_worker_is_restarted_and_its_call_reported_ended(tmp_path: Path) -> None:
    trunk = Sipp("uas_answer_until_bye.xml", tmp_path, "-l", "2", calls=2, timeout_s=40)
    config = write_config(tmp_path, trunk=f"sip:{trunk.uri_host}")

    async def scenario() -> tuple[p.HungUp, int, p.Event]:
        engine = await started(config)
        try:
            call = await engine.dial("13800137490")
            assert isinstance(await asyncio.wait_for(call.outcome, 10), p.Answered)
            worker = engine.pool.workers[0]
            os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
            lost = await asyncio.wait_for(call.ended, 10)
            await asyncio.wait_for(worker.ready.wait(), 20)  # started again
            again = await engine.dial("13800137491")
            outcome = await asyncio.wait_for(again.outcome, 10)
            await again.hangup()
            await asyncio.wait_for(again.ended, 10)
            return lost, worker.restarts, outcome
        finally:
            await engine.stop()
            trunk.kill()

    lost, restarts, outcome = run(scenario())  # type: ignore[misc]
    assert lost.by == LOST and lost.status == 500
    assert restarts == 1
    assert isinstance(outcome, p.Answered)


def test_never_two_calls_to_one_number(tmp_path: Path) -> None:
    trunk = Sipp("uas_answer_until_bye.xml", tmp_path, calls=1, timeout_s=20)
    config = write_config(tmp_path, trunk=f"sip:{trunk.uri_host}")

    async def scenario() -> None:
        engine = await started(config)
        try:
            call = await engine.dial("13800137490")
            try:
                await engine.dial("+86 138 0013 7490")
            except AlreadyCalling:
                pass
            else:
                raise AssertionError("a second call to the same number was placed")
            await asyncio.wait_for(call.outcome, 10)
            await call.hangup()
            await asyncio.wait_for(call.ended, 10)
        finally:
            await engine.stop()

    run(scenario())
    assert trunk.wait() == 0, trunk.report()


def test_trunk_channel_and_call_rate_limits(tmp_path: Path) -> None:
    trunk = Sipp("uas_answer_until_bye.xml", tmp_path, "-l", "4", calls=4, timeout_s=30)
    config = write_config(tmp_path, workers=2, trunk=f"sip:{trunk.uri_host}", max_channels=2, max_cps=4)

    async def scenario() -> tuple[list[float], int]:
        engine = await started(config)
        loop = asyncio.get_running_loop()
        placed: list[float] = []
        busiest = 0

        async def one(number: str) -> None:
            nonlocal busiest
            call = await engine.dial(number)
            placed.append(loop.time())
            assert isinstance(await asyncio.wait_for(call.outcome, 10), p.Answered)
            busiest = max(busiest, engine.pacer.active)
            await asyncio.sleep(0.6)
            await call.hangup()
            await asyncio.wait_for(call.ended, 10)

        try:
            await asyncio.gather(*(one(f"1390000{1000 + i}") for i in range(4)))
        finally:
            await engine.stop()
        return sorted(placed), busiest

    placed, busiest = run(scenario())  # type: ignore[misc]
    assert trunk.wait() == 0, trunk.report()
    assert busiest == 2  # max_channels
    assert placed[1] - placed[0] >= 0.24  # max_cps 4: a quarter second apart
    assert placed[2] - placed[0] >= 0.6  # the third waits for a channel to free
