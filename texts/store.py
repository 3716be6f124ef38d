"""Every text in and out: consultations in threads, replies, warning texts.

SQLite (``<data_dir>/texts.sqlite``, WAL, ``synchronous=FULL``) with a schema
version and migrations, like the task store. A consultation is committed,
together with the automatic reply it gets, before the reply goes out; an
outgoing text is a row that goes ``pending`` → ``sending`` → ``sent`` or
``failed`` with the far end's SIP status, so that a text written by another
process (``sms reply``) or left unsent by a crash goes out when the engine
runs. Full numbers stay here; people see them masked.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from screening import mask
from sqlitefile import Changes, open_file, transaction

__all__ = ["FILE_NAME", "Message", "TextStore", "TextStoreError", "TextStoreUnavailable", "Thread"]

FILE_NAME = "texts.sqlite"
KINDS = ("consultation", "auto_reply", "reply", "warning")


class TextStoreError(Exception):
    """The text store cannot do what was asked; ``str()`` is one sentence."""


class TextStoreUnavailable(TextStoreError):
    """The file cannot be written now (locked, disk full): the same call may work later."""


@dataclass(frozen=True)
class Message:
    id: int
    direction: str  # in, out
    kind: str  # consultation, auto_reply, reply, warning
    number: str  # the person's number as it is dialled (national form)
    body: str
    at: float
    state: str  # in: stored, blocked; out: pending, sending, sent, failed
    status: int | None  # the far end's SIP answer to an outgoing text
    reason: str
    thread_id: str | None
    task_id: str | None
    answered_at: float | None
    rule: str  # screening rule of a consultation ("" when allowed)

    @property
    def masked(self) -> str:
        return mask(self.number)


@dataclass(frozen=True)
class Thread:
    id: str
    number: str
    state: str  # waiting, replied, blocked
    opened_at: float
    last_at: float
    replied_at: float | None
    fraud_type: str  # what the advice matched, or ""
    texts: tuple[str, ...]  # what the person wrote, oldest first

    @property
    def masked(self) -> str:
        return mask(self.number)

    def waited_s(self, now: float) -> float:
        """How long the person has waited for an operator (until the reply)."""
        return (self.replied_at if self.replied_at is not None else now) - self.opened_at


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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2]
_MESSAGE = ("id, direction, kind, number, body, at, state, status, reason, thread_id, task_id, "
            "answered_at, rule")
_THREAD = "id, number, state, opened_at, last_at, replied_at, fraud_type"

Reply = Callable[[bool], tuple[str, str] | None]
"""Given whether the text opened its thread: (kind, body) of the automatic reply, or None."""


class TextStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME  # people's numbers and what they wrote: owner only
        self.db = open_file(self.path, MIGRATIONS, "the text store", TextStoreError)
        self.changed = Changes(self.db)
        """Another connection committed since the last call."""

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.Error as exc:
            raise TextStoreUnavailable(f"the text store {self.path} cannot be written now: "
                                       f"{exc}") from None

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ consultations

    def receive(self, number: str, body: str, at: float, *, thread_s: float, rule: str = "",
                blocked: bool = False, fraud_type: str = "", source: str = "",
                reply: Reply | None = None) -> tuple[Message, Message | None]:
        """Store a consultation in its thread (the number's open one if its last text is at
        most ``thread_s`` old, else a new one), and its automatic reply, if any, as a
        pending text: one transaction. Returns both messages."""
        with self._write() as db:
            row = db.execute(f"SELECT {_THREAD} FROM threads WHERE number = ? AND last_at >= ? "
                             "ORDER BY last_at DESC LIMIT 1", (number, at - thread_s)).fetchone()
            # a thread is one question and its answer: a text joins the number's thread
            # while it waits (a blocked number's texts join its blocked thread)
            state = "blocked" if blocked else "waiting"
            thread_id = row[0] if row is not None and row[2] == state else None
            opened = thread_id is None
            if thread_id is None:
                thread_id = "s" + secrets.token_hex(4)
                db.execute(f"INSERT INTO threads ({_THREAD}) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                           (thread_id, number, state, at, at, fraud_type))
            else:
                db.execute("UPDATE threads SET last_at = ?, state = ?, "
                           "fraud_type = CASE WHEN fraud_type = '' THEN ? ELSE fraud_type END "
                           "WHERE id = ?", (at, state, fraud_type, thread_id))
            cursor = db.execute(
                "INSERT INTO messages (direction, kind, number, body, at, state, thread_id, "
                "rule, source) VALUES ('in', 'consultation', ?, ?, ?, ?, ?, ?, ?)",
                (number, body, at, "blocked" if blocked else "stored", thread_id, rule, source))
            incoming = int(cursor.lastrowid or 0)
            answer = reply(opened) if reply is not None and not blocked else None
            outgoing = None
            if answer is not None:
                outgoing = self._queue(db, answer[0], number, answer[1], at, thread_id, None)
        return self.message(incoming), (self.message(outgoing) if outgoing else None)

    def reply(self, thread_id: str, body: str, at: float,
              request_id: str | None = None) -> Message:
        """An operator's answer to a thread: queued to go out, and the thread is replied
        (since its first answer). A ``request_id`` already taken returns that text."""
        if request_id is not None:
            row = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE request_id = ?",
                                  (request_id,)).fetchone()
            if row is not None:
                return Message(*row)
        thread = self.thread(thread_id)
        if thread.state == "blocked":
            raise TextStoreError(f"thread {thread_id} is from a blocked number; it is not answered")
        with self._write() as db:
            n = self._queue(db, "reply", thread.number, body, at, thread_id, None)
            if request_id is not None:
                db.execute("UPDATE messages SET request_id = ? WHERE id = ?", (request_id, n))
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
            raise TextStoreError(f"there is no thread {thread_id} (see `sms list`)")
        return found[0]

    def threads(self, state: str | None = None) -> list[Thread]:
        return self._threads("WHERE state = ?", (state,)) if state else self._threads("", ())

    def threads_between(self, since: float, until: float) -> list[Thread]:
        return self._threads("WHERE opened_at >= ? AND opened_at < ?", (since, until))

    def count(self, state: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM threads WHERE state = ?",
                                   (state,)).fetchone()[0])

    def _threads(self, where: str, args: tuple[object, ...]) -> list[Thread]:
        """The threads ``where`` selects, each with what the person wrote (two queries, not
        one per thread)."""
        rows = self.db.execute(f"SELECT {_THREAD} FROM threads {where} ORDER BY opened_at",
                               args).fetchall()
        texts: dict[str, list[str]] = {str(r[0]): [] for r in rows}
        for thread_id, body in self.db.execute(
                "SELECT thread_id, body FROM messages WHERE direction = 'in' AND thread_id IN "
                f"(SELECT id FROM threads {where}) ORDER BY id", args):
            if thread_id in texts:  # a thread opened between the two reads waits for the next
                texts[thread_id].append(body)
        return [Thread(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4]),
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
            raise TextStoreError(f"{kind!r} is not a kind of text")
        cursor = db.execute("INSERT INTO messages (direction, kind, number, body, at, state, "
                            "thread_id, task_id) VALUES ('out', ?, ?, ?, ?, 'pending', ?, ?)",
                            (kind, number, body, at, thread_id, task_id))
        return int(cursor.lastrowid or 0)

    def pending(self, limit: int = 100) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE state = 'pending' "
                               "ORDER BY id LIMIT ?", (limit,))
        return [Message(*r) for r in rows]

    def sending(self, message_id: int) -> None:
        with self._write() as db:
            db.execute("UPDATE messages SET state = 'sending' WHERE id = ?", (message_id,))

    def answered(self, message_id: int, status: int, reason: str, at: float) -> Message:
        state = "sent" if 200 <= status < 300 else "failed"
        with self._write() as db:
            db.execute("UPDATE messages SET state = ?, status = ?, reason = ?, answered_at = ? "
                       "WHERE id = ?", (state, status, reason, at, message_id))
        return self.message(message_id)

    def drop(self, message_id: int, reason: str, at: float) -> None:
        """A pending text no longer to send (its task closed meanwhile)."""
        with self._write() as db:
            db.execute("UPDATE messages SET state = 'dropped', reason = ?, answered_at = ? "
                       "WHERE id = ? AND state IN ('pending', 'sending')", (reason, at, message_id))

    def unsend(self, message_id: int) -> None:
        """A text that could not be handed to a sender now: pending again."""
        with self._write() as db:
            db.execute("UPDATE messages SET state = 'pending' WHERE id = ? AND state = 'sending'",
                       (message_id,))

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
            raise TextStoreError(f"there is no text {message_id}")
        return Message(*row)

    def of_thread(self, thread_id: str) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE thread_id = ? ORDER BY id",
                               (thread_id,))
        return [Message(*r) for r in rows]

    def of_task(self, task_id: str) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE task_id = ? ORDER BY id",
                               (task_id,))
        return [Message(*r) for r in rows]

    def between(self, since: float, until: float) -> list[Message]:
        rows = self.db.execute(f"SELECT {_MESSAGE} FROM messages WHERE at >= ? AND at < ? "
                               "ORDER BY id", (since, until))
        return [Message(*r) for r in rows]
