"""Console bench: the operator console (headless ``run_test``) on a real desk with 50,000 bus events/s.

A producer publishes a market-data-heavy mix (BBO, depth, trades, reference prices, bot and grid
status, FIX stats and logged FIX messages) on the desk's bus at the target rate, in 5 ms slices.
Figures:

* console CPU: process CPU with the console attached minus the same flood without it (one core = 100%);
* frames/s: screen updates the compositor actually produced, and panel refreshes/s by the tick;
* event-loop lag p99: overshoot of a 5 ms sleep on the console's loop while the flood runs;
* key-to-HALTED: the panic key (ctrl+x, confirmation off) posted as a terminal key event, until the
  status bar shows HALTED (the real kill switch halts the desk and cancels on the real matching
  engine first); 10 trials with a re-arm in between.

Prints the figures and ends with one JSON line. ``--seconds`` and ``--rate`` change the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as ``python bench/console.py``, this file's folder comes first on sys.path and its name would
# shadow the ``console`` package: drop the folder before importing it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from textual import events  # noqa: E402

from console.app import build_app  # noqa: E402
from engines.config import DeskConfig  # noqa: E402
from engines.events import PriceTick  # noqa: E402
from engines.fix.events import FixMessageLogged, FixSessionStats, SessionState  # noqa: E402
from engines.grid.events import GridBotStatus  # noqa: E402
from engines.marketdata import BBO, Depth, Trade  # noqa: E402
from engines.mm.events import MMBotStatus  # noqa: E402
from engines.orders import OrderRequest, Side  # noqa: E402
from engines.runtime import Desk  # noqa: E402

BUILDERS = ["engines.matching.service:build", "engines.risk.service:build"]
SLICE = 0.005


def event_pool(desk: Desk) -> list[Any]:
    """A cycle of 1,000 pre-built events in a realistic mix (the bus re-stamps seq/ts on publish)."""
    pool: list[Any] = []
    syms = list(desk.instruments)
    for i in range(1000):
        sym = syms[i % len(syms)]
        inst = desk.instruments[sym]
        mid = inst.ticks_near(desk.config.instruments[sym].ref_price) + (i % 17) - 8
        k = i % 20
        if k < 6:
            pool.append(BBO(symbol=sym, bid_px=mid - 1, bid_qty=10 + i % 7, ask_px=mid + 1, ask_qty=12 + i % 5))
        elif k < 10:
            bids = tuple((mid - 1 - j, 10 + (i + j) % 9) for j in range(20))
            asks = tuple((mid + 1 + j, 10 + (i * 3 + j) % 11) for j in range(20))
            pool.append(Depth(symbol=sym, bids=bids, asks=asks))
        elif k < 13:
            pool.append(Trade(symbol=sym, trade_id=i, price=mid, qty=1 + i % 4, aggressor=Side.BUY if i % 2 else
                              Side.SELL, maker_order_id=1, taker_order_id=2, maker_owner="lp", taker_owner="taker",
                              maker_fee=0.0, taker_fee=0.0))
        elif k < 15:
            pool.append(PriceTick(symbol=sym, price=float(inst.price(mid))))
        elif k == 15:
            pool.append(MMBotStatus(bot="mm-btc", symbol="BTC-USD", venue="sim", state="quoting", quoting=True,
                                    position=0.01 * (i % 9), realised=i * 0.01, unrealised=(i % 13) - 6.0,
                                    fees=i * 0.001, return_pct=0.01 * (i % 7), open_orders=6,
                                    limits={"position": 0.3}))
        elif k == 16:
            levels = tuple((3000.0 + 25 * j, "buy" if j < 8 else "sell") for j in range(17))
            pool.append(GridBotStatus(bot="grid-eth", symbol="ETH-USD", state="running", levels=levels,
                                      last_price=3200.0 + i % 10, round_trips=i // 100, grid_profit=i * 0.1,
                                      fees=0.0, inventory=1.0, unrealised=0.0, market_state="ranging"))
        elif k == 17:
            pool.append(FixSessionStats(session="FIX.4.4:DESKCLIENT->OPDESK", state=SessionState.ACTIVE,
                                        next_sender_seq=i, next_target_seq=i, last_heartbeat_ts=0, msgs_in=i,
                                        msgs_out=i, rate_in=1.0, rate_out=1.0, errors=0))
        else:
            pool.append(FixMessageLogged(session="FIX.4.4:DESKCLIENT->OPDESK", direction="in", msg_type="8",
                                         raw=f"8=FIX.4.4|9=100|35=8|34={i}|49=OPDESK|56=DESKCLIENT|11=c{i}|"
                                             "150=0|39=0|55=BTC-USD|54=1|38=1|44=65000|10=000|"))
    return pool


class Flood:
    def __init__(self, desk: Desk, rate: int) -> None:
        self.bus = desk.bus
        self.pool = event_pool(desk)
        self.per_slice = max(1, int(rate * SLICE))
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        publish = self.bus.publish
        pool = self.pool
        n = len(pool)
        i = 0
        next_at = loop.time()
        while True:
            for _ in range(self.per_slice):
                publish(pool[i])
                i = (i + 1) % n
            self.sent += self.per_slice
            next_at += SLICE
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


async def measure_flood(flood: Flood, seconds: float) -> tuple[float, float, list[float]]:
    """(events/s achieved, CPU fraction of one core, loop lags in ms) over ``seconds``."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(SLICE)
            lags.append(max(0.0, (time.perf_counter() - t - SLICE) * 1000))

    sent0 = flood.sent
    cpu0, wall0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(probe())
    await asyncio.sleep(seconds)
    stop.set()
    await task
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return (flood.sent - sent0) / wall, cpu / wall, lags


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0.0


