#!/usr/bin/env python3
"""Screening benchmark: the list store against a plain Python set of ints, same run.

    python bench/screening.py [--sizes 1000000 10000000] [--decisions 100000]

For each list size it prints import time (text file → ready to screen) of two
shapes of file, reload time (a restart: store snapshot vs. unpickling the set),
bytes per number, and the p50/p99 and rate of full screening decisions
(normalize + lists + rules) with the same Screener holding either container.
Targets (issue 2, issue 7): 10M numbers at ≤ 16 bytes each, import ≤ 10 s in
either shape, reload ≤ 1 s, decision p99 ≤ 50 µs.

The two shapes: "bare" is one 11-digit mobile a line, the set built with
``int(line)``; "mixed" is a national list as it really comes (:data:`MIXED`: the
written forms, extra CSV columns, quotes, a header, comments, blank lines and a
little garbage), the set built by the per-number path, ``normalize`` of each
line's first field. The store's keys of the mixed file must equal that set's.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from screening import Action, NumberList, NumberStore, Rules, Screener, normalize, parse_file
from screening.fileparse import first_field


def write_list(path: Path, count: int, rng: np.random.Generator) -> np.ndarray:
    # Mobile numbers 13x-19x: the fast path, as a national list of mobiles is.
    mobiles = rng.choice(7 * 10**9, size=count, replace=False).astype(np.int64) + 13 * 10**9
    with path.open("w") as out:
        for start in range(0, count, 1_000_000):
            out.write("\n".join(map(str, mobiles[start : start + 1_000_000].tolist())))
            out.write("\n")
    return mobiles


Row = tuple[str, str, str, str]  # an 11-digit mobile, an area code (no 0), its local number, a date
_GARBAGE = ("n/a", "unknown", "-", "0", "138 0013 7490 (mobile)", ",2026-03-01,no number",
            "1380013749", "138-0013-749O", "tel. 13800137490")

#: A national list as it comes, in per mille of its rows: mostly forms the rule
#: table decides, 8 per mille outside it (phonenumbers decides) and 2 of garbage.
MIXED: tuple[tuple[int, Callable[[Row], str]], ...] = (
    (320, lambda r: r[0]),
    (150, lambda r: f"{r[0]},{r[3]},case {r[0][-3:]}"),
    (80, lambda r: f"+86 {r[0][:3]} {r[0][3:7]} {r[0][7:]}"),
    (50, lambda r: f"+86{r[0]}"),
    (40, lambda r: f"0086{r[0]}"),
    (30, lambda r: f"0086 {r[0][:3]} {r[0][3:7]} {r[0][7:]}"),
    (50, lambda r: f"86-{r[0][:3]}-{r[0][3:7]}-{r[0][7:]}"),
    (30, lambda r: f"86{r[0]}"),
    (40, lambda r: f'"+86 {r[0][:3]} {r[0][3:7]} {r[0][7:]}","{r[3]}","case {r[0][-2:]}"'),
    (20, lambda r: f'"{r[0]}";"{r[3]}"'),
    (90, lambda r: f"0{r[1]}-{r[2]}"),
    (40, lambda r: f"(0{r[1]}) {r[2][:-4]} {r[2][-4:]}"),
    (30, lambda r: f"+86 {r[1]} {r[2][:-4]} {r[2][-4:]}"),
    (20, lambda r: f"0{r[1]}-{r[2]},{r[3]},case {r[2][-2:]}"),
    (5, lambda r: f"+86 0{r[1]} {r[2]}"),
    (3, lambda r: f"86 {r[1]} {r[2]}"),
    (2, lambda r: _GARBAGE[int(r[0][-1]) % len(_GARBAGE)]),
)
_AREAS = ("10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "351", "371", "431",
          "451", "471", "531", "551", "571", "591", "592", "595", "731", "755", "769", "871", "898")


def write_mixed(path: Path, count: int, rng: np.random.Generator) -> None:
    """A list of ``count`` rows in the shapes of :data:`MIXED`, after a header and a comment."""
    mobiles = (rng.choice(7 * 10**9, size=count, replace=False) + 13 * 10**9).astype(str)
    areas = np.array(_AREAS)[rng.integers(len(_AREAS), size=count)]
    seven = (np.char.str_len(areas) == 3) & (rng.random(count) < 0.3)  # 7-digit locals, 3-digit areas
    locals_ = np.where(seven, rng.integers(2 * 10**6, 9 * 10**6, size=count),
                       rng.integers(2 * 10**7, 9 * 10**7, size=count)).astype(str)
    days = rng.integers(1, 29, size=count)
    shares = np.array([share for share, _ in MIXED], float)
    shape = rng.choice(len(MIXED), size=count, p=shares / shares.sum())
    lines = np.empty(count, object)
    for index, (_, write) in enumerate(MIXED):
        rows = np.flatnonzero(shape == index)
        lines[rows] = [write((m, a, loc, f"2026-03-{d:02d}")) for m, a, loc, d in
                       zip(mobiles[rows].tolist(), areas[rows].tolist(), locals_[rows].tolist(),
                           days[rows].tolist(), strict=True)]
    blank = rng.choice(count, size=max(1, count // 100_000), replace=False)
    lines[blank] = ""
    with path.open("w", encoding="utf-8") as out:
        out.write("number,date,case\n# exported from the anti-fraud platform\n")
        for start in range(0, count, 1_000_000):
            out.write("\n".join(lines[start : start + 1_000_000].tolist()))
            out.write("\n")


def callers(mobiles: np.ndarray, count: int, seed: int) -> list[str]:
    """Half on the list, half not, in the written forms caller ids arrive in."""
    rng = random.Random(seed)
    listed = set(mobiles[: min(len(mobiles), 1000)].tolist())
    out = []
    for i in range(count):
        number = int(mobiles[rng.randrange(len(mobiles))]) if i % 2 else rng.randrange(5 * 10**9) + 15 * 10**9
        while not i % 2 and number in listed:
            number += 1
        form = rng.randrange(4)
        out.append([str(number), f"+86{number}", f"86{number}", f"0086{number}"][form])
    return out


def time_decisions(screener: Screener, numbers: list[str]) -> tuple[float, float, float]:
    samples = np.empty(len(numbers))
    clock = time.perf_counter_ns
    decide = screener.decide
    for i, number in enumerate(numbers):
        start = clock()
        decide(number, 0.0)
        samples[i] = clock() - start
    started = time.perf_counter()
    for number in numbers:
        decide(number, 0.0)
    rate = len(numbers) / (time.perf_counter() - started)
    return float(np.percentile(samples, 50) / 1000), float(np.percentile(samples, 99) / 1000), rate


def screener_with(container: object) -> Screener:
    return Screener(Rules(lists=(NumberList("national", Action.REJECT, container, 603),)))  # type: ignore[arg-type]


def bench(size: int, decisions: int, workdir: Path) -> dict[str, tuple[str, str]]:
    rng = np.random.default_rng(size)
    source = workdir / f"list-{size}.txt"
    mobiles = write_list(source, size, rng)
    probe = callers(mobiles, decisions, size)

    gc.collect()
    started = time.perf_counter()
    parsed = parse_file(source)
    store = NumberStore(workdir / f"store-{size}")
    store.replace(parsed.keys)
    store_import = time.perf_counter() - started
    started = time.perf_counter()
    reloaded = NumberStore(workdir / f"store-{size}")
    assert (int(mobiles[0]) + 86 * 10**11) in reloaded
    store_load = time.perf_counter() - started
    store_bytes = reloaded.disk_bytes() / size
    store_p50, store_p99, store_rate = time_decisions(screener_with(reloaded), probe)

    gc.collect()
    started = time.perf_counter()
    with source.open() as fh:
        plain = {86 * 10**11 + int(line) for line in fh}
    set_import = time.perf_counter() - started
    pickled = workdir / f"set-{size}.pickle"
    pickled.write_bytes(pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL))
    del plain
    gc.collect()
    started = time.perf_counter()
    plain = pickle.loads(pickled.read_bytes())
    set_load = time.perf_counter() - started
    set_bytes = (sys.getsizeof(plain) + sum(sys.getsizeof(n) for n in plain)) / size
    set_p50, set_p99, set_rate = time_decisions(screener_with(plain), probe)
    del plain
    gc.collect()

    return {
        "import, bare mobiles (s)": (f"{store_import:.2f}", f"{set_import:.2f}"),
        **bench_mixed(size, workdir, rng),
        "reload after restart (s)": (f"{store_load:.4f}", f"{set_load:.2f}"),
        "bytes per number": (f"{store_bytes:.1f}", f"{set_bytes:.1f}"),
        "decision p50 (µs)": (f"{store_p50:.1f}", f"{set_p50:.1f}"),
        "decision p99 (µs)": (f"{store_p99:.1f}", f"{set_p99:.1f}"),
        "decisions/s": (f"{store_rate:,.0f}", f"{set_rate:,.0f}"),
    }


def bench_mixed(size: int, workdir: Path, rng: np.random.Generator) -> dict[str, tuple[str, str]]:
    """Import of the mixed shape; the set is the per-number path, and must agree."""
    source = workdir / f"mixed-{size}.txt"
    write_mixed(source, size, rng)
    gc.collect()
    started = time.perf_counter()
    parsed = parse_file(source)
    NumberStore(workdir / f"mixed-store-{size}").replace(parsed.keys)
    store_import = time.perf_counter() - started

    gc.collect()
    started = time.perf_counter()
    with source.open(encoding="utf-8", newline="\n") as fh:
        per_number = {key for line in fh if (key := normalize(first_field(line.rstrip("\n"))).key) is not None}
    set_import = time.perf_counter() - started
    expected = np.sort(np.fromiter(per_number, np.uint64, len(per_number)))
    assert np.array_equal(expected, parsed.keys), "the bulk import and normalize() disagree"
    del per_number
    gc.collect()
    return {
        "import, mixed real shape (s)": (f"{store_import:.2f}", f"{set_import:.2f}"),
        "mixed: malformed lines reported": (f"{parsed.malformed_count:,}", "—"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--decisions", type=int, default=100_000)
    args = parser.parse_args()
    table = Table(title="Screening: list store vs. Python set of ints (same run)",
                  caption="set, mixed: normalize() of each line's first field, the per-number path")
    table.add_column("figure")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-screening-") as tmp:
        for size in args.sizes:
            results[size] = bench(size, args.decisions, Path(tmp))
            table.add_column(f"store {size:,}", justify="right")
            table.add_column(f"set {size:,}", justify="right")
    for figure in next(iter(results.values())):
        row = [figure]
        for size in args.sizes:
            row += list(results[size][figure])
        table.add_row(*row)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
