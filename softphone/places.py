"""The places of pjsua's I/O queue, counted so that a new call never finds none.

A worker's SIP socket and every call's media sockets share one select I/O queue
of 64 places (``PJSIP_MAX_TRANSPORTS``, compiled in). A socket's place comes
back only 500 ms after the socket is closed (``PJ_IOQUEUE_KEY_FREE_DELAY``),
and pjlib *aborts the process* when a socket is opened while every place is
taken or waiting (``pj_assert`` on the empty free list in
``pj_ioqueue_register_sock``). A rate alone cannot prevent that: what matters
is how many sockets calls opened in the last half second, whatever the rate
that brought them. :class:`MediaPlaces` counts exactly that, and the worker
asks it before pjsua opens a call's sockets: the INVITE guard for an inbound
call (its INVITE gets 503 when there is no place), the exchange for an
outbound one (the dial fails with 503, and the engine dials elsewhere or later).

pjsua opens a transport (RTP and RTCP: two sockets) for *every* usable audio
line of an offer, up to 16 (``sort_media`` in ``pjsua_media_channel_init``),
so a call holds a *unit* of two places for each audio line it was offered; a
re-offer in the dialog that brings more lines than the call holds would open
more, and is refused (:meth:`MediaPlaces.reoffer_fits`).

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
SOCKETS_PER_UNIT = 2  # one audio line's transport: RTP and RTCP


class MediaPlaces:
    """Units (two places: one audio line's RTP and RTCP) that calls hold, now or for a
    while after they ended.

    ``fixed``: places held for the worker's life (its SIP socket); ``spare``: places
    never handed out, for what this count cannot see. ``linger_s`` is the free delay
    and what may pass between pjsua closing a call's sockets and this count hearing of
    it. ``units_max``: 30 with the defaults, a call of one audio line a unit.
    """

    def __init__(self, places: int = PLACES, fixed: int = 1, spare: int = 2,
                 linger_s: float = FREE_DELAY_S + 0.25, max_calls: int = 4) -> None:
        self.units_max = (places - fixed - spare) // SOCKETS_PER_UNIT
        self.linger_s = linger_s
        self.max_calls = max_calls
        self.admitted: dict[str, deque[tuple[float, int]]] = {}
        """SIP Call-ID → (when, units) of each INVITE let through to pjsua, until it is a
        call (several INVITEs may share a Call-ID: forks, a peer's mistakes)."""
        self.live: dict[str, tuple[int, str]] = {}
        """Calls with media open (the exchange's call ids) → (units, SIP Call-ID)."""
        self.dialogs: dict[str, int] = {}
        """SIP Call-ID of a call up → the units it holds (for its re-offers)."""
        self.ending: deque[tuple[float, int]] = deque()
        """(when, units) of each call that ended, oldest first."""

    def held(self, now: float, calls_up: int = 0) -> int:
        """Units held at ``now``; ``calls_up``: pjsua's own count of its calls, a floor for
        those this count knows (a call it never heard of holds at least one)."""
        self._expire(now)
        live = max(sum(units for units, _ in self.live.values()), calls_up)
        admitted = sum(units for entries in self.admitted.values() for _, units in entries)
        return live + admitted + sum(units for _, units in self.ending)

    def admit(self, sip_call_id: str, now: float, calls_up: int | None = None,
              units: int = 1) -> bool:
        """A new INVITE offering ``units`` audio lines may go on to pjsua: False when its
        media could find no place.

        ``calls_up``: pjsua's own count of its calls (this count's when not given). With
        ``max_calls`` calls up pjsua answers 486 before it opens anything: such an INVITE
        takes no place."""
        up = len(self.live) if calls_up is None else calls_up
        if up >= self.max_calls:
            return True
        if self.held(now, up) + units > self.units_max:
            return False
        self.admitted.setdefault(sip_call_id, deque()).append((now, units))
        return True

    def take(self, call: str, now: float, units: int = 1) -> bool:
        """An outbound call about to open its media: False when there is no place."""
        if self.held(now) + units > self.units_max:
            return False
        self.live[call] = (units, "")
        return True

    def opened(self, call: str, sip_call_id: str) -> None:
        """An inbound call exists (pjsua opened its media after the guard let it through)."""
        entries = self.admitted.get(sip_call_id)
        units = 1
        if entries:
            units = entries.popleft()[1]
            if not entries:
                del self.admitted[sip_call_id]
        self.live[call] = (units, sip_call_id)
        if sip_call_id:
            self.dialogs[sip_call_id] = units

    def reoffer_fits(self, sip_call_id: str, lines: int) -> bool:
        """Whether a re-offer of ``lines`` audio lines in a call's dialog opens nothing more
        (a dialog this count does not hold is pjsua's to refuse)."""
        units = self.dialogs.get(sip_call_id)
        return units is None or lines <= units

    def closed(self, call: str, now: float) -> None:
        """A call ended: its sockets are closed, their places free ``linger_s`` later."""
        found = self.live.pop(call, None)
        if found is None:
            return
        units, sip_call_id = found
        self.dialogs.pop(sip_call_id, None)
        self.ending.append((now, units))

    def _expire(self, now: float) -> None:
        while self.ending and now - self.ending[0][0] >= self.linger_s:
            self.ending.popleft()
        if self.admitted:
            # pjsua turns an INVITE into a call within the packet's own dispatch; one that is
            # still here later was refused by pjsua, its media (if any) closed when let through
            for sip_call_id, entries in list(self.admitted.items()):
                while entries and now - entries[0][0] >= self.linger_s:
                    entries.popleft()
                if not entries:
                    del self.admitted[sip_call_id]
