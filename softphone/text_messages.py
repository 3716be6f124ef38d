"""Texts outside any call (SIP MESSAGE) in the worker: sending, their answers, receiving.

Runs on the main thread, inside the pjsua2 callbacks of the accounts (see
:class:`~softphone.legs.PhoneAccount`) and the commands of the
:class:`~softphone.exchange.Exchange`, which hands over what it does not keep
itself: the account to send from, the events' way out, the clock.
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Callable

import pjsua2 as pj

from softphone import protocol as p
from softphone.legs import PhoneAccount, TextTarget
from softphone.sipmsg import SourcePolicy, caller_of, header, host_of, request_uri, user_part

__all__ = ["TEXT_ANSWER_S", "TEXT_CONTENT_TYPE", "TextMessages", "pjsua_string"]

log = logging.getLogger("softphone.exchange")  # as before the split: the same log lines

TEXT_CONTENT_TYPE = "text/plain;charset=UTF-8"
TEXT_ANSWER_S = 40.0  # a text with no status by then is reported 408 (pjsip's own is 32 s)


class TextMessages:
    """The texts of one worker: those sent and waiting for their answer, those received."""

    def __init__(self, name: str, sources: SourcePolicy, emit: Callable[[p.Event], None],
                 clock: Callable[[], float], front: str | None = None) -> None:
        self.name = name
        self.sources = sources
        self.emit = emit
        self.clock = clock
        self.front = front
        self._texts_in = itertools.count(1)
        self.texts_out: dict[tuple[str, str], collections.deque[tuple[str, float]]] = {}
        """(target URI, body) → the ids of texts sent there with that body, oldest first,
        with when each went: pjsua reports a text's answer by URI and body, not by id."""

    def send(self, account: PhoneAccount, cmd: p.SendText) -> None:
        """A MESSAGE through a buddy made for it and dropped at once: pjsua sends IM only
        through a buddy, keeps at most PJSUA_MAX_BUDDIES (an abort past them, measured at
        100 texts a second with buddies kept), and needs none once the request is out (the
        answer comes back to the account)."""
        target: TextTarget | None = None
        try:
            target = TextTarget(account, cmd.uri)
            prm = pj.SendInstantMessageParam()
            prm.content = cmd.body
            prm.contentType = TEXT_CONTENT_TYPE
            from_uri = account.from_uri(cmd.sender)
            if from_uri:
                prm.txOption.localUri = from_uri
            target.sendInstantMessage(prm)
        except pj.Error as exc:
            self.emit(p.TextStatus(cmd.text, 400, exc.reason or exc.title))
            return
        finally:
            target = None
        self.texts_out.setdefault((cmd.uri, cmd.body), collections.deque()).append(
            (cmd.text, self.clock()))

    def status(self, prm: pj.OnInstantMessageStatusParam) -> None:
        """The far end's answer to a text sent: ``text_status`` with that text's id."""
        key = (prm.toUri, pjsua_string(lambda: prm.msgBody))
        waiting = self.texts_out.get(key)
        if not waiting:
            log.warning("an answer %d to a text this worker does not know was sent", prm.code)
            return
        text, _ = waiting.popleft()
        if not waiting:
            del self.texts_out[key]
        self.emit(p.TextStatus(text, int(prm.code), str(prm.reason)))

    def received(self, prm: pj.OnInstantMessageParam) -> None:
        """A MESSAGE outside any call: ``text_received``, or ``refused`` from a source that
        is not allowed (pjsua has answered it 200 either way)."""
        rdata = prm.rdata
        source = rdata.srcAddress
        message = pjsua_string(lambda: rdata.wholeMsg)
        sender = caller_of(message)[0] if message else user_part(prm.fromUri)
        if not self.sources.allows(source):
            self.emit(p.Refused(source, sender))
            return
        problem = ""
        try:
            body = prm.msgBody
            body.encode("utf-8")  # surrogates stand for bytes that were not UTF-8
        except (UnicodeDecodeError, UnicodeEncodeError):
            body, problem = "", "the body is not valid UTF-8"
        to = user_part(request_uri(message)) if message else user_part(prm.toUri)
        if self.front is not None and host_of(source) == self.front:
            source = header(message, "X-Source-Address") or source
        self.emit(p.TextReceived(f"{self.name}-txt-{next(self._texts_in)}", sender, to, body,
                                 prm.contentType, source,
                                 (header(message, "Call-ID") or "") if message else "", problem))

    def expire(self, now: float) -> None:
        """Texts with no answer after :data:`TEXT_ANSWER_S`: ``text_status`` 408."""
        for key in list(self.texts_out):
            waiting = self.texts_out[key]
            while waiting and now - waiting[0][1] > TEXT_ANSWER_S:
                text, _ = waiting.popleft()
                self.emit(p.TextStatus(text, 408, "no answer"))
            if not waiting:
                del self.texts_out[key]


def pjsua_string(read: Callable[[], str]) -> str:
    """A string pjsua2 hands over. Bytes that are not UTF-8 arrive as surrogates (or the read
    fails): they become U+FFFD, so that the string can travel as JSON."""
    try:
        value = read()
    except UnicodeDecodeError:
        return ""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
