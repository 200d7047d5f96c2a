"""Grid backtest and optimiser figures.

* vectorised backtest of 1,000,000 prices x 41 levels, equity curve, drawdown and Sharpe included:
  best and median of ``--repeat`` runs;
* the plain-loop oracle against the vectorised backtest on a ``--slice`` of the same data (ratio);
* optimiser throughput: a random search of ``--samples`` parameter sets on the 1M prices with one
  process per core (backtests/s).

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engines.grid.backtest import GridSpec, backtest, backtest_loop
from engines.grid.data import synthetic
from engines.grid.optimize import Evaluator, Setup, random_search


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--levels", type=int, default=41)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--slice", type=int, default=50_000, help="prices for the loop-oracle comparison")
    ap.add_argument("--samples", type=int, default=60, help="optimiser parameter sets")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()

    prices = synthetic(args.points, seed=11, start=100.0, vol=0.001, mean_revert=0.0005)
    lo, hi = np.percentile(prices, [2, 98])
    spec = GridSpec.make(np.linspace(lo, hi, args.levels), 1.0, fee=0.001)
    backtest(prices, spec)  # warm up
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        r = backtest(prices, spec)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best, median = min(times) * 1e3, statistics.median(times) * 1e3
    cpu_best = min(cpu) * 1e3
    print(f"backtest {args.points:,} prices x {args.levels} levels (equity, drawdown, Sharpe): "
          f"best {best:.1f} ms, median {median:.1f} ms (CPU best {cpu_best:.1f} ms); "
          f"{r.round_trips:,} round trips")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f}")

    sl = prices[: args.slice]
    t_fast = t_loop = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        fast = backtest(sl, spec)
        t_fast = min(t_fast, time.perf_counter() - t0)
    for _ in range(3):
        t0 = time.perf_counter()
        slow = backtest_loop(sl, spec)
        t_loop = min(t_loop, time.perf_counter() - t0)
    agree = abs(fast.final_equity - slow.final_equity) < 0.005 and fast.round_trips == slow.round_trips
    print(f"loop oracle on {args.slice:,} prices (best of 3): {t_loop * 1e3:.0f} ms vs vectorised (best of 10) "
          f"{t_fast * 1e3:.2f} ms "
          f"= {t_loop / t_fast:.0f}x; results agree to the cent: {agree}")

    space = {"lower": (float(lo), float(np.median(prices)) * 0.995),
             "upper": (float(np.median(prices)) * 1.005, float(hi)),
             "levels": (5, 61), "kind": ["arithmetic", "geometric"]}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Evaluator(prices, Setup(fee=0.001), workers=args.workers) as ev:
        ev.run([{"lower": float(lo), "upper": float(hi), "levels": 41}] * 1)  # start the workers
        ev.evaluated, ev.seconds = 0, 0.0
        t0 = time.perf_counter()
        random_search(ev, space, n=args.samples, seed=3)
        wall = time.perf_counter() - t0
        workers = ev.workers
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, reaped at exit
    child_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    rate = args.samples / wall
    # what the same CPU work would give with each worker owning a core (the figure without contention)
    cpu_rate = args.samples / (child_cpu / workers) if child_cpu > 0 else 0.0
    print(f"optimiser: {args.samples} backtests of {args.points:,} prices on {workers} processes in {wall:.2f} s "
          f"= {rate:.1f} backtests/s (workers' CPU {child_cpu:.2f} s incl. start-up: {cpu_rate:.1f}/s on "
          f"{workers} free cores)")
    machine = f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}"
    print(f"machine: {machine}")
    print(json.dumps({
        "bench": "grid",
        "points": args.points,
        "levels": args.levels,
        "backtest_best_ms": round(best, 2),
        "backtest_median_ms": round(median, 2),
        "backtest_cpu_best_ms": round(cpu_best, 2),
        "load_average": round(os.getloadavg()[0], 2),
        "loop_slice": args.slice,
        "loop_ms": round(t_loop * 1e3, 1),
        "vectorised_slice_ms": round(t_fast * 1e3, 3),
        "loop_ratio": round(t_loop / t_fast, 1),
        "oracle_agrees": agree,
        "optimiser_backtests_per_s": round(rate, 2),
        "optimiser_cpu_bound_per_s": round(cpu_rate, 2),
        "optimiser_workers": workers,
        "machine": machine,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
