"""One call as the worker sees it: its pjsua2 ``Call`` and everything it holds.

:class:`PhoneCall` and :class:`PhoneAccount` turn pjsua2 callbacks into calls
on a :class:`CallSink` (the exchange). SIP callbacks run on the main thread
inside ``libHandleEvents``; DTMF may arrive on the media thread, so the sink
must accept :meth:`CallSink.digit` from any thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

import pjsua2 as pj

from audio.amd import AmdSettings
from audio.progress import EarlyMedia
from softphone.digits import DigitCollector
from softphone.media import Prompt, SpeechPort
from softphone.outcome import q850_cause
from softphone.protocol import DtmfMethod
from softphone.sipmsg import headers

log = logging.getLogger(__name__)

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class CallSnapshot:
    """What ``getInfo()`` said inside ``onCallState`` (the id dies after DISCONNECTED)."""

    state: int
    status: int
    reason: str
    connect_s: float
    cause: int | None = None
    """The Q.850 cause of the final response's ``Reason`` header (RFC 3326), if any."""


class CallSink(Protocol):
    def call_state(self, leg_id: str, snapshot: CallSnapshot) -> None: ...
    def call_media(self, leg_id: str) -> None: ...
    def digit(self, leg_id: str, digit: str, method: DtmfMethod) -> None: ...
    def transfer_status(self, leg_id: str, status: int) -> None: ...
    def incoming(self, account: PhoneAccount, prm: pj.OnIncomingCallParam) -> None: ...
    def registration(self, status: int, reason: str, expires: int) -> None: ...
    def text_received(self, prm: pj.OnInstantMessageParam) -> None: ...
    def text_status(self, prm: pj.OnInstantMessageStatusParam) -> None: ...


@dataclass
class CallLeg:
    """Registry entry: keeps every pjsua2 object of a call alive until DISCONNECTED."""

    id: str
    direction: Direction
    phone: PhoneCall
    started_at: float
    silent: bool = False
    """A refused call: no events at all (it never had an id the engine saw)."""
    ring_deadline: float | None = None
    connected: bool = False
    outcome_sent: bool = False
    local_hangup: bool = False
    ended: bool = False
    last_ringing: int = 0
    audio: pj.AudioMedia | None = None
    prompt: Prompt | None = None
    recorder: pj.AudioMediaRecorder | None = None
    record_file: str = ""
    speech: SpeechPort | None = None
    collector: DigitCollector | None = None
    bridged_to: str | None = None
    """The call whose audio this one hears and feeds (``bridge``)."""
    amd: AmdSettings | None = None
    """Answering-machine detection asked for (``detect_machine``), run from the answer on."""
    early: EarlyMedia | None = None
    """What the network says (``detect_progress``): early media, then the first seconds."""
    heard_dir: str = ""
    """Where a clip of unknown early media is kept when the call fails ("" none)."""
    rang_out: bool = False
    """The worker ended it at the ring timeout."""
    connected_at: float | None = None
    rx_packets: int = 0
    """RTP packets received so far (from the stream's RTCP statistics)."""
    rx_at: float | None = None
    """When ``rx_packets`` last grew (or the call was answered)."""
    end_reason: str = ""

    def respond(self, status: int, extra: pj.SipHeader | None = None) -> None:
        """Answer the INVITE of an inbound call with ``status`` (and one more header)."""
        prm = pj.CallOpParam(True)
        prm.statusCode = status
        if extra is not None:
            prm.txOption.headers.append(extra)
        self.phone.answer(prm)

    def hang_up(self, status: int | None = None) -> None:
        """BYE if connected, CANCEL if outbound and early, ``status`` if inbound unanswered;
        the end is ours and no outcome of the network is reported."""
        self.local_hangup = True
        self.outcome_sent = True  # the engine (or the worker) chose to end it
        prm = pj.CallOpParam(True)
        if status:
            prm.statusCode = status
        self.phone.hangup(prm)

    def send_digits(self, digits: str, method: DtmfMethod) -> None:
        """DTMF ``digits`` (checked already) by RFC 2833 or by SIP INFO."""
        if method == "info":
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            prm.digits = digits
            self.phone.sendDtmf(prm)
        else:
            self.phone.dialDtmf(digits)


