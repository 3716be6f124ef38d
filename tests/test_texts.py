"""Texts, pure: the SMS line's numbers, keyword → fraud type, the reply by hours, the warning
text's cadence, and the text store."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer import load_catalog
from dialer.model import Outcome
from hotline import OperatorHours
from hotline.menus import DEFAULT_MENUS
from screening import ServiceNumber
from sip_config.schema import Hours, TextsConfig
from stores import NotFound, Refused, open_stores
from texts import load_text_book, warning_text_due
from texts.words import TextBookError, hours_label, opens_label

TZ = ZoneInfo("Asia/Shanghai")
BOOK = load_text_book(DEFAULT_MENUS)


@pytest.mark.parametrize(("dialed", "hotline", "sms"), [
    ("961108", True, False),
    ("0591961108", True, False),
    ("+86591961108", True, False),
    ("86591961108", True, False),
    ("0086591961108", True, False),
    ("sip:0591961108@carrier", True, False),
    ("0592961108", False, False),
    ("96110", False, False),
    ("121100130", False, True),
    ("+86121100130", False, True),
    ("0591121100130", False, True),
    ("13812347490", False, False),
    ("", False, False),
    ("anonymous", False, False),
])
def test_the_forms_people_dial(dialed: str, hotline: bool, sms: bool) -> None:
    assert ServiceNumber("961108", "0591").matches(dialed) is hotline
    assert ServiceNumber("121100130", "0591").matches(dialed) is sms


def test_every_listed_form_matches_and_the_front_gets_them_all() -> None:
    line = ServiceNumber("961108", "0591")
    assert set(line.dialed_forms()) == {"961108", "0591961108", "86591961108", "+86591961108",
                                        "0086591961108"}
    assert ServiceNumber("961108").dialed_forms() == ("961108",)


@pytest.mark.parametrize(("text", "fraud_type", "keyword"), [
    ("有人打电话说我涉嫌洗钱，让我把钱转到安全账户", "police_impersonation", "涉嫌洗钱"),
    ("他们让我转到一个安全账户", "police_impersonation", "安全账户"),
    ("网上兼职刷单，说返利很高", "order_brushing", "刷单"),
    ("客服说我买的衣服有问题要给我退款", "customer_service_refund", "客服"),
    ("贷款还没到账，又让我交手续费", "loan", "贷款"),
    ("银行卡号填错了，要交钱解冻", "loan", "解冻"),
    ("说我的征信有问题要注销校园贷", "credit_record", "征信"),
    ("朋友拉我进群投资理财", "investment", "投资"),
    ("网恋对象让我一起买虚拟币", "romance", "网恋"),
    ("领导加我微信让我先转钱", "boss_or_acquaintance", "领导"),
    ("卖游戏装备被冻结了", "game_trading", "游戏"),
    ("你好，请问你们几点上班", None, None),
])
def test_keywords_name_the_fraud_type(text: str, fraud_type: str | None,
                                      keyword: str | None) -> None:
    advice = BOOK.advice_for(text)
    if fraud_type is None:
        assert advice is None
        return
    assert advice is not None
    assert (advice.fraud_type, advice.keyword) == (fraud_type, keyword)
    assert f"“{keyword}”" in advice.text


def test_the_police_advice_names_the_safe_account() -> None:
    advice = BOOK.advice_for("对方说要把钱转到安全账户")
    assert advice is not None and "没有所谓的“安全账户”" in advice.text


HOURS = OperatorHours(Hours(start=time(8), end=time(22)))


@pytest.mark.parametrize(("moment", "open_now", "opens"), [
    (datetime(2026, 12, 1, 23, 10, tzinfo=TZ), False, "明天08:00"),
    (datetime(2026, 12, 2, 3, 0, tzinfo=TZ), False, "今天08:00"),
    (datetime(2026, 12, 2, 8, 0, tzinfo=TZ), True, "今天08:00"),
    (datetime(2026, 12, 2, 21, 59, tzinfo=TZ), True, "今天21:59"),
])
def test_the_reply_by_hours(moment: datetime, open_now: bool, opens: str) -> None:
    assert HOURS.open_at(moment) is open_now
    label = opens_label(moment, HOURS.next_open(moment))
    advice = BOOK.advice_for("让我转到安全账户")
    text = BOOK.reply(open_now=open_now, center="反诈中心", hours=hours_label(HOURS.usual),
                      opens=label, advice=advice)
    assert text.startswith("【反诈中心】")
    assert "110" in text
    if open_now:
        assert "安全账户" not in text and "每天" not in text  # a short acknowledgement
    else:
        assert "每天08:00-22:00" in text and opens in text
        assert advice is not None and text.endswith(advice.text)


def test_closed_days_are_skipped_when_naming_the_next_opening() -> None:
    hours = OperatorHours(Hours(start=time(9), end=time(17)), {"saturday": None, "sunday": None})
    friday_night = datetime(2026, 12, 4, 18, 0, tzinfo=TZ)
    opens = hours.next_open(friday_night)
    assert opens == datetime(2026, 12, 7, 9, 0, tzinfo=TZ)
    assert opens_label(friday_night, opens) == "12月7日09:00"
    assert opens_label(friday_night, None) == "下一个工作时间"


def test_a_catalog_without_the_texts_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "menus.yaml"
    path.write_text("entry: main\n", encoding="utf-8")
    with pytest.raises(TextBookError, match="texts"):
        load_text_book(path)
    path.write_text("texts:\n  replies:\n    after_hours: 已收到{when}\n    in_hours: 收到\n",
                    encoding="utf-8")
    with pytest.raises(TextBookError, match=r":3: texts.replies.after_hours: has a placeholder"):
        load_text_book(path)


# --------------------------------------------------------------- warning text cadence

ON = TextsConfig(every_s=300, max_per_task=3)


@pytest.mark.parametrize(("case", "kwargs", "due"), [
    ("first after a busy attempt", {}, True),
    ("after no answer", {"outcome": Outcome.NO_ANSWER}, True),
    ("after a ring that timed out", {"outcome": Outcome.RANG_OUT}, True),
    ("after a machine", {"outcome": Outcome.MACHINE}, True),
    ("after an answer without the digit", {"outcome": Outcome.UNACKNOWLEDGED}, True),
    ("not after the acknowledgement", {"outcome": Outcome.ACKNOWLEDGED, "task_open": False}, False),
    ("not after a trunk error", {"outcome": Outcome.TRUNK_ERROR}, False),
    ("not after a lost call", {"outcome": Outcome.LOST}, False),
    ("not for an invalid number", {"outcome": Outcome.INVALID_NUMBER}, False),
    ("not once the task is closed", {"task_open": False}, False),
    ("not within every_s of the last", {"delivered": 1, "last_sent_at": 1000 - 299}, False),
    ("again after every_s", {"delivered": 1, "last_sent_at": 1000 - 300}, True),
    ("not over the cap", {"delivered": 3, "last_sent_at": 0}, False),
    ("refused ones do not use the cap up", {"delivered": 2, "last_sent_at": 0}, True),
    ("a refused one still spaces the next", {"delivered": 0, "last_sent_at": 990}, False),
    ("after a declined call", {"outcome": Outcome.REJECTED}, True),
    ("a phone switched off: at once, whatever the spacing",
     {"outcome": Outcome.UNREACHABLE, "delivered": 1, "last_sent_at": 990}, True),
    ("a phone still off: the spacing again",
     {"outcome": Outcome.UNREACHABLE, "delivered": 1, "last_sent_at": 990, "off_before": True},
     False),
    ("a phone off, not over the cap", {"outcome": Outcome.UNREACHABLE, "delivered": 3}, False),
    ("a phone off, not in quiet hours", {"outcome": Outcome.UNREACHABLE, "quiet": True}, False),
    ("not for a suspended line (the task failed)",
     {"outcome": Outcome.SUSPENDED, "task_open": False}, False),
    ("not in quiet hours (normal risk)", {"quiet": True}, False),
    ("not when turned off", {"settings": TextsConfig(enabled=False)}, False),
])
def test_warning_text_cadence(case: str, kwargs: dict, due: bool) -> None:
    args = {"settings": ON, "outcome": Outcome.BUSY, "task_open": True, "delivered": 0,
            "last_sent_at": None, "quiet": False, "now": 1000.0, **kwargs}
    settings = args.pop("settings")
    assert warning_text_due(settings, **args) is due, case


def test_a_campaign_of_busy_attempts_gets_three_spaced_texts() -> None:
    """Busy every 20 s for 20 minutes: texts at 0, 300, 600 s, none after."""
    sent: list[float] = []
    for attempt in range(60):
        now = attempt * 20.0
        if warning_text_due(ON, outcome=Outcome.BUSY, task_open=True, delivered=len(sent),
                            last_sent_at=sent[-1] if sent else None, quiet=False, now=now):
            sent.append(now)
    assert sent == [0.0, 300.0, 600.0]


def test_the_warning_text_names_center_scam_caller_id_and_110() -> None:
    text = load_catalog().warning_text("police_impersonation", center="福州市公安局反诈中心",
                                       caller_id="96110")
    assert text.startswith("【福州市公安局反诈中心】")
    assert "安全账户" in text and "96110" in text and "110报警" in text
    general = load_catalog().warning_text("no_such_type", center="c", caller_id="96110")
    assert "验证码" in general  # the fallback type's sentence


# --------------------------------------------------------------- the store

def test_texts_from_one_number_join_one_thread_until_it_is_answered(tmp_path: Path) -> None:
    store = open_stores(tmp_path).texts

    def reply(opened: bool) -> tuple[str, str] | None:
        return ("auto_reply", "已收到") if opened else None

    first, answer = store.receive("13812347490", "第一条", 100.0, thread_s=600, reply=reply)
    second, none = store.receive("13812347490", "第二条", 400.0, thread_s=600, reply=reply)
    assert answer is not None and answer.state == "pending" and none is None
    assert first.thread_id == second.thread_id
    [thread] = store.threads("waiting")
    assert thread.texts == ("第一条", "第二条") and thread.masked == "138****7490"
    store.reply(thread.id, "您好，这是诈骗，请不要转账。", 700.0)
    assert store.thread(thread.id).state == "replied"
    assert store.thread(thread.id).waited_s(10_000) == 600.0
    third, again = store.receive("13812347490", "谢谢", 800.0, thread_s=600, reply=reply)
    assert third.thread_id != thread.id and again is not None  # a new question
    late, _ = store.receive("13812347490", "还在吗", 800.0 + 601, thread_s=600, reply=reply)
    assert late.thread_id != third.thread_id


def test_a_blocked_senders_text_is_kept_and_never_answered(tmp_path: Path) -> None:
    store = open_stores(tmp_path).texts
    text, answer = store.receive("17000001111", "点击链接领取补贴", 1.0, thread_s=600,
                                 blocked=True, rule="list:fraud",
                                 reply=lambda opened: ("auto_reply", "x"))
    assert answer is None and text.state == "blocked" and text.rule == "list:fraud"
    with pytest.raises(Refused, match="blocked"):
        store.reply(text.thread_id or "", "回复", 2.0)
    assert store.pending() == []


def test_an_outgoing_text_goes_pending_sending_sent_and_a_stop_sends_it_again(
        tmp_path: Path) -> None:
    store = open_stores(tmp_path).texts
    message = store.queue("warning", "13812347490", "警告", 1.0, task_id="T1")
    store.sending(message.id)
    assert open_stores(tmp_path).texts.recover() == 1  # the engine stopped before the answer came
    assert [m.id for m in store.pending()] == [message.id]
    store.sending(message.id)
    assert store.answered(message.id, 200, "OK", 2.0).state == "sent"
    failed = store.queue("warning", "13812347490", "警告", 3.0, task_id="T1")
    assert store.answered(failed.id, 503, "Service Unavailable", 4.0).state == "failed"
    assert [(m.state, m.status) for m in store.of_task("T1")] == [("sent", 200), ("failed", 503)]
    with pytest.raises(NotFound, match="no thread"):
        store.reply("s0000", "x", 1.0)


def test_a_menus_file_without_texts_takes_the_shipped_replies(tmp_path: Path) -> None:
    path = tmp_path / "menus.yaml"
    path.write_text("entry: main\n", encoding="utf-8")
    assert load_text_book(path, DEFAULT_MENUS).replies == BOOK.replies


def test_every_shipped_fraud_type_has_its_own_warning_text_sentence() -> None:
    catalog = load_catalog()
    assert all(t.text for t in catalog.types.values())


def test_a_reply_id_given_twice_is_one_text_and_the_first_answer_times_the_thread(
        tmp_path: Path) -> None:
    store = open_stores(tmp_path).texts
    incoming, _ = store.receive("13812347490", "问题", 100.0, thread_s=600)
    thread = incoming.thread_id or ""
    first = store.reply(thread, "回答", 200.0, request_id="r-1")
    again = store.reply(thread, "回答", 250.0, request_id="r-1")
    assert first.id == again.id and len([m for m in store.of_thread(thread) if m.kind == "reply"]) == 1
    store.reply(thread, "补充", 300.0)
    assert store.thread(thread).replied_at == 200.0  # time to reply counts the first answer
    store.reply_failed(thread)
    assert store.thread(thread).state == "waiting"
