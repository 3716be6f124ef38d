"""The engine's call logic over fake workers: no SIP, no processes, milliseconds a test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from enginectl import TZ, read_events, write_config
from fakeworker import FakeWorker

from engine import Engine, FakeClock
from sip_config import load_config
from softphone import protocol as p

Scenario = Callable[[Engine, list[FakeWorker]], Awaitable[Any]]
DAY = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo(TZ)).timestamp()  # inside 08:00-22:00
NIGHT = datetime(2026, 12, 1, 23, 30, tzinfo=ZoneInfo(TZ)).timestamp()


def with_engine(config: Path, scenario: Scenario, hours: bool = False) -> Any:
    async def main() -> Any:
        engine = Engine(load_config(config), worker_type=FakeWorker,
                        clock=FakeClock(DAY if hours else NIGHT))
        await engine.start()
        try:
            return await asyncio.wait_for(scenario(engine, engine.pool.workers), 10)  # type: ignore[arg-type]
        finally:
            await engine.stop()

    return asyncio.run(main())


async def settle(engine: Engine) -> None:
    """Until the engine has handled every event the fakes emitted."""
    for _ in range(100):
        await asyncio.sleep(0)
        if engine.pool.inbox.empty():
            await asyncio.sleep(0.01)
            if engine.pool.inbox.empty():
                return


def test_blocked_caller_is_rejected_with_the_list_status(tmp_path: Path) -> None:
    config = write_config(tmp_path, blocked=("13900001111",))

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[p.Command]:
        call = workers[0].ring("+86 139 0000 1111", "961108")
        await settle(engine)
        return workers[0].of_call(call)

    assert with_engine(config, scenario) == [p.Reject("w1-in-1", 603)]
    [screened] = [e for e in read_events(config) if e["event"] == "screened"]
    assert (screened["number"], screened["route"]) == ("139****1111", "reject")


def test_unknown_callee_is_404(tmp_path: Path) -> None:
    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[p.Command]:
        call = workers[0].ring("13800001234", "12345")
        await settle(engine)
        return workers[0].of_call(call)

    assert with_engine(write_config(tmp_path), scenario) == [p.Reject("w1-in-1", 404)]


def test_after_hours_the_welcome_plays_and_digits_are_reported(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[str]:
        worker = workers[0]
        call = worker.ring("13800001234", "961108")
        await settle(engine)
        worker._emit(p.Dtmf(call, "3", "info"))
        worker.hang_up_remote(call)
        await settle(engine)
        assert engine.flows == {}  # forgotten once both legs are gone
        return [c.TYPE for c in worker.of_call(call)]

    assert with_engine(config, scenario) == ["answer", "play"]
    kinds = [(e["event"], e.get("digit")) for e in read_events(config)]
    assert ("dtmf", "3") in kinds and kinds[-1][0] == "ended"


def test_operator_leg_is_dialled_on_the_same_worker_and_bridged(tmp_path: Path) -> None:
    config = write_config(tmp_path, workers=2, operator="sip:duty@127.0.0.1:5090")

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[p.Command]:
        workers[1].ring("13800001234", "961108")
        await settle(engine)
        assert not workers[0].sent
        return list(workers[1].sent)

    sent = with_engine(config, scenario, hours=True)
    assert [type(c) for c in sent] == [p.Ring, p.Dial, p.Answer, p.Bridge]
    dial = sent[1]
    assert isinstance(dial, p.Dial) and dial.uri == "sip:duty@127.0.0.1:5090"
    assert dial.caller_id == "13800001234"  # the operator sees who is calling


def test_warned_caller_hears_the_warning_before_the_ivr(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="")
    text = config.read_text().replace("screening:\n", "screening:\n  overseas: {action: warn}\n")
    config.write_text(text)

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[str]:
        worker = workers[0]
        call = worker.ring("+1 202 555 0143", "961108")
        await settle(engine)
        worker.play_ends(call)
        await settle(engine)
        return [Path(c.file).stem for c in worker.of_call(call) if isinstance(c, p.Play)]

    assert with_engine(config, scenario) == ["warning", "welcome"]
