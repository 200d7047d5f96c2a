"""The grid bot reconciles with its venue when the venue comes back: it asks what is open instead of
relying on the venue to report what happened meanwhile (engines/reconcile.py, shared with the market
maker). On a real FIX venue whose counterparty's reports while the client was away are lost (sequence
numbers reset on logon: nothing is resent), and on the in-process matching venue restarted without its
book (orders gone without a single event)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import PriceTick
from engines.fix.session import SessionState
from engines.matching.engine import MatchingEngine
from engines.matching.venue import MatchingVenue
from engines.orders import Fill, OrderAccepted, OrderRequest, Side, TimeInForce
from engines.runtime import BUILDERS, Desk

SYM = "ETH-USD"
# ETH-USD: tick 0.05, lot 0.01 → 3050.00 = 61000 ticks, 0.5 = 50 lots
T = {3000: 60000, 3025: 60500, 3050: 61000, 3075: 61500, 3100: 62000}
FIX_BUILDERS = [b for b in BUILDERS if b.split(":")[0] in (
    "engines.matching.service", "engines.risk.service", "engines.fix.service", "engines.grid.service")]  # fmt: skip
GRID = {"name": "g", "symbol": SYM, "lower": "3000", "upper": "3100", "levels": 5, "order_qty": "0.5"}
LAID = [("buy", T[3000], 50), ("buy", T[3025], 50), ("buy", T[3050], 50), ("sell", T[3100], 50)]


def fix_config(tmp_path: Path) -> DeskConfig:
    return DeskConfig.model_validate({
        "desk": {"name": "t", "data_dir": str(tmp_path)},
        "instruments": {SYM: {"tick_size": "0.05", "lot_size": "0.01", "ref_price": 3060}},
        "sim": {"enabled": False},
        "matching": {"journal": False},
        "risk": {"rules": {"stale_market_data": None, "fix_session_loss": False}},
        "mm": [],
        "grid": [{**GRID, "venue": "loop"}],
        # reset on logon: what the counterparty sent while the client was away is never resent
        "fix": {"sessions": [{"name": "loop", "sender_comp_id": "GRIDLOOP", "target_comp_id": "OPDESK",
                              "reset": "logon"}]},
    })  # fmt: skip


class FixDesk:
    """The grid on the FIX venue "loop", whose counterparty is the desk's own gateway + matching engine."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.bot = desk.services["bots"]["g"]
        self.fix = desk.services["fix"]
        self.venue = desk.router.venues["loop"]
        self.eng = desk.services["matching"]
        self.accepted: list[str] = []
        self.fills: list[Fill] = []
        self._want = 0
        self._enough = asyncio.Event()
        self._filled = asyncio.Event()
        desk.bus.subscribe(OrderAccepted, self._on_accepted)
        desk.bus.subscribe(Fill, self._on_fill)

    def _on_fill(self, ev: Fill) -> None:
        if ev.venue == "loop" and ev.owner == "g":
            self.fills.append(ev)
            self._filled.set()

    async def filled(self, n: int) -> None:
        """Wait until ``n`` fills of the grid have come back over FIX."""
        while len(self.fills) < n:
            self._filled.clear()
            await asyncio.wait_for(self._filled.wait(), 5)

    def _on_accepted(self, ev: OrderAccepted) -> None:
        if ev.venue == "loop" and ev.owner == "g":
            self.accepted.append(ev.client_id)
            if len(self.accepted) >= self._want:
                self._enough.set()

    async def accepted_count(self, n: int) -> None:
        """Wait until the grid has had ``n`` orders accepted over FIX."""
        self._want = n
        if len(self.accepted) < n:
            self._enough.clear()
            await asyncio.wait_for(self._enough.wait(), 5)

    def resting(self) -> list[tuple[str, str, int, int]]:
        """The grid's orders at the counterparty: (ClOrdID, side, price, open lots)."""
        return sorted((o.client_id, o.side.value, o.price, o.qty)
                      for o in self.eng.open_orders(owner="fix:GRIDLOOP", symbol=SYM))  # fmt: skip

    def take(self, side: Side, lots: int, price: int, cid: str) -> None:
        self.eng.submit(OrderRequest(symbol=SYM, side=side, qty=lots, price=price, tif=TimeInForce.IOC,
                                     owner="taker", client_id=cid))  # fmt: skip

    async def price(self, px: float) -> None:
        self.desk.bus.publish(PriceTick(symbol=SYM, price=px))
        await self.bot.idle()


