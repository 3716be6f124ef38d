"""The worker's calls: engine commands in, pjsua2 callbacks in, protocol events out.

Runs on the main thread only. Callbacks that pjsua2 may run on the media
thread (DTMF, end of file, speech) arrive as notices on :attr:`Exchange.inbox`
and are handled by :meth:`Exchange.drain`, which the main loop calls after
every ``libHandleEvents``. Every pjsua2 object of a call stays in
:attr:`Exchange.legs` until the call is DISCONNECTED; it is released inside
that callback (see :meth:`Exchange._release`).
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import queue
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pjsua2 as pj

from audio.amd import AmdSettings
from softphone import protocol as p
from softphone.digits import CollectResult, DigitCollector
from softphone.legs import CallLeg, CallSnapshot, PhoneAccount, PhoneCall, TextTarget
from softphone.listening import Listening
from softphone.media import MachineNotice, Prompt, PromptEnded, SpeechNotice, SpeechPorts
from softphone.outcome import Ending, ending_of
from softphone.sipmsg import SourcePolicy, caller_of, header, request_uri, user_part
from softphone.speech import SpeechStart

log = logging.getLogger(__name__)

RETIRE_S = 2.0  # how long media objects outlive their call (see Exchange._retire)
RECORDER_CLOSE_S = 0.2  # a stopped recorder is closed this long after (ten media clock ticks)

from softphone.endpoint import MAX_CALLS


@dataclass(frozen=True)
class CallLimits:
    """How long a call may go on; 0 turns a limit off."""

    media_timeout_s: float = 0.0
    """A connected call that receives no RTP for this long is ended (``media_timeout``)."""
    max_call_s: float = 0.0
    """No connected call lasts longer (``max_call``)."""


MEDIA_CHECK_S = 1.0  # how often RTP counters are read
TEXT_CONTENT_TYPE = "text/plain;charset=UTF-8"
TEXT_ANSWER_S = 40.0  # a text with no status by then is reported 408 (pjsip's own is 32 s)


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
                 front: str | None = None) -> None:
        self.name = name
        self.front = front
        self.limits = limits or CallLimits()
        self._next_media_check = 0.0
        self.sources = sources
        self.emit = emit
        self.clock = clock
        self.legs: dict[str, CallLeg] = {}
        self.inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.local: PhoneAccount | None = None
        self.trunk: PhoneAccount | None = None
        self.retired: collections.deque[tuple[float, object]] = collections.deque()
        self.closing: collections.deque[tuple[float, str, object, str]] = collections.deque()
        self.saving: list[tuple[float, float, str, str]] = []
        self.speech_ports = SpeechPorts(self.inbox.put)
        self.listening = Listening(emit)
        self._inbound = itertools.count(1)
        self._refused = itertools.count(1)
        self._texts_in = itertools.count(1)
        self.texts_out: dict[tuple[str, str], collections.deque[tuple[str, float]]] = {}
        """(target URI, body) → the ids of texts sent there with that body, oldest first,
        with when each went: pjsua reports a text's answer by URI and body, not by id."""
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
        from_uri = self._from_uri(account, cmd.caller_id)
        if from_uri:
            prm.txOption.localUri = from_uri
        for name, value in cmd.headers.items():
            prm.txOption.headers.append(_sip_header(name, value))
        self.legs[cmd.call] = leg
        try:
            leg.phone.makeCall(cmd.uri, prm)
        except pj.Error as exc:
            if not leg.ended:
                del self.legs[cmd.call]
                self._dial_failed(cmd.call, 400, f"{exc.reason or exc.title}")

    def _dial_failed(self, call: str, status: int, reason: str) -> None:
        self.emit(p.Failed(call, status, reason))
        self.emit(p.HungUp(call, "local", status, 0.0))

    def _from_uri(self, account: PhoneAccount, caller_id: str) -> str:
        if not caller_id or caller_id.startswith(("sip:", "sips:", "tel:")) or "<" in caller_id:
            return caller_id
        domain = account.getInfo().uri.split("@", 1)[-1].rstrip(">")
        return f"sip:{caller_id}@{domain}"

    def _answer(self, cmd: p.Answer) -> None:
        self._respond(self._inbound_leg(cmd.call), 200)

    def _ring(self, cmd: p.Ring) -> None:
        self._respond(self._inbound_leg(cmd.call), cmd.status)

    def _reject(self, cmd: p.Reject) -> None:
        if not 300 <= cmd.status <= 699:
            raise CommandRejected(f"status {cmd.status} is not a final non-2xx")
        leg = self._inbound_leg(cmd.call)
        leg.local_hangup = True
        self._respond(leg, cmd.status)

    def _redirect(self, cmd: p.Redirect) -> None:
        leg = self._inbound_leg(cmd.call)
        leg.local_hangup = True
        self._respond(leg, 302, _sip_header("Contact", f"<{cmd.uri}>"))

    def _respond(self, leg: CallLeg, status: int, extra: pj.SipHeader | None = None) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = status
        if extra is not None:
            prm.txOption.headers.append(extra)
        leg.phone.answer(prm)

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
        leg = self._live_leg(cmd.call)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(cmd.file)
        if leg.recorder is not None and leg.audio is not None:
            try:
                leg.audio.stopTransmit(leg.recorder)
            except pj.Error:
                pass
        self._retire(leg.recorder)  # the previous recording is finalised when it goes
        leg.recorder = recorder
        leg.record_file = cmd.file
        if leg.audio is not None:
            leg.audio.startTransmit(recorder)

    def _stop_recording(self, cmd: p.StopRecording) -> None:
        leg = self._live_leg(cmd.call)
        recorder, leg.recorder = leg.recorder, None
        if recorder is None:
            raise CommandRejected("the call is not being recorded")
        if leg.audio is not None:
            try:
                leg.audio.stopTransmit(recorder)
            except pj.Error:
                pass
        # closed (and the WAV header written) once the media clock has let go of it
        self.closing.append((self.clock() + RECORDER_CLOSE_S, leg.id, recorder, leg.record_file))

    def _close_recorders(self, now: float) -> None:
        """Two steps: let go of the recorder (pjsua destroys its port on a later media clock
        tick, and the WAV header is written then), then wait for the header to show it."""
        while self.closing and self.closing[0][0] <= now:
            _, call, recorder, file = self.closing.popleft()
            del recorder
            self.saving.append((now + RECORDER_CLOSE_S, now + RECORDER_CLOSE_S * 10, call, file))
        waiting = []
        for due, give_up, call, file in self.saving:
            if due > now:
                waiting.append((due, give_up, call, file))
                continue
            seconds = _wav_seconds(file)
            if seconds == 0.0 and now < give_up and _wav_has_data(file):
                waiting.append((now + RECORDER_CLOSE_S, give_up, call, file))  # not written yet
                continue
            self.emit(p.RecordingSaved(call, file, seconds or _wav_data_seconds(file)))
        self.saving = waiting

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
        if cmd.method == "info":
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            prm.digits = digits
            leg.phone.sendDtmf(prm)
        else:
            leg.phone.dialDtmf(digits)

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
        self._hang_up(leg, cmd.status)

    def _hang_up(self, leg: CallLeg, status: int | None = None) -> None:
        leg.local_hangup = True
        leg.outcome_sent = True  # the engine (or the worker) chose to end it
        prm = pj.CallOpParam(True)
        if status:
            prm.statusCode = status
        leg.phone.hangup(prm)

    def _send_text(self, cmd: p.SendText) -> None:
        """A MESSAGE through a buddy made for it and dropped at once: pjsua sends IM only
        through a buddy, keeps at most PJSUA_MAX_BUDDIES (an abort past them, measured at
        100 texts a second with buddies kept), and needs none once the request is out (the
        answer comes back to the account)."""
        account = self.trunk or self.local
        assert account is not None
        target: TextTarget | None = None
        try:
            target = TextTarget(account, cmd.uri)
            prm = pj.SendInstantMessageParam()
            prm.content = cmd.body
            prm.contentType = TEXT_CONTENT_TYPE
            from_uri = self._from_uri(account, cmd.sender)
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

    def text_status(self, prm: pj.OnInstantMessageStatusParam) -> None:
        key = (prm.toUri, _text(lambda: prm.msgBody))
        waiting = self.texts_out.get(key)
        if not waiting:
            log.warning("an answer %d to a text this worker does not know was sent", prm.code)
            return
        text, _ = waiting.popleft()
        if not waiting:
            del self.texts_out[key]
        self.emit(p.TextStatus(text, int(prm.code), str(prm.reason)))

    def text_received(self, prm: pj.OnInstantMessageParam) -> None:
        rdata = prm.rdata
        source = rdata.srcAddress
        message = _text(lambda: rdata.wholeMsg)
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
        if self.front is not None and _host_of(source) == self.front:
            source = header(message, "X-Source-Address") or source
        self.emit(p.TextReceived(f"{self.name}-txt-{next(self._texts_in)}", sender, to, body,
                                 prm.contentType, source,
                                 (header(message, "Call-ID") or "") if message else "", problem))

    def _expire_texts(self, now: float) -> None:
        for key in list(self.texts_out):
            waiting = self.texts_out[key]
            while waiting and now - waiting[0][1] > TEXT_ANSWER_S:
                text, _ = waiting.popleft()
                self.emit(p.TextStatus(text, 408, "no answer"))
            if not waiting:
                del self.texts_out[key]

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
        if not self.sources.allows(source):
            leg_id = f"{self.name}-refused-{next(self._refused)}"
            leg = CallLeg(leg_id, "in", PhoneCall(account, self, leg_id, prm.callId),
                          self.clock(), silent=True)
            self.legs[leg_id] = leg
            self.emit(p.Refused(source, caller))
            self._respond(leg, 403)
            return
        leg_id = f"{self.name}-in-{next(self._inbound)}"
        self.legs[leg_id] = CallLeg(
            leg_id, "in", PhoneCall(account, self, leg_id, prm.callId), self.clock()
        )
        callee = user_part(request_uri(message)) or user_part(header(message, "To") or "")
        if self.front is not None and _host_of(source) == self.front:
            source = header(message, "X-Source-Address") or source  # the caller, not the front
        self.emit(p.Incoming(leg_id, caller, callee, source,
                             header(message, "Call-ID") or "", display))

    def registration(self, status: int, reason: str, expires: int) -> None:
        self.emit(p.Registration(status, reason, expires))

    # ------------------------------------------------------- main-loop work

    def drain(self) -> None:
        """Handle every queued notice."""
        while True:
            try:
                notice = self.inbox.get_nowait()
            except queue.Empty:
                return
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
        self._retire(prompt)
        self.emit(p.PlaybackEnded(leg.id, reason, prompt.file))

    def _retire(self, *media: object) -> None:
        """Keep media objects alive a while after they leave a call.

        pjsua 2.15 applies conference changes on the next media clock tick, on
        the media thread, which may be inside a port's callback right now
        (a player's ``getFrame``). Players and recorders are pjsua's own ports,
        whose removal pjsua orders itself; keeping them a little longer costs
        nothing and keeps a late frame off a freed object. Speech ports are
        never destroyed at all (see :class:`~softphone.media.SpeechPort`).
        :meth:`check_timers` lets go of retired objects after :data:`RETIRE_S`.
        """
        now = self.clock()
        self.retired.extend((now, item) for item in media if item is not None)

    def check_timers(self) -> None:
        now = self.clock()
        while self.retired and now - self.retired[0][0] > RETIRE_S:
            self.retired.popleft()
        self._close_recorders(now)
        for leg in list(self.legs.values()):
            if leg.ended or leg.silent:
                continue
            if leg.ring_deadline is not None and now >= leg.ring_deadline:
                leg.ring_deadline = None
                leg.rang_out = True
                self.emit(p.NoAnswer(leg.id, 408))
                self._hang_up(leg)
            elif leg.collector is not None:
                self._collected(leg, leg.collector.expire(now))
        if now >= self._next_media_check:
            self._next_media_check = now + MEDIA_CHECK_S
            self._check_limits(now)
            self._expire_texts(now)

    def _check_limits(self, now: float) -> None:
        """End connected calls that receive no RTP any more, or have gone on too long: a peer
        that vanished (a crashed phone, a scanner) must not hold one of the 4 channels."""
        limits = self.limits
        for leg in list(self.legs.values()):
            if leg.ended or leg.silent or not leg.connected or leg.connected_at is None:
                continue
            if limits.max_call_s and now - leg.connected_at >= limits.max_call_s:
                self._end_on_our_own(leg, "max_call")
                continue
            if not limits.media_timeout_s:
                continue
            received = self._rx_packets(leg)
            if received > leg.rx_packets:
                leg.rx_packets, leg.rx_at = received, now
            elif leg.rx_at is not None and now - leg.rx_at >= limits.media_timeout_s:
                self._end_on_our_own(leg, "media_timeout")

    def _rx_packets(self, leg: CallLeg) -> int:
        try:
            return int(leg.phone.getStreamStat(0).rtcp.rxStat.pkt)
        except pj.Error:
            return leg.rx_packets  # no stream (yet): nothing counted

    def _end_on_our_own(self, leg: CallLeg, reason: str) -> None:
        log.info("ending %s: %s", leg.id, reason)
        leg.end_reason = reason
        try:
            self._hang_up(leg)
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
        leg.collector = None
        self._retire(leg.prompt, leg.recorder)
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
                    self._hang_up(leg)
                except pj.Error as exc:
                    log.warning("hangup of %s at shutdown: %s", leg.id, exc.reason)


def _text(read: Callable[[], str]) -> str:
    """A string pjsua2 hands over. Bytes that are not UTF-8 arrive as surrogates (or the read
    fails): they become U+FFFD, so that the string can travel as JSON."""
    try:
        value = read()
    except UnicodeDecodeError:
        return ""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _wav_seconds(path: str) -> float:
    """The length of a WAV the worker wrote (0 if it cannot be read)."""
    import wave

    try:
        with wave.open(path, "rb") as w:
            return round(w.getnframes() / w.getframerate(), 3)
    except (OSError, EOFError, wave.Error):
        return 0.0


def _wav_has_data(path: str) -> bool:
    try:
        return os.path.getsize(path) > 44
    except OSError:
        return False


def _wav_data_seconds(path: str) -> float:
    """From the size, for a header that was never completed (8 kHz, 16-bit mono)."""
    try:
        return round(max(0, os.path.getsize(path) - 44) / 16000, 3)
    except OSError:
        return 0.0


def _host_of(address: str) -> str:
    """``1.2.3.4:5060`` → ``1.2.3.4``; ``[::1]:5060`` → ``::1``."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return host.strip("[]")


def _sip_header(name: str, value: str) -> pj.SipHeader:
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h
