"""The market maker against a scripted venue: OMS transitions on the bus, rate limiting, staleness
halt, the desk's risk state, limit breaches through the kill switch, reconciliation after a restart."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engines.bus import Bus
from engines.clock import ManualClock
from engines.events import LogRecordEvent, PriceTick
from engines.instruments import Instrument
from engines.mm.bot import MarketMaker
from engines.mm.config import MMBotConfig, MMLimits
from engines.mm.events import MMBotStatus, MMOrderState
from engines.orders import OrderRequest, Side
from engines.risk.events import RiskBreach, TradingState
from engines.venue import OrderRouter
from tests.mm_venue import ScriptedVenue

BTC = Instrument("BTC-USD", Decimal("0.5"), Decimal("0.001"), 1, "BTC", "USD")


class Rig:
    def __init__(self, tmp_path=None, services=None, **kw) -> None:
        self.clock = ManualClock()
        self.bus = Bus(self.clock)
        self.router = OrderRouter(self.bus)
        self.venue = ScriptedVenue(self.bus)
        self.router.add_venue(self.venue)
        self.services = services if services is not None else {}
        base = {"spread_bps": "8", "levels": 2, "level_step_bps": "5", "order_qty": "0.05"}
        base.update(kw)
        self.cfg = MMBotConfig(name="mm1", symbol="BTC-USD", **base)
        self.states: list[MMOrderState] = []
        self.status: list[MMBotStatus] = []
        self.logs: list[LogRecordEvent] = []
        self.bus.subscribe(MMOrderState, self.states.append)
        self.bus.subscribe(MMBotStatus, self.status.append)
        self.bus.subscribe(LogRecordEvent, self.logs.append)
        self.tmp_path = tmp_path
        self.bot = self.new_bot()

    def new_bot(self) -> MarketMaker:
        path = None if self.tmp_path is None else self.tmp_path / "mm1.sqlite"
        return MarketMaker(self.cfg, bus=self.bus, clock=self.clock, router=self.router, instrument=BTC,
                           services=self.services, store_path=path, autorun=False)

    async def drain(self) -> None:
        """Let the rate limiter release everything waiting (advancing the clock as it needs)."""
        while len(self.bot.limiter):
            await self.bot.pump()
            wait = self.bot.limiter.wait_time()
            if wait:
                self.clock.advance(wait)

    def tick(self, price: float) -> None:
        self.bus.publish(PriceTick(symbol="BTC-USD", price=price, source="sim"))

    def history(self, client_id: str) -> list[tuple[str, str]]:
        return [(s.previous, s.state) for s in self.states if s.client_id == client_id]

    def resting(self) -> list[tuple[str, str, str, int]]:
        return sorted((cid, r.req.side.value, str(BTC.price(r.req.price)), r.req.qty - r.filled)
                      for cid, r in self.venue.open.items())


async def test_quotes_reach_the_venue_through_the_oms():
    rig = Rig()
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    assert [(s.client_id, s.state) for s in rig.states] == [
        ("mm1-1", "idle"), ("mm1-2", "idle"), ("mm1-3", "idle"), ("mm1-4", "idle")]
    assert await rig.bot.pump() == 4
    assert rig.resting() == [("mm1-1", "buy", "64974.0", 50), ("mm1-2", "buy", "64941.5", 50),
                             ("mm1-3", "sell", "65026.0", 50), ("mm1-4", "sell", "65058.5", 50)]
    sent = rig.venue.submitted[0]
    assert (sent.owner, sent.venue, sent.post_only, sent.client_id) == ("mm1", "sim", True, "mm1-1")
    rig.venue.fill("mm1-1", 20, fee=0.13)
    rig.venue.fill("mm1-1", 30, fee=0.19)
    assert rig.history("mm1-1") == [("idle", "idle"), ("idle", "pending_new"), ("pending_new", "working"),
                                   ("working", "partially_filled"), ("partially_filled", "filled")]
    assert (rig.bot.pnl.position, rig.bot.pnl.avg_price, rig.bot.pnl.fees) == (
        Decimal("0.050"), Decimal("64974.0"), Decimal("0.32"))
    assert rig.status[-1].position == 0.05 and rig.status[-1].fills == 2
    await rig.bot.step()  # the filled level is quoted again; the others stay (within tolerance)
    await rig.bot.pump()
    assert rig.resting()[0] == ("mm1-2", "buy", "64941.5", 50)
    assert ("mm1-5", "buy", "64974.0", 50) in rig.resting()
    await rig.bot.stop()
    assert rig.venue.open == {}


async def test_requote_cancels_first_and_the_limiter_holds_the_rest():
    rig = Rig()
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.bot.pump()  # 4 of 5 tokens used
    rig.tick(65100.0)  # 15 bps away: every quote must move
    await rig.bot.step()
    assert rig.bot.limiter.pending()["cancels"] == ["mm1-1", "mm1-2", "mm1-3", "mm1-4"]
    assert rig.bot.limiter.pending()["news"] == ["mm1-5", "mm1-6", "mm1-7", "mm1-8"]
    assert await rig.bot.pump() == 1
    assert rig.venue.cancels == ["mm1-1"]
    rig.clock.advance(1.0)  # 5 more tokens: 3 cancels, then 2 new orders
    assert await rig.bot.pump() == 5
    assert rig.venue.cancels == ["mm1-1", "mm1-2", "mm1-3", "mm1-4"]
    assert rig.history("mm1-2") == [("idle", "idle"), ("idle", "pending_new"), ("pending_new", "working"),
                                   ("working", "pending_cancel"), ("pending_cancel", "canceled")]
    assert sorted(rig.venue.open) == ["mm1-5", "mm1-6"]
    assert rig.bot.status()["queue"]["news"] == ["mm1-7", "mm1-8"]
    rig.tick(65000.0)  # back again before mm1-7/8 went out: they are withdrawn, never sent
    await rig.bot.step()
    assert rig.history("mm1-7")[-1] == ("idle", "canceled")
    assert "mm1-7" not in [r.client_id for r in rig.venue.submitted]


async def test_rejections_are_terminal_with_the_reason():
    rig = Rig(levels=1)
    rig.venue.reject_reason = "post-only order would cross"
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.bot.pump()
    assert rig.history("mm1-1")[-1] == ("pending_new", "rejected")
    assert [s.reason for s in rig.states if s.client_id == "mm1-1"][-1] == "sim: post-only order would cross"


async def test_stale_reference_stops_quoting_and_cancels_with_the_reason():
    rig = Rig()
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.bot.pump()
    rig.clock.advance(5.0)
    await rig.bot.step()
    assert rig.bot.quoting and len(rig.venue.open) == 4  # 5.0 s is not more than stale_after
    rig.clock.advance(1.0)
    await rig.bot.step()
    await rig.bot.pump()
    assert rig.venue.open == {}
    assert (rig.bot.state, rig.bot.quoting) == ("stale", False)
    assert rig.bot.reason == "stale reference: no sim update for 6.0s"
    assert {s.reason for s in rig.states if s.state == "pending_cancel"} == {rig.bot.reason}
    assert rig.logs[-1].message == "mm1: not quoting: stale reference: no sim update for 6.0s"
    rig.bot.publish_status()
    assert (rig.status[-1].state, rig.status[-1].reason) == ("stale", rig.bot.reason)
    rig.tick(65000.0)
    await rig.bot.step()
    assert await rig.bot.pump() == 1  # the 4 cancels took 4 of the 5 tokens
    rig.clock.advance(1.0)
    assert await rig.bot.pump() == 3
    assert rig.bot.state == "quoting" and len(rig.venue.open) == 4


class FakeRisk:
    def __init__(self) -> None:
        self.value = TradingState.ACTIVE
        self.asked: list[tuple[str, str]] = []

    def effective_state(self, owner: str, symbol: str) -> TradingState:
        self.asked.append((owner, symbol))
        return self.value


class FakeKillSwitch:
    def __init__(self, risk: FakeRisk) -> None:
        self.risk = risk
        self.kills: list[tuple[str, str, str]] = []

    async def kill(self, scope="desk", *, reason, source, flatten=False):
        self.kills.append((scope, reason, source))
        self.risk.value = TradingState.HALTED


async def test_desk_risk_state_halted_and_reducing():
    risk = FakeRisk()
    rig = Rig(services={"risk": risk})
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    rig.venue.fill("mm1-1", 50)
    risk.value = TradingState.REDUCING
    await rig.bot.step()
    await rig.drain()
    assert {r.req.side for r in rig.venue.open.values()} == {Side.SELL}  # long: only sells reduce
    assert rig.bot.state == "reducing"
    risk.value = TradingState.HALTED
    await rig.bot.step()
    await rig.drain()
    assert rig.venue.open == {} and rig.bot.reason == "halted by risk"
    assert ("mm1", "BTC-USD") in risk.asked


async def test_daily_loss_breach_halts_through_the_kill_switch():
    risk = FakeRisk()
    ks = FakeKillSwitch(risk)
    rig = Rig(services={"risk": risk, "killswitch": ks}, levels=1, limits=MMLimits(daily_loss=Decimal(100)))
    breaches: list[RiskBreach] = []
    rig.bus.subscribe(RiskBreach, breaches.append)
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    rig.venue.fill("mm1-1", 50)  # long 0.05 at 64974
    rig.tick(60000.0)  # marked: 0.05 x (60000 - 64974) = -248.70
    await rig.bot.step()
    assert ks.kills == [("bot:mm1", "mm.daily_loss: today's loss 248.70 > 100", "rule:mm.daily_loss")]
    assert [(b.rule, b.scope, b.value, b.limit) for b in breaches] == [
        ("mm.daily_loss", "bot:mm1", "248.7000", "100")]
    await rig.drain()
    assert rig.venue.open == {}
    assert rig.bot.reason == "halted by risk (today's loss 248.70 > 100)"


async def test_breach_without_kill_switch_halts_the_bot_itself_until_resumed():
    rig = Rig(levels=1, limits=MMLimits(max_drawdown=Decimal(50)))
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    rig.venue.fill("mm1-1", 50)
    rig.tick(63000.0)  # -98.70 from a peak of +1.30 (marked at 65000 after buying at 64974)
    await rig.bot.step()
    await rig.drain()
    assert rig.bot.state == "halted" and rig.venue.open == {}
    assert rig.bot.reason == "halted: drawdown 100.00 > 50"
    rig.bot.resume()
    rig.tick(63000.0)
    await rig.bot.step()  # still in drawdown: halts again at once
    assert rig.bot.state == "halted"


async def test_max_order_notional_breach():
    rig = Rig(levels=1, limits=MMLimits(max_order_notional=Decimal(1000)))
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    assert rig.bot.state == "halted" and rig.venue.submitted == []
    assert rig.bot.halted.detail == "order 0.05 @ 64974.0 notional 3248.7000 > 1000"


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
async def test_restart_reconciles_with_the_venue(tmp_path, policy):
    rig = Rig(tmp_path, reconcile=policy)
    bot = rig.bot
    await bot.start()
    rig.tick(65000.0)
    await bot.step()
    await bot.pump()
    rig.venue.fill("mm1-3", 20, fee=0.5)
    # The process dies: nothing is cancelled, the store keeps what it had written.
    for s in bot._subs:
        s.cancel()
    bot.reference.close()
    await bot.store.close()
    # Meanwhile at the venue: one order went away, one unknown order of this owner appeared.
    rig.venue.open.pop("mm1-2")
    rig.venue.place_unknown(OrderRequest(symbol="BTC-USD", side=Side.BUY, qty=7, price=120000,
                                         client_id="mm1-9", owner="mm1"))
    rig.states.clear()
    bot2 = rig.new_bot()
    await bot2.start()
    assert bot2.pnl.position == Decimal("-0.020") and bot2.pnl.fees == Decimal("0.5")
    live = {o.client_id: o.state.value for o in bot2.oms.live()}
    if policy == "cancel":
        assert bot2.last_reconcile == {"kept": 3, "closed": 1, "adopted": 0, "canceled": 1}
        assert sorted(rig.venue.open) == ["mm1-1", "mm1-3", "mm1-4"]
        assert live == {"mm1-1": "working", "mm1-3": "partially_filled", "mm1-4": "working"}
    else:
        assert bot2.last_reconcile == {"kept": 3, "closed": 1, "adopted": 1, "canceled": 0}
        assert live["mm1-9"] == "working"
    assert [(s.client_id, s.state, s.reason) for s in rig.states if s.client_id == "mm1-2"] == [
        ("mm1-2", "canceled", "reconciled (start): not live at venue")]
    rig.tick(65000.0)
    await bot2.step()
    await bot2.pump()
    assert bot2.oms.seq >= 10  # ids continue above everything seen, never reused
    venue_ids = sorted(rig.venue.open)
    assert venue_ids == sorted(o.client_id for o in bot2.oms.live())  # nothing unknown rests at the venue
    await bot2.stop()


async def test_adopted_order_on_a_quote_level_is_kept_not_requoted(tmp_path):
    rig = Rig(tmp_path, reconcile="adopt", levels=1)
    rig.venue.place_unknown(OrderRequest(symbol="BTC-USD", side=Side.BUY, qty=50, price=129948,
                                         client_id="mm1-9", owner="mm1"))
    await rig.bot.start()
    assert rig.bot.last_reconcile["adopted"] == 1
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    assert rig.resting() == [("mm1-10", "sell", "65026.0", 50), ("mm1-9", "buy", "64974.0", 50)]
    assert rig.venue.cancels == []
    await rig.bot.stop()  # closes its store: an open aiosqlite thread outliving the loop warns later


async def test_daily_loss_and_peak_survive_a_restart(tmp_path):
    rig = Rig(tmp_path, levels=1, limits=MMLimits(daily_loss=Decimal(100)))
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    rig.venue.fill("mm1-1", 50)  # long 0.05 @ 64974
    rig.tick(63500.0)  # 0.05 x (63500 - 64974) = -73.70: within the limit
    await rig.bot.step()
    rig.bot.publish_status()
    assert rig.bot.pnl.daily_pnl == Decimal("-73.7000") and rig.bot.pnl.peak_net == Decimal("1.3000")
    await rig.bot.stop()
    bot2 = rig.new_bot()
    await bot2.start()
    rig.tick(63500.0)
    await bot2.step()
    assert bot2.pnl.daily_pnl == Decimal("-73.7000")  # same UTC day: not reset by the restart
    assert bot2.pnl.peak_net == Decimal("1.3000") and bot2.pnl.drawdown == Decimal("75.0000")
    await bot2.stop()


async def test_an_order_whose_cancel_waits_in_the_limiter_covers_no_level():
    rig = Rig()
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.bot.pump()  # 4 of 5 tokens used
    rig.tick(65100.0)  # every quote moves: 4 cancels and 4 new orders queue behind one token
    await rig.bot.step()
    assert await rig.bot.pump() == 1 and rig.venue.cancels == ["mm1-1"]
    rig.tick(65000.0)  # back: mm1-2..4 would quote well again, but their cancels are already due
    await rig.bot.step()
    await rig.drain()
    assert rig.venue.cancels == ["mm1-1", "mm1-2", "mm1-3", "mm1-4"]
    levels = sorted((o.side.value, o.level) for o in rig.bot.oms.live())
    assert levels == [("buy", 0), ("buy", 1), ("sell", 0), ("sell", 1)]  # no level left empty
    assert sorted(rig.venue.open) == sorted(o.client_id for o in rig.bot.oms.live())