async def start_fix(tmp_path: Path) -> FixDesk:
    d = Desk(fix_config(tmp_path)).build(FIX_BUILDERS)
    fd = FixDesk(d)
    await d.start()
    d.bus.publish(PriceTick(symbol=SYM, price=3060.0))
    await fd.accepted_count(4)
    assert [r[1:] for r in fd.resting()] == LAID
    return fd


async def test_grid_on_fix_venue_learns_cancel_fill_and_partial_fill_on_reconnect(tmp_path: Path) -> None:
    fd = await start_fix(tmp_path)
    try:
        assert fd.resting() == [("g-1", "buy", T[3000], 50), ("g-2", "buy", T[3025], 50),
                                ("g-3", "buy", T[3050], 50), ("g-4", "sell", T[3100], 50)]
        await fd.fix.logout("loop")
        # While the grid's session is down: the counterparty cancels g-1, fills g-3 and 0.2 of g-2.
        assert fd.eng.cancel(SYM, owner="fix:GRIDLOOP", client_id="g-1")
        fd.take(Side.SELL, 50, T[3050], "t1")
        fd.take(Side.SELL, 20, T[3025], "t2")
        await fd.fix.reconnect("loop")
        await fd.venue.session.wait_state(SessionState.ACTIVE)
        # No price update, no resend: the grid asks the venue (AF, then H for what is no longer listed),
        # learns the cancel and both fills, re-places cell 0's buy and flips cell 2 to a sell at 3075.
        await fd.accepted_count(6)
        await fd.bot.idle()
        assert fd.accepted == ["g-1", "g-2", "g-3", "g-4", "g-5", "g-6"]
        assert sorted((f.client_id, f.qty, f.leaves_qty) for f in fd.fills) == [("g-2", 20, 30), ("g-3", 50, 0)]
        assert fd.resting() == [("g-2", "buy", T[3025], 30), ("g-4", "sell", T[3100], 50),
                                ("g-5", "buy", T[3000], 50), ("g-6", "sell", T[3075], 50)]
        st = fd.bot.status()
        # 0.5 + 0.2 bought, each fill applied once (status reports carry no commission: fees 0)
        assert (st["inventory"], st["fees"], st["open_orders"], st["state"]) == (0.7, 0.0, 4, "running")
        assert st["reconciles"] == 1 and st["venue_unknown"] is None
        # g-2 and g-4 listed; g-1's cancel and g-3's fill arrived as the venue's reports while it answered
        assert st["last_reconcile"] == {"kept": 2, "closed": 0, "fills": 0, "canceled": 0, "adopted": 0}
        assert fd.bot.orders["g-2"].filled == 20
        assert [lv for _, lv in fd.bot.level_states()] == ["buy", "buy", "empty", "sell", "sell"]
        await fd.price(3060.0)  # a later step changes nothing: nothing applied twice, nothing placed twice
        assert fd.bot.status()["inventory"] == 0.7 and len(fd.resting()) == 4 and len(fd.accepted) == 6
    finally:
        await fd.desk.stop()


