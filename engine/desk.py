"""The hotline desk: what the engine needs to answer the hotline, in one place.

Operator hours (:class:`hotline.OperatorHours`), the voice menus
(:class:`hotline.MenuBook`) and their prompts, the store of messages left for
a callback, and the inbound call flow built for each INVITE. It also serves
the flows' :class:`hotline.SaveMessage` requests: the message's row is
committed, then :class:`hotline.MessageSaved` goes back to the flow, so the
caller hears "thank you" only for a message that is on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path

import audio
from callflow import Answer, Notice
from hotline import (
    InboundCall,
    Ivr,
    MenuBook,
    MessageSaved,
    MessageSettings,
    OperatorHours,
    Prompts,
    QueueSettings,
    Route,
    SaveMessage,
    prompt_file,
)
from hotline.ivr import MessageLeft
from hotline.queue import (
    JoinQueue,
    LeaveQueue,
    NoOperator,
    OperatorQueue,
    QueueReport,
    QueueUpdate,
    RingOperators,
)
from screening import Decision, mask
from sip_config import LoadedConfig
from stores import CallbackStore

__all__ = ["HotlineDesk"]

log = logging.getLogger("engine.desk")


class HotlineDesk:
    def __init__(self, loaded: LoadedConfig, menus: MenuBook, prompt_dir: Path, tz: tzinfo,
                 notice: Callable[[Notice], None], callbacks: CallbackStore) -> None:
        config = loaded.config.hotline
        self.config = config
        self.tz = tz
        self.notice = notice
        self.hours = OperatorHours.from_config(config)
        self.menus = menus
        self.prompt_dir = prompt_dir
        def wav(name: str) -> str:
            return str(audio.path_of(prompt_dir, name))

        self.prompts = Prompts(wav("warning"), wav("connecting"),
                               queue=lambda ahead: wav(f"queue-{ahead}" if ahead >= 0 else "queue-many"),
                               operators_busy=wav("operators-busy"))
        self.queue_settings = QueueSettings(config.operator_ring_s, config.max_wait_s,
                                            config.queue_announce_s)
        self.queue = OperatorQueue(config.operator_uris, config.ring)
        self._told: dict[str, int] = {}  # waiting call → the place it was last told
        self._joined: dict[str, tuple[str, float]] = {}  # waiting call → (caller, since)
        self.deliver: Callable[[str, Answer], None] = lambda call, event: None
        self.messages_dir = loaded.media_dir / "messages"
        self.messages_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.callbacks = callbacks
        m = config.message
        self.message = MessageSettings(m.max_s, m.silence_s, m.initial_silence_s)

    def reconfigure(self, loaded: LoadedConfig, menus: MenuBook) -> None:
        """A reloaded configuration: hours, the operators and their queue's settings, menus
        and message settings for the next call; callers waiting keep their place, and a
        call in progress keeps the menu it started with."""
        config = loaded.config.hotline
        self.config = config
        self.hours = OperatorHours.from_config(config)
        self.menus = menus
        self.queue_settings = QueueSettings(config.operator_ring_s, config.max_wait_s,
                                            config.queue_announce_s)
        self.queue.operators = tuple(config.operator_uris)
        self.queue.strategy = config.ring
        m = config.message
        self.message = MessageSettings(m.max_s, m.silence_s, m.initial_silence_s)

    def audio_prompts(self) -> list[audio.Prompt]:
        return self.menus.audio_prompts()

    def open_at(self, now: float) -> bool:
        return self.hours.open_at(datetime.fromtimestamp(now, self.tz))

    def prompt(self, prompt_id: str) -> str:
        return str(audio.path_of(self.prompt_dir, prompt_file(prompt_id)))

    def new_call(self, call: str, caller: str, decision: Decision, route: Route,
                 now: float) -> InboundCall:
        def ivr() -> Ivr:
            stamp = datetime.fromtimestamp(now, self.tz).strftime("%Y%m%d-%H%M%S")
            recording = str(self.messages_dir / f"{stamp}-{call}.wav")
            return Ivr(call, caller, self.menus, self.prompt, recording, self.message)

        return InboundCall(call, caller, decision, route, self.prompts, ivr, self.queue_settings)

    # ------------------------------------------------------------ the operators' queue

    def join(self, request: JoinQueue, now: float) -> None:
        self.queue.join(request.call)
        self._joined.setdefault(request.call, (request.caller, now))
        self._offer(now)

    def waiting_now(self) -> list[tuple[str, float]]:
        """Who waits for an operator now, first in line first: (masked caller, since)."""
        for call in [c for c in self._joined if c not in self.queue.waiting]:
            del self._joined[call]
        return [(mask(self._joined[c][0]) if self._joined[c][0] else "", self._joined[c][1])
                for c in self.queue.waiting if c in self._joined]

    def leave(self, request: LeaveQueue, now: float) -> None:
        self.queue.leave(request.call)
        self._told.pop(request.call, None)
        self._offer(now)

    def report(self, request: QueueReport, now: float) -> None:
        if request.result == "answered":
            self.queue.answered(request.call, request.operator)
            self._told.pop(request.call, None)
        elif request.result == "unanswered":
            self.queue.not_answered(request.call, request.operator, now)
        else:
            self.queue.done(request.operator, now)
        self._offer(now)

    def _offer(self, now: float) -> None:
        """Ring operators for whoever can have one; tell the others their place."""
        for offer in self.queue.offers(now):
            if offer.nobody:
                self._told.pop(offer.call, None)
                self.deliver(offer.call, NoOperator(offer.call))
            else:
                self.deliver(offer.call, RingOperators(offer.call, offer.operators))
        for call in self.queue.waiting:
            ahead = self.queue.ahead(call)
            if self._told.get(call) != ahead:
                self._told[call] = ahead
                self.deliver(call, QueueUpdate(call, ahead))

    def save(self, request: SaveMessage, now: float) -> MessageSaved:
        try:
            callback = self.callbacks.add(request.caller, now, request.file, request.duration_s,
                                          request.path)
        except Exception as exc:  # noqa: BLE001 - the caller hears that it failed
            log.error("a message left by a caller was lost: %s (%s)", exc, request.file)
            self.notice(MessageLeft(request.call, None, request.caller, request.duration_s,
                                    request.path, False))
            return MessageSaved(request.call, None, str(exc))
        log.info("message %s left for a callback (%.1f s)", callback.id, request.duration_s)
        self.notice(MessageLeft(request.call, callback.id, request.caller, request.duration_s,
                                request.path, True))
        return MessageSaved(request.call, callback.id)


