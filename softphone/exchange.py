"""The worker's calls: engine commands in, pjsua2 callbacks in, protocol events out.

Runs on the main thread only. Callbacks that pjsua2 may run on the media
thread (DTMF, end of file, speech) arrive as notices on :attr:`Exchange.inbox`
and are handled by :meth:`Exchange.drain`, which the main loop calls after
every ``libHandleEvents``. Every pjsua2 object of a call stays in
:attr:`Exchange.legs` until the call is DISCONNECTED; it is released inside
that callback (see :meth:`Exchange._release`).

The exchange hands parts of the work to helpers, giving them what they need:
texts outside calls to :class:`~softphone.text_messages.TextMessages`,
recorders to :class:`~softphone.recordings.Recordings`, and the decision to
end a call past its limits to :func:`~softphone.limits.overdue`.
"""

from __future__ import annotations

import itertools
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pjsua2 as pj

from audio.amd import AmdSettings
from softphone import protocol as p
from softphone.digits import CollectResult, DigitCollector
from softphone.endpoint import MAX_CALLS
from softphone.legs import CallLeg, CallSnapshot, PhoneAccount, PhoneCall, sip_header
from softphone.limits import MEDIA_CHECK_S, CallLimits, overdue
from softphone.listening import Listening
from softphone.media import (
    MachineNotice,
    Prompt,
    PromptEnded,
    RetiredMedia,
    SpeechNotice,
    SpeechPorts,
)
from softphone.outcome import Ending, ending_of
from softphone.places import MediaPlaces
from softphone.recordings import Recordings
from softphone.sipmsg import SourcePolicy, caller_of, header, host_of, request_uri, user_part
from softphone.speech import SpeechStart
from softphone.text_messages import TextMessages

__all__ = ["CommandRejected", "Exchange"]

log = logging.getLogger(__name__)


class CommandRejected(Exception):
    """A command that does not fit the call's state; becomes an ``error`` event."""


@dataclass(frozen=True)
class DigitNotice:
    call: str
    digit: str
    method: p.DtmfMethod