async def test_grid_touches_nothing_while_the_venue_cannot_answer(tmp_path: Path) -> None:
    fd = await start_fix(tmp_path)
    try:
        before = fd.resting()
        await fd.fix.logout("loop")
        await fd.price(3060.0)
        st = fd.bot.status()
        assert (st["state"], st["reason"]) == ("waiting", "venue loop disconnected")
        # The counterparty does not answer the status request in time: open orders unknown.
        fd.venue.status_timeout = 1e-6
        await fd.fix.reconnect("loop")
        await fd.venue.session.wait_state(SessionState.ACTIVE)
        await fd.price(3060.0)
        st = fd.bot.status()
        assert st["state"] == "waiting" and st["reason"].startswith("waiting for the venue's open orders (")
        assert st["venue_unknown"].startswith("FIX venue loop: no complete mass status answer")
        assert sorted(fd.bot.orders) == ["g-1", "g-2", "g-3", "g-4"]  # nothing closed...
        assert fd.resting() == before and fd.accepted == ["g-1", "g-2", "g-3", "g-4"]  # ...nothing placed
        # A fill reported meanwhile is applied (the session is up), but its flipped sell waits.
        fd.take(Side.SELL, 50, T[3050], "t1")
        await fd.filled(1)
        await fd.price(3060.0)
        assert [(f.client_id, f.qty, f.leaves_qty) for f in fd.fills] == [("g-3", 50, 0)]
        assert fd.bot.status()["inventory"] == 0.5 and sorted(fd.bot.orders) == ["g-1", "g-2", "g-4"]
        assert len(fd.accepted) == 4 and fd.bot.status()["reconciles"] == 0
        # The counterparty answers again: reconciled, and the flipped cell's sell goes out.
        fd.venue.status_timeout = 5.0
        await fd.price(3060.0)
        await fd.accepted_count(5)
        await fd.bot.idle()
        st = fd.bot.status()
        assert (st["state"], st["reconciles"], st["venue_unknown"]) == ("running", 1, None)
        assert st["last_reconcile"] == {"kept": 3, "closed": 0, "fills": 0, "canceled": 0, "adopted": 0}
        assert fd.resting() == [("g-1", "buy", T[3000], 50), ("g-2", "buy", T[3025], 50),
                                ("g-4", "sell", T[3100], 50), ("g-5", "sell", T[3075], 50)]
    finally:
        await fd.desk.stop()


# --- the in-process matching venue ------------------------------------------------------------------
def make_desk(tmp_path: Path, **grid: Any) -> Desk:
    cfg = DeskConfig.model_validate({
        "desk": {"name": "t", "data_dir": str(tmp_path)},
        "instruments": {SYM: {"tick_size": "0.05", "lot_size": "0.01", "ref_price": 3060}},
        "sim": {"enabled": False},
        "matching": {"maker_fee_bps": "1.0", "taker_fee_bps": "2.5", "journal": False},
        "risk": {"rules": {"stale_market_data": None}},
        "grid": [{**GRID, **grid}],
    })  # fmt: skip
    desk = Desk(cfg, clock=ManualClock(), data_dir=tmp_path)
    desk.build(["engines.matching.service:build", "engines.risk.service:build", "engines.grid.service:build"])
    return desk


def book(eng: MatchingEngine) -> list[tuple[str, str, int, int]]:
    return sorted((o.client_id, o.side.value, o.price, o.qty) for o in eng.open_orders(owner="g", symbol=SYM))


def take(eng: MatchingEngine, side: Side, lots: int, price: int, cid: str) -> None:
    eng.submit(OrderRequest(symbol=SYM, side=side, qty=lots, price=price, tif=TimeInForce.IOC, owner="taker",
                            client_id=cid))  # fmt: skip