async def run(seconds: float, rate: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="opdesk-bench-console-"))
    cfg = DeskConfig(desk={"name": "bench", "data_dir": str(data)}, ui={"confirm_panic_kill": False})
    desk = Desk(cfg).build(BUILDERS)

    # Baseline: the same flood on the same desk, no console.
    await desk.start()
    flood = Flood(desk, rate)
    flood.start()
    await asyncio.sleep(0.5)
    base_rate, base_cpu, base_lags = await measure_flood(flood, seconds)
    await flood.stop()
    await desk.stop()

    desk = Desk(cfg).build(BUILDERS)
    app = build_app(cfg, desk=desk)
    displays = 0
    original_display = app._display

    def counting_display(screen: Any, renderable: Any) -> None:
        nonlocal displays
        displays += 1
        original_display(screen, renderable)

    app._display = counting_display  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(200):
            if desk.services["matching"].state == "running" and app._main_ready:
                break
            await asyncio.sleep(0.01)
        matching = desk.services["matching"]
        flood = Flood(desk, rate)
        flood.start()
        await asyncio.sleep(0.5)
        d0, t0, f0 = displays, app.ticks, app.frames
        con_rate, con_cpu, con_lags = await measure_flood(flood, seconds)
        frames_s = (displays - d0) / seconds
        ticks_s = (app.ticks - t0) / seconds
        panel_refresh_s = (app.frames - f0) / seconds

        latencies: list[float] = []
        for trial in range(10):
            mid = desk.instruments["BTC-USD"].ticks_near(65_000.0)
            for j in range(20):  # something to cancel
                sell = j % 2 == 1
                matching.submit(OrderRequest(symbol="BTC-USD", side=Side.SELL if sell else Side.BUY, qty=5,
                                             price=mid + 10 + j if sell else mid - 10 - j, owner="mm-btc",
                                             client_id=f"b{trial}-{j}"))
            await pilot.pause(0.1)
            start = time.perf_counter()
            app.post_message(events.Key("ctrl+x", None))
            while not app.status_bar.has_class("-halted"):
                await asyncio.sleep(0.0005)
            latencies.append((time.perf_counter() - start) * 1000)
            await app.workers.wait_for_complete()
            assert matching.open_orders(owner="mm-btc") == [], "kill left orders open"
            await pilot.pause(0.1)
            await pilot.press("escape")
            await app.actions.rearm("desk")
            await pilot.pause(0.2)
        await flood.stop()
    return {
        "seconds": seconds,
        "target_events_per_s": rate,
        "events_per_s_without_console": round(base_rate),
        "events_per_s_with_console": round(con_rate),
        "cpu_without_console_pct": round(base_cpu * 100, 1),
        "cpu_with_console_pct": round(con_cpu * 100, 1),
        "console_cpu_pct": round(max(0.0, con_cpu - base_cpu) * 100, 1),
        "frames_per_s": round(frames_s, 1),
        "refresh_ticks_per_s": round(ticks_s, 1),
        "panel_refreshes_per_s": round(panel_refresh_s, 1),
        "loop_lag_p99_ms_without_console": round(p99(base_lags), 2),
        "loop_lag_p99_ms": round(p99(con_lags), 2),
        "key_to_halted_ms_median": round(statistics.median(latencies), 2),
        "key_to_halted_ms_max": round(max(latencies), 2),
        "key_to_halted_ms_trials": [round(x, 1) for x in latencies],
        "machine": f"{platform.machine()} Python {platform.python_version()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=50_000)
    args = parser.parse_args()
    r = asyncio.run(run(args.seconds, args.rate))
    print(f"console bench: {r['target_events_per_s']:,} bus events/s target, {r['seconds']:.0f} s per phase")
    print(f"  flood achieved           {r['events_per_s_without_console']:>10,} ev/s alone, "
          f"{r['events_per_s_with_console']:,} ev/s with the console")
    print(f"  process CPU              {r['cpu_without_console_pct']:>9}% alone, {r['cpu_with_console_pct']}% with")
    print(f"  console CPU share        {r['console_cpu_pct']:>9}% of one core (goal <= 30%)")
    print(f"  frames/s                 {r['frames_per_s']:>10} ({r['refresh_ticks_per_s']} ticks/s, "
          f"{r['panel_refreshes_per_s']} panel refreshes/s)")
    print(f"  event-loop lag p99       {r['loop_lag_p99_ms']:>9} ms (goal <= 20 ms; "
          f"{r['loop_lag_p99_ms_without_console']} ms without the console)")
    print(f"  key-to-HALTED            {r['key_to_halted_ms_median']:>9} ms median, {r['key_to_halted_ms_max']} ms max "
          "(goal <= 100 ms)")
    print(json.dumps(r, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
