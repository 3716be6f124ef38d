"""The engine's call logic over fake workers: no SIP, no processes, milliseconds a test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from enginectl import TZ, read_events, write_config
from fakeworker import FakeWorker

from center import Actor
from dialer.requests import validate
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

    assert with_engine(config, scenario) == ["answer", "play", "play"]  # welcome, then 3: a message
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

    assert with_engine(config, scenario) == ["warning", "ivr-welcome"]


def test_an_unreadable_list_is_served_from_its_last_good_copy_and_reported_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, blocked=("13900001111",))

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> tuple[list, list]:
        meta = tmp_path / "var" / "lists" / "fraud" / "meta.json"
        good = meta.read_text()
        meta.write_text("garbage")
        blocked = workers[0].ring("13900001111", "961108")
        other = workers[0].ring("13800001234", "961108")
        again = workers[0].ring("13900001111", "961108")
        await settle(engine)
        meta.write_text(good)
        after = workers[0].ring("13900001111", "961108")
        await settle(engine)
        return [workers[0].of_call(c)[0] for c in (blocked, other, again, after)], [
            e["event"] for e in read_events(config) if e["event"].startswith("list_")]

    first, kinds = with_engine(config, scenario)
    assert [type(c).__name__ for c in first] == ["Reject", "Answer", "Reject", "Reject"]
    assert kinds == ["list_unreadable", "list_mended"]  # once, then once when mended
    [unreadable] = [e for e in read_events(config) if e["event"] == "list_unreadable"]
    assert unreadable["list"] == "fraud" and "lists/fraud" in unreadable["error"]


def test_when_no_decision_can_be_made_the_caller_is_let_through(tmp_path: Path) -> None:
    async def scenario(engine: Engine, workers: list[FakeWorker]) -> p.Command:
        def broken(caller: str, now: float) -> None:
            raise RuntimeError("the decision failed")

        engine.gate.screener.decide = broken  # type: ignore[method-assign]
        call = workers[0].ring("13900001111", "961108")
        await settle(engine)
        return workers[0].of_call(call)[0]

    config = write_config(tmp_path)
    assert with_engine(config, scenario) == p.Answer("w1-in-1")
    [screened] = [e for e in read_events(config) if e["event"] == "screened"]
    assert screened["rule"] == "error" and "the decision failed" in screened["error"]


def test_on_error_reject_answers_503(tmp_path: Path) -> None:
    async def scenario(engine: Engine, workers: list[FakeWorker]) -> p.Command:
        engine.gate.screener.decide = None  # type: ignore[assignment, method-assign]
        call = workers[0].ring("13800001234", "961108")
        await settle(engine)
        return workers[0].of_call(call)[0]

    config = write_config(tmp_path, extra="")
    config.write_text(config.read_text().replace("screening:\n", "screening:\n  on_error: reject\n"))
    assert with_engine(config, scenario) == p.Reject("w1-in-1", 503)


def test_a_call_whose_handling_fails_still_gets_a_final_response(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.desk

    class Broken:
        def __init__(self, *args: object) -> None:
            raise ValueError("a bug in the call flow")

    monkeypatch.setattr(engine.desk, "InboundCall", Broken)

    async def scenario(engine_: Engine, workers: list[FakeWorker]) -> list[p.Command]:
        call = workers[0].ring("13800001234", "961108")
        second = workers[0].ring("13800001235", "961108")
        await settle(engine_)
        return workers[0].of_call(call) + workers[0].of_call(second)

    config = write_config(tmp_path)
    assert with_engine(config, scenario) == [p.Reject("w1-in-1", 500), p.Reject("w1-in-2", 500)]
    assert [e["event"] for e in read_events(config)].count("flow_failed") == 2


def test_a_flow_that_raises_mid_call_is_hung_up_and_the_engine_goes_on(tmp_path: Path) -> None:
    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[p.Command]:
        call = workers[0].ring("13800001234", "961108")
        await settle(engine)
        engine.flows[call].classify = None  # type: ignore[assignment, method-assign]
        workers[0]._emit(p.Dtmf(call, "1", "rfc2833"))
        await settle(engine)
        later = workers[0].ring("13800001235", "961108")
        await settle(engine)
        return workers[0].of_call(call) + workers[0].of_call(later)[:1]

    config = write_config(tmp_path)
    sent = with_engine(config, scenario)
    assert [type(c).__name__ for c in sent] == ["Answer", "Play", "Hangup", "Answer"]
    assert sent[2] == p.Hangup("w1-in-1", 500)


def test_the_status_events_name_an_unreadable_list_until_it_is_mended(tmp_path: Path) -> None:
    config = write_config(tmp_path, blocked=("13900001111",))

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> tuple[list, list]:
        meta = tmp_path / "var" / "lists" / "fraud" / "meta.json"
        good = meta.read_text()
        meta.write_text("garbage")
        workers[0].ring("13900001111", "961108")
        await settle(engine)
        await asyncio.sleep(1.3)  # the status loop looks every second
        broken = engine.status().lists_unreadable
        meta.write_text(good)
        workers[0].ring("13900001111", "961108")
        await settle(engine)
        await asyncio.sleep(1.3)
        return broken, [e["lists_unreadable"] for e in read_events(config) if e["event"] == "status"]

    broken, statuses = with_engine(config, scenario)
    assert broken == ["fraud"]
    assert ["fraud"] in statuses and statuses[-1] == []


def test_texts_with_no_number_are_dropped_and_foreign_ones_answered_abroad(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra='sms:\n  number: "121100130"\n')

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[p.SendText]:
        workers[0].text("anonymous", "121100130", "你好")
        workers[0].text("+14155550123", "121100130", "有人让我转到安全账户")
        workers[0].text("13812347490", "121100130", "我在网上刷单")
        for _ in range(20):
            await settle(engine)
            await asyncio.sleep(0.02)
        return [c for c in workers[0].sent if isinstance(c, p.SendText)]

    sent = with_engine(config, scenario)
    assert sorted(c.uri.split("@")[0] for c in sent) == ["sip:+14155550123", "sip:13812347490"]
    assert all(c.sender == "121100130" for c in sent)
    dropped = [e["why"] for e in read_events(config) if e["event"] == "text_dropped"]
    assert dropped == ["its sender has no phone number to answer"]
    statuses = [e["sms_event"] for e in read_events(config) if e["event"] == "sms"]
    assert statuses.count("received") == 2 and statuses.count("auto_replied") == 2


def test_a_text_queued_while_no_worker_is_up_goes_out_when_one_is(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra='sms:\n  number: "121100130"\n')

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> tuple[int, int, str]:
        worker = workers[0]
        worker.ready.clear()  # down: nothing can be sent
        thread = engine.texting.store.receive("13812347490", "问题", 1.0, thread_s=600)[0]
        engine.center.reply(thread.thread_id or "", "回答", Actor("test", "texts"))
        for _ in range(5):
            await settle(engine)
            await asyncio.sleep(0.02)
        before = sum(isinstance(c, p.SendText) for c in worker.sent)
        worker.start()  # up again: a worker's start wakes the sender
        for _ in range(20):
            await settle(engine)
            await asyncio.sleep(0.02)
        after = sum(isinstance(c, p.SendText) for c in worker.sent)
        [message] = [m for m in engine.texting.store.of_thread(thread.thread_id or "")
                     if m.kind == "reply"]
        return before, after, message.state

    assert with_engine(config, scenario) == (0, 1, "sent")


def test_texts_the_line_must_not_answer_and_where_answers_go(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra='sms:\n  number: "121100130"\n',
                          hotline_extra='  area_code: "0591"\n')

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> list[str]:
        workers[0].text("0591121100130", "121100130", "环回")  # our own line, through the trunk
        workers[0].text("059187654321", "121100130", "有人说要注销校园贷")  # a landline
        for _ in range(10):
            await settle(engine)
            await asyncio.sleep(0.02)
        return [c.uri for c in workers[0].sent if isinstance(c, p.SendText)]

    [uri] = with_engine(config, scenario)
    assert uri.startswith("sip:059187654321@")  # the trunk 0 kept
    dropped = [e["why"] for e in read_events(config) if e["event"] == "text_dropped"]
    assert dropped == ["it comes from our own number (a loop through the trunk?)"]


def test_a_text_on_a_worker_that_dies_goes_out_again_and_a_refused_reply_reopens_its_thread(
        tmp_path: Path) -> None:
    config = write_config(tmp_path, extra='sms:\n  number: "121100130"\n')

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> tuple[int, str, str]:
        worker = workers[0]
        worker.text_status = None  # the text goes, no answer comes: then the worker dies
        thread = engine.texting.store.receive("13812347490", "问题", 1.0, thread_s=600)[0]
        engine.center.reply(thread.thread_id or "", "回答", Actor("test", "texts"))
        for _ in range(5):
            await settle(engine)
            await asyncio.sleep(0.02)
        worker.restarts += 1  # what the supervisor counts when the process exits
        worker.text_status = 480  # the next one is refused by the far end
        for _ in range(80):
            await settle(engine)
            await asyncio.sleep(0.02)
        sends = sum(isinstance(c, p.SendText) for c in worker.sent)
        [reply] = [m for m in engine.texting.store.of_thread(thread.thread_id or "")
                   if m.kind == "reply"]
        return sends, reply.state, engine.texting.store.thread(thread.thread_id or "").state

    assert with_engine(config, scenario) == (2, "failed", "waiting")


def test_a_warning_text_still_waiting_when_its_task_closes_is_not_sent(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra='sms:\n  number: "121100130"\n')

    async def scenario(engine: Engine, workers: list[FakeWorker]) -> tuple[int, str]:
        workers[0].ready.clear()  # no worker up: the text waits
        submitted = engine.center.warn(validate("13800137490", None, "high", None, None,
                                                known_types=["general"]), Actor("test", "texts"))
        message = engine.texting.warn(submitted.task, engine.clock.now())
        engine.store.cancel(submitted.task.id, engine.clock.now(), "reached by the police")
        workers[0].start()
        for _ in range(20):
            await settle(engine)
            await asyncio.sleep(0.02)
        assert message is not None
        return (sum(isinstance(c, p.SendText) for c in workers[0].sent),
                engine.texting.store.message(message.id).state)

    assert with_engine(config, scenario) == (0, "dropped")