async def test_grid_re_places_the_orders_a_restarted_venue_lost(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    bot, old = desk.services["bots"]["g"], desk.services["matching"]
    fills: list[Fill] = []
    desk.bus.subscribe(Fill, lambda ev: fills.append(ev) if ev.owner == "g" else None)
    await desk.start()
    new: MatchingEngine | None = None
    try:
        desk.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await bot.idle()
        take(old, Side.SELL, 20, T[3050], "t1")  # 0.2 of g-3 fills: heard as usual
        await bot.idle()
        assert book(old) == [("g-1", "buy", T[3000], 50), ("g-2", "buy", T[3025], 50),
                             ("g-3", "buy", T[3050], 30), ("g-4", "sell", T[3100], 50)]
        # The venue goes down: the grid places nothing while it is.
        await old.stop()
        desk.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await bot.idle()
        assert (bot.status()["state"], bot.status()["reason"]) == ("waiting", "venue sim disconnected")
        # ... and comes back without its book (no journal): the grid's four orders are gone, and no
        # event says so.
        new = MatchingEngine(desk.bus, desk.instruments, venue="sim", maker_fee_bps=1.0, taker_fee_bps=2.5)
        desk.router.add_venue(MatchingVenue(new, name="sim"))
        await new.start()
        assert book(new) == []
        desk.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await bot.idle()
        st = bot.status()
        assert st["last_reconcile"] == {"kept": 0, "closed": 4, "fills": 0, "canceled": 0, "adopted": 0}
        # Every level re-placed by the grid's rules; cell 2 keeps its 0.2 and re-places the other 0.3.
        assert book(new) == [("g-5", "buy", T[3000], 50), ("g-6", "buy", T[3025], 50),
                             ("g-7", "buy", T[3050], 30), ("g-8", "sell", T[3100], 50)]
        assert (st["state"], st["inventory"], st["open_orders"], st["reconciles"]) == ("running", 0.2, 4, 1)
        # The rest of the leg fills at the new venue: the cell flips with its whole 0.5.
        take(new, Side.SELL, 30, T[3050], "t2")
        await bot.idle()
        assert book(new) == [("g-5", "buy", T[3000], 50), ("g-6", "buy", T[3025], 50),
                             ("g-8", "sell", T[3100], 50), ("g-9", "sell", T[3075], 50)]
        assert [(f.client_id, f.qty, f.leaves_qty) for f in fills] == [("g-3", 20, 30), ("g-7", 30, 0)]
        assert bot.status()["inventory"] == 0.5
    finally:
        await desk.stop()
        if new is not None:
            await new.stop()


@pytest.mark.parametrize("on_start", ["cancel", "keep"])
async def test_after_a_venue_bounce_an_order_the_grid_does_not_track_is_cancelled_unless_keep(
    tmp_path: Path, on_start: str
) -> None:
    desk = make_desk(tmp_path, on_start=on_start)
    bot, eng = desk.services["bots"]["g"], desk.services["matching"]
    await desk.start()
    try:
        desk.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await bot.idle()
        # An order of the grid's owner that the grid does not track (another process, a previous life).
        eng.submit(OrderRequest(symbol=SYM, side=Side.BUY, qty=10, price=59000, owner="g", client_id="g-old"))
        await bot.idle()
        assert "g-old" not in bot.orders and len(book(eng)) == 5
        await eng.stop()  # the venue bounces, its book intact
        desk.bus.publish(PriceTick(symbol=SYM, price=3060.0))  # (the grid sees it down)
        await bot.idle()
        await eng.start()
        desk.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await bot.idle()
        laid = [("g-1", "buy", T[3000], 50), ("g-2", "buy", T[3025], 50), ("g-3", "buy", T[3050], 50),
                ("g-4", "sell", T[3100], 50)]
        if on_start == "keep":
            assert bot.status()["last_reconcile"] == {"kept": 4, "closed": 0, "fills": 0, "canceled": 0,
                                                      "adopted": 0}
            assert book(eng) == [*laid, ("g-old", "buy", 59000, 10)]
        else:
            assert bot.status()["last_reconcile"] == {"kept": 4, "closed": 0, "fills": 0, "canceled": 1,
                                                      "adopted": 0}
            assert book(eng) == laid
    finally:
        await desk.stop()


async def test_a_duplicate_fill_report_is_applied_once(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    bot, eng = desk.services["bots"]["g"], desk.services["matching"]
    fills: list[Any] = []
    desk.bus.subscribe(Fill, lambda ev: fills.append(ev) if ev.owner == "g" else None)
    await desk.start()
    try:
        desk.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await bot.idle()
        take(eng, Side.SELL, 20, T[3050], "t1")
        await bot.idle()
        (first,) = fills
        once = bot.status()
        assert (once["inventory"], once["fees"]) == (0.2, round(T[3050] * 0.05 * 20 * 0.01 * 1.0 / 10_000, 8))
        desk.bus.publish(first)  # the same report again (a resend): its cumulative quantity adds nothing
        await bot.idle()
        assert bot.status() == once and bot.orders["g-3"].filled == 20
        take(eng, Side.SELL, 30, T[3050], "t2")  # the rest: applied, and the cell flips
        await bot.idle()
        assert bot.status()["inventory"] == 0.5 and sorted(o[1:] for o in book(eng)) == [
            ("buy", T[3000], 50), ("buy", T[3025], 50), ("sell", T[3075], 50), ("sell", T[3100], 50)]
    finally:
        await desk.stop()
