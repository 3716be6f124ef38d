"""The console over HTTP, without a browser: signing in and the lock-out, sessions that end,
the CSRF check of every change, roles, masked numbers, the recordings behind a session, bad
input answered beside its field, both languages, and the users' commands."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from center import Actor, Center
from console import Console, make_app
from console.auth import LOCK_S, WINDOW_S, locked_until
from settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
NUMBER = "13800137490"
MASKED = "138****7490"


def write_config(directory: Path, extra: str = "") -> Path:
    path = directory / "dialer.yaml"
    path.write_text(f"""\
engine:
  data_dir: var
screening:
  lists:
    - {{name: fraud, action: reject, status: 603}}
sms:
  number: "121100130"
  max_chars: 70
console:
  port: 18999
{extra}""")
    return path


class Desk:
    """A console on a fresh data directory, with an officer and a supervisor."""

    def __init__(self, directory: Path) -> None:
        self.config = write_config(directory)
        self.settings = load_settings(self.config)
        self.console = Console(self.settings)
        self.center: Center = self.console.center
        self.center.add_user("wang", "officer", PASSWORD, Actor.cli())
        self.center.add_user("li", "supervisor", PASSWORD, Actor.cli())

    def client(self, language: str = "en") -> TestClient:
        client = TestClient(make_app(self.console), base_url="http://console.test")
        client.cookies.set("afc_lang", language)
        return client

    def signed_in(self, name: str = "wang", language: str = "en") -> TestClient:
        client = self.client(language)
        response = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/"},
                               follow_redirects=False)
        assert response.status_code == 303, response.text
        return client

    def task(self, number: str = NUMBER) -> str:
        request = self.center.request(number, "investment", source="test")
        return self.center.warn(request, Actor.cli()).task.id


@pytest.fixture()
def desk(tmp_path: Path) -> Iterator[Desk]:
    d = Desk(tmp_path)
    yield d
    d.console.close()


def csrf_of(html: str) -> str:
    return re.findall(r'name="csrf" value="([^"]+)"', html)[0]


def field_errors(html: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', html)


# ------------------------------------------------------------------ signing in


@pytest.mark.parametrize(("failures", "now", "locked"), [
    ([], 1000.0, None),
    ([1.0, 2.0, 3.0, 4.0], 5.0, None),  # four: not yet
    ([1.0, 2.0, 3.0, 4.0, 5.0], 6.0, 5.0 + LOCK_S),  # the fifth locks from itself
    ([1.0, 2.0, 3.0, 4.0, 5.0], 5.0 + LOCK_S, None),  # ten minutes later: open again
    ([0.0, 100.0, 200.0, 300.0, WINDOW_S + 1], WINDOW_S + 2, None),  # not within ten minutes
    ([0.0, 100.0, 200.0, 300.0, 400.0, 500.0], 600.0, 500.0 + LOCK_S),  # the latest run counts
])
def test_five_failures_within_ten_minutes_lock_for_ten(failures: list[float], now: float,
                                                        locked: float | None) -> None:
    assert locked_until(failures, now) == locked


def test_pages_need_a_session(desk: Desk) -> None:
    client = desk.client()
    page = client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
    assert client.get("/tasks.csv").status_code == 401
    assert client.get("/live/board").status_code == 401


def test_a_wrong_password_then_the_lock_out(desk: Desk) -> None:
    client = desk.client()
    for _ in range(4):
        wrong = client.post("/login", data={"name": "wang", "password": "not the password"})
        assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    fifth = client.post("/login", data={"name": "wang", "password": "still not it"})
    assert "Too many wrong passwords: signing in is locked until" in fifth.text
    right = client.post("/login", data={"name": "wang", "password": PASSWORD},
                        follow_redirects=False)
    assert right.status_code == 401 and "locked until" in right.text  # the right one too
    # the same address is locked for every name
    other = client.post("/login", data={"name": "li", "password": PASSWORD},
                        follow_redirects=False)
    assert other.status_code == 401 and "locked until" in other.text
    actions = [e.action for e in desk.center.stores.audit.page(limit=20)]
    assert actions.count("sign_in_failed") == 5 and "sign_in_locked" in actions


def test_a_session_ends_when_idle_and_on_signing_out(desk: Desk) -> None:
    token = desk.signed_in().cookies.get("afc_session")
    sessions, now = desk.console.sessions, time.time()
    assert sessions.current(token, now) is not None
    assert sessions.current(token, now + desk.console.config.session_idle_s + 1) is None
    assert sessions.current(token, now) is None  # ended, not only expired
    client = desk.signed_in()
    csrf = csrf_of(client.get("/").text)
    cookie = client.cookies["afc_session"]
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    again = desk.client()
    again.cookies.set("afc_session", cookie)  # the old cookie, replayed
    assert again.get("/", headers={"accept": "text/html"},
                     follow_redirects=False).status_code == 303


def test_the_cookie_is_httponly_and_strict(desk: Desk) -> None:
    response = desk.client().post("/login", data={"name": "wang", "password": PASSWORD},
                                  follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie


def test_security_headers_on_every_page(desk: Desk) -> None:
    client = desk.signed_in()
    for path in ("/login", "/", "/tasks", "/hotline"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
    html = client.get("/").text
    assert "<script>" not in html  # only <script src>, which the policy allows
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline handlers


# ------------------------------------------------------------------ changes


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(desk: Desk) -> None:
    task_id = desk.task()
    client = desk.signed_in()
    refused = client.post(f"/tasks/{task_id}/cancel", data={"reason": "x", "seen": "queued"})
    assert refused.status_code == 403
    wrong = client.post(f"/tasks/{task_id}/cancel",
                        data={"reason": "x", "seen": "queued", "csrf": "forged"})
    assert wrong.status_code == 403
    csrf = csrf_of(client.get(f"/tasks/{task_id}").text)
    elsewhere = client.post(f"/tasks/{task_id}/cancel", headers={"origin": "http://evil.test"},
                            data={"reason": "x", "seen": "queued", "csrf": csrf})
    assert elsewhere.status_code == 403
    assert desk.center.stores.tasks.task(task_id).state.value == "queued"


def test_a_stale_form_is_refused_beside_it(desk: Desk) -> None:
    task_id = desk.task()
    client = desk.signed_in()
    csrf = csrf_of(client.get(f"/tasks/{task_id}").text)
    desk.center.cancel(task_id, Actor.cli(), "reached at home")  # another officer, meanwhile
    stale = client.post(f"/tasks/{task_id}/again", data={"seen": "queued", "csrf": csrf})
    assert stale.status_code == 409
    assert field_errors(stale.text) == [
        (f"task {task_id} is cancelled now, not queued as when this page was loaded; nothing "
         "was changed: look again")]


def test_cancel_records_the_officer(desk: Desk) -> None:
    task_id = desk.task()
    client = desk.signed_in()
    csrf = csrf_of(client.get(f"/tasks/{task_id}").text)
    done = client.post(f"/tasks/{task_id}/cancel",
                       data={"reason": "reached at home", "seen": "queued", "csrf": csrf},
                       follow_redirects=False)
    assert done.status_code == 303
    shown = subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), "task", "show", task_id,
                            "-c", str(desk.config)], capture_output=True, text=True, check=True)
    assert "cancelled (reached at home)" in shown.stdout
    assert "cancelled by console:wang" in shown.stdout
    [entry] = desk.center.stores.audit.page(action="cancel")
    assert entry.actor == "console:wang" and entry.address == "testclient"


@pytest.mark.parametrize(("form", "field", "sentence"), [
    ({"number": "12345"}, "number", "12345 is a short service number, not a person's phone"),
    ({"number": "hello"}, "number", "'hello' is not a phone number"),
    ({"number": NUMBER, "fraud_type": "lottery"}, "fraud_type", "'lottery' is not a fraud type"),
    ({"number": NUMBER, "case_id": "FZ 1 2"}, "case_id", "case id 'FZ 1 2' must be"),
])
def test_a_bad_warning_request_is_answered_beside_its_field(desk: Desk, form: dict[str, str],
                                                            field: str, sentence: str) -> None:
    client = desk.signed_in()
    csrf = csrf_of(client.get("/warn").text)
    page = client.post("/warn", data={**form, "csrf": csrf})
    assert page.status_code == 422
    shown = re.findall(rf'id="error-{field}">([^<]+)<', page.text)
    assert shown and shown[0].replace("&#39;", "'").startswith(sentence), page.text
    assert desk.center.stores.tasks.tasks() == []


def test_a_csv_that_is_not_csv_and_one_with_bad_rows(desk: Desk) -> None:
    client = desk.signed_in()
    csrf = csrf_of(client.get("/warn").text)
    binary = client.post("/warn/csv", data={"csrf": csrf},
                         files={"file": ("x.csv", b"\x89PNG\r\n\x1a\n\x00\x00")})
    assert binary.status_code == 422 and field_errors(binary.text)
    rows = client.post("/warn/csv", data={"csrf": csrf}, files={"file": (
        "r.csv", b"number,fraud_type\n13900002222,investment\nabc,investment\n")})
    assert "1 requests accepted, 1 rows refused." in rows.text
    assert re.findall(r"<td>(\d+)</td><td>'abc' is not a phone number", rows.text.replace(
        "&#39;", "'")) == ["3"]


def test_a_reply_that_is_empty_or_too_long(desk: Desk) -> None:
    thread = desk.center.stores.texts.receive("13800137490", "有人让我转账到安全账户", 1.0,
                                             thread_s=600)[0].thread_id
    client = desk.signed_in()
    csrf = csrf_of(client.get("/hotline").text)
    for text, sentence in (("   ", "the reply is empty"),
                           ("长" * 71, "the reply has 71 characters; at most 70")):
        page = client.post(f"/threads/{thread}/reply", data={"text": text, "csrf": csrf})
        assert page.status_code == 422
        assert any(e.startswith(sentence) for e in field_errors(page.text)), page.text
    assert [m.kind for m in desk.center.stores.texts.of_thread(thread)] == ["consultation"]


# ------------------------------------------------------------------ numbers and roles


def test_an_officers_pages_never_hold_a_full_number(desk: Desk) -> None:
    task_id = desk.task()
    desk.center.stores.texts.receive("13900002222", "刷单返利要先垫钱吗", 1.0, thread_s=600)
    client = desk.signed_in()
    for path in ("/", "/tasks", f"/tasks/{task_id}", "/hotline", "/tasks.csv", "/lists"):
        body = client.get(path).text
        assert NUMBER not in body and "13900002222" not in body, path
    assert MASKED in client.get("/").text
    csrf = csrf_of(client.get(f"/tasks/{task_id}").text)
    looked = client.post("/lists/lookup", data={"number": NUMBER, "csrf": csrf}).text
    assert MASKED in looked and NUMBER not in looked
    refused = client.post(f"/tasks/{task_id}/reveal", data={"csrf": csrf})
    assert refused.status_code == 403 and NUMBER not in refused.text


def test_a_supervisors_reveal_is_in_the_audit_trail(desk: Desk) -> None:
    task_id = desk.task()
    client = desk.signed_in("li")
    page = client.get(f"/tasks/{task_id}").text
    assert NUMBER not in page  # masked until asked
    shown = client.post(f"/tasks/{task_id}/reveal", data={"csrf": csrf_of(page)})
    assert NUMBER in shown.text
    audit = client.get("/audit").text
    assert "console:li" in audit and "action-reveal" in audit
    assert desk.signed_in("wang").get("/audit").status_code == 403


def test_recordings_only_behind_a_session(desk: Desk, tmp_path: Path) -> None:
    task_id = desk.task()
    [claim] = desk.center.stores.tasks.claim(2e9, "node", "w1")
    path = Path(claim.attempt.recording)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 8000)
    url = f"/recordings/{task_id}/1"
    assert desk.client().get(url).status_code == 401
    client = desk.signed_in()
    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    part = client.get(url, headers={"range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100  # the player can seek
    assert client.get(f"/recordings/{task_id}/2").status_code == 404


def test_recordings_from_a_shared_media_directory(tmp_path: Path) -> None:
    """engine.media_dir: what any node recorded, under one directory every node mounts."""
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("  data_dir: var\n",
                                                 "  data_dir: var\n  media_dir: shared\n"))
    desk = Desk.__new__(Desk)
    desk.config, desk.settings = config, load_settings(config)
    desk.console = Console(desk.settings)
    desk.center = desk.console.center
    desk.center.add_user("wang", "officer", PASSWORD, Actor.cli())
    try:
        task_id = desk.task()
        [claim] = desk.center.stores.tasks.claim(2e9, "node", "w1")
        path = Path(claim.attempt.recording)
        assert path.parent == tmp_path / "shared" / "recordings"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\x00\x01" * 800)
        assert desk.signed_in().get(f"/recordings/{task_id}/1").status_code == 200
    finally:
        desk.console.close()


# ------------------------------------------------------------------ languages and users


def test_the_pages_in_chinese_and_in_english(desk: Desk) -> None:
    desk.task()
    chinese = desk.signed_in(language="zh").get("/").text
    assert "值班看板" in chinese and "未完成预警" in chinese and 'lang="zh-CN"' in chinese
    english = desk.signed_in(language="en").get("/").text
    assert "Board" in english and "Open warnings" in english and "值班看板" not in english


def test_refusals_are_said_in_chinese_on_chinese_pages(desk: Desk) -> None:
    """The sentences of the layers under the console (a request's, a stale form's, a bad CSV
    row's, a reply's) come through its catalog, their values filled in."""
    task_id = desk.task()
    client = desk.signed_in(language="zh")
    csrf = csrf_of(client.get("/warn").text)
    page = client.post("/warn", data={"number": "12345", "csrf": csrf})
    assert re.findall(r'id="error-number">([^<]+)<', page.text) == ["12345 是短号服务号码，不是个人电话"]
    page = client.post("/warn", data={"number": NUMBER, "fraud_type": "lottery", "csrf": csrf})
    [said] = re.findall(r'id="error-fraud_type">([^<]+)<', page.text)
    assert said.replace("&#39;", "'").startswith("'lottery' 不是预警目录中的诈骗类型；已有类型：")
    rows = client.post("/warn/csv", data={"csrf": csrf}, files={"file": (
        "r.csv", b"number,fraud_type\nabc,investment\n")})
    assert "<td>2</td><td>&#39;abc&#39; 不是电话号码</td>" in rows.text
    desk.center.cancel(task_id, Actor.cli(), "reached at home")
    stale = client.post(f"/tasks/{task_id}/again", data={"seen": "queued", "csrf": csrf})
    assert field_errors(stale.text) == [
        f"任务 {task_id} 现在的状态是“已撤销”，不是载入本页时的“排队中”；未作任何更改，请重新查看"]
    thread = desk.center.stores.texts.receive("13800137490", "有人让我转账", 1.0,
                                             thread_s=600)[0].thread_id
    empty = client.post(f"/threads/{thread}/reply", data={"text": "  ", "csrf": csrf})
    assert "回复为空" in field_errors(empty.text)


def test_every_message_has_its_chinese() -> None:
    checked = subprocess.run([sys.executable, str(ROOT / "tools" / "catalog.py"), "--check"],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout


def test_the_users_commands(desk: Desk) -> None:
    def run(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "run_dialer.py"), "console", "users",
                               *args, "-c", str(desk.config)], input=password,
                              capture_output=True, text=True, check=False)

    added = run("add", "zhao", "--role", "officer", password="a good long password\n")
    assert added.returncode == 0, added.stderr
    short = run("add", "qian", "--role", "officer", password="short\n")
    assert short.returncode == 1
    assert short.stderr.strip() == "error: the password has 5 characters; at least 10"
    assert run("add", "zhao", "--role", "officer", password="a good long password\n").stderr \
        .strip() == "error: there is a user zhao already"
    assert run("add", "sun", "--role", "chief", password="x\n").returncode == 2  # argparse
    listed = run("list", "--json").stdout
    assert '"name": "zhao", "role": "officer", "disabled": false' in listed
    assert "password" not in listed
    client = desk.client()
    assert client.post("/login", data={"name": "zhao", "password": "a good long password"},
                       follow_redirects=False).status_code == 303
    assert run("disable", "zhao").returncode == 0
    assert client.get("/", headers={"accept": "text/html"},
                      follow_redirects=False).status_code == 303  # the session ended
    refused = desk.client().post("/login", data={"name": "zhao",
                                                 "password": "a good long password"})
    assert "This user is disabled" in refused.text
    assert run("enable", "zhao").returncode == 0
    assert run("password", "zhao", password="another long password\n").returncode == 0
    assert desk.client().post("/login", data={"name": "zhao",
                                              "password": "another long password"},
                              follow_redirects=False).status_code == 303
