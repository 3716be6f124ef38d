"""The bulk list parser: the same keys as the per-number path, in every shape a list comes in."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from screening import fileparse, normalize, parse_bytes, parse_file
from screening.numbers import SHORT_BASE

MOBILE = 8613800137490
LANDLINE = 8659187654321
SKIPPED = "skipped"  # a blank or comment line
MALFORMED = "malformed"

# (row as written in a list file, its key, or what becomes of it)
ROWS: list[tuple[str, int | str]] = [
    # mobiles in every written form
    ("13800137490", MOBILE),
    ("+86 138 0013 7490", MOBILE),
    ("+8613800137490", MOBILE),
    ("(+86) 138 0013 7490", MOBILE),
    ("008613800137490", MOBILE),
    ("0086 138 0013 7490", MOBILE),
    ("86-138-0013-7490", MOBILE),
    ("8613800137490", MOBILE),
    ("138.0013.7490", MOBILE),
    ("138/0013/7490", MOBILE),
    ("++8613800137490", MOBILE),  # outside the rule table: phonenumbers forgives it
    ("１３８００１３７４９０", MOBILE),  # full-width digits, outside the table
    # landlines with area codes
    ("0591-87654321", LANDLINE),
    ("(0591) 8765 4321", LANDLINE),
    ("059187654321", LANDLINE),
    ("+86 591 8765 4321", LANDLINE),
    ("+86 0591 8765 4321", LANDLINE),  # a trunk zero after +86: phonenumbers drops it
    ("86 591 8765 4321", LANDLINE),  # outside the table
    ("010-12345678", 861012345678),
    ("0755 8765 4321", 8675587654321),
    ("021-5678901", 86215678901),
    # other countries, short and local numbers
    ("+1 202 555 0143", 12025550143),
    ("0044 20 7946 0958", 442079460958),
    ("110", 3 * SHORT_BASE + 110),
    ("95588", 5 * SHORT_BASE + 95588),
    ("8765 4321", 8 * SHORT_BASE + 87654321),
    # the number is the first field
    ("13800137490,2026-03-01,case 17", MOBILE),
    ("0591-87654321,2026-03-01,case 17", LANDLINE),
    ("13800137490;2026-03-01", MOBILE),
    ("13800137490\t2026-03-01", MOBILE),
    ("13800137490 # called twice", MOBILE),
    ('"13800137490","2026-03-01"', MOBILE),
    ('"+86 138 0013 7490","2026-03-01","case 17"', MOBILE),
    ("'13800137490", MOBILE),  # a spreadsheet's text marker
    ("  13800137490  ", MOBILE),
    ("13800137490\r", MOBILE),  # CRLF
    ("sip:13800137490@10.0.0.1,x", MOBILE),
    ("tel:+86-138-0013-7490", MOBILE),
    ("电话 13800137490", MOBILE),
    ("13800137490 ext. 5", MOBILE),
    # garbage
    ("n/a", MALFORMED),
    ("abc", MALFORMED),
    ("unknown", MALFORMED),
    ("0", MALFORMED),
    ("-", MALFORMED),
    ("+", MALFORMED),
    ("+95588", MALFORMED),
    ("1" * 40, MALFORMED),
    ("138+0013+7490", MALFORMED),
    ("138 0013 7490 (mobile)", MALFORMED),
    (",2026-03-01,case 17", MALFORMED),  # no number in the first field
    ('"",2026-03-01', MALFORMED),
    ("\x00\xff☎", MALFORMED),
    # neither a number nor malformed
    ("", SKIPPED),
    ("   ", SKIPPED),
    ("\r", SKIPPED),
    ("# exported 2026-03-01", SKIPPED),
    ("   # 13800137490 removed", SKIPPED),
]

FIRST = 5 * SHORT_BASE + 96110  # a first row, so that no row of the table is taken for a header


@pytest.mark.parametrize(("row", "outcome"), ROWS)
def test_row(row: str, outcome: int | str) -> None:
    parsed = parse_bytes(f"96110\n{row}\n".encode())
    assert parsed.keys.tolist() == sorted({FIRST, outcome} if isinstance(outcome, int) else {FIRST})
    shown = fileparse.first_field(row).strip() or row.strip()  # the number as written
    assert parsed.malformed == ([(2, shown)] if outcome == MALFORMED else [])
    assert parsed.skipped == (outcome == SKIPPED)
    assert not parsed.header


@pytest.mark.parametrize(("row", "outcome"), ROWS)
def test_row_agrees_with_the_per_number_path(row: str, outcome: int | str) -> None:
    assert normalize(re.split(r"[,;\t#]", row, maxsplit=1)[0]).key == (outcome if isinstance(outcome, int) else None)


# (file, keys, header, malformed, skipped)
FILES: list[tuple[str, list[int], bool, list[tuple[int, str]], int]] = [
    ("number,date,case\n13800137490,2026-03-01,1\n", [MOBILE], True, [], 0),
    ("# exported\n\n号码,日期\n13800137490\n", [MOBILE], True, [], 2),  # the first row, not line 1
    ("\ufeffnumber\n13800137490\n", [MOBILE], True, [], 0),  # byte-order mark
    ("\ufeff13800137490\n", [MOBILE], False, [], 0),
    ("\ufeff# comment\n13800137490\n", [MOBILE], False, [], 1),
    ("phone1,date\n13800137490\n", [MOBILE], False, [(1, "phone1")], 0),  # a digit: not a header
    ("13800137490\nnumber\n", [MOBILE], False, [(2, "number")], 0),  # only the first row
    ("number\nnumber\n", [], True, [(2, "number")], 0),
    ("13800137490;x\r\n8613800137491\t y\r\n+8613800137492\r\n13800137493", [MOBILE, MOBILE + 1, MOBILE + 2, MOBILE + 3],
     False, [], 0),
    ("", [], False, [], 0),
]


@pytest.mark.parametrize(("text", "keys", "header", "malformed", "skipped"), FILES)
def test_file(text: str, keys: list[int], header: bool, malformed: list[tuple[int, str]], skipped: int) -> None:
    parsed = parse_bytes(text.encode())
    assert (parsed.keys.tolist(), parsed.header, parsed.malformed, parsed.skipped) == (keys, header, malformed, skipped)
    assert parsed.lines == text.count("\n") + (not text.endswith("\n") and text != "")


def test_malformed_lines_are_reported_with_their_line_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["number,date,case", "# exported"]
    bad = {}
    for i in range(3000):
        if i % 7 == 3:
            lines.append(f"n/a,{i}")
            bad[len(lines)] = "n/a"
        elif i % 11 == 5:
            lines.append("")
        else:
            lines.append(f"+86 138 {i:04d} 7490,2026-03-01")
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(fileparse, "CHUNK_BYTES", 1000)  # many chunks: line numbers carry over
    parsed = parse_file(path)
    assert parsed.malformed_count == len(bad)
    assert parsed.malformed == sorted(bad.items())[: fileparse.KEEP_MALFORMED] == sorted(bad.items())
    assert parsed.header and parsed.lines == len(lines)
    assert parsed.lines == parsed.accepted + parsed.malformed_count + parsed.skipped + parsed.header


def test_only_the_first_malformed_lines_keep_their_text() -> None:
    parsed = parse_bytes(b"13800137490\n" + b"abc\n" * (fileparse.KEEP_MALFORMED + 500))
    assert parsed.malformed_count == fileparse.KEEP_MALFORMED + 500
    assert parsed.malformed == [(line, "abc") for line in range(2, fileparse.KEEP_MALFORMED + 2)]


# -- many rows of every shape, against the per-number path -------------------------------------------

_FORMATTING = [" ", " ", "-", "-", ".", "/", "(", ")", "  ", "\r"]
_PREFIXES = ["", "", "", "+", "+86", "+86 ", "86", "86-", "0086", "00", "0", "+86 0", "+0", "++", " +", "(+86)"]
_JUNK = ["x", "@", ":", "+", "O", "ext", "１", "☎", "\x00", "\ufeff", "\x1c", "\u00a0", "é", "ab"]
_TAILS = ["", "", "", ",2026-03-01,case 17", ";2026-03-01", "\t17", " # note", ",", ",,", '","x"']


def _written(rng: random.Random) -> str:
    """A mobile or a landline in one of the forms national lists write them in."""
    m = f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}"
    a = rng.choice(["10", "20", "21", "591", "755", "898"])
    local = f"{rng.randrange(2, 10)}{rng.randrange(10**7):07d}"[: rng.choice([7, 8, 8])]
    return rng.choice([
        m, f"+86 {m[:3]} {m[3:7]} {m[7:]}", f"+86{m}", f"0086{m}", f"0086 {m[:3]} {m[3:7]} {m[7:]}",
        f"86-{m[:3]}-{m[3:7]}-{m[7:]}", f"86{m}", f"(+86) {m}", f"{m[:3]}-{m[3:7]}-{m[7:]}",
        f"0{a}-{local}", f"(0{a}) {local[:-4]} {local[-4:]}", f"+86 {a} {local[:-4]} {local[-4:]}",
        f"0{a}{local}", f"+86 0{a} {local}", f"86 {a} {local}", f"0086-{a}-{local}",
    ])


def _number(rng: random.Random) -> str:
    """Digits, a prefix, formatting and now and then junk: the rule table's edges."""
    kind = rng.randrange(5)
    if kind == 0:
        digits = f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}"
    elif kind == 1:
        area = rng.choice(["10", "20", "21", "591", "755", "898", "3"])
        digits = f"0{area}{rng.randrange(2, 10)}{rng.randrange(10**7):07d}"[: rng.choice([11, 12, 12, 13])]
    else:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 20)))
    digits = rng.choice(_PREFIXES) + digits
    out = []
    for ch in digits:
        out.append(ch)
        if rng.random() < 0.15:
            out.append(rng.choice(_FORMATTING))
        if rng.random() < 0.01:
            out.append(rng.choice(_JUNK))
    return "".join(out)


