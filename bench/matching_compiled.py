"""The order book compiled with Cython vs the same source run by CPython (issue 3, core speed).

A measurement of the next step for core speed, not what the desk runs: ``engines/matching/book.py`` and
its declarations ``engines/matching/book.pxd`` are copied to a temporary directory, compiled there
as the module ``opdesk_cbook`` (needs Cython and a C compiler: ``pip install cython``), and both
books run ``bench/matching.py``'s seeded workloads (basic and IOC/FOK), alternating runs so that a
shared machine's load hits both alike; every run's final book is checked against the reference
book. Prints wall and CPU ops/s (best, median), the ratio and the load; ends with one JSON line.

Usage: ``python bench/matching_compiled.py [--ops N] [--runs R] [--seed S]``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matching as mb

from engines.matching.book import OrderBook

SRC = Path(__file__).resolve().parent.parent / "engines" / "matching"


def build(tmp: Path) -> type:
    """Compile book.py + book.pxd as ``opdesk_cbook`` in ``tmp``; returns its OrderBook class."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        raise SystemExit("this bench needs Cython (pip install cython) and a C compiler") from None
    from setuptools import Distribution

    shutil.copy(SRC / "book.py", tmp / "opdesk_cbook.py")
    shutil.copy(SRC / "book.pxd", tmp / "opdesk_cbook.pxd")
    exts = cythonize(
        [str(tmp / "opdesk_cbook.py")],
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    )
    dist = Distribution({"ext_modules": exts})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(tmp)
    cmd.build_temp = str(tmp / "build")
    dist.run_command("build_ext")
    sys.path.insert(0, str(tmp))
    mod = importlib.import_module("opdesk_cbook")
    assert mod.__file__ is not None and not mod.__file__.endswith(".py"), "not the compiled module"
    return mod.OrderBook


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        compiled = build(Path(tmp))
        print(f"compiled book.py with Cython in {time.perf_counter() - t:.1f}s")
        books = {"python": OrderBook, "cython": compiled}
        figures: dict[str, Any] = {
            "bench": "matching_compiled",
            "ops": args.ops,
            "seed": args.seed,
            "machine": f"{platform.machine()} Python {platform.python_version()}",
            "load_average_1m_start": round(os.getloadavg()[0], 2),
        }
        print(
            f"{args.ops:,} ops, seed {args.seed}, {args.runs} runs each (alternating), load {os.getloadavg()[0]:.2f}"
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
                    dt, c, book = mb.run_core(ops, cls)
                    if mb.book_snapshot(book) != expected:
                        raise SystemExit(f"{name} book disagrees with the reference book")
                    book.check()
                    wall[name].append(len(ops) / dt)
                    cpu[name].append(len(ops) / c)
            res: dict[str, Any] = {}
            for name, cls in books.items():
                mb.OrderBook = cls  # latencies_core builds its book from this name
                res[name] = {
                    "best_ops_s": round(max(wall[name])),
                    "median_ops_s": round(statistics.median(wall[name])),
                    "cpu_best_ops_s": round(max(cpu[name])),
                    "cpu_median_ops_s": round(statistics.median(cpu[name])),
                    "latency": mb.latencies_core(ops),
                }
            mb.OrderBook = OrderBook
            res["ratio_cpu_median"] = round(
                res["cython"]["cpu_median_ops_s"] / res["python"]["cpu_median_ops_s"], 3
            )
            res["ratio_wall_median"] = round(res["cython"]["median_ops_s"] / res["python"]["median_ops_s"], 3)
            figures[variant] = res
            for name in books:
                r = res[name]
                print(
                    f"[{variant}] {name}: wall best {r['best_ops_s']:,} median {r['median_ops_s']:,} ops/s; "
                    f"CPU best {r['cpu_best_ops_s']:,} median {r['cpu_median_ops_s']:,} ops/s"
                )
                for k, lat in r["latency"].items():
                    print(
                        f"    {k:15s} n={lat['n']:>8,}  p50 {lat['p50_us']:.2f} µs  p99 {lat['p99_us']:.2f} µs"
                    )
            print(
                f"[{variant}] cython/python: CPU median x{res['ratio_cpu_median']}, "
                f"wall median x{res['ratio_wall_median']}"
            )
    figures["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(f"load average (1m) at the end: {figures['load_average_1m_end']}")
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