class Exchange:
    def __init__(self, name: str, sources: SourcePolicy, emit: Callable[[p.Event], None],
                 clock: Callable[[], float] = time.monotonic, limits: CallLimits | None = None,
                 front: str | None = None, places: MediaPlaces | None = None) -> None:
        self.name = name
        self.front = front
        self.places = places or MediaPlaces()
        """The I/O queue's places for media sockets (shared with the INVITE guard)."""
        self.limits = limits or CallLimits()
        self._next_media_check = 0.0
        self.sources = sources
        self.emit = emit
        self.clock = clock
        self.legs: dict[str, CallLeg] = {}
        self.inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.local: PhoneAccount | None = None
        self.trunk: PhoneAccount | None = None
        self.retired = RetiredMedia(clock)
        """Players and recorders that left their call, alive a while longer."""
        self.recordings = Recordings(emit, clock)
        self.texts = TextMessages(name, sources, emit, clock, front)
        self.speech_ports = SpeechPorts(self.inbox.put)
        self.listening = Listening(emit)
        self._inbound = itertools.count(1)
        self._refused = itertools.count(1)
        self._handlers: dict[type, Callable[[p.Command], None]] = {
            p.Dial: self._dial, p.Answer: self._answer, p.Ring: self._ring,  # type: ignore
            p.Reject: self._reject, p.Redirect: self._redirect, p.Play: self._play,  # type: ignore
            p.Stop: self._stop, p.Record: self._record, p.Collect: self._collect,  # type: ignore
            p.StopRecording: self._stop_recording,  # type: ignore
            p.Transfer: self._transfer, p.Hangup: self._hangup,  # type: ignore
            p.Bridge: self._bridge,  # type: ignore
            p.SendDigits: self._send_digits, p.DetectMachine: self._detect_machine,  # type: ignore
            p.DetectProgress: self._detect_progress,  # type: ignore
            p.Stats: self._stats,  # type: ignore
            p.SendText: self._send_text,  # type: ignore
        }

    # ------------------------------------------------------------ commands

    def handle(self, command: p.Command) -> None:
        call = getattr(command, "call", None)
        try:
            self._handlers[type(command)](command)
        except CommandRejected as exc:
            self.emit(p.Error(f"{command.TYPE}: {exc}", call))
        except pj.Error as exc:
            self.emit(p.Error(f"{command.TYPE}: {exc.reason or exc.title} ({exc.status})", call))

    def _dial(self, cmd: p.Dial) -> None:
        if cmd.call in self.legs:
            raise CommandRejected(f"call id {cmd.call} is in use")
        if len(self.legs) >= MAX_CALLS:
            self._dial_failed(cmd.call, 503, "worker full")
            return
        account = self.trunk or self.local
        assert account is not None
        leg = CallLeg(cmd.call, "out", PhoneCall(account, self, cmd.call), self.clock())
        leg.ring_deadline = leg.started_at + cmd.ring_timeout_s
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 1
        prm.opt.videoCount = 0
        from_uri = account.from_uri(cmd.caller_id)
        if from_uri:
            prm.txOption.localUri = from_uri
        for name, value in cmd.headers.items():
            prm.txOption.headers.append(sip_header(name, value))
        if not self.places.take(cmd.call, self.clock()):  # just before: nothing raises between
            self._dial_failed(cmd.call, 503, "no free media socket place (calls just ended)")
            return
        self.legs[cmd.call] = leg
        try:
            leg.phone.makeCall(cmd.uri, prm)
        except pj.Error as exc:
            if not leg.ended:
                del self.legs[cmd.call]
                self.places.closed(cmd.call, self.clock())
                self._dial_failed(cmd.call, 400, f"{exc.reason or exc.title}")

    def _dial_failed(self, call: str, status: int, reason: str) -> None:
        self.emit(p.Failed(call, status, reason))
        self.emit(p.HungUp(call, "local", status, 0.0))

    def _answer(self, cmd: p.Answer) -> None:
        self._inbound_leg(cmd.call).respond(200)

    def _ring(self, cmd: p.Ring) -> None:
        self._inbound_leg(cmd.call).respond(cmd.status)

    def _reject(self, cmd: p.Reject) -> None:
        if not 300 <= cmd.status <= 699:
            raise CommandRejected(f"status {cmd.status} is not a final non-2xx")
        leg = self._inbound_leg(cmd.call)
        leg.local_hangup = True
        leg.respond(cmd.status)

    def _redirect(self, cmd: p.Redirect) -> None:
        leg = self._inbound_leg(cmd.call)
        leg.local_hangup = True
        leg.respond(302, sip_header("Contact", f"<{cmd.uri}>"))

    def _play(self, cmd: p.Play) -> None:
        leg = self._live_leg(cmd.call)
        self._end_prompt(leg, "stopped")
        prompt = Prompt(cmd.call, cmd.file, cmd.loop, cmd.interrupt_on_digit, self.inbox.put)
        leg.prompt = prompt
        if leg.audio is not None:
            prompt.startTransmit(leg.audio)

    def _stop(self, cmd: p.Stop) -> None:
        self._end_prompt(self._live_leg(cmd.call), "stopped")

    def _record(self, cmd: p.Record) -> None:
        self.recordings.start(self._live_leg(cmd.call), cmd.file, self.retired.keep)

    def _stop_recording(self, cmd: p.StopRecording) -> None:
        leg = self._live_leg(cmd.call)
        if leg.recorder is None:
            raise CommandRejected("the call is not being recorded")
        self.recordings.stop(leg)

    def _collect(self, cmd: p.Collect) -> None:
        leg = self._live_leg(cmd.call)
        if cmd.max_digits < 1 or cmd.timeout_s <= 0:
            raise CommandRejected("max_digits must be >= 1 and timeout_s > 0")
        leg.collector = DigitCollector(cmd.max_digits, cmd.timeout_s, cmd.terminator,
                                       self.clock())

    def _transfer(self, cmd: p.Transfer) -> None:
        leg = self._live_leg(cmd.call)
        if not leg.connected:
            raise CommandRejected("call is not answered")
        leg.phone.xfer(cmd.uri, pj.CallOpParam(True))

    def _bridge(self, cmd: p.Bridge) -> None:
        if cmd.call == cmd.other:
            raise CommandRejected("a call cannot be bridged to itself")
        first, second = self._live_leg(cmd.call), self._live_leg(cmd.other)
        first.bridged_to, second.bridged_to = second.id, first.id
        self._join(first)

    def _join(self, leg: CallLeg) -> None:
        """Audio both ways between ``leg`` and its bridge partner, once both have media."""
        other = self.legs.get(leg.bridged_to or "")
        if other is None or other.ended or leg.audio is None or other.audio is None:
            return
        leg.audio.startTransmit(other.audio)
        other.audio.startTransmit(leg.audio)

    def _send_digits(self, cmd: p.SendDigits) -> None:
        leg = self._live_leg(cmd.call)
        if not leg.connected:
            raise CommandRejected("call is not answered")
        digits = cmd.digits.upper()
        if not digits or any(d not in "0123456789*#ABCD" for d in digits):
            raise CommandRejected(f"{cmd.digits!r} is not a string of DTMF digits")
        leg.send_digits(digits, cmd.method)

    def _detect_machine(self, cmd: p.DetectMachine) -> None:
        leg = self._live_leg(cmd.call)
        fields = {k: v for k, v in asdict(cmd).items() if k != "call"}
        leg.amd = AmdSettings(**fields)
        if leg.speech is not None and leg.connected:  # answered already: from the next frame
            leg.speech.detect_machine(leg.amd)

    def _detect_progress(self, cmd: p.DetectProgress) -> None:
        leg = self._live_leg(cmd.call)
        if leg.direction != "out":
            raise CommandRejected(f"call {cmd.call} is inbound: the network speaks on calls we place")
        self.listening.start(leg, cmd)

    def _hangup(self, cmd: p.Hangup) -> None:
        leg = self._live_leg(cmd.call)
        leg.hang_up(cmd.status)

    def _send_text(self, cmd: p.SendText) -> None:
        account = self.trunk or self.local
        assert account is not None
        self.texts.send(account, cmd)

    def text_status(self, prm: pj.OnInstantMessageStatusParam) -> None:
        self.texts.status(prm)

    def text_received(self, prm: pj.OnInstantMessageParam) -> None:
        self.texts.received(prm)

    def _stats(self, cmd: p.Stats) -> None:
        self.emit(p.WorkerStats(self.name, len(self.legs), MAX_CALLS))

    def _live_leg(self, call: str) -> CallLeg:
        leg = self.legs.get(call)
        if leg is None or leg.ended or leg.silent:
            raise CommandRejected(f"no call {call}")
        return leg

    def _inbound_leg(self, call: str) -> CallLeg:
        leg = self._live_leg(call)
        if leg.direction != "in":
            raise CommandRejected(f"call {call} is outbound")
        if leg.connected:
            raise CommandRejected(f"call {call} is already answered")
        return leg

    # ------------------------------------------------ pjsua2 callbacks (main thread)

    def call_state(self, leg_id: str, snapshot: CallSnapshot) -> None:
        leg = self.legs.get(leg_id)
        if leg is None or leg.ended:
            return
        if snapshot.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._finish(leg, snapshot)
        elif leg.silent:
            return
        elif snapshot.state == pj.PJSIP_INV_STATE_CONFIRMED and not leg.connected:
            leg.connected = True
            leg.connected_at = leg.rx_at = self.clock()
            leg.ring_deadline = None
            if leg.amd is not None and leg.speech is not None:  # early media is no machine
                leg.speech.detect_machine(leg.amd)
            self.listening.answered(leg)
            self.emit(p.Answered(leg.id))
        elif (snapshot.state == pj.PJSIP_INV_STATE_EARLY and leg.direction == "out"
              and snapshot.status in (180, 183) and snapshot.status != leg.last_ringing):
            leg.last_ringing = snapshot.status
            self.emit(p.Ringing(leg.id, snapshot.status))

    def _finish(self, leg: CallLeg, snapshot: CallSnapshot) -> None:
        if not leg.silent:
            self.drain()  # digits/speech queued before the end are reported first
        leg.ended = True
        try:
            if not leg.silent:
                self._report_end(leg, snapshot)
        finally:
            self._release(leg.id)

    def _report_end(self, leg: CallLeg, snapshot: CallSnapshot) -> None:
        if leg.direction == "out" and not leg.connected:
            self.listening.ended(leg, snapshot.status)
        if leg.direction == "out" and not leg.connected and not leg.outcome_sent:
            self._emit_outcome(leg, snapshot)
        speech = leg.speech
        if speech is not None and speech.detector.speaking:
            end = speech.detector.flush()
            if end is not None:
                self.emit(p.SpeechEnded(leg.id, end.duration_s))
        by: p.HangupSide = "local" if leg.local_hangup else "remote"
        duration = round(snapshot.connect_s, 3) if leg.connected else 0.0
        self.emit(p.HungUp(leg.id, by, snapshot.status, duration, leg.end_reason))

    def _emit_outcome(self, leg: CallLeg, snapshot: CallSnapshot) -> None:
        status, cause = snapshot.status, snapshot.cause
        ending = ending_of(status, cause, rang=bool(leg.last_ringing))
        if ending is Ending.BUSY:
            self.emit(p.Busy(leg.id, status, cause))
        elif ending is Ending.NO_ANSWER:
            self.emit(p.NoAnswer(leg.id, status, cause))
        else:
            self.emit(p.Failed(leg.id, status, snapshot.reason, cause))

    def call_media(self, leg_id: str) -> None:
        leg = self.legs.get(leg_id)
        if leg is None or leg.ended or leg.silent:
            return
        info = leg.phone.getInfo()  # keep alive: info.media items point into it
        medias = info.media
        for index, media in enumerate(medias):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status in (
                pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
            ):
                leg.audio = leg.phone.getAudioMedia(index)
                self._connect(leg, leg.audio)
                return

    def _connect(self, leg: CallLeg, audio: pj.AudioMedia) -> None:
        if leg.speech is None:
            leg.speech = self.speech_ports.lend(leg.id)
            if leg.amd is not None and leg.connected:  # early media is no machine: from the answer
                leg.speech.detect_machine(leg.amd)
            self.listening.connect(leg)
        audio.startTransmit(leg.speech)
        if leg.prompt is not None:
            leg.prompt.startTransmit(audio)
        if leg.recorder is not None:
            audio.startTransmit(leg.recorder)
        if leg.bridged_to is not None:
            self._join(leg)

    def digit(self, leg_id: str, digit: str, method: p.DtmfMethod) -> None:
        self.inbox.put(DigitNotice(leg_id, digit, method))  # any thread

    def transfer_status(self, leg_id: str, status: int) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None and not leg.ended:
            self.emit(p.Transferred(leg_id, status))

    def incoming(self, account: PhoneAccount, prm: pj.OnIncomingCallParam) -> None:
        source = prm.rdata.srcAddress
        message = prm.rdata.wholeMsg
        caller, display = caller_of(message)
        sip_call_id = header(message, "Call-ID") or ""
        if not self.sources.allows(source):
            leg_id = f"{self.name}-refused-{next(self._refused)}"
            leg = CallLeg(leg_id, "in", PhoneCall(account, self, leg_id, prm.callId),
                          self.clock(), silent=True)
            self.legs[leg_id] = leg
            self.places.opened(leg_id, sip_call_id)
            self.emit(p.Refused(source, caller))
            leg.respond(403)
            return
        leg_id = f"{self.name}-in-{next(self._inbound)}"
        self.legs[leg_id] = CallLeg(
            leg_id, "in", PhoneCall(account, self, leg_id, prm.callId), self.clock()
        )
        self.places.opened(leg_id, sip_call_id)
        callee = user_part(request_uri(message)) or user_part(header(message, "To") or "")
        if self.front is not None and host_of(source) == self.front:
            source = header(message, "X-Source-Address") or source  # the caller, not the front
        self.emit(p.Incoming(leg_id, caller, callee, source, sip_call_id, display))

    def registration(self, status: int, reason: str, expires: int) -> None:
        self.emit(p.Registration(status, reason, expires))

    # ------------------------------------------------------- main-loop work

    @property
    def busy(self) -> bool:
        """Something needs the main loop's short turns: a call, media or a recorder leaving
        a call, a text waiting for its answer, a notice to handle. Otherwise the worker may
        sleep until a packet, a command or one of pjsip's own timers wakes it."""
        return bool(self.legs or self.retired.pending or self.recordings.closing
                    or self.recordings.saving or self.texts.texts_out
                    or not self.inbox.empty())

    def drain(self) -> None:
        """Handle every queued notice."""
        while not self.inbox.empty():  # only the main thread takes: no raise of Empty
            notice = self.inbox.get_nowait()
            try:
                self._on_notice(notice)
            except Exception:
                log.exception("notice %r", notice)

    def _on_notice(self, notice: object) -> None:
        leg = self.legs.get(getattr(notice, "call", ""))
        if leg is None or leg.ended:
            return
        if isinstance(notice, DigitNotice):
            self._on_digit(leg, notice)
        elif isinstance(notice, PromptEnded):
            if notice.prompt is leg.prompt:
                self._end_prompt(leg, "done")
        elif isinstance(notice, MachineNotice):
            v = notice.verdict
            self.emit(p.MachineDetection(leg.id, v.verdict.value, v.cause, v.words, v.voiced_s))
        elif isinstance(notice, SpeechNotice):
            if isinstance(notice.change, SpeechStart):
                self.emit(p.SpeechStarted(leg.id))
            else:
                self.emit(p.SpeechEnded(leg.id, notice.change.duration_s))

    def _on_digit(self, leg: CallLeg, notice: DigitNotice) -> None:
        self.emit(p.Dtmf(leg.id, notice.digit, notice.method))
        if leg.prompt is not None and leg.prompt.interrupt_on_digit:
            self._end_prompt(leg, "interrupted")
        if leg.collector is not None:
            self._collected(leg, leg.collector.feed(notice.digit, self.clock()))

    def _collected(self, leg: CallLeg, result: CollectResult | None) -> None:
        if result is not None:
            leg.collector = None
            self.emit(p.Digits(leg.id, result.digits, result.reason))

    def _end_prompt(self, leg: CallLeg, reason: p.PlaybackEndReason) -> None:
        prompt, leg.prompt = leg.prompt, None
        if prompt is None:
            return
        if leg.audio is not None:
            try:
                prompt.stopTransmit(leg.audio)
            except pj.Error:
                pass
        self.retired.keep(prompt)
        self.emit(p.PlaybackEnded(leg.id, reason, prompt.file))

    def check_timers(self) -> None:
        now = self.clock()
        self.retired.let_go(now)
        self.recordings.close_due(now)
        for leg in list(self.legs.values()):
            if leg.ended or leg.silent:
                continue
            if leg.ring_deadline is not None and now >= leg.ring_deadline:
                leg.ring_deadline = None
                leg.rang_out = True
                self.emit(p.NoAnswer(leg.id, 408))
                leg.hang_up()
            elif leg.collector is not None:
                self._collected(leg, leg.collector.expire(now))
        if now >= self._next_media_check:
            self._next_media_check = now + MEDIA_CHECK_S
            self._check_limits(now)
            self.texts.expire(now)

    def _check_limits(self, now: float) -> None:
        """End connected calls that receive no RTP any more, or have gone on too long: a peer
        that vanished (a crashed phone, a scanner) must not hold one of the 4 channels."""
        for leg, reason in overdue(self.legs.values(), self.limits, now):
            self._end_on_our_own(leg, reason)

    def _end_on_our_own(self, leg: CallLeg, reason: str) -> None:
        log.info("ending %s: %s", leg.id, reason)
        leg.end_reason = reason
        try:
            leg.hang_up()
        except pj.Error as exc:
            log.warning("hangup of %s (%s): %s", leg.id, reason, exc.reason)

    def _release(self, call: str) -> None:
        """Drop every pjsua2 object of a call, from inside its DISCONNECTED callback.

        A pjsua2 ``Call`` keeps its pjsua call id after DISCONNECTED, and its
        destructor hangs up (and detaches the callbacks of) whatever call holds
        that id *now*. pjsua frees and may reuse the id right after the callback
        returns, so the object must die before that: the last reference goes
        when ``PhoneCall.onCallState`` returns (pjsua2 allows deleting a Call in
        its DISCONNECTED callback). Measured: destroying a stale Call later
        killed the new call that had reused its id.
        """
        leg = self.legs.pop(call, None)
        if leg is None:
            return
        self.places.closed(call, self.clock())
        leg.collector = None
        self.retired.keep(leg.prompt, leg.recorder)
        if leg.speech is not None:
            self.speech_ports.give_back(leg.speech)
        leg.prompt = None
        leg.recorder = None
        leg.speech = None
        leg.audio = None

    def hang_up_all(self) -> None:
        for leg in list(self.legs.values()):
            if not leg.ended:
                try:
                    leg.hang_up()
                except pj.Error as exc:
                    log.warning("hangup of %s at shutdown: %s", leg.id, exc.reason)

