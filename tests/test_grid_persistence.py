"""The grid bot's P&L and inventory survive a restart (its SQLite store in the desk's data dir)."""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import PriceTick
from engines.orders import Fill, OrderRequest, Side, TimeInForce
from engines.runtime import Desk
from tests.grid_crash_child import BOT as CRASH_BOT
from tests.grid_crash_child import RESTART_BUILDERS
from tests.grid_crash_child import SYM as CRASH_SYM
from tests.grid_crash_child import config as crash_config

REPO = Path(__file__).resolve().parent.parent

SYM = "ETH-USD"
# ETH-USD: tick 0.05, lot 0.01 → 3050.00 = 61000 ticks, 0.5 = 50 lots
T = {3000: 60000, 3025: 60500, 3050: 61000, 3075: 61500, 3100: 62000}


def maker_fee(price: int, lots: int) -> float:
    # the matching engine's fee at 1 bp: notional in binary floating point x bps / 10,000, rounded to 1e-8
    return round(price * 0.05 * lots * 0.01 * 1.0 / 10_000, 8)


def make_desk(data_dir: Path, *, journal: bool = False, **grid: Any) -> Desk:
    cfg = DeskConfig.model_validate({
        "desk": {"name": "t", "data_dir": str(data_dir)},
        "instruments": {SYM: {"tick_size": "0.05", "lot_size": "0.01", "ref_price": 3060}},
        "sim": {"enabled": False},
        "matching": {"maker_fee_bps": "1.0", "taker_fee_bps": "2.5", "journal": journal},
        "risk": {"rules": {"stale_market_data": None}},
        "grid": [{"name": "g", "symbol": SYM, "lower": "3000", "upper": "3100", "levels": 5, "order_qty": "0.5",
                  **grid}],
    })
    desk = Desk(cfg, clock=ManualClock(), data_dir=data_dir)
    desk.build(["engines.matching.service:build", "engines.risk.service:build", "engines.grid.service:build"])
    return desk


