"""The stores' contract: what every backend must do, run on each (SQLite files, and a real
PostgreSQL from Debian that the session starts). Claims raced by threads and by processes, recovery per node, a
change heard within 50 ms, the merge rules, the order of a task's events, the texts' threads,
the callbacks, the outbox, pages that stay put while tasks arrive, and the console's users
(sessions, sign-in failures, remembered filters) and audit trail."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgctl import PASSWORD, Postgres, available, postgres

from dialer import History, Outcome, Plan, Risk, TaskState, validate
from dialer.catalog import REQUIRED_TYPES
from people import AuditEntry, Role, Session, User
from stores import NotFound, Refused, Stores, TaskQuery, TaskStore, open_stores
from texts.model import MessageState, ThreadState

T0 = 1_800_000_000.0
BACKENDS = ["sqlite", "postgresql"]


class Backend:
    """Opens another connection to the same stores each time it is called."""

    def __init__(self, directory: Path, url: str | None = None) -> None:
        self.where = (str(directory), url, PASSWORD if url else None)
        self.opened: list[Stores] = []

    def __call__(self) -> Stores:
        stores = _open(self.where)
        self.opened.append(stores)
        return stores


def _open(where: tuple[str, str | None, str | None]) -> Stores:
    directory, url, password = where
    return open_stores(Path(directory), url=url, password=password, node="test")


@pytest.fixture(scope="session")
def server() -> Iterator[Postgres]:
    missing = available()
    if missing:
        pytest.fail(f"{missing}: tools/test.sh installs it")
    with postgres() as pg:
        yield pg


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    url = None
    if request.param == "postgresql":
        pg: Postgres = request.getfixturevalue("server")
        url = pg.fresh_database(f"contract_{uuid.uuid4().hex[:12]}")
    made = Backend(tmp_path / "var", url)
    yield made
    for stores in made.opened:
        stores.close()


@pytest.fixture()
def tasks(backend: Backend) -> TaskStore:
    return backend().tasks


def request(number: str = "13800137490", **fields: object):
    return validate(number, known_types=REQUIRED_TYPES, **fields)  # type: ignore[arg-type]


def numbers(n: int) -> Iterator[str]:
    for i in range(n):
        yield f"1380013{i:04d}"


def plan(state: TaskState, counted: bool = True, escalate: bool = False,
         next_at: float | None = T0 + 60) -> Plan:
    return Plan(state, next_at if state.open else None, counted, escalate, "",
                History(Risk.HIGH, T0, attempts=1, reached=1))


# ------------------------------------------------------------------ requests and merges


def test_merge_rules(tasks: TaskStore) -> None:
    first = tasks.submit(request(fraud_type="general", risk="normal", case_id="A", note="one"),
                         T0, T0 + 3600)
    assert (first.merged, first.task.state, first.task.next_at) == (False, TaskState.QUEUED,
                                                                    T0 + 3600)
    second = tasks.submit(request(fraud_type="investment", risk="high", case_id="B", note="two"),
                          T0 + 5, T0 + 5, by="mqtt:x")
    t = second.task
    assert second.merged and t.id == first.task.id
    assert (t.risk, t.case_ids, t.fraud_type, t.note) == (Risk.HIGH, ("A", "B"), "investment",
                                                          "one\ntwo")
    assert t.next_at == T0 + 5  # a normal task waiting out the night is urgent now
    third = tasks.submit(request(fraud_type="loan", risk="normal", case_id="A"), T0 + 6, T0 + 6)
    assert (third.task.risk, third.task.case_ids, third.task.fraud_type) == (
        Risk.HIGH, ("A", "B"), "investment")
    merged = [e for e in tasks.events(t.id) if e.event == "merged"]
    assert merged[0].detail["by"] == "mqtt:x" and "by" not in merged[1].detail


def test_a_repeated_request_id_is_not_a_second_task(tasks: TaskStore) -> None:
    one = tasks.submit(request(request_id="REQ-1"), T0, T0)
    again = tasks.submit(request(request_id="REQ-1", case_id="other"), T0 + 1, T0 + 1)
    assert again.duplicate and again.task.id == one.task.id == "REQ-1"
    assert again.task.case_ids == ()


def test_unknown_ids_are_not_found(tasks: TaskStore) -> None:
    with pytest.raises(NotFound, match="there is no task nope"):
        tasks.task("nope")
    with pytest.raises(NotFound):
        tasks.cancel("nope", T0)


def test_operators_changes_and_their_refusals(tasks: TaskStore) -> None:
    task = tasks.submit(request(risk="normal"), T0, T0 + 600).task
    raised = tasks.raise_risk(task.id, T0 + 1, by="cli:duty")
    assert raised.risk is Risk.HIGH and raised.next_at == T0 + 1
    with pytest.raises(Refused, match="high risk already"):
        tasks.raise_risk(task.id, T0 + 2)
    [claim] = tasks.claim(T0 + 2, "n1", "w1")
    tasks.end_attempt(task.id, 1, Outcome.BUSY, 486, "", "", T0 + 3, plan(TaskState.WAITING))
    requeued = tasks.requeue(task.id, T0 + 4, by="cli:duty")
    assert (requeued.state, requeued.next_at) == (TaskState.QUEUED, T0 + 4)
    cancelled = tasks.cancel(task.id, T0 + 5, "reached at home", by="cli:duty")
    assert cancelled.state is TaskState.CANCELLED
    with pytest.raises(Refused, match="already cancelled; nothing to cancel"):
        tasks.cancel(task.id, T0 + 6)
    with pytest.raises(Refused):
        tasks.requeue(task.id, T0 + 6)
    by = [(e.event, e.detail.get("by")) for e in tasks.events(task.id)]
    assert ("risk_raised", "cli:duty") in by and ("requeued", "cli:duty") in by
    assert ("cancelled", "cli:duty") in by and claim.task.id == task.id


def test_a_retry_planned_later_than_a_new_policy_allows_is_brought_forward(
        tasks: TaskStore) -> None:
    task = tasks.submit(request(), T0, T0).task
    assert tasks.bring_forward(task.id, T0, T0) is None  # queued: no retry was planned
    tasks.claim(T0 + 1, "n1", "w1")
    tasks.end_attempt(task.id, 1, Outcome.BUSY, 486, "", "", T0 + 3, plan(TaskState.WAITING))
    assert tasks.bring_forward(task.id, T0 + 90, T0 + 4) is None  # already sooner than that
    moved = tasks.bring_forward(task.id, T0 + 20, T0 + 4, by="reload:cli:duty")
    assert moved is not None and (moved.state, moved.next_at) == (TaskState.WAITING, T0 + 20)
    assert tasks.next_due_at() == T0 + 20
    [event] = [e for e in tasks.events(task.id) if e.event == "rescheduled"]
    assert event.detail == {"next_at": T0 + 20, "was": T0 + 60, "by": "reload:cli:duty"}
    tasks.cancel(task.id, T0 + 5)
    assert tasks.bring_forward(task.id, T0 + 6, T0 + 6) is None


# ------------------------------------------------------------------ claims


def test_a_claim_takes_the_most_urgent_first_and_records_the_attempt(tasks: TaskStore) -> None:
    normal = tasks.submit(request("13800137490", risk="normal"), T0, T0).task
    high = tasks.submit(request("13900139002", risk="high"), T0 + 1, T0 + 1).task
    later = tasks.submit(request("13700137003", risk="high"), T0 + 2, T0 + 100).task
    claims = tasks.claim(T0 + 5, "node-a", "w2", limit=5)
    assert [c.task.id for c in claims] == [high.id, normal.id]  # not `later`: not due yet
    first = claims[0]
    assert first.task.state is TaskState.CALLING and first.task.tries == 1
    assert (first.attempt.n, first.attempt.call, first.attempt.worker) == (1, f"{high.id}-1", "w2")
    assert tasks.claim(T0 + 5, "node-b", "w1") == []
    assert tasks.next_due_at() == T0 + 100 and later.state is TaskState.QUEUED
    assert tasks.claim(T0 + 5, "node-b", "w1", only=later.id) == []  # not due yet
    [only] = tasks.claim(T0 + 100, "node-b", "w1", only=later.id)
    assert only.task.id == later.id


def _claim_all(where: tuple[str, str | None, str | None], node: str,
               out: multiprocessing.Queue[list[str]]) -> None:
    stores = _open(where)
    got: list[str] = []
    try:
        while True:
            claims = stores.tasks.claim(T0 + 10, node, "w1", limit=1)
            if not claims:
                break
            got.append(claims[0].task.id)
    finally:
        stores.close()
        out.put(got)


def test_two_nodes_claiming_at_once_never_take_the_same_task(backend: Backend) -> None:
    stores = backend()
    ids = [stores.tasks.submit(request(n), T0, T0).task.id for n in numbers(120)]
    stores.close()
    directory = backend.where
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[str]] = context.Queue()
    threads = [threading.Thread(target=_claim_all, args=(directory, f"thread-{i}", out))
               for i in range(2)]
    processes = [context.Process(target=_claim_all, args=(directory, f"process-{i}", out))
                 for i in range(2)]
    for runner in [*threads, *processes]:
        runner.start()
    claimed = [task_id for _ in range(4) for task_id in out.get(timeout=60)]
    for thread in threads:
        thread.join(10)
    for process in processes:
        process.join(10)
    assert sorted(claimed) == sorted(ids)  # every task, each once
    assert max(Counter(claimed).values()) == 1


def test_recovery_touches_one_nodes_attempts_only(tasks: TaskStore) -> None:
    a = tasks.submit(request("13800137490"), T0, T0).task
    b = tasks.submit(request("13900139002"), T0, T0).task
    tasks.claim(T0 + 1, "node-a", "w1")
    tasks.claim(T0 + 1, "node-b", "w1")
    recovered = tasks.recover("node-a", T0 + 2, due_at=T0 + 5)
    assert [(r.task_id, r.outcome) for r in recovered] == [(a.id, Outcome.INTERRUPTED)]
    assert tasks.task(a.id).state is TaskState.WAITING and tasks.task(a.id).next_at == T0 + 5
    assert tasks.task(b.id).state is TaskState.CALLING  # node b's call goes on
    assert tasks.attempts(b.id)[0].ended_at is None
    assert tasks.recover("node-a", T0 + 3) == []


# ------------------------------------------------------------------ changes and events


def test_a_change_by_another_connection_is_heard_within_50_ms(
        backend: Backend) -> None:
    reader, writer = backend().tasks, backend().tasks
    heard: list[float] = []

    async def listen() -> None:
        await reader.watch.wait(0.0)  # what happened before
        for _ in range(10):
            written = asyncio.get_running_loop().time()
            await asyncio.to_thread(writer.submit, request(next(fresh)), T0, T0)
            assert await reader.watch.wait(1.0)
            heard.append(asyncio.get_running_loop().time() - written)
        assert not await reader.watch.wait(0.1)  # and nothing else

    fresh = numbers(10)
    asyncio.run(listen())
    assert max(heard) < 0.05, heard


def test_own_commits_are_heard_at_once(tasks: TaskStore) -> None:
    woken: list[float] = []
    tasks.watch.subscribe(lambda: woken.append(time.monotonic()))
    tasks.submit(request(), T0, T0)
    assert len(woken) == 1


def test_the_last_event_seq_of_an_empty_store_is_0(tasks: TaskStore) -> None:
    assert tasks.last_event_seq() == 0


def test_the_events_of_a_task_come_in_order(tasks: TaskStore) -> None:
    task = tasks.submit(request(case_id="FZ-1"), T0, T0).task
    tasks.claim(T0 + 1, "n", "w1")
    tasks.end_attempt(task.id, 1, Outcome.BUSY, 486, "", "", T0 + 2,
                      plan(TaskState.WAITING, escalate=True), {"by": "status", "status": 486})
    tasks.claim(T0 + 61, "n", "w1")
    tasks.mark_answered(task.id, 2, T0 + 62)
    tasks.mark_reached(task.id, 2, "acknowledged", T0 + 65)
    done = tasks.end_attempt(task.id, 2, Outcome.ACKNOWLEDGED, 200, "1", "human", T0 + 67,
                             plan(TaskState.ACKNOWLEDGED, counted=False))
    assert done.state is TaskState.ACKNOWLEDGED and done.reached_at == T0 + 65
    events = tasks.events(task.id)
    assert [(e.event, e.attempt) for e in events] == [
        ("queued", 0), ("attempt", 1), ("attempt_ended", 1), ("escalated", 1), ("attempt", 2),
        ("answered", 2), ("acknowledged", 2), ("attempt_ended", 2), ("completed", 2)]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert tasks.last_event_seq() == max(e.seq for e in tasks.events())
    assert events[2].detail["how"] == {"by": "status", "status": 486}
    assert events[3].detail["case_ids"] == ["FZ-1"]
    assert tasks.attempts(task.id)[0].how == {"by": "status", "status": 486}


def test_an_attempt_ending_after_a_cancel_leaves_the_task_cancelled(tasks: TaskStore) -> None:
    task = tasks.submit(request(), T0, T0).task
    tasks.claim(T0 + 1, "n", "w1")
    tasks.cancel(task.id, T0 + 2, "reached another way")
    ended = tasks.end_attempt(task.id, 1, Outcome.NO_ANSWER, 487, "", "", T0 + 3,
                              plan(TaskState.WAITING))
    assert ended.state is TaskState.CANCELLED
    assert [e.event for e in tasks.events(task.id)][-1] == "attempt_ended"


# ------------------------------------------------------------------ pages


def test_pages_of_tasks_stay_put_while_tasks_arrive(tasks: TaskStore) -> None:
    for i, number in enumerate(numbers(25)):
        tasks.submit(request(number), T0 + i, T0 + i)
    first = tasks.find(TaskQuery(limit=10))
    assert [t.created_at for t in first] == [T0 + i for i in range(24, 14, -1)]  # newest first
    for i, number in enumerate(numbers(30)):  # five new ones arrive meanwhile
        if i >= 25:
            tasks.submit(request(number), T0 + 100 + i, T0)
    cursor = (first[-1].created_at, first[-1].id)
    second = tasks.find(TaskQuery(limit=10, before=cursor))
    assert [t.created_at for t in second] == [T0 + i for i in range(14, 4, -1)]
    third = tasks.find(TaskQuery(limit=10, before=(second[-1].created_at, second[-1].id)))
    assert [t.created_at for t in third] == [T0 + i for i in range(4, -1, -1)]


def test_escalated_and_open(tasks: TaskStore) -> None:
    escalated = tasks.submit(request("13800137490", fraud_type="loan"), T0, T0).task
    other = tasks.submit(request("13900139002"), T0, T0).task
    tasks.claim(T0, "n", "w1", limit=2)
    tasks.end_attempt(escalated.id, 1, Outcome.BUSY, 486, "", "", T0 + 1,
                      plan(TaskState.WAITING, escalate=True))
    tasks.end_attempt(other.id, 1, Outcome.BUSY, 486, "", "", T0 + 1, plan(TaskState.WAITING))
    assert [t.id for t in tasks.find(TaskQuery(escalated_open=True))] == [escalated.id]
    assert [t.id for t in tasks.find(TaskQuery(fraud_type="loan"))] == [escalated.id]
    tasks.cancel(escalated.id, T0 + 2)
    assert tasks.find(TaskQuery(escalated_open=True)) == []


# ------------------------------------------------------------------ texts, callbacks, outbox


def test_texts_join_their_thread_while_it_waits(backend: Backend) -> None:
    texts = backend().texts
    first, reply = texts.receive("13800137490", "你好", T0, thread_s=600,
                                 reply=lambda opened: ("auto_reply", "收到") if opened else None)
    assert reply is not None and reply.state is MessageState.PENDING
    second, none = texts.receive("13800137490", "有人吗", T0 + 60, thread_s=600,
                                 reply=lambda opened: ("auto_reply", "收到") if opened else None)
    assert none is None and second.thread_id == first.thread_id
    thread = texts.thread(first.thread_id or "")
    assert thread.state is ThreadState.WAITING and thread.texts == ("你好", "有人吗")
    answered = texts.reply(thread.id, "请不要转账", T0 + 120, request_id="r1", by="cli:duty")
    assert texts.reply(thread.id, "请不要转账", T0 + 121, request_id="r1").id == answered.id
    assert texts.thread(thread.id).state is ThreadState.REPLIED
    later, _ = texts.receive("13800137490", "谢谢", T0 + 180, thread_s=600)
    assert later.thread_id != thread.id  # a replied thread is closed: a new question
    far, _ = texts.receive("13900139002", "a", T0, thread_s=600)
    farther, _ = texts.receive("13900139002", "b", T0 + 601, thread_s=600)
    assert far.thread_id != farther.thread_id
    blocked, _ = texts.receive("17000000001", "x", T0, thread_s=600, blocked=True, rule="list:f")
    with pytest.raises(Refused, match="blocked number"):
        texts.reply(blocked.thread_id or "", "no", T0 + 1)
    with pytest.raises(NotFound):
        texts.thread("s-none")


def test_an_outgoing_text_moves_along_its_states(backend: Backend) -> None:
    texts = backend().texts
    message = texts.queue("warning", "13800137490", "请注意", T0, task_id="t1")
    assert [m.id for m in texts.pending()] == [message.id]
    texts.sending(message.id)
    texts.sending(message.id)  # only a pending text is handed over
    assert texts.message(message.id).state is MessageState.SENDING and texts.pending() == []
    assert texts.recover() == 1  # a stop left it unanswered: it goes out again
    texts.sending(message.id)
    sent = texts.answered(message.id, 200, "OK", T0 + 1)
    assert (sent.state, sent.status) == (MessageState.SENT, 200)
    texts.unsend(message.id)  # a sent text stays sent
    assert texts.message(message.id).state is MessageState.SENT
    with pytest.raises(Refused):
        texts.queue("postcard", "13800137490", "x", T0)


def test_a_callback_is_answered_once(backend: Backend) -> None:
    callbacks = backend().callbacks
    left = callbacks.add("13800137490", T0, "/m.wav", 12.5, "main>message")
    done = callbacks.done(left.id, T0 + 3600, "called back", by="cli:duty")
    assert (done.state, done.note, done.done_by) == ("done", "called back", "cli:duty")
    with pytest.raises(Refused, match="already marked answered"):
        callbacks.done(left.id, T0 + 3601)
    with pytest.raises(NotFound):
        callbacks.done("m-none", T0)
    assert [c.id for c in callbacks.after(T0 - 1, "")] == [left.id]


def test_the_outbox_keeps_order_and_moves_its_cursor_with_the_copy(
        backend: Backend) -> None:
    outbox = backend().outbox
    outbox.put([("warning/event", '{"n": 1}'), ("warning/event", '{"n": 2}')], T0,
               cursor=("task_events", "2"))
    outbox.put([("screening/event", '{"n": 3}')], T0 + 1)
    assert outbox.cursor("task_events") == "2" and outbox.depth() == 3
    pending = outbox.peek(10)
    assert [p.payload for p in pending] == ['{"n": 1}', '{"n": 2}', '{"n": 3}']
    outbox.done([pending[0].id])
    assert outbox.trim(1, "screening/event") == 1  # only that topic goes, past the limit
    assert [p.payload for p in outbox.peek(10)] == ['{"n": 2}']


# ------------------------------------------------------------------ the console's users


def session(token: str, user: str, at: float, address: str = "192.0.2.1") -> Session:
    return Session(token, user, "csrf-" + token, address, at, at)


def test_a_user_is_added_once_and_listed_by_name(backend: Backend) -> None:
    users = backend().users
    woken: list[int] = []
    users.watch.subscribe(lambda: woken.append(1))
    alice = users.add("alice", Role.SUPERVISOR, "hash-a", T0)
    assert alice == User("alice", Role.SUPERVISOR, "hash-a", False, T0, T0)
    assert woken == [1]
    users.add("carol", Role.OFFICER, "hash-c", T0 + 1)
    users.add("Bob", Role.OFFICER, "hash-b", T0 + 2)
    with pytest.raises(Refused, match="^there is a user alice already$"):
        users.add("alice", Role.OFFICER, "other", T0 + 3)
    assert users.get("alice") == alice  # the refused one changed nothing
    assert [u.name for u in users.list()] == ["Bob", "alice", "carol"]  # bytewise
    with pytest.raises(NotFound, match="^there is no user dave$"):
        users.get("dave")
    assert backend().users.get("Bob").role is Role.OFFICER  # another connection sees it


def test_a_new_password_or_a_disabled_user_ends_that_users_sessions(backend: Backend) -> None:
    users = backend().users
    users.add("alice", Role.SUPERVISOR, "hash-a", T0)
    users.add("bob", Role.OFFICER, "hash-b", T0)
    for token, user in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")]:
        users.start_session(session(token, user, T0 + 1))
    changed = users.set_password("alice", "hash-a2", T0 + 10)
    assert (changed.password_hash, changed.created_at, changed.updated_at) == (
        "hash-a2", T0, T0 + 10)
    assert users.session("a1") is None and users.session("a2") is None
    assert users.session("b1") == session("b1", "bob", T0 + 1)  # another user's stays
    users.start_session(session("a3", "alice", T0 + 11))
    disabled = users.set_disabled("bob", True, T0 + 12)
    assert disabled.disabled and disabled.updated_at == T0 + 12
    assert users.session("b1") is None and users.session("a3") is not None
    with pytest.raises(Refused, match="^user bob is disabled already$"):
        users.set_disabled("bob", True, T0 + 13)
    assert users.get("bob").updated_at == T0 + 12
    enabled = users.set_disabled("bob", False, T0 + 14)
    assert not enabled.disabled and enabled.updated_at == T0 + 14
    with pytest.raises(Refused, match="^user bob is enabled already$"):
        users.set_disabled("bob", False, T0 + 15)
    with pytest.raises(NotFound, match="^there is no user dave$"):
        users.set_password("dave", "x", T0)
    with pytest.raises(NotFound, match="^there is no user dave$"):
        users.set_disabled("dave", True, T0)


def test_sessions_are_kept_by_their_token_and_end_when_idle(backend: Backend) -> None:
    users, other = backend().users, backend().users
    users.add("alice", Role.OFFICER, "hash-a", T0)
    users.start_session(session("t1", "alice", T0, "198.51.100.7"))
    users.start_session(session("t2", "alice", T0 + 100))
    assert other.session("t1") == Session("t1", "alice", "csrf-t1", "198.51.100.7", T0, T0)
    assert other.session("nope") is None
    other.touch_session("t1", T0 + 500)
    touched = users.session("t1")
    assert touched is not None and (touched.created_at, touched.seen_at) == (T0, T0 + 500)
    assert users.end_idle_sessions(T0 + 200) == 1  # t2, seen at T0 + 100
    assert users.session("t2") is None and users.session("t1") is not None
    assert users.end_idle_sessions(T0 + 200) == 0
    other.end_session("t1")
    other.end_session("t1")  # twice: nothing more to end
    assert users.session("t1") is None


def test_sign_in_failures_by_name_and_by_address(backend: Backend) -> None:
    users = backend().users
    users.sign_in_failed("alice", "192.0.2.1", T0 - 90_000)  # more than a day before T0
    users.sign_in_failed("alice", "192.0.2.1", T0 + 2)
    users.sign_in_failed("alice", "192.0.2.9", T0 + 1)
    users.sign_in_failed("mallory", "192.0.2.1", T0 + 3)
    users.sign_in_failed("nobody", "203.0.113.5", T0 + 4)  # a name that is no user
    assert users.failures("alice", "192.0.2.1", 0) == ([T0 + 1, T0 + 2], [T0 + 2, T0 + 3])
    assert users.failures("alice", "192.0.2.1", T0 + 2) == ([T0 + 2], [T0 + 2, T0 + 3])
    assert users.failures("nobody", "203.0.113.5", T0) == ([T0 + 4], [T0 + 4])
    users.forget_failures("alice")  # a good sign-in: the name's go, mallory's stay
    assert users.failures("alice", "192.0.2.1", 0) == ([], [T0 + 3])
    assert backend().users.failures("mallory", "192.0.2.9", 0) == ([T0 + 3], [])


def test_remembered_filters_per_user_and_key(backend: Backend) -> None:
    users = backend().users
    assert users.prefs("alice", "tasks") == {}
    chosen = {"state": "open", "risk": "", "fraud_type": "冒充公检法", "q": ["a", 1]}
    users.set_prefs("alice", "tasks", chosen)
    users.set_prefs("alice", "reports", {"since": "2027-01-01", "until": ""})
    users.set_prefs("bob", "tasks", {"state": "failed"})
    saved = backend().users.prefs("alice", "tasks")
    assert saved == chosen and list(saved) == list(chosen)  # in the order written
    users.set_prefs("alice", "tasks", {"zeta": "1", "alpha": "2"})
    assert list(users.prefs("alice", "tasks").items()) == [("zeta", "1"), ("alpha", "2")]
    assert users.prefs("alice", "reports") == {"since": "2027-01-01", "until": ""}
    assert users.prefs("bob", "tasks") == {"state": "failed"}
    assert users.prefs("bob", "reports") == {}


# ------------------------------------------------------------------ the audit trail


def test_the_audit_log_pages_newest_first_by_who_and_what(backend: Backend) -> None:
    audit = backend().audit
    woken: list[int] = []
    audit.watch.subscribe(lambda: woken.append(1))
    added = []
    for i in range(7):
        actor = "console:alice" if i % 2 == 0 else "cli:root"
        action = "cancel" if i < 4 else "sign_in"
        added.append(audit.add(AuditEntry(T0 + i, actor, action, f"t{i}", "192.0.2.1",
                                          {"reason": f"因为 {i}", "n": i, "cases": ["A", "B"]})))
    assert len(woken) == 7
    ids = [e.id for e in added]
    assert ids == sorted(ids) and len(set(ids)) == 7 and ids[0] > 0
    assert added[3] == AuditEntry(T0 + 3, "cli:root", "cancel", "t3", "192.0.2.1",
                                  {"reason": "因为 3", "n": 3, "cases": ["A", "B"]}, ids[3])
    everything = backend().audit.page()  # another connection reads it
    assert everything == added[::-1]
    assert list(everything[0].detail) == ["reason", "n", "cases"]  # in the order written
    first = audit.page(limit=3)
    assert [e.target for e in first] == ["t6", "t5", "t4"]
    second = audit.page(before=first[-1].id, limit=3)
    assert [e.target for e in second] == ["t3", "t2", "t1"]
    assert [e.target for e in audit.page(before=second[-1].id, limit=3)] == ["t0"]
    assert [e.target for e in audit.page(actor="cli:root")] == ["t5", "t3", "t1"]
    assert [e.target for e in audit.page(action="cancel")] == ["t3", "t2", "t1", "t0"]
    assert [e.target for e in audit.page(before=ids[3], actor="console:alice",
                                         action="cancel")] == ["t2", "t0"]
    assert audit.page(actor="nobody") == []
    bare = audit.add(AuditEntry(T0 + 9, "engine:screening", "list_add"))
    assert audit.page(limit=1) == [bare] and bare.detail == {} and bare.id > ids[-1]