def _row(rng: random.Random) -> str:
    kind = rng.randrange(40)
    if kind == 0:
        return rng.choice(["", "  ", "# comment", " # x, 13800137490", "n/a", "unknown", ",x", "number", "\ufeff1"])
    number = _written(rng) if kind % 2 else _number(rng)
    if rng.random() < 0.1:
        number = f'"{number}"'
    if rng.random() < 0.1:
        number = f" {number} "
    return number + rng.choice(_TAILS)


def _per_number(text: str) -> tuple[list[int], list[tuple[int, str]], bool]:
    """The row rules of the module docstring, one line at a time with normalize()."""
    keys, malformed, header, rows = set(), [], False, 0
    lines = text.removeprefix("\ufeff").split("\n")
    for line_no, line in enumerate(lines[:-1] if text.endswith("\n") else lines, 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        rows += 1
        first_field = re.split(r"[,;\t#]", line, maxsplit=1)[0]
        key = normalize(first_field).key
        if key is not None:
            keys.add(key)
        elif rows == 1 and not any(ch.isdigit() for ch in first_field):
            header = True
        else:
            malformed.append((line_no, (first_field.strip() or line.strip())[:80]))
    return sorted(keys), malformed, header


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_path_agrees_with_per_number_path_on_mixed_rows(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    lines = ["number,date,case"] + [_row(rng) for _ in range(8000)]
    text = "\n".join(lines) + "\n"
    keys, malformed, header = _per_number(text)
    assert len(keys) > 5000 and len(malformed) > 1000  # the sample has both

    whole = parse_bytes(text.encode())
    assert whole.keys.tolist() == keys
    kept = malformed[: fileparse.KEEP_MALFORMED]
    assert (whole.malformed, whole.malformed_count, whole.header) == (kept, len(malformed), header)

    path = tmp_path / "list.csv"
    path.write_bytes(text.encode())
    monkeypatch.setattr(fileparse, "CHUNK_BYTES", 4096)
    chunked = parse_file(path)
    assert chunked.keys.tolist() == keys
    assert (chunked.malformed, chunked.header, chunked.lines) == (kept, header, len(lines))


def test_every_digit_string_agrees_with_the_rule_table() -> None:
    """Bare digit strings of every length, with and without "+" or "00": the vector rule table."""
    rng = random.Random(5)
    rows = []
    for length in range(1, 19):
        for lead in ["0", "00", "1", "86", "860", "861", "865", "2", "9", "+", "+0", "+86", "+860", "+1"]:
            for _ in range(6):
                rows.append(lead + "".join(rng.choice("0123456789") for _ in range(length)))
    text = "13800137490\n" + "\n".join(rows) + "\n"
    keys, malformed, _ = _per_number(text)
    parsed = parse_bytes(text.encode())
    assert parsed.keys.tolist() == keys
    assert parsed.malformed == malformed


def test_other_regions_take_the_per_number_path() -> None:
    text = "2025550143\n+1 202 555 0143\n13800137490\n"
    parsed = parse_bytes(text.encode(), region="US")
    expected = sorted({key for line in text.splitlines() if (key := normalize(line, "US").key) is not None})
    assert parsed.keys.tolist() == expected
