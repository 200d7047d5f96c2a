"""Crash test: a real subprocess running a market maker against the journaled matching engine is
SIGKILLed mid-run. On restart the bot reconciles with the restored venue: no orphan and no duplicate
order rests at the venue, nothing is re-sent from the outbox, and its position equals the fills on
record (its own store, and the venue's journal)."""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from engines.events import PriceTick
from engines.orders import OrderAccepted
from engines.runtime import Desk
from tests.mm_crash_child import BOT, RESTART_BUILDERS, config

REPO = Path(__file__).resolve().parent.parent


def _signed(side: str, qty: int) -> int:
    return qty if side == "buy" else -qty


def _run_child_until(data_dir: Path, what: str, count: int, timeout: float = 30.0) -> list[int]:
    """Run the child until it printed ``count`` lines of kind ``what`` ("fill" or "accepted"), then
    SIGKILL. Returns the trade ids of the fills it reported durable."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.mm_crash_child", str(data_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    seen = 0
    durable_fills: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while seen < count:
            try:
                msg = json.loads(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"child made {seen} fills; stderr: {proc.stderr.read()[-3000:]}") from None
            seen += what in msg
            if "fill" in msg:
                durable_fills.append(msg["fill"])
    finally:
        proc.kill()  # SIGKILL: no cleanup, no cancels, whatever was in flight stays in flight
        proc.wait(10)
    return durable_fills


@pytest.mark.slow
@pytest.mark.parametrize(("what", "count"), [("fill", 12), ("accepted", 40)], ids=["after-fill", "after-accept"])
async def test_sigkill_mid_run_then_restart_reconciles(tmp_path, what, count):
    durable = _run_child_until(tmp_path, what, count)
    assert what != "fill" or len(durable) == count
    assert (tmp_path / f"mm-{BOT}.sqlite").exists() and (tmp_path / "matching.sqlite").exists()

    desk = Desk(config(), data_dir=tmp_path).build(RESTART_BUILDERS)
    bot = desk.services["bots"][BOT]
    bot.autorun = False
    accepted: list[OrderAccepted] = []
    desk.bus.subscribe(OrderAccepted, lambda ev: accepted.append(ev) if ev.owner == BOT else None)
    await desk.start()
    engine = desk.services["matching"]
    try:
        # 1. Nothing rests at the venue that the bot does not manage, and nothing was re-sent.
        venue_ids = [o.client_id for o in engine.open_orders(owner=BOT)]
        assert len(venue_ids) == len(set(venue_ids))
        assert set(venue_ids) == {o.client_id for o in bot.oms.live()}
        assert accepted == []
        assert bot.reconciles == 1

        # 2. The position equals the fills on record: the bot's store and the venue's journal.
        await bot.store.flush()
        await engine.flush()
        with sqlite3.connect(tmp_path / f"mm-{BOT}.sqlite") as db:
            store_lots = sum(_signed(s, q) for s, q in db.execute("SELECT side, qty FROM fills"))
            store_trades = {t for (t,) in db.execute("SELECT trade_id FROM fills")}
            n_fills = len(store_trades)
            dup = db.execute("SELECT client_id FROM orders GROUP BY client_id HAVING COUNT(*) > 1").fetchall()
        with sqlite3.connect(tmp_path / "matching.sqlite") as db:
            venue_lots = 0
            venue_trades = {t for (t,) in db.execute(
                "SELECT trade_id FROM trades WHERE maker_owner=? OR taker_owner=?", (BOT, BOT))}
            for aggressor, qty, maker, taker in db.execute(
                    "SELECT aggressor, qty, maker_owner, taker_owner FROM trades WHERE symbol='BTC-USD'"):
                if maker == BOT:
                    venue_lots += _signed("sell" if aggressor == "buy" else "buy", qty)
                if taker == BOT:
                    venue_lots += _signed(aggressor, qty)
            venue_dups = db.execute(
                "SELECT client_id FROM orders WHERE owner=? GROUP BY client_id HAVING COUNT(*) > 1", (BOT,)
            ).fetchall()
        # Every fill the child reported durable survived in both; fills after that may die with the child,
        # but then in both alike: the store waits for the venue's journal, and recovers from it.
        assert set(durable) <= store_trades and store_trades == venue_trades
        assert dup == [] and venue_dups == []
        lot = Decimal("0.001")
        assert bot.pnl.position == store_lots * lot == venue_lots * lot
        assert bot.pnl.fills == n_fills

        # 3. Quoting resumes with fresh ids; the venue and the bot agree order for order.
        first_new_seq = bot.oms.seq + 1
        desk.bus.publish(PriceTick(symbol="BTC-USD", price=65000.0, source="sim"))
        await bot.step()
        while len(bot.limiter):
            await bot.pump()
        live = bot.oms.live()
        assert {o.client_id for o in engine.open_orders(owner=BOT)} == {o.client_id for o in live}
        assert len({(o.side, o.level) for o in live}) == len(live) == 4
        assert all(bot.oms.seq_of(ev.client_id) >= first_new_seq for ev in accepted)
    finally:
        await desk.stop()
    assert engine.open_orders(owner=BOT) == []
