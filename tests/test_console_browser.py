"""The duty officers' console in a real browser (headless Chromium driven by Selenium), against
the engine as ``run`` starts it and SIPp peers on the trunk: the board kept current while a
phone is called, a recording played, tasks cancelled, a text answered to a SIPp SMS gateway,
a callback marked done, a number looked up and blocked, then refused by the engine; and the
locks: the lock-out, masked numbers in every page and live message, the reveal in the audit
trail, the CSRF check, recordings behind a session, both languages. Screenshots of each page
go to ``test-artifacts/console/``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from browser import ROOT, Browser, available, wait_port
from dialerctl import cli, dialer_config, wait_tasks, warn
from enginectl import EngineProcess, hours, write_config
from rtppcap import write_pcap
from workerproc import Sipp

from demo.loopback import free_tcp_port
from dialer import TaskState
from stores import open_stores

PASSWORD = "correct horse battery"
NUMBER = "13800137490"
MASKED = "138****7490"
SMS = "121100130"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = available()
    if missing:
        pytest.fail(f"{missing}: tools/test.sh installs it")
    b = Browser()
    yield b
    b.close()


def with_console(config: Path, language: str = "en") -> int:
    port = free_tcp_port()
    config.write_text(config.read_text() + f"console:\n  port: {port}\n  language: {language}\n")
    for name, role in (("wang", "officer"), ("li", "supervisor")):
        subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), "console", "users", "add",
                        name, "--role", role, "-c", str(config)], input=PASSWORD + "\n",
                       text=True, check=True, capture_output=True)
    return port


def board_row(browser: Browser, section: str, task_id: str) -> str:
    return browser.text(f"#{section} tr[data-task={task_id}]")


def test_the_board_follows_a_warning_until_it_is_acknowledged(tmp_path: Path,
                                                              browser: Browser) -> None:
    dtmf = write_pcap(tmp_path / "dtmf-1.pcap", digits=(("1", 0),))
    phone = Sipp("uas_busy_n_then_answer_dtmf.xml", tmp_path, "-key", "busy_calls", "1",
                 "-key", "dtmf_pcap", str(dtmf), calls=2, timeout_s=60)
    config = dialer_config(tmp_path, phone.uri_host, extra="  record: true\n"
                           "  quiet_hours: \"00:00-23:59\"\n")
    port = with_console(config)
    engine = EngineProcess(config)
    try:
        wait_port(port)
        browser.fresh(f"http://127.0.0.1:{port}")
        browser.sign_in("wang", PASSWORD)
        browser.wait(lambda d: browser.all("#board"), message="the board after signing in")
        browser.driver.execute_script("window.stillTheSamePage = true;")
        browser.shot("board")
        task_id = warn(config, NUMBER, "--fraud-type", "investment")
        browser.wait(lambda d: board_row(browser, "open", task_id), 10,
                     "the new warning on the open board")
        assert MASKED in board_row(browser, "open", task_id)
        browser.wait(lambda d: "acknowledged" in board_row(browser, "today", task_id), 40,
                     "the warning acknowledged on the board")
        assert browser.driver.execute_script("return window.stillTheSamePage === true;")
        browser.shot("board-acknowledged")
        assert phone.wait() == 0, phone.report() + engine.log_text()

        # its recording plays in the task's page
        browser.open(f"/tasks/{task_id}")
        duration = browser.wait(lambda d: d.execute_script(
            "const a = document.querySelectorAll('audio');"
            "const last = a[a.length - 1];"
            "return last && last.readyState >= 1 && last.duration > 0 ? last.duration : null;"),
            10, "the recording's duration in the player")
        assert duration > 0.5
        browser.shot("task")

        # another warning (normal risk: it waits out the quiet hours) cancelled with a reason
        other = warn(config, "13900002222", "--risk", "normal")
        browser.open(f"/tasks/{other}")
        browser.submit("#cancel-form", reason="reached at home by the station")
        browser.wait(lambda d: "cancelled" in browser.text("#state"), 10, "the cancel: " + browser.source()[-3000:])
        browser.shot("task-cancelled")
    finally:
        phone.kill()
        engine.stop()
    shown = cli(config, "task", "show", other).stdout
    assert "cancelled (reached at home by the station)" in shown
    assert "cancelled by console:wang" in shown
    assert browser.console_errors() == []


def test_texts_callbacks_and_lists_from_the_hotline_page(tmp_path: Path,
                                                         browser: Browser) -> None:
    gateway = Sipp("uas_message_ok.xml", tmp_path, "-trace_msg", calls=2, timeout_s=60)
    config = write_config(tmp_path, operator_hours=hours(inside_now=False),
                          trunk=f"sip:{gateway.uri_host}", extra=f'sms:\n  number: "{SMS}"\n')
    port = with_console(config)
    engine = EngineProcess(config)
    try:
        wait_port(port)
        person = Sipp("uac_message.xml", tmp_path, "-s", SMS, "-key", "caller", NUMBER,
                      "-key", "body", "客服说要给我退款，让我下载会议软件", remote=engine.target)
        assert person.wait() == 0, person.report() + engine.log_text()
        browser.fresh(f"http://127.0.0.1:{port}")
        browser.sign_in("wang", PASSWORD)
        browser.open("/hotline")
        browser.wait(lambda d: browser.all(".thread"), 10, "the text on the hotline page")
        assert MASKED in browser.text(".thread") and NUMBER not in browser.source()
        browser.shot("hotline")
        answer = "您好，这是冒充客服退款的诈骗，请不要下载会议软件，不要转账。"
        browser.submit(".thread form", text=answer)
        assert gateway.wait() == 0, gateway.report() + engine.log_text()
        [trace] = tmp_path.glob("uas_message_ok_*_messages.log")
        assert answer in trace.read_text(encoding="utf-8", errors="replace")

        # a message left for a callback, played and marked done
        messages = tmp_path / "var" / "messages"
        messages.mkdir(parents=True, exist_ok=True)
        recording = messages / "20261205-230000-c1.wav"
        with wave.open(str(recording), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\x10\x00\xf0\xff" * 12000)
        stores = open_stores(tmp_path / "var")
        callback = stores.callbacks.add(NUMBER, time.time(), str(recording), 6.0, "main>message")
        stores.close()
        browser.open("/hotline")
        browser.wait(lambda d: d.execute_script(
            f"const a = document.querySelector('#callback-{callback.id} audio');"
            "return a && a.readyState >= 1 ? a.duration : null;"), 10, "the message's player")
        browser.submit(f"#callback-{callback.id} form", note="called back, she is safe")
        browser.wait(lambda d: not browser.all(f"#callback-{callback.id}"), 10, "done")
        done = [json.loads(line) for line in cli(config, "callbacks", "--json", "--state",
                                                  "done").stdout.splitlines()]
        assert [(c["id"], c["done_by"]) for c in done] == [(callback.id, "console:wang")]

        # a supervisor looks a number up, blocks it, and the engine refuses its call
        browser.submit("form[action='/logout']")
        browser.sign_in("li", PASSWORD)
        browser.open("/lists")
        browser.submit("#lookup-form", number="13900005555")
        browser.wait(lambda d: browser.all("#decision"), 10, "the decision")
        assert "allow" in browser.text("#decision") and "139****5555" in browser.text("#decision")
        browser.submit("#edit-form", numbers="13900005555", reason="reported by a victim today")
        browser.wait(lambda d: browser.all("#edit-done"), 10, "the list edit")
        browser.shot("lists")
        caller = Sipp("uac_invite_expect_603.xml", tmp_path, "-s", "961108", "-key", "caller",
                      "13900005555", "-key", "extra_header", "X-Test: console",
                      remote=engine.target)
        assert caller.wait() == 0, caller.report() + engine.log_text()
    finally:
        gateway.kill()
        engine.stop()


def test_locks_numbers_reveal_csrf_and_languages(tmp_path: Path, browser: Browser) -> None:
    """The console alone (``run_dialer.py console``): the board says the engine is not
    running, and everything else works against the same stores."""
    config = write_config(tmp_path)
    port = with_console(config)
    log = (tmp_path / "console.log").open("wb")
    console = subprocess.Popen([sys.executable, str(ROOT / "run_dialer.py"), "console", "-c",
                                str(config)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_port(port)
        first = warn(config, NUMBER)
        browser.fresh(base)
        browser.sign_in("wang", PASSWORD)
        browser.wait(lambda d: browser.all("#board"), message="the board")
        assert "The engine is not running" in browser.text("#health")

        # every live message an officer's board gets, while warnings arrive
        heard: list[str] = []
        cookies = {"afc_session": browser.cookie("afc_session")}

        def listen() -> None:
            with httpx.stream("GET", base + "/live/board", cookies=cookies, timeout=10) as r, \
                    contextlib.suppress(httpx.ReadTimeout):
                for line in r.iter_lines():
                    heard.append(line)
                    if sum(x.startswith("event: board") for x in heard) >= 2:
                        return

        listener = threading.Thread(target=listen)
        listener.start()
        time.sleep(0.5)
        second = warn(config, "13900002222", "--risk", "normal")
        listener.join(15)
        browser.wait(lambda d: board_row(browser, "open", second), 10, "the live board")
        assert any(x.startswith("event: board") for x in heard)
        assert all(NUMBER not in x and "13900002222" not in x for x in heard)
        for path in ("/", "/tasks", f"/tasks/{first}", "/hotline", "/lists"):
            browser.open(path)
            assert NUMBER not in browser.source() and "13900002222" not in browser.source(), path

        # a change without the CSRF token: 403, nothing changed
        status = browser.driver.execute_script(
            f"return fetch('/tasks/{first}/cancel', {{method: 'POST', headers: "
            "{'Content-Type': 'application/x-www-form-urlencoded'}, body: 'reason=x'})"
            ".then(r => r.status);")
        assert status == 403
        assert wait_tasks(config, [first], done=lambda t: True)[0].state is TaskState.QUEUED
        # a recording's address without a session
        assert httpx.get(f"{base}/recordings/{first}/1").status_code == 401

        # both languages
        browser.open("/")
        browser.find("a[lang=zh-CN]").click()
        browser.wait(lambda d: "值班看板" in browser.text("header"), 10, "Chinese")
        assert "未完成预警" in browser.text("#open")
        browser.shot("board-zh")
        browser.find("a[lang=en]").click()
        browser.wait(lambda d: "Board" in browser.text("header"), 10, "English")

        # a supervisor reveals a number: the audit trail has it
        browser.submit("form[action='/logout']")
        browser.sign_in("li", PASSWORD)
        browser.open(f"/tasks/{first}")
        browser.find("#reveal").click()
        browser.wait(lambda d: NUMBER in browser.text("#number"), 10, "the full number")
        browser.open("/audit")
        assert "console:li" in browser.text("#audit tr.action-reveal")
        browser.shot("audit")

        # a wrong password, then the lock-out
        browser.submit("form[action='/logout']")
        for attempt in range(5):
            browser.sign_in("wang", f"not the password {attempt}")
        assert "locked until" in browser.text(".error")
        browser.shot("login-locked")
        browser.sign_in("wang", PASSWORD)
        assert "locked until" in browser.text(".error")
        assert browser.console_errors() == []
    finally:
        console.terminate()
        console.wait(10)
        log.close()