def sip_header(name: str, value: str) -> pj.SipHeader:
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h


class PhoneCall(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account, sink: CallSink, leg_id: str,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.sink = sink
        self.leg_id = leg_id

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            info = self.getInfo()
            cause = None
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                cause = q850_cause(headers(_received(prm.e), "Reason"))
            snapshot = CallSnapshot(
                state=info.state, status=info.lastStatusCode, reason=info.lastReason,
                connect_s=info.connectDuration.sec + info.connectDuration.msec / 1000,
                cause=cause,
            )
            self.sink.call_state(self.leg_id, snapshot)
        except Exception:
            log.exception("onCallState of %s", self.leg_id)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            self.sink.call_media(self.leg_id)
        except Exception:
            log.exception("onCallMediaState of %s", self.leg_id)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        # onDtmfEvent fires too for RFC 2833: only this one is handled.
        try:
            method: DtmfMethod = (
                "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc2833"
            )
            self.sink.digit(self.leg_id, str(prm.digit).upper(), method)
        except Exception:
            log.exception("onDtmfDigit of %s", self.leg_id)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        try:
            if prm.finalNotify:
                prm.cont = False
                self.sink.transfer_status(self.leg_id, prm.statusCode)
        except Exception:
            log.exception("onCallTransferStatus of %s", self.leg_id)


    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        # A peer's REFER would make pjsua place a call the engine never asked
        # for (and that no registry holds): decline it.
        try:
            prm.statusCode = 603
        except Exception:
            log.exception("onCallTransferRequest of %s", self.leg_id)


def _received(event: pj.SipEvent) -> str:
    """The SIP message a transaction event carries, if it was one received ("" otherwise)."""
    if event.type != pj.PJSIP_EVENT_TSX_STATE:
        return ""
    state = event.body.tsxState
    if state.type != pj.PJSIP_EVENT_RX_MSG:
        return ""
    return str(state.src.rdata.wholeMsg)


class PhoneAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, sink: CallSink) -> None:
        super().__init__()
        self.sink = sink

    def from_uri(self, caller_id: str) -> str:
        """The From URI for ``caller_id``: as given when empty or a URI already, else
        ``sip:<caller_id>@<this account's domain>``."""
        if not caller_id or caller_id.startswith(("sip:", "sips:", "tel:")) or "<" in caller_id:
            return caller_id
        domain = self.getInfo().uri.split("@", 1)[-1].rstrip(">")
        return f"sip:{caller_id}@{domain}"

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self.sink.incoming(self, prm)
        except Exception:
            log.exception("onIncomingCall")

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            self.sink.registration(prm.code, prm.reason, prm.expiration)
        except Exception:
            log.exception("onRegState")

    def onInstantMessage(self, prm: pj.OnInstantMessageParam) -> None:
        # pjsua has answered the MESSAGE 200 already (pjsua_im.c: "Respond with 200 first")
        try:
            self.sink.text_received(prm)
        except Exception:
            log.exception("onInstantMessage")

    def onInstantMessageStatus(self, prm: pj.OnInstantMessageStatusParam) -> None:
        try:
            self.sink.text_status(prm)
        except Exception:
            log.exception("onInstantMessageStatus")


class TextTarget(pj.Buddy):  # type: ignore[misc]
    """Where a text goes: pjsua2 sends an out-of-dialog MESSAGE only through a buddy. No
    presence subscription; made for one text and dropped once it is sent."""

    def __init__(self, account: pj.Account, uri: str) -> None:
        super().__init__()
        config = pj.BuddyConfig()
        config.uri = uri
        config.subscribe = False
        self.create(account, config)
        self.uri = uri
