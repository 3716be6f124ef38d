"""Bulk parsing of number list files: ten million lines in a few seconds.

What a row is, in one paragraph: a file is lines ending in ``\\n`` (a ``\\r``
before it is whitespace, so CRLF files read the same). The number is the
line's first field, the text before the first ``,``, ``;``, tab or ``#``
(a ``#`` after a number starts a trailing comment), and it becomes exactly
``normalize(first_field)``, the key a caller id written that way gets; the
formatting ``normalize`` drops (spaces, ``-``, ``.``, ``/``, brackets, quotes)
is why ``"+86 138 0013 7490"`` or ``(0591) 8765 4321`` read as numbers. Quotes
are only formatting: a separator inside quotes still ends the field. A blank
line, or one whose first non-blank character is ``#``, is skipped. The first
other line of the file is a header, skipped, if its first field has no digit
and is not a number. A UTF-8 byte-order mark at the start of the file is not
part of the first line. Every other line whose first field is not an E.164,
short or local number is malformed: counted, and the first
:data:`KEEP_MALFORMED` kept with their line number (1-based, every line counts)
and the number as written (the whole row when that field is empty).

How: each chunk is classified with numpy. A first field made only of digits,
formatting and at most one ``+`` before the digits is decided by the same rule
table as :func:`screening.numbers.classify_digits`, over whole chunks; every
other line (garbage, blank, header, forms outside the table such as
``+86 0591 ...``) goes through :func:`screening.numbers.normalize` one by one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .numbers import SHORT_BASE, NumberKind, normalize

__all__ = ["KEEP_MALFORMED", "ParseResult", "first_field", "parse_bytes", "parse_file"]

CHUNK_BYTES = 1 << 20
KEEP_MALFORMED = 1000  # malformed lines kept with their text; all are counted
_MAX_DIGITS = 17  # "00" + 15: longer digit strings are never a number

#: The ASCII part of what normalize() drops between digits, and what ends a field.
_FORMAT = np.zeros(256, bool)
_FORMAT[list(b" \r\v\f-().\"'/")] = True
_END = np.zeros(256, bool)
_END[list(b",;\t#\n")] = True
_FIELD_END = re.compile(r"[,;\t#]")
_BOM = "\ufeff"
_PAD = 24  # zero bytes before a chunk's compacted text: three 8-byte words


@dataclass
class ParseResult:
    keys: np.ndarray  # uint64, sorted, unique
    lines: int = 0
    accepted: int = 0  # rows with a number, duplicates included
    header: bool = False
    skipped: int = 0  # blank and comment lines
    malformed_count: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)


def first_field(line: str) -> str:
    """The text of a row that holds its number (see the module docstring)."""
    return _FIELD_END.split(line, maxsplit=1)[0]


def parse_file(
    path: Path, region: str = "CN", progress: Callable[[int, int], None] | None = None
) -> ParseResult:
    total = path.stat().st_size
    with path.open("rb") as stream:
        return _parse_chunks(_chunks(stream), region, total, progress)


def parse_bytes(data: bytes, region: str = "CN") -> ParseResult:
    return _parse_chunks(iter([data] if data else []), region, len(data), None)


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
    """Decide the chunk's lines with numpy; hand the rest to :func:`_slow_lines`."""
    if not data.endswith(b"\n"):
        data += b"\n"
    buf = np.frombuffer(data, np.uint8)
    first_line = result.lines + 1
    rows_before = bool(result.accepted or result.malformed_count or result.header)
    ends = np.flatnonzero(buf == 10)
    result.lines += len(ends)
    starts = np.empty(len(ends), np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1

    fields = _Fields.of(buf)
    keys, decided = _rule_table(fields, _digit_values(fields), region)
    decided &= fields.simple
    chosen = np.flatnonzero(decided)
    first_row = None if rows_before else int(chosen[0]) if len(chosen) else len(ends)
    slow = _slow_lines(data, starts, ends, np.flatnonzero(~decided), first_line, first_row, result, region)
    return np.concatenate([keys[chosen], slow])


@dataclass(frozen=True)
class _Fields:
    """The first field of every line of a chunk, with its formatting removed.

    Removing FORMAT bytes from the whole chunk first leaves every field that
    ``normalize`` reads as ``\\+?[0-9]+`` as a "+", a run of digits and an END
    byte. Only byte-sized arrays span the chunk; the rest is one entry per line
    or per non-digit byte.
    """

    text: np.ndarray  # uint8: _PAD zero bytes, the chunk without FORMAT bytes, 8 zero bytes
    begin: np.ndarray  # where each line's digits begin in text
    end: np.ndarray  # where they end (exclusive): the first non-digit after them
    ndigits: np.ndarray
    plus: np.ndarray  # bool: a "+" before the digits
    simple: np.ndarray  # bool: "+"? 1-17 digits, then the field's end

    @classmethod
    def of(cls, buf: np.ndarray) -> _Fields:
        low = np.flatnonzero(buf < 48)  # FORMAT bytes are all below "0", and few
        drop = low[_FORMAT[buf[low]]]
        size = len(buf) - len(drop)
        text = np.zeros(_PAD + size + 8, np.uint8)
        if len(drop):
            keep = np.ones(len(buf), bool)
            keep[drop] = False
            text[_PAD : _PAD + size] = buf[keep]
        else:
            text[_PAD : _PAD + size] = buf
        breaks = np.flatnonzero((text[_PAD : _PAD + size] - 48) > 9) + _PAD  # every non-digit
        newline = text[breaks] == 10
        line_start = np.empty(np.count_nonzero(newline), np.int64)
        line_start[0] = _PAD
        line_start[1:] = breaks[newline][:-1] + 1
        first_break = np.flatnonzero(np.concatenate(([True], newline[:-1])))  # in breaks
        at = breaks[first_break]
        plus = (at == line_start) & (text[at] == ord("+"))
        end = np.where(plus, breaks[np.minimum(first_break + 1, len(breaks) - 1)], at)
        begin = line_start + plus
        ndigits = end - begin
        simple = _END[text[end]] & (ndigits >= 1) & (ndigits <= _MAX_DIGITS)
        return cls(text, begin, end, ndigits, plus, simple)


_NIBBLES = 0x0F0F0F0F0F0F0F0F  # a digit's value is the low nibble of its ASCII code
_TOP_NIBBLES = np.array([_NIBBLES & ~((1 << (8 * (8 - k))) - 1) for k in range(9)], np.uint64)
_SWAR = tuple(  # (mask, multiplier, shift): pairs, then quads, then octets
    (np.uint64(m), np.uint64(f), np.uint64(s))
    for m, f, s in ((2**64 - 1, 10 * 2**8 + 1, 8),
                    (0x00FF00FF00FF00FF, 100 * 2**16 + 1, 16),
                    (0x0000FFFF0000FFFF, 10000 * 2**32 + 1, 32))
)


def _digit_values(fields: _Fields) -> np.ndarray:
    """The value of each line's digits (the last 24 of them), as uint64.

    Up to three 8-byte words ending at the digits' end are masked to the line's
    own digits (their low nibbles) and turned into 8-digit numbers by the usual
    SWAR steps; the first digit is the lowest byte of a little-endian word.
    """
    words = np.ndarray((len(fields.text) - 7,), "<u8", fields.text, strides=(1,))
    value = np.zeros(len(fields.end), np.uint64)
    longest = min(int(fields.ndigits[fields.simple].max(initial=0)), 3 * 8)
    for offset in range(8 * ((longest - 1) // 8), -1, -8):  # most significant word first
        v = words[fields.end - offset - 8]
        v &= _TOP_NIBBLES[np.clip(fields.ndigits - offset, 0, 8)]
        for mask, multiplier, shift in _SWAR:
            v &= mask
            v *= multiplier
            v >>= shift
        value *= np.uint64(10**8)
        value += v
    return value


_POW10 = 10 ** np.arange(19, dtype=np.uint64)


def _rule_table(fields: _Fields, value: np.ndarray, region: str) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`screening.numbers.classify_digits` (mainland China).

    Returns each line's key and whether the table decided it; ``d1 d2 d3`` are
    the first three digits (ASCII) after an international "00".
    """
    decided = np.zeros(len(value), bool)
    if region != "CN":
        return value, decided
    nd, plus, text = fields.ndigits, fields.plus, fields.text
    idd = ~plus & (nd >= 2) & (text[fields.begin] == 48) & (text[fields.begin + 1] == 48)
    nd = nd - 2 * idd
    plus = plus | idd
    national = ~plus
    at = fields.begin + 2 * idd
    d1, d2, d3 = text[at], text[at + 1], text[at + 2]
    short = np.uint64(SHORT_BASE) * nd.astype(np.uint64)
    rules = [
        (plus & (nd >= 8) & (nd <= 15) & (d1 != 48) & ~((d1 == 56) & (d2 == 54) & (d3 == 48)), 0),
        (national & (nd == 11) & (d1 == 49), 86 * 10**11),
        (national & (nd == 13) & (d1 == 56) & (d2 == 54) & (d3 == 49), 0),
        (national & (nd >= 10) & (nd <= 12) & (d1 == 48) & (d2 != 48),
         np.uint64(86) * _POW10[np.clip(nd - 1, 0, 18)]),
        (national & (nd >= 3) & (nd <= 6) & (d1 != 48), short),
        (national & (nd >= 7) & (nd <= 8) & (d1 >= 50), short),
    ]
    offset = np.zeros(len(value), np.uint64)
    for match, base in rules:
        take = match & ~decided
        offset[take] = base[take] if isinstance(base, np.ndarray) else base
        decided |= take
    return value + offset, decided


_ACCEPTED = (NumberKind.E164, NumberKind.SHORT, NumberKind.LOCAL)


def _slow_lines(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    lines: np.ndarray,
    first_line: int,
    first_row: int | None,
    result: ParseResult,
    region: str,
) -> np.ndarray:
    """The row rules, line by line, for the lines numpy did not decide.

    ``first_row`` is the index in this chunk of the first line already known to
    be a row (``None``: an earlier chunk had one); a header can only come before it.
    """
    keys: list[int] = []
    for index in lines.tolist():
        line_no = first_line + index
        line = data[starts[index] : ends[index]].decode("utf-8", "replace")
        if line_no == 1:
            line = line.removeprefix(_BOM)
        text = line.strip()
        if not text or text.startswith("#"):
            result.skipped += 1
            continue
        is_first_row = first_row is not None and index < first_row
        first_row = None if is_first_row else first_row
        number_text = first_field(line)
        number = normalize(number_text, region)
        if number.key is not None and number.kind in _ACCEPTED:
            keys.append(number.key)
        elif is_first_row and not any(ch.isdigit() for ch in number_text):
            result.header = True
        else:
            result.malformed_count += 1
            if len(result.malformed) < KEEP_MALFORMED:
                # the number as written; the whole row when that is empty
                result.malformed.append((line_no, (number_text.strip() or text)[:80]))
    return np.array(keys, np.uint64)
