"""The text store on PostgreSQL: the SQLite store's contract, shared by every node.

Consultations in threads, replies, warning texts, as on SQLite: a consultation is committed
with its automatic reply before the reply goes out, an outgoing text moves along
:data:`texts.model.MESSAGE_TRANSITIONS`, and which thread a text joins is
:func:`texts.model.joins`. What the database adds:

- **One thread per number at once, whichever node receives.** ``receive`` holds a
  transaction-wide advisory lock on the number, so two nodes given texts from one number at
  the same moment decide one after the other, and the second joins the first's thread.
- **A reply's ``request_id`` once, whichever node asks**: under an advisory lock on the id.
- **Order without row ids.** Threads carry ``ord`` (the order they were opened in) where
  SQLite's listing relied on its row ids; messages are ordered by their identity ``id``.
  Thread ids compare bytewise (``COLLATE "C"``), as on SQLite, so a page's cursor means the
  same whatever the database's locale.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from texts.model import KINDS, Message, MessageState, Thread, ThreadState, joins

from ..errors import NotFound, Refused
from .db import Database, PgWatch, _lock_key, notify

__all__ = ["MIGRATIONS", "PgTextStore", "Reply"]

STORE = "texts"
WHAT = "the text store"

MIGRATIONS: list[str] = ["""
    CREATE TABLE threads (
        id TEXT COLLATE "C" PRIMARY KEY,
        number TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('waiting', 'replied', 'blocked')),
        opened_at DOUBLE PRECISION NOT NULL,
        last_at DOUBLE PRECISION NOT NULL,
        replied_at DOUBLE PRECISION,
        fraud_type TEXT NOT NULL DEFAULT '',
        ord BIGSERIAL
    );
    CREATE INDEX threads_number ON threads (number, last_at, ord);
    CREATE INDEX threads_opened ON threads (opened_at, id);
    CREATE INDEX threads_state ON threads (state, opened_at);
    CREATE TABLE messages (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind TEXT NOT NULL,
        number TEXT NOT NULL,
        body TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL,
        status INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        thread_id TEXT COLLATE "C" REFERENCES threads (id),
        task_id TEXT,
        answered_at DOUBLE PRECISION,
        rule TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        request_id TEXT,
        "by" TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX messages_state ON messages (state, id);
    CREATE INDEX messages_thread ON messages (thread_id, id);
    CREATE INDEX messages_task ON messages (task_id, id);
    CREATE INDEX messages_at ON messages (at);
    CREATE UNIQUE INDEX messages_request ON messages (request_id) WHERE request_id IS NOT NULL
"""]
_MESSAGE = ("id, direction, kind, number, body, at, state, status, reason, thread_id, task_id, "
            "answered_at, rule")
_THREAD = "id, number, state, opened_at, last_at, replied_at, fraud_type"

Reply = Callable[[bool], tuple[str, str] | None]
"""Given whether the text opened its thread: (kind, body) of the automatic reply, or None."""

Cursor = psycopg.Cursor[Any]


class PgTextStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(STORE, MIGRATIONS)
        self.watch: PgWatch = db.watch(STORE)

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self.db.writing(WHAT, STORE, self.watch) as cur:
            yield cur

    def _rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(WHAT, statement, args)

    def close(self) -> None:
        """The connection is the :class:`Database`'s, closed with it."""

    # ------------------------------------------------------------ consultations

    def receive(self, number: str, body: str, at: float, *, thread_s: float, rule: str = "",
                blocked: bool = False, fraud_type: str = "", source: str = "",
                reply: Reply | None = None) -> tuple[Message, Message | None]:
        """Store a consultation in its thread (:func:`texts.model.joins`: the number's thread
        while it waits, else a new one), and its automatic reply, if any, as a pending text:
        one transaction. Returns both messages."""
        with self._write() as cur:
            # one text of a number at a time, cluster-wide: the join reads what it changes
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("texts:" + number),))
            last = self._threads("WHERE number = %s ORDER BY last_at DESC, ord DESC LIMIT 1 "
                                 "FOR UPDATE", (number,), cur)
            state = ThreadState.BLOCKED if blocked else ThreadState.WAITING
            opened = not joins(last[0] if last else None, blocked, at, thread_s)
            if opened:
                thread_id = self._new_thread(cur, number, state, at, fraud_type)
            else:
                thread_id = last[0].id
                cur.execute("UPDATE threads SET last_at = %s, "
                            "fraud_type = CASE WHEN fraud_type = '' THEN %s ELSE fraud_type END "
                            "WHERE id = %s", (at, fraud_type, thread_id))
            row = cur.execute(
                "INSERT INTO messages (direction, kind, number, body, at, state, thread_id, "
                "rule, source) VALUES ('in', 'consultation', %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING id",
                (number, body, at,
                 (MessageState.BLOCKED if blocked else MessageState.STORED).value,
                 thread_id, rule, source)).fetchone()
            assert row is not None
            incoming = int(row[0])
            answer = reply(opened) if reply is not None and not blocked else None
            outgoing = None
            if answer is not None:
                outgoing = self._queue(cur, answer[0], number, answer[1], at, thread_id, None)
        return self.message(incoming), (self.message(outgoing) if outgoing else None)

    def _new_thread(self, cur: Cursor, number: str, state: ThreadState, at: float,
                    fraud_type: str) -> str:
        while True:  # another thread holding this id is a draw of 2**32
            thread_id = "s" + secrets.token_hex(4)
            cur.execute(f"INSERT INTO threads ({_THREAD}) VALUES (%s, %s, %s, %s, %s, NULL, %s) "
                        "ON CONFLICT (id) DO NOTHING",
                        (thread_id, number, state.value, at, at, fraud_type))
            if cur.rowcount == 1:
                return thread_id

    def reply(self, thread_id: str, body: str, at: float, request_id: str | None = None,
              by: str = "") -> Message:
        """An operator's answer to a thread: queued to go out, and the thread is replied
        (since its first answer). A ``request_id`` already taken returns that text."""
        if request_id is not None:
            found = self._rows(f"SELECT {_MESSAGE} FROM messages WHERE request_id = %s",
                               (request_id,))
            if found:
                return _message_of(found[0])
        with self.db.transaction(WHAT) as cur:
            if request_id is not None:
                # the same request on two nodes at once: the second finds the first's text
                cur.execute("SELECT pg_advisory_xact_lock(%s)",
                            (_lock_key("text request:" + request_id),))
                row = cur.execute(f"SELECT {_MESSAGE} FROM messages WHERE request_id = %s",
                                  (request_id,)).fetchone()
                if row is not None:
                    return _message_of(row)
            threads = self._threads("WHERE id = %s FOR UPDATE", (thread_id,), cur)
            if not threads:
                raise NotFound(f"there is no thread {thread_id} (see `sms list`)")
            thread = threads[0]
            if thread.state is ThreadState.BLOCKED:
                raise Refused(f"thread {thread_id} is from a blocked number; it is not answered")
            n = self._queue(cur, "reply", thread.number, body, at, thread_id, None)
            cur.execute('UPDATE messages SET request_id = %s, "by" = %s WHERE id = %s',
                        (request_id, by, n))
            cur.execute("UPDATE threads SET state = 'replied', "
                        "replied_at = COALESCE(replied_at, %s) WHERE id = %s", (at, thread_id))
            notify(cur, STORE)
        self.watch.touched()
        return self.message(n)

    def reply_failed(self, thread_id: str) -> None:
        """The operator's answer did not arrive: the thread waits again."""
        with self._write() as cur:
            cur.execute("UPDATE threads SET state = 'waiting' WHERE id = %s AND state = 'replied'",
                        (thread_id,))

    def thread(self, thread_id: str) -> Thread:
        found = self._threads("WHERE id = %s", (thread_id,))
        if not found:
            raise NotFound(f"there is no thread {thread_id} (see `sms list`)")
        return found[0]

    def threads(self, state: str | None = None) -> list[Thread]:
        if state:
            return self._threads("WHERE state = %s ORDER BY opened_at, ord", (state,))
        return self._threads("ORDER BY opened_at, ord", ())

    def threads_page(self, state: str | None, before: tuple[float, str] | None,
                     limit: int) -> list[Thread]:
        """Threads newest first, ``limit`` after the cursor ``before`` (opened_at, id)."""
        where: list[str] = ["TRUE"]
        args: list[object] = []
        if state:
            where.append("state = %s")
            args.append(state)
        if before is not None:
            where.append("(opened_at, id) < (%s, %s)")
            args += [before[0], before[1]]
        return self._threads(f"WHERE {' AND '.join(where)} ORDER BY opened_at DESC, id DESC "
                             "LIMIT %s", (*args, limit))

    def threads_between(self, since: float, until: float) -> list[Thread]:
        return self._threads("WHERE opened_at >= %s AND opened_at < %s ORDER BY opened_at, ord",
                             (since, until))

    def count(self, state: str) -> int:
        return int(self._rows("SELECT count(*) FROM threads WHERE state = %s", (state,))[0][0])

    def _threads(self, clause: str, args: Sequence[Any], cur: Cursor | None = None
                 ) -> list[Thread]:
        """The threads ``clause`` selects, each with what the person wrote (two queries, not
        one per thread), in ``cur``'s transaction or a transaction of their own."""
        if cur is None:
            with self.db.transaction(WHAT) as own:
                return self._threads(clause, args, own)
        rows = cur.execute(f"SELECT {_THREAD} FROM threads {clause}", args).fetchall()
        texts: dict[str, list[str]] = {str(r[0]): [] for r in rows}
        if texts:
            for thread_id, body in cur.execute(
                    "SELECT thread_id, body FROM messages WHERE direction = 'in' AND "
                    "thread_id = ANY(%s) ORDER BY id", (list(texts),)).fetchall():
                texts[thread_id].append(body)
        return [Thread(str(r[0]), str(r[1]), ThreadState(r[2]), float(r[3]), float(r[4]),
                       None if r[5] is None else float(r[5]), str(r[6]), tuple(texts[str(r[0])]))
                for r in rows]

    # ------------------------------------------------------------ texts out

    def queue(self, kind: str, number: str, body: str, at: float, *,
              task_id: str | None = None) -> Message:
        """A text to send (a warning text: ``task_id``)."""
        with self._write() as cur:
            n = self._queue(cur, kind, number, body, at, None, task_id)
        return self.message(n)

    def _queue(self, cur: Cursor, kind: str, number: str, body: str, at: float,
               thread_id: str | None, task_id: str | None) -> int:
        if kind not in KINDS:
            raise Refused(f"{kind!r} is not a kind of text")
        row = cur.execute("INSERT INTO messages (direction, kind, number, body, at, state, "
                          "thread_id, task_id) VALUES ('out', %s, %s, %s, %s, 'pending', %s, %s) "
                          "RETURNING id", (kind, number, body, at, thread_id, task_id)).fetchone()
        assert row is not None
        return int(row[0])

    def pending(self, limit: int = 100) -> list[Message]:
        rows = self._rows(f"SELECT {_MESSAGE} FROM messages WHERE state = 'pending' "
                          "ORDER BY id LIMIT %s", (limit,))
        return [_message_of(r) for r in rows]

    def sending(self, message_id: int) -> None:
        self._move(message_id, MessageState.SENDING, (MessageState.PENDING,))

    def answered(self, message_id: int, status: int, reason: str, at: float) -> Message:
        state = MessageState.SENT if 200 <= status < 300 else MessageState.FAILED
        with self._write() as cur:
            cur.execute("UPDATE messages SET state = %s, status = %s, reason = %s, "
                        "answered_at = %s WHERE id = %s",
                        (state.value, status, reason, at, message_id))
        return self.message(message_id)

    def drop(self, message_id: int, reason: str, at: float) -> None:
        """A pending text no longer to send (its task closed meanwhile)."""
        with self._write() as cur:
            cur.execute("UPDATE messages SET state = 'dropped', reason = %s, answered_at = %s "
                        "WHERE id = %s AND state IN ('pending', 'sending')",
                        (reason, at, message_id))

    def unsend(self, message_id: int) -> None:
        """A text that could not be handed to a sender now: pending again."""
        self._move(message_id, MessageState.PENDING, (MessageState.SENDING,))

    def _move(self, message_id: int, to: MessageState, only: tuple[MessageState, ...]) -> None:
        with self._write() as cur:
            cur.execute("UPDATE messages SET state = %s WHERE id = %s AND state = ANY(%s)",
                        (to.value, message_id, [s.value for s in only]))

    def recover(self) -> int:
        """Texts a stop left without an answer go out again (at least once)."""
        with self._write() as cur:
            cur.execute("UPDATE messages SET state = 'pending' WHERE state = 'sending'")
            return int(cur.rowcount)

    # ------------------------------------------------------------ reading

    def message(self, message_id: int) -> Message:
        rows = self._rows(f"SELECT {_MESSAGE} FROM messages WHERE id = %s", (message_id,))
        if not rows:
            raise NotFound(f"there is no text {message_id}")
        return _message_of(rows[0])

    def of_thread(self, thread_id: str) -> list[Message]:
        rows = self._rows(f"SELECT {_MESSAGE} FROM messages WHERE thread_id = %s ORDER BY id",
                          (thread_id,))
        return [_message_of(r) for r in rows]

    def of_task(self, task_id: str) -> list[Message]:
        rows = self._rows(f"SELECT {_MESSAGE} FROM messages WHERE task_id = %s ORDER BY id",
                          (task_id,))
        return [_message_of(r) for r in rows]

    def between(self, since: float, until: float) -> list[Message]:
        rows = self._rows(f"SELECT {_MESSAGE} FROM messages WHERE at >= %s AND at < %s "
                          "ORDER BY id", (since, until))
        return [_message_of(r) for r in rows]


def _message_of(row: Sequence[Any]) -> Message:
    values = list(row)
    values[6] = MessageState(values[6])
    return Message(*values)
