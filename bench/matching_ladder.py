"""Ladder book vs the current book, same operations, same run (issue 3, core speed).

Runs ``bench/matching.py``'s seeded workloads (basic and IOC/FOK) through
:class:`engines.matching.book.OrderBook` and :class:`engines.matching.ladder.LadderBook`, alternating
runs so that a shared machine's load hits both alike; each run's final book is checked against the
reference. Prints wall and CPU ops/s (best and median) per book, the ratio, p50/p99 per op type, and
the load average; ends with one JSON line.

Usage: ``python bench/matching_ladder.py [--ops N] [--runs R] [--seed S]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matching as mb

from engines.matching.book import OrderBook
from engines.matching.ladder import LadderBook


def run(cls: type, ops: list[tuple[Any, ...]]) -> tuple[float, float, Any]:
    book = cls("BENCH", stp="cancel_resting")
    submit = book.submit
    cancel = book.cancel
    c0 = time.process_time()
    t0 = time.perf_counter()
    for k, oid, side, px, qty, owner in ops:
        if k == 1:
            cancel(oid)
        elif k < 3:
            submit(oid, side, px, qty, owner)
        else:
            submit(oid, side, px, qty, owner, k - 2)
    return time.perf_counter() - t0, time.process_time() - c0, book


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    books = {"book": OrderBook, "ladder": LadderBook}
    figures: dict[str, Any] = {
        "bench": "matching_ladder",
        "ops": args.ops,
        "seed": args.seed,
        "machine": f"{platform.machine()} Python {platform.python_version()}",
        "load_average_1m_start": round(os.getloadavg()[0], 2),
    }
    print(
        f"ladder vs book: {args.ops:,} ops, seed {args.seed}, {args.runs} runs each (alternating), "
        f"load {os.getloadavg()[0]:.2f}"
    )
    for variant in ("basic", "ioc_fok"):
        gc.unfreeze()
        ops, expected = mb.workload(args.ops, args.seed, variant)
        gc.collect()
        gc.freeze()
        wall: dict[str, list[float]] = {k: [] for k in books}
        cpu: dict[str, list[float]] = {k: [] for k in books}
        for _ in range(args.runs):
            for name, cls in books.items():
                gc.collect()
                dt, c, book = run(cls, ops)
                if mb.book_snapshot(book) != expected:
                    raise SystemExit(f"{name} disagrees with the reference book")
                book.check()
                wall[name].append(len(ops) / dt)
                cpu[name].append(len(ops) / c)
        res: dict[str, Any] = {}
        for name in books:
            res[name] = {
                "best_ops_s": round(max(wall[name])),
                "median_ops_s": round(statistics.median(wall[name])),
                "cpu_best_ops_s": round(max(cpu[name])),
                "cpu_median_ops_s": round(statistics.median(cpu[name])),
            }
        for name, cls in books.items():
            mb.OrderBook = cls  # latencies_core builds its book from this name
            res[name]["latency"] = mb.latencies_core(ops)
        mb.OrderBook = OrderBook
        res["ratio_cpu_median"] = round(
            res["ladder"]["cpu_median_ops_s"] / res["book"]["cpu_median_ops_s"], 3
        )
        res["ratio_cpu_best"] = round(res["ladder"]["cpu_best_ops_s"] / res["book"]["cpu_best_ops_s"], 3)
        res["ratio_wall_median"] = round(res["ladder"]["median_ops_s"] / res["book"]["median_ops_s"], 3)
        figures[variant] = res
        for name in books:
            r = res[name]
            print(
                f"[{variant}] {name:6s}: wall best {r['best_ops_s']:,} median {r['median_ops_s']:,} ops/s; "
                f"CPU best {r['cpu_best_ops_s']:,} median {r['cpu_median_ops_s']:,} ops/s"
            )
            for k, lat in r["latency"].items():
                print(f"    {k:15s} n={lat['n']:>8,}  p50 {lat['p50_us']:.2f} µs  p99 {lat['p99_us']:.2f} µs")
        print(
            f"[{variant}] ladder/book: CPU median x{res['ratio_cpu_median']}, CPU best x{res['ratio_cpu_best']}, "
            f"wall median x{res['ratio_wall_median']}"
        )
    figures["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(f"load average (1m) at the end: {figures['load_average_1m_end']}")
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
