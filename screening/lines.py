"""Our own service numbers (the hotline, the SMS line) in every form people dial.

A caller inside the area dials ``961108``; from elsewhere in the country
``0591961108``; from a mobile abroad or through some carriers ``+86591961108``
or ``86591961108``. :class:`ServiceNumber` compares what arrived after
:func:`~screening.normalize`, never as raw strings: the short number itself,
and the number behind its area code (``hotline.area_code``) in any national or
international form, are one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .numbers import NumberKind, normalize

__all__ = ["ServiceNumber"]


@dataclass(frozen=True)
class ServiceNumber:
    number: str
    """As configured (``961108``)."""
    area_code: str = ""
    """``0591`` or ``591``; empty: the number is reached only as it is written."""
    _keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = {normalize(self.number).digits}
        if self.area_code:
            keys.add(normalize("0" + self.area_code.lstrip("0") + self.number).digits)
        keys.discard("")
        object.__setattr__(self, "_keys", frozenset(keys))

    def matches(self, dialed: str) -> bool:
        """``dialed`` (a SIP user part or any written number) is this line."""
        number = normalize(dialed)
        return number.kind not in (NumberKind.INVALID, NumberKind.ANONYMOUS) \
            and number.digits in self._keys

    def dialed_forms(self) -> tuple[str, ...]:
        """The literal user parts a SIP request to this line may carry (for the front's
        routing, which cannot normalize): each form that :meth:`matches`."""
        area = self.area_code.lstrip("0")
        n = self.number
        candidates = [n, "86" + n, "+86" + n, "0086" + n]
        if area:
            candidates += ["0" + area + n, "86" + area + n, "+86" + area + n,
                           "0086" + area + n]
        return tuple(dict.fromkeys(c for c in candidates if self.matches(c)))
