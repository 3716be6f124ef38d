#!/usr/bin/env python3
"""Screening benchmark: the list store against a plain Python set of ints, same run.

    python bench/screening.py [--sizes 1000000 10000000] [--decisions 100000]

For each list size it prints import time (text file → ready to screen), reload
time (a restart: store snapshot vs. unpickling the set), bytes per number, and
the p50/p99 and rate of full screening decisions (normalize + lists + rules)
with the same Screener holding either container. Targets (issue 2): 10M
numbers at ≤ 16 bytes each, import ≤ 10 s, reload ≤ 1 s, decision p99 ≤ 50 µs.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from screening import Action, NumberList, NumberStore, Rules, Screener, parse_file


def write_list(path: Path, count: int, rng: np.random.Generator) -> np.ndarray:
    # Mobile numbers 13x-19x: the fast path, as a national list of mobiles is.
    mobiles = rng.choice(7 * 10**9, size=count, replace=False).astype(np.int64) + 13 * 10**9
    with path.open("w") as out:
        for start in range(0, count, 1_000_000):
            out.write("\n".join(map(str, mobiles[start : start + 1_000_000].tolist())))
            out.write("\n")
    return mobiles


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
        "import (s)": (f"{store_import:.2f}", f"{set_import:.2f}"),
        "reload after restart (s)": (f"{store_load:.4f}", f"{set_load:.2f}"),
        "bytes per number": (f"{store_bytes:.1f}", f"{set_bytes:.1f}"),
        "decision p50 (µs)": (f"{store_p50:.1f}", f"{set_p50:.1f}"),
        "decision p99 (µs)": (f"{store_p99:.1f}", f"{set_p99:.1f}"),
        "decisions/s": (f"{store_rate:,.0f}", f"{set_rate:,.0f}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--decisions", type=int, default=100_000)
    args = parser.parse_args()
    table = Table(title="Screening: list store vs. Python set of ints (same run)")
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
