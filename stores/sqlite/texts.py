"""The text store on SQLite: consultations in threads, replies, warning texts.

One file under ``engine.data_dir`` (``texts.sqlite``), WAL, ``synchronous=FULL``, migrated
like the task store. A consultation is committed, together with the automatic reply it
gets, before the reply goes out; an outgoing text moves along
:data:`texts.model.MESSAGE_TRANSITIONS` with the far end's SIP status, so that a text
written by another process (``sms reply``) or left unsent by a crash goes out when the
engine runs. Which thread a text joins is :func:`texts.model.joins`. Full numbers stay here;
people see them masked.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlitefile import open_file, transaction
from texts.model import KINDS, Message, MessageState, Thread, ThreadState, joins

from ..errors import NotFound, Refused, StoreError, StoreUnavailable
from ..watch import SqliteWatch

__all__ = ["FILE_NAME", "MIGRATIONS", "Reply", "SqliteTextStore"]

FILE_NAME = "texts.sqlite"


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE threads (
        id TEXT PRIMARY KEY,
        number TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('waiting', 'replied', 'blocked')),
        opened_at REAL NOT NULL,
        last_at REAL NOT NULL,
        replied_at REAL,
        fraud_type TEXT NOT NULL DEFAULT '')""")
    db.execute("CREATE INDEX threads_number ON threads (number, last_at)")
    db.execute("""CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind TEXT NOT NULL,
        number TEXT NOT NULL,
        body TEXT NOT NULL,
        at REAL NOT NULL,
        state TEXT NOT NULL,
        status INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        thread_id TEXT REFERENCES threads (id),
        task_id TEXT,
        answered_at REAL,
        rule TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '')""")
    db.execute("CREATE INDEX messages_state ON messages (state, id)")
    db.execute("CREATE INDEX messages_thread ON messages (thread_id, id)")
    db.execute("CREATE INDEX messages_task ON messages (task_id, id)")


def _v2(db: sqlite3.Connection) -> None:
    """Operators' replies from other systems carry their own id: a repeat is no second text."""
    db.execute("ALTER TABLE messages ADD COLUMN request_id TEXT")
    db.execute("CREATE UNIQUE INDEX messages_request ON messages (request_id) "
               "WHERE request_id IS NOT NULL")


def _v3(db: sqlite3.Connection) -> None:
    """Who wrote an operator's reply (``cli:<user>``, ``mqtt:<client>``…)."""
    db.execute("ALTER TABLE messages ADD COLUMN by TEXT NOT NULL DEFAULT ''")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
_MESSAGE = ("id, direction, kind, number, body, at, state, status, reason, thread_id, task_id, "
            "answered_at, rule")
_THREAD = "id, number, state, opened_at, last_at, replied_at, fraud_type"

Reply = Callable[[bool], tuple[str, str] | None]
"""Given whether the text opened its thread: (kind, body) of the automatic reply, or None."""


