"""The places of pjsua's I/O queue, counted so that a new call never finds none.

A worker's SIP socket and every call's two media sockets (RTP and RTCP) share
one select I/O queue of 64 places (``PJSIP_MAX_TRANSPORTS``, compiled in). A
socket's place comes back only 500 ms after the socket is closed
(``PJ_IOQUEUE_KEY_FREE_DELAY``), and pjlib *aborts the process* when a socket
is opened while every place is taken or waiting (``pj_assert`` on the empty
free list in ``pj_ioqueue_register_sock``). A rate alone cannot prevent that:
what matters is how many calls opened media in the last half second, whatever
the rate that brought them. :class:`MediaPlaces` counts exactly that, and the
worker asks it before pjsua opens a call's sockets: the INVITE guard for an
inbound call (its INVITE gets 503 when there is no place), the exchange for an
outbound one (the dial fails with 503, and the engine dials elsewhere or later).

A call's places are held from the moment it may have opened its sockets until
``linger_s`` after it ended: an INVITE let through to pjsua (``admit``) that
never became a call (pjsua refused it, before or after opening its media) is
counted as ended when it was let through. The count is never below pjsua's own:
each uncertainty is settled towards holding the place longer.
"""

from __future__ import annotations

from collections import deque

__all__ = ["FREE_DELAY_S", "PLACES", "MediaPlaces"]

PLACES = 64
"""The I/O queue's size in the wheel (``PJ_IOQUEUE_MAX_HANDLES``)."""
FREE_DELAY_S = 0.5
"""``PJ_IOQUEUE_KEY_FREE_DELAY``: how long a closed socket's place stays taken."""
SOCKETS_PER_CALL = 2  # RTP and RTCP


class MediaPlaces:
    """Calls whose media sockets hold places, now or for a while after they ended.

    ``fixed``: places held for the worker's life (its SIP socket); ``spare``: places
    never handed out, for what this count cannot see. ``linger_s`` is the free delay
    and what may pass between pjsua closing a call's sockets and this count hearing of
    it (a transport in use on the media clock is destroyed a moment later).
    """

    def __init__(self, places: int = PLACES, fixed: int = 1, spare: int = 2,
                 linger_s: float = FREE_DELAY_S + 0.25, max_calls: int = 4) -> None:
        self.calls_max = (places - fixed - spare) // SOCKETS_PER_CALL
        self.linger_s = linger_s
        self.max_calls = max_calls
        self.admitted: dict[str, float] = {}
        """SIP Call-ID of an INVITE let through to pjsua → when; until it is a call."""
        self.live: set[str] = set()
        """Calls with media open (the exchange's call ids)."""
        self.ending: deque[float] = deque()
        """When each call that held places ended, oldest first."""

    def held(self, now: float) -> int:
        """Calls whose sockets hold places at ``now``."""
        self._expire(now)
        return len(self.live) + len(self.admitted) + len(self.ending)

    def admit(self, sip_call_id: str, now: float, calls_up: int | None = None) -> bool:
        """A new INVITE may go on to pjsua: False when its media could find no place.

        ``calls_up``: pjsua's own count of its calls (this count's when not given). With
        ``max_calls`` calls up pjsua answers 486 before it opens anything: such an INVITE
        takes no place."""
        if (len(self.live) if calls_up is None else calls_up) >= self.max_calls:
            return True
        if self.held(now) >= self.calls_max:
            return False
        self.admitted[sip_call_id] = now
        return True

    def take(self, call: str, now: float) -> bool:
        """An outbound call about to open its media: False when there is no place."""
        if self.held(now) >= self.calls_max:
            return False
        self.live.add(call)
        return True

    def opened(self, call: str, sip_call_id: str) -> None:
        """An inbound call exists (pjsua opened its media after the guard let it through)."""
        self.admitted.pop(sip_call_id, None)
        self.live.add(call)

    def closed(self, call: str, now: float) -> None:
        """A call ended: its sockets are closed, their places free ``linger_s`` later."""
        if call in self.live:
            self.live.discard(call)
            self.ending.append(now)

    def _expire(self, now: float) -> None:
        while self.ending and now - self.ending[0] >= self.linger_s:
            self.ending.popleft()
        if self.admitted:
            # pjsua turns an INVITE into a call within the packet's own dispatch; one that is
            # still here later was refused by pjsua, its media (if any) closed when let through
            for sip_call_id, at in list(self.admitted.items()):
                if now - at >= self.linger_s:
                    del self.admitted[sip_call_id]