class Run:
    """One life of the desk: a taker trades against the grid on the in-process matching engine."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.eng = desk.services["matching"]
        self.bot = desk.services["bots"]["g"]
        self.fills: list[Fill] = []
        desk.bus.subscribe(Fill, lambda ev: self.fills.append(ev) if ev.owner == "g" else None)
        self.n = 0

    async def price(self, px: float) -> None:
        self.desk.bus.publish(PriceTick(symbol=SYM, price=px))
        await self.bot.idle()

    async def take(self, side: Side, lots: int, price: int) -> None:
        self.n += 1
        self.eng.submit(OrderRequest(symbol=SYM, side=side, qty=lots, price=price, tif=TimeInForce.IOC,
                                     owner="taker", client_id=f"t{self.desk.clock.time_ns()}-{self.n}"))
        await self.bot.idle()

    def book(self) -> list[tuple[str, int, int]]:
        return sorted((o.side.value, o.price, o.qty) for o in self.eng.open_orders(owner="g", symbol=SYM))


def figures(bot: Any) -> tuple[Any, ...]:
    return (bot.position, bot.avg_price, bot.realised, bot.fees, bot.grid_profit, bot.gross, bot.round_trips)


# Two round trips on cell 2 (buy 0.5 @ 3050, sell @ 3075, twice) then 0.3 of the next buy at 3050.
FEES = (maker_fee(T[3050], 50) + maker_fee(T[3075], 50) + maker_fee(T[3050], 50) + maker_fee(T[3075], 50)
        + maker_fee(T[3050], 30))
TRIP = 12.5 - (maker_fee(T[3050], 50) + maker_fee(T[3075], 50))


async def trade_first_life(run: Run) -> None:
    await run.price(3060.0)
    for _ in range(2):
        await run.take(Side.SELL, 50, T[3050])
        await run.take(Side.BUY, 50, T[3075])
    await run.take(Side.SELL, 30, T[3050])


EXPECTED = (30, D("3050.00"), D("25.0000"), FEES, TRIP + TRIP, D("25.0000"), 2)


async def test_restart_restores_position_avg_price_realised_fees_grid_profit_and_round_trips(tmp_path: Path) -> None:
    run = Run(make_desk(tmp_path))
    await run.desk.start()
    try:
        await trade_first_life(run)
        assert figures(run.bot) == EXPECTED
        assert TRIP == 12.19375 and FEES == 0.7040000000000001  # the float sum, restored bit for bit
        assert run.bot.status()["inventory"] == 0.3
    finally:
        await run.desk.stop()
    # On disk: every fill once, with the snapshot of the P&L it produced.
    with sqlite3.connect(tmp_path / "grid-g.sqlite") as db:
        rows = db.execute("SELECT client_id, side, price, qty FROM fills ORDER BY id").fetchall()
    assert rows == [("g-3", "buy", T[3050], 50), ("g-5", "sell", T[3075], 50), ("g-6", "buy", T[3050], 50),
                    ("g-7", "sell", T[3075], 50), ("g-8", "buy", T[3050], 30)]

    again = Run(make_desk(tmp_path))
    await again.desk.start()
    try:
        assert figures(again.bot) == EXPECTED  # restored before anything else happens
        await again.price(3060.0)
        st = again.bot.status()
        assert (st["round_trips"], st["grid_profit"], st["fees"], st["inventory"]) == (2, 24.3875, 0.704, 0.3)
        assert again.bot._last_status is not None and again.bot._last_status.avg_price == 3050.0
        # Trading goes on from there: the new life's client ids never reuse the old ones.
        assert {o.client_id for o in again.eng.open_orders(owner="g", symbol=SYM)} == {
            "g-1001", "g-1002", "g-1003", "g-1004"}  # the first life reserved ids up to 1000
        await again.take(Side.SELL, 50, T[3050])
        assert (again.bot.position, again.bot.avg_price) == (80, D("3050.00"))
        assert again.bot.fees == FEES + maker_fee(T[3050], 50)
    finally:
        await again.desk.stop()


async def test_a_fill_reported_again_after_restart_is_not_counted_twice(tmp_path: Path) -> None:
    run = Run(make_desk(tmp_path))
    await run.desk.start()
    try:
        await trade_first_life(run)
        old = list(run.fills)
    finally:
        await run.desk.stop()
    assert len(old) == 5

    again = Run(make_desk(tmp_path))
    await again.desk.start()
    try:
        await again.price(3060.0)
        book = again.book()
        for ev in old:  # the venue (a FIX counterparty resending, a replayed journal) reports them all again
            again.desk.bus.publish(ev)
        await again.bot.idle()
        assert figures(again.bot) == EXPECTED
        assert again.book() == book
    finally:
        await again.desk.stop()
    with sqlite3.connect(tmp_path / "grid-g.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM fills").fetchone() == (5,)


def _run_child_until(data_dir: Path, fills: int, timeout: float = 30.0) -> list[tuple[int, int]]:
    """Run the grid crash child until it reported ``fills`` fills durable, then SIGKILL it. Returns the
    (order_id, trade_id) of the fills it reported."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.grid_crash_child", str(data_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    durable: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(durable) < fills:
            try:
                msg = json.loads(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"child made {len(durable)} fills; stderr: {proc.stderr.read()[-3000:]}") from None
            if "fill" in msg:
                durable.append(tuple(msg["fill"]))
    finally:
        proc.kill()  # SIGKILL: no cleanup; whatever was in flight stays in flight
        proc.wait(10)
    return durable


async def test_sigkill_mid_stream_restores_every_fill_the_bot_had_applied(tmp_path: Path) -> None:
    durable = _run_child_until(tmp_path, 30)
    desk = Desk(crash_config(), data_dir=tmp_path).build(RESTART_BUILDERS)
    bot, eng = desk.services["bots"][CRASH_BOT], desk.services["matching"]
    await desk.start()
    try:
        with sqlite3.connect(tmp_path / f"grid-{CRASH_BOT}.sqlite") as db:
            stored = db.execute("SELECT order_id, trade_id, side, qty, fee FROM fills ORDER BY id").fetchall()
        keys = [(r[0], r[1]) for r in stored]
        assert set(durable) <= set(keys)  # every fill reported durable before the kill is on record
        assert len(keys) == len(set(keys))  # and each once
        # The venue's journal and the bot agree: every fill of the grid the venue recorded, applied once.
        venue = {(t.maker_order_id if t.maker_owner == CRASH_BOT else t.taker_order_id, t.trade_id)
                 for t in eng.recent_trades(CRASH_SYM, 1 << 30) if CRASH_BOT in (t.maker_owner, t.taker_owner)}
        assert set(keys) == venue
        assert bot.position == sum(q if s == "buy" else -q for _, _, s, q, _ in stored)
        fees = 0.0
        for *_, fee in stored:
            fees += float(fee)
        assert bot.fees == fees
    finally:
        await desk.stop()


async def test_restart_with_the_venue_journal_and_recover_adopts_orders_and_counts_only_new_fills(
        tmp_path: Path) -> None:
    run = Run(make_desk(tmp_path, journal=True, on_start="recover", on_stop="keep"))
    await run.desk.start()
    try:
        await trade_first_life(run)  # ends with 0.3 of the 0.5 buy at 3050 filled; 0.2 rests
        book = run.book()
    finally:
        await run.desk.stop()
    assert book == [("buy", T[3000], 50), ("buy", T[3025], 50), ("buy", T[3050], 20), ("sell", T[3100], 50)]

    again = Run(make_desk(tmp_path, journal=True, on_start="recover", on_stop="keep"))
    await again.desk.start()
    try:
        assert figures(again.bot) == EXPECTED and again.bot.recovered_fills == 0
        await again.price(3060.0)
        assert again.book() == book  # the venue's orders adopted, nothing re-placed
        # The rest of the part-filled buy fills: only its 0.2 is new; the 0.3 before the restart is not
        # counted again (cumulative quantity), and the cell flips to a sell at 3075.
        await again.take(Side.SELL, 20, T[3050])
        assert (again.bot.position, again.bot.fees) == (50, FEES + maker_fee(T[3050], 20))
        assert again.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("sell", T[3075], 50),
                                ("sell", T[3100], 50)]
    finally:
        await again.desk.stop()


async def test_fills_the_venue_journaled_but_the_store_lacks_are_recovered_once(tmp_path: Path) -> None:
    run = Run(make_desk(tmp_path, journal=True))
    await run.desk.start()
    try:
        await trade_first_life(run)
    finally:
        await run.desk.stop()
    # The store lost everything (killed before its first commit; or a data dir from before grid stores):
    # the venue's journaled trade history still has the bot's five fills.
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"grid-g.sqlite{suffix}").unlink(missing_ok=True)
    for life in range(2):
        again = Run(make_desk(tmp_path, journal=True))
        await again.desk.start()
        try:
            # Position, average price, realised and fees from the fills; round trips are not in a trade.
            assert figures(again.bot)[:4] == EXPECTED[:4]
            assert (again.bot.recovered_fills, again.bot.round_trips) == ((5, 0) if life == 0 else (0, 0))
        finally:
            await again.desk.stop()