class SqliteTextStore:
    def __init__(self, path: Path) -> None:
        self.path = path  # people's numbers and what they wrote: owner only
        self.db = open_file(self.path, MIGRATIONS, "the text store", StoreError)
        self.watch = SqliteWatch(self.db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the text store {self.path} cannot be written now: "
                                   f"{exc}") from None
        self.watch.touched()

    def close(self) -> None:
        self.watch.close()
        self.db.close()

    # ------------------------------------------------------------ consultations

    def receive(self, number: str, body: str, at: float, *, thread_s: float, rule: str = "",
                blocked: bool = False, fraud_type: str = "", source: str = "",
                reply: Reply | None = None) -> tuple[Message, Message | None]:
        """Store a consultation in its thread (:func:`texts.model.joins`: the number's thread
        while it waits, else a new one), and its automatic reply, if any, as a pending text:
        one transaction. Returns both messages."""
        with self._write() as db:
            last = self._threads("WHERE number = ? ORDER BY last_at DESC LIMIT 1", (number,))
            state = ThreadState.BLOCKED if blocked else ThreadState.WAITING
            opened = not joins(last[0] if last else None, blocked, at, thread_s)
            if opened:
                thread_id = "s" + secrets.token_hex(4)
                db.execute(f"INSERT INTO threads ({_THREAD}) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                           (thread_id, number, state.value, at, at, fraud_type))
            else:
                thread_id = last[0].id
                db.execute("UPDATE threads SET last_at = ?, "
                           "fraud_type = CASE WHEN fraud_type = '' THEN ? ELSE fraud_type END "
                           "WHERE id = ?", (at, fraud_type, thread_id))
            cursor = db.execute(
                "INSERT INTO messages (direction, kind, number, body, at, state, thread_id, "
                "rule, source) VALUES ('in', 'consultation', ?, ?, ?, ?, ?, ?, ?)",
                (number, body, at, (MessageState.BLOCKED if blocked else MessageState.STORED).value,
                 thread_id, rule, source))
            incoming = int(cursor.lastrowid or 0)
            answer = reply(opened) if reply is not None and not blocked else None
            outgoing = None
            if answer is not None:
                outgoing = self._queue(db, answer[0], number, answer[1], at, thread_id, None)
        return self.message(incoming), (self.message(outgoing) if outgoing else None)

    def reply(self, thread_id: str, body: str, at: float, request_id: str | None = None,
              by: str = "") -> Message:
        """An operator's answer to a thread: queued to go out, and the thread is replied
        (since its first answer). A ``request_id`` already taken returns that text."""
        if request_id is not None:
            row = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE request_id = ?",
                                  (request_id,)).fetchone()
            if row is not None:
                return _message_of(row)
        thread = self.thread(thread_id)
        if thread.state is ThreadState.BLOCKED:
            raise Refused(f"thread {thread_id} is from a blocked number; it is not answered")
        with self._write() as db:
            n = self._queue(db, "reply", thread.number, body, at, thread_id, None)
            db.execute("UPDATE messages SET request_id = ?, by = ? WHERE id = ?",
                       (request_id, by, n))
            db.execute("UPDATE threads SET state = 'replied', replied_at = COALESCE(replied_at, ?) "
                       "WHERE id = ?", (at, thread_id))
        return self.message(n)

    def reply_failed(self, thread_id: str) -> None:
        """The operator's answer did not arrive: the thread waits again."""
        with self._write() as db:
            db.execute("UPDATE threads SET state = 'waiting' WHERE id = ? AND state = 'replied'",
                       (thread_id,))

    def thread(self, thread_id: str) -> Thread:
        found = self._threads("WHERE id = ?", (thread_id,))
        if not found:
            raise NotFound(f"there is no thread {thread_id} (see `sms list`)")
        return found[0]

    def threads(self, state: str | None = None) -> list[Thread]:
        if state:
            return self._threads("WHERE state = ? ORDER BY opened_at", (state,))
        return self._threads("ORDER BY opened_at", ())

    def threads_page(self, state: str | None, before: tuple[float, str] | None,
                     limit: int) -> list[Thread]:
        """Threads newest first, ``limit`` after the cursor ``before`` (opened_at, id)."""
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if state:
            where.append("state = ?")
            args.append(state)
        if before is not None:
            where.append("(opened_at, id) < (?, ?)")
            args += [before[0], before[1]]
        return self._threads(f"WHERE {' AND '.join(where)} ORDER BY opened_at DESC, id DESC "
                             "LIMIT ?", (*args, limit))

    def threads_between(self, since: float, until: float) -> list[Thread]:
        return self._threads("WHERE opened_at >= ? AND opened_at < ? ORDER BY opened_at",
                             (since, until))

    def count(self, state: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM threads WHERE state = ?",
                                   (state,)).fetchone()[0])

    def _threads(self, clause: str, args: tuple[Any, ...]) -> list[Thread]:
        """The threads ``clause`` selects, each with what the person wrote (two queries, not
        one per thread)."""
        rows = self.db.execute(f"SELECT {_THREAD} FROM threads {clause}", args).fetchall()
        texts: dict[str, list[str]] = {str(r[0]): [] for r in rows}
        ids = tuple(texts)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for thread_id, body in self.db.execute(
                    "SELECT thread_id, body FROM messages WHERE direction = 'in' AND thread_id IN "
                    f"({', '.join('?' * len(chunk))}) ORDER BY id", chunk):
                texts[thread_id].append(body)
        return [Thread(str(r[0]), str(r[1]), ThreadState(r[2]), float(r[3]), float(r[4]),
                       None if r[5] is None else float(r[5]), str(r[6]), tuple(texts[str(r[0])]))
                for r in rows]

    # ------------------------------------------------------------ texts out

    def queue(self, kind: str, number: str, body: str, at: float, *,
              task_id: str | None = None) -> Message:
        """A text to send (a warning text: ``task_id``)."""
        with self._write() as db:
            n = self._queue(db, kind, number, body, at, None, task_id)
        return self.message(n)

    def _queue(self, db: sqlite3.Connection, kind: str, number: str, body: str, at: float,
               thread_id: str | None, task_id: str | None) -> int:
        if kind not in KINDS:
            raise Refused(f"{kind!r} is not a kind of text")
        cursor = db.execute("INSERT INTO messages (direction, kind, number, body, at, state, "
                            "thread_id, task_id) VALUES ('out', ?, ?, ?, ?, 'pending', ?, ?)",
                            (kind, number, body, at, thread_id, task_id))
        return int(cursor.lastrowid or 0)

    def pending(self, limit: int = 100) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE state = 'pending' "
                               "ORDER BY id LIMIT ?", (limit,))
        return [_message_of(r) for r in rows]

    def sending(self, message_id: int) -> None:
        self._move(message_id, MessageState.SENDING, (MessageState.PENDING,))

    def answered(self, message_id: int, status: int, reason: str, at: float) -> Message:
        state = MessageState.SENT if 200 <= status < 300 else MessageState.FAILED
        with self._write() as db:
            db.execute("UPDATE messages SET state = ?, status = ?, reason = ?, answered_at = ? "
                       "WHERE id = ?", (state.value, status, reason, at, message_id))
        return self.message(message_id)

    def drop(self, message_id: int, reason: str, at: float) -> None:
        """A pending text no longer to send (its task closed meanwhile)."""
        with self._write() as db:
            db.execute("UPDATE messages SET state = 'dropped', reason = ?, answered_at = ? "
                       "WHERE id = ? AND state IN ('pending', 'sending')", (reason, at, message_id))

    def unsend(self, message_id: int) -> None:
        """A text that could not be handed to a sender now: pending again."""
        self._move(message_id, MessageState.PENDING, (MessageState.SENDING,))

    def _move(self, message_id: int, to: MessageState, only: tuple[MessageState, ...]) -> None:
        with self._write() as db:
            db.execute(f"UPDATE messages SET state = ? WHERE id = ? AND state IN "
                       f"({', '.join('?' * len(only))})",
                       (to.value, message_id, *(s.value for s in only)))

    def recover(self) -> int:
        """Texts a stop left without an answer go out again (at least once)."""
        with self._write() as db:
            return db.execute("UPDATE messages SET state = 'pending' WHERE state = 'sending'"
                              ).rowcount

    # ------------------------------------------------------------ reading

    def message(self, message_id: int) -> Message:
        row = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE id = ?",
                              (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"there is no text {message_id}")
        return _message_of(row)

    def of_thread(self, thread_id: str) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE thread_id = ? ORDER BY id",
                               (thread_id,))
        return [_message_of(r) for r in rows]

    def of_task(self, task_id: str) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE task_id = ? ORDER BY id",
                               (task_id,))
        return [_message_of(r) for r in rows]

    def between(self, since: float, until: float) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE at >= ? AND at < ? "
                               "ORDER BY id", (since, until))
        return [_message_of(r) for r in rows]


def _message_of(row: tuple[Any, ...]) -> Message:
    values = list(row)
    values[6] = MessageState(values[6])
    return Message(*values)
