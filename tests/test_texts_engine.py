"""The SMS consultation line through the engine as ``run`` starts it: texts from a SIP peer
on loopback in, replies out through the trunk (the same peer plays the carrier's SMS gateway),
and operators' answers by ``sms reply``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dialerctl import cli
from enginectl import EngineProcess, hours, read_events, write_config
from textpeer import TextPeer
from workerproc import Sipp

SMS = "121100130"
PERSON = "13812347490"
BLOCKED = "13900001111"


@pytest.fixture
def gateway() -> Iterator[TextPeer]:
    peer = TextPeer()
    yield peer
    peer.close()


def sms_config(work: Path, gateway: TextPeer, *, inside_hours: bool) -> Path:
    return write_config(work, operator_hours=hours(inside_now=inside_hours),
                        trunk=gateway.uri, blocked=(BLOCKED,),
                        hotline_extra='  area_code: "0591"\n',
                        extra=f'sms:\n  number: "{SMS}"\n')


def threads(config: Path, *args: str) -> list[dict]:
    out = cli(config, "sms", "list", "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_out_of_hours_a_text_is_stored_once_and_answered_with_110_and_the_advice(
        tmp_path: Path, gateway: TextPeer) -> None:
    config = sms_config(tmp_path, gateway, inside_hours=False)
    engine = EngineProcess(config)
    try:
        body = "有人打电话说我涉嫌犯罪，让我把存款转到安全账户，怎么办？"
        sent = time.monotonic()
        assert gateway.send(("127.0.0.1", engine.port), "0591" + SMS, PERSON, body) == 200
        reply = gateway.next_text()
        assert reply.at - sent < 2.0
        assert (reply.to_user, reply.from_user) == (PERSON, SMS)
        assert "110" in reply.text and "没有所谓的“安全账户”" in reply.text
        assert "每天" in reply.text  # the operator hours, named from the configuration
        assert gateway.quiet(1.0) == []  # one reply, not more
    finally:
        engine.stop()
    [thread] = threads(config)
    assert (thread["number"], thread["state"], thread["texts"]) == ("138****7490", "waiting", [body])
    assert thread["fraud_type"] == "police_impersonation"
    events = [e for e in read_events(config) if e["event"] == "sms"]
    assert [e["sms_event"] for e in events] == ["received", "auto_replied"]
    assert all(e["number"] == "138****7490" for e in events)
    assert PERSON not in (tmp_path / "engine.log").read_text()


def test_sipp_phones_a_text_and_the_gateway_gets_the_reply(tmp_path: Path) -> None:
    """SIPp on both ends: a phone sends the text, the SMS gateway on the trunk takes the reply."""
    gateway = Sipp("uas_message_expect_110.xml", tmp_path, "-trace_msg", timeout_s=20)
    config = write_config(tmp_path, operator_hours=hours(inside_now=False),
                          trunk=f"sip:{gateway.uri_host}", extra=f'sms:\n  number: "{SMS}"\n')
    engine = EngineProcess(config)
    try:
        phone = Sipp("uac_message.xml", tmp_path, "-s", SMS, "-key", "caller", PERSON,
                     "-key", "body", "朋友拉我进群投资理财，说稳赚不赔", remote=engine.target)
        assert phone.wait() == 0, phone.report() + engine.log_text()
        assert gateway.wait() == 0, gateway.report() + engine.log_text()
    finally:
        engine.stop()
    [trace] = tmp_path.glob("uas_message_expect_110_*_messages.log")
    received = trace.read_text(encoding="utf-8", errors="replace")
    assert f"MESSAGE sip:{PERSON}@" in received and f"sip:{SMS}@" in received
    assert "“投资”" in received  # the advice for the scam the text named
    [thread] = threads(config)
    assert thread["texts"] == ["朋友拉我进群投资理财，说稳赚不赔"]


def test_in_hours_an_acknowledgement_then_the_operators_reply(tmp_path: Path,
                                                              gateway: TextPeer) -> None:
    config = sms_config(tmp_path, gateway, inside_hours=True)
    engine = EngineProcess(config)
    try:
        assert gateway.send(("127.0.0.1", engine.port), SMS, PERSON, "客服说要给我退款") == 200
        ack = gateway.next_text()
        assert "尽快回复" in ack.text and "110" in ack.text
        assert "退款" not in ack.text  # the advice waits for the operator in hours
        [thread] = threads(config, "--state", "waiting")
        assert "sms         1 thread waiting for an operator" in cli(config, "status").stdout
        cli(config, "sms", "reply", thread["id"], "您好，这是冒充客服的诈骗，请不要转账。")
        answer = gateway.next_text()
        assert answer.text == "您好，这是冒充客服的诈骗，请不要转账。"
        assert (answer.to_user, answer.from_user) == (PERSON, SMS)
        deadline = time.monotonic() + 5
        while not [e for e in read_events(config) if e.get("sms_event") == "replied"]:
            assert time.monotonic() < deadline, "no replied event"
            time.sleep(0.1)
    finally:
        engine.stop()
    [thread] = threads(config)
    assert thread["state"] == "replied" and thread["replied_at"]
    report = json.loads(cli(config, "report", "--json").stdout)["texts"]
    assert (report["texts_received"], report["threads"], report["replied"]) == (1, 1, 1)
    assert report["auto_replies"] == 1 and report["reply_median_s"] is not None
    stats = json.loads(cli(config, "hotline", "stats", "--json").stdout)["texts"]
    assert (stats["threads"], stats["replied"], stats["waiting"]) == (1, 1, 0)


def test_a_flood_of_texts_from_one_sender_meets_the_rate_rule(tmp_path: Path,
                                                              gateway: TextPeer) -> None:
    config = sms_config(tmp_path, gateway, inside_hours=False)
    config.write_text(config.read_text().replace(
        "screening:\n", "screening:\n  rate: {max_calls: 3, window_s: 60, block_s: 600}\n"))
    engine = EngineProcess(config)
    try:
        for n in range(6):
            gateway.send(("127.0.0.1", engine.port), SMS, PERSON, f"第{n}条")
        assert len(gateway.quiet(1.5)) == 1  # the first text's reply; the rest join its thread
    finally:
        engine.stop()
    by_state = {t["state"]: t["texts"] for t in threads(config)}
    assert by_state["waiting"] == ["第0条", "第1条", "第2条"]
    assert by_state["blocked"] == ["第3条", "第4条", "第5条"]


def test_bad_texts_are_neither_stored_nor_answered(tmp_path: Path, gateway: TextPeer) -> None:
    config = sms_config(tmp_path, gateway, inside_hours=False)
    engine = EngineProcess(config)
    target = ("127.0.0.1", engine.port)
    try:
        gateway.send(target, SMS, PERSON, "安全账户".encode("gbk"), "text/plain;charset=GBK")
        gateway.send(target, SMS, PERSON, "", "text/plain")
        gateway.send(target, SMS, PERSON, '{"a": 1}', "application/json")
        gateway.send(target, SMS, PERSON, "长" * 1001)
        gateway.send(target, "10086", PERSON, "你好")
        gateway.send(target, SMS, BLOCKED, "点击链接领取补贴")  # stored, never answered
        assert gateway.quiet(1.5) == []
    finally:
        engine.stop()
    [blocked] = threads(config)
    assert (blocked["state"], blocked["number"]) == ("blocked", "139****1111")
    dropped = [e["why"] for e in read_events(config) if e["event"] == "text_dropped"]
    assert dropped == ["the body is not valid UTF-8", "its body is empty",
                       "its content type is application/json, not text/plain",
                       "its body has 1001 characters, more than 1000",
                       "it is for 10086, neither the SMS line nor the hotline"]


def test_through_the_front_that_run_starts(tmp_path: Path, gateway: TextPeer) -> None:
    """The Kamailio front refuses what it can see with a status; the rest reaches the line."""
    config = write_config(tmp_path, operator_hours=hours(inside_now=False), trunk=gateway.uri,
                          balancer="{}", hotline_extra='  area_code: "0591"\n',
                          extra=f'sms:\n  number: "{SMS}"\n')
    engine = EngineProcess(config)
    front = ("127.0.0.1", engine.port)
    try:
        statuses = [
            gateway.send(front, SMS, PERSON, '{"a": 1}', "application/json"),
            gateway.send(front, SMS, PERSON, "", "text/plain"),
            gateway.send(front, SMS, PERSON, "长" * 1001),
            gateway.send(front, "10086", PERSON, "你好"),
        ]
        assert statuses == [415, 400, 413, 404]
        assert gateway.send(front, "+86591" + SMS, PERSON, "刷单返利，要我垫付") == 200
        reply = gateway.next_text()
        assert "“刷单”" in reply.text and "110" in reply.text
        assert gateway.quiet(1.0) == []
    finally:
        engine.stop()
    [thread] = threads(config)
    assert thread["texts"] == ["刷单返利，要我垫付"]
    assert not [e for e in read_events(config) if e["event"] == "text_dropped"]
