"""Bulk parsing of number list files: ten million lines in a few seconds.

A list file is text or CSV: one number per line, the number in the first field
(fields split by ``,``, ``;`` or tab), ``#`` starts a comment, blank lines are
skipped, a first line without digits is a header. Numbers may carry the usual
formatting (``+86 138-0013-7490``, ``(0591) 87654321``).

The common digit-only forms are decided with numpy over whole chunks, by the
same rule table as :func:`screening.numbers.classify_digits`; every other line
goes through :func:`screening.numbers.normalize` one by one. A line that is not
a number is never dropped silently: it comes back in :attr:`ParseResult.malformed`
with its line number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .numbers import SHORT_BASE, NumberKind, normalize

__all__ = ["ParseResult", "parse_bytes", "parse_file"]

CHUNK_BYTES = 8 << 20
_TERMINATOR = np.zeros(256, bool)
_TERMINATOR[list(b",;\t#\r\n")] = True
_FIELD_SEPARATORS = re.compile(r"[,;\t#]")
_KEEP_MALFORMED = 1000  # lines with their text; the rest are only counted


@dataclass
class ParseResult:
    keys: np.ndarray  # uint64, sorted, unique
    lines: int = 0
    accepted: int = 0
    header: bool = False
    malformed_count: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)


def parse_file(
    path: Path, region: str = "CN", progress: Callable[[int, int], None] | None = None
) -> ParseResult:
    total = path.stat().st_size
    with path.open("rb") as stream:
        return _parse_chunks(_chunks(stream), region, total, progress)


def parse_bytes(data: bytes, region: str = "CN") -> ParseResult:
    return _parse_chunks(iter([data]), region, len(data), None)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    rest = b""
    while True:
        block = stream.read(CHUNK_BYTES)
        if not block:
            if rest:
                yield rest
            return
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]


def _parse_chunks(
    chunks: Iterator[bytes],
    region: str,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> ParseResult:
    result = ParseResult(keys=np.empty(0, np.uint64))
    parts: list[np.ndarray] = []
    done = 0
    for chunk in chunks:
        keys = _parse_chunk(chunk, result, region)
        parts.append(keys)
        result.accepted += len(keys)
        done += len(chunk)
        if progress:
            progress(done, total)
    if parts:
        keys = np.concatenate(parts)
        keys.sort()
        if len(keys):
            keep = np.empty(len(keys), bool)
            keep[0] = True
            np.not_equal(keys[1:], keys[:-1], out=keep[1:])
            keys = keys[keep]
        result.keys = keys
    return result


def _parse_chunk(data: bytes, result: ParseResult, region: str) -> np.ndarray:
    """Decide the plain lines of a chunk with numpy; hand the others to :func:`_slow_lines`.

    A plain line is: an optional "+", 1-15 digits, then the end of the line or a
    field separator. Only bool and uint8 arrays span the whole chunk: large
    int64 temporaries cost more in page faults than the arithmetic itself.
    """
    if not data.endswith(b"\n"):
        data += b"\n"
    buf = np.frombuffer(data, np.uint8)
    first_line = result.lines + 1
    ends = np.flatnonzero(buf == 10)
    count = len(ends)
    result.lines += count
    starts = np.empty(count, np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1

    plus = buf[starts] == 43
    digit_start = starts + plus
    non_digit = np.flatnonzero((buf < 48) | (buf > 57))
    field_end = non_digit[np.searchsorted(non_digit, digit_start)]
    ndigits = field_end - digit_start
    plain = _TERMINATOR[buf[field_end]] & (ndigits <= 15)

    value = np.zeros(count, np.uint64)
    for column in range(15):
        at = field_end - 15 + column
        inside = at >= digit_start
        digit = buf[np.maximum(at, 0)].astype(np.uint64) - np.uint64(48)
        value = value * np.uint64(10) + np.where(inside, digit, np.uint64(0))

    keys, decided = _rule_table(value, ndigits, plus, region)
    decided &= plain
    blank = plain & (ndigits == 0) & ~plus
    undecided = np.flatnonzero(~decided & ~blank)
    slow = _slow_lines(data, starts, ends, undecided, first_line, result, region)
    return np.concatenate([keys[decided], slow])


def _rule_table(
    value: np.ndarray, ndigits: np.ndarray, plus: np.ndarray, region: str
) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`screening.numbers.classify_digits` (mainland China)."""
    keys = np.zeros(len(value), np.uint64)
    decided = np.zeros(len(value), bool)
    if region != "CN":
        return keys, decided
    nd = ndigits.astype(np.int64)
    pow_u = (10 ** np.arange(19, dtype=np.uint64)).astype(np.uint64)

    def lead(width: int, digits: np.ndarray) -> np.ndarray:
        shift = np.clip(digits - width, 0, 18)
        return np.where(digits >= width, value // pow_u[shift], 0)

    idd = ~plus & (nd >= 2) & (lead(2, nd) == 0)
    nd = np.where(idd, nd - 2, nd)
    plus = plus | idd
    lead1, lead2, lead3 = lead(1, nd), lead(2, nd), lead(3, nd)

    rules = [
        (plus & (nd >= 8) & (nd <= 15) & (lead1 != 0) & (lead3 != 860), value),
        (~plus & (nd == 11) & (lead1 == 1), np.uint64(86 * 10**11) + value),
        (~plus & (nd == 13) & (lead3 == 861), value),
        (
            ~plus & (nd >= 10) & (nd <= 12) & (lead1 == 0) & (lead2 != 0),
            np.uint64(86) * pow_u[np.clip(nd - 1, 0, 18)] + value,
        ),
        (
            ~plus & (nd >= 3) & (nd <= 6) & (lead1 != 0),
            np.uint64(SHORT_BASE) * nd.astype(np.uint64) + value,
        ),
        (
            ~plus & (nd >= 7) & (nd <= 8) & (lead1 > 1),
            np.uint64(SHORT_BASE) * nd.astype(np.uint64) + value,
        ),
    ]
    for match, key in rules:
        take = match & ~decided
        keys[take] = key[take]
        decided |= take
    return keys, decided


def _slow_lines(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    lines: np.ndarray,
    first_line: int,
    result: ParseResult,
    region: str,
) -> np.ndarray:
    keys: list[int] = []
    for index in lines.tolist():
        line = data[starts[index] : ends[index]].decode("utf-8", "replace")
        text = _FIELD_SEPARATORS.split(line, maxsplit=1)[0].strip()
        number = normalize(text, region)
        if number.key is not None and number.kind in (
            NumberKind.E164,
            NumberKind.SHORT,
            NumberKind.LOCAL,
        ):
            keys.append(number.key)
            continue
        line_no = first_line + index
        if line_no == 1 and not any(ch.isdigit() for ch in text):
            result.header = True
            continue
        result.malformed_count += 1
        if len(result.malformed) < _KEEP_MALFORMED:
            result.malformed.append((line_no, text[:80]))
    return np.array(keys, np.uint64)
