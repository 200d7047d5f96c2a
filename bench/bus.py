"""Cost of one publish on the event bus.

Cases: 0, 1 and 8 in-process subscribers; a conflating queue; a lossless queue; ``publish_many`` with
0 and 1 subscriber, in batches of 4 events (an engine operation's outcome) and of 1,000. Per-delivery
cost is the publish cost divided by the number of subscribers. Baseline in the same run: a bare Python call
of a list of handlers (what any dispatch must cost at least). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import ClassVar

from engines.bus import Bus
from engines.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick(Event):
    symbol: str
    price: int
    KEY_FIELD: ClassVar[str | None] = "symbol"
    CONFLATE: ClassVar[bool] = True


def noop(_e: object) -> None:
    pass


def time_publish(bus: Bus, n: int, drain=None) -> float:
    events = [Tick(symbol=f"S{i & 7}", price=i) for i in range(n)]
    publish = bus.publish
    t0 = time.perf_counter()
    for ev in events:
        publish(ev)
    t1 = time.perf_counter()
    if drain is not None:
        drain()
    return (t1 - t0) / n * 1e9


def time_publish_many(bus: Bus, n: int, batch: int) -> float:
    events = [Tick(symbol=f"S{i & 7}", price=i) for i in range(n)]
    batches = [events[i : i + batch] for i in range(0, n, batch)]
    publish_many = bus.publish_many
    t0 = time.perf_counter()
    for b in batches:
        publish_many(b)
    return (time.perf_counter() - t0) / n * 1e9


def baseline(n: int, k: int) -> float:
    handlers = [noop] * k
    t0 = time.perf_counter()
    for i in range(n):
        for h in handlers:
            h(i)
    return (time.perf_counter() - t0) / n * 1e9


def best_median(fn, runs: int) -> tuple[float, float]:
    xs = [fn() for _ in range(runs)]
    return min(xs), statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    n, runs = args.n, args.runs
    out: dict[str, float] = {}
    for k in (0, 1, 8):
        def case(k=k):
            bus = Bus()
            for _ in range(k):
                bus.subscribe(Tick, noop)
            return time_publish(bus, n)

        best, med = best_median(case, runs)
        out[f"publish_{k}_subs_ns"] = round(best, 1)
        out[f"publish_{k}_subs_median_ns"] = round(med, 1)
        if k:
            out[f"per_delivery_{k}_subs_ns"] = round(best / k, 1)
            out[f"baseline_call_{k}_ns"] = round(min(baseline(n, k) for _ in range(runs)), 1)

    def conflate():
        bus = Bus()
        q = bus.queue((Tick,), policy="conflate")
        return time_publish(bus, n, q.drain)

    def lossless():
        bus = Bus()
        q = bus.queue((Tick,), policy="lossless", capacity=n * 2)
        return time_publish(bus, n, q.drain)

    for k in (0, 1):
        for batch in (4, 1000):
            def many(k=k, batch=batch):
                bus = Bus()
                for _ in range(k):
                    bus.subscribe(Tick, noop)
                return time_publish_many(bus, n, batch)

            out[f"publish_many_{k}_subs_batch_{batch}_ns"] = round(best_median(many, runs)[0], 1)

    out["publish_conflating_queue_ns"] = round(best_median(conflate, runs)[0], 1)
    out["publish_lossless_queue_ns"] = round(best_median(lossless, runs)[0], 1)
    out["ratio_8_subs_vs_baseline"] = round(out["publish_8_subs_ns"] / out["baseline_call_8_ns"], 2)

    print(f"bus publish, {n:,} events, best of {runs} ({platform.machine()}, Python {platform.python_version()})")
    for key, value in out.items():
        print(f"  {key:38s} {value:>10}")
    print(f"  load average (1 min) {os.getloadavg()[0]:.2f}")
    print(json.dumps({"bench": "bus", **out, "load_average_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
