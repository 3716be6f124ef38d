"""Call screening: number normalization, list stores, and pure decisions.

``Screener.decide(caller, now)`` is the whole of a decision; ``ListSet`` opens
the configured lists on disk and builds a ``Screener`` from the config.
"""

from .decide import Action, Decision, NumberList, PrefixRule, RateRule, Rules, Screener, Verdict
from .fileparse import ParseResult, parse_bytes, parse_file
from .lines import ServiceNumber
from .lists import ImportReport, ListSet
from .numbers import Number, NumberKind, mask, normalize
from .store import NumberStore, StoreError

__all__ = [
    "Action",
    "Decision",
    "ImportReport",
    "ListSet",
    "Number",
    "NumberKind",
    "NumberList",
    "NumberStore",
    "ParseResult",
    "PrefixRule",
    "RateRule",
    "Rules",
    "Screener",
    "ServiceNumber",
    "StoreError",
    "Verdict",
    "mask",
    "normalize",
    "parse_bytes",
    "parse_file",
]
