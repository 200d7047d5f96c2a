"""Each automatic rule fires at its threshold and not before (injected clock, exact figures)."""

from __future__ import annotations

from engines.clock import ManualClock
from engines.events import PriceTick
from engines.fix.events import FixSessionState, SessionState
from engines.marketdata import BBO
from engines.orders import Side
from engines.risk.events import KillSwitchAction, RiskBreach, TradingState
from tests.risk_venue import ToyVenue, make_desk, order

OFF = {"order_storm": None, "stale_market_data": None}


def _breaches(desk):
    out: list[RiskBreach] = []
    desk.bus.subscribe(RiskBreach, out.append)
    return out


def _mark(desk, ticks: int) -> None:
    desk.bus.publish(BBO(symbol="BTC-USD", bid_px=ticks, bid_qty=1, ask_px=ticks, ask_qty=1))


async def _long_10_at_100k(desk, venue):
    await desk.router.submit(order(side=Side.BUY, qty=10, price=100_000, client_id="b1"))
    venue.fill("mm-btc", "b1", 10)


async def test_daily_loss_fires_at_the_limit_and_not_before(tmp_path):
    # long 10 lots (0.01 BTC) at 100_000 ticks: each tick down is -0.005 USD; limit 10 USD = 2000 ticks
    desk, venue = make_desk(tmp_path, risk={"limits": {"daily_loss": "10"}, "rules": OFF})
    await desk.start()
    breaches = _breaches(desk)
    actions: list[KillSwitchAction] = []
    desk.bus.subscribe(KillSwitchAction, actions.append)
    await _long_10_at_100k(desk, venue)
    _mark(desk, 98_001)  # -9.995
    assert breaches == [] and desk.services["risk"].state("desk") is TradingState.ACTIVE
    _mark(desk, 98_000)  # -10.00
    assert [(b.rule, b.scope, b.value, b.limit) for b in breaches] == [
        ("daily_loss", "desk", "-10.00", "-10.00")
    ]
    assert desk.services["risk"].state("desk") is TradingState.HALTED
    await desk.services["killswitch"].idle()
    assert [(a.action, a.source) for a in actions] == [("kill", "rule:daily_loss")]
    _mark(desk, 97_000)  # further down: no second trigger
    assert len(breaches) == 1
    await desk.stop()


async def test_daily_loss_per_owner_and_instrument_scopes(tmp_path):
    risk = {
        "limits": {},
        "per_owner": {"mm-btc": {"daily_loss": "5"}},
        "per_instrument": {"BTC-USD": {"daily_loss": "8"}},
        "rules": OFF,
    }
    desk, venue = make_desk(tmp_path, risk=risk)
    await desk.start()
    breaches = _breaches(desk)
    await _long_10_at_100k(desk, venue)
    _mark(desk, 99_001)  # -4.995
    assert breaches == []
    _mark(desk, 99_000)  # -5.00: the bot's limit
    assert [(b.rule, b.scope) for b in breaches] == [("daily_loss", "bot:mm-btc")]
    _mark(desk, 98_401)  # -7.995
    assert len(breaches) == 1
    _mark(desk, 98_400)  # -8.00: the instrument's limit
    assert [(b.rule, b.scope) for b in breaches][1] == ("daily_loss", "instrument:BTC-USD")
    await desk.stop()


async def test_drawdown_fires_at_the_limit_from_the_days_peak(tmp_path):
    desk, venue = make_desk(tmp_path, risk={"limits": {"max_drawdown": "15"}, "rules": OFF})
    await desk.start()
    breaches = _breaches(desk)
    await _long_10_at_100k(desk, venue)
    _mark(desk, 102_000)  # +10 peak
    _mark(desk, 99_001)  # -4.995: drawdown 14.995
    assert breaches == []
    _mark(desk, 99_000)  # -5: drawdown 15
    assert [(b.rule, b.scope, b.value, b.limit) for b in breaches] == [("drawdown", "desk", "15.00", "15.00")]
    await desk.stop()


async def test_loss_breach_lets_only_reducing_orders_through_after_rearm(tmp_path):
    desk, venue = make_desk(tmp_path, risk={"limits": {"daily_loss": "10"}, "rules": OFF})
    await desk.start()
    await _long_10_at_100k(desk, venue)
    _mark(desk, 98_000)
    ks = desk.services["killswitch"]
    await ks.idle()
    await ks.rearm("desk", reason="take it off", source="console")
    assert desk.router.gate.check(order(side=Side.BUY, qty=1, client_id="more")) == (
        "loss limit reached (desk): only orders that reduce the position are allowed"
    )
    assert desk.router.gate.check(order(side=Side.SELL, qty=10, client_id="out")) is None
    await desk.stop()


async def test_position_breach_fires_above_max_position(tmp_path):
    risk = {"limits": {}, "per_owner": {"fix:EXT": {"max_position": "0.08"}}, "rules": OFF}  # 80 lots
    desk, venue = make_desk(tmp_path, risk=risk)
    await desk.start()
    breaches = _breaches(desk)
    # orders placed straight at the venue (not through the gate), e.g. before the limit was configured
    await venue.submit(order(qty=100, owner="fix:EXT", client_id="x"))
    venue.fill("fix:EXT", "x", 80)
    assert breaches == []
    venue.fill("fix:EXT", "x", 1)
    assert [(b.rule, b.scope, b.value, b.limit) for b in breaches] == [
        ("position_breach", "bot:fix:EXT", "+81", "80")
    ]
    assert desk.services["risk"].state("bot:fix:EXT") is TradingState.HALTED
    await desk.services["killswitch"].idle()
    assert venue.orders == {}  # the rest of the order was cancelled by the kill
    await desk.stop()


async def test_order_storm_fires_on_the_nth_order_within_the_window(tmp_path):
    clock = ManualClock()
    risk = {"limits": {}, "rules": {"order_storm": 5, "storm_window": 1.0, "stale_market_data": None}}
    desk, _ = make_desk(tmp_path, risk=risk, clock=clock)
    await desk.start()
    breaches = _breaches(desk)
    gate = desk.router.gate
    for i in range(5):  # 5 orders spread over exactly 1.0 s: not within the window
        assert gate.check(order(client_id=f"a{i}")) is None
        if i < 4:
            clock.advance(0.25)
    assert breaches == []
    # 6th at the same instant: the last 5 span 0.75 s -> fires, and this very order is refused
    assert gate.check(order(client_id="a5")) == "trading halted (bot:mm-btc): no new orders"
    assert [(b.rule, b.scope) for b in breaches] == [("order_storm", "bot:mm-btc")]
    assert gate.check(order(owner="other", client_id="o")) is None
    await desk.stop()


async def test_stale_market_data_fires_at_threshold_only_for_instruments_with_open_orders(tmp_path):
    clock = ManualClock()
    risk = {"limits": {}, "rules": {"order_storm": None, "stale_market_data": 5.0}}
    desk, venue = make_desk(tmp_path, risk=risk, clock=clock)
    await desk.start()
    rules = desk.services["risk"].rules
    breaches = _breaches(desk)
    await desk.router.submit(order(client_id="b1"))  # open order on BTC-USD, none on ETH-USD
    clock.advance(3.0)
    desk.bus.publish(PriceTick(symbol="BTC-USD", price=65_000.0))  # BTC fresh at t=3
    clock.advance(4.9)
    rules.check_timed()
    assert breaches == []
    clock.advance(0.1)  # 5.0 s since the last BTC price
    rules.check_timed()
    assert [(b.rule, b.scope, b.value, b.limit) for b in breaches] == [
        ("stale_market_data", "instrument:BTC-USD", "5.0s", "5s")
    ]
    await desk.services["killswitch"].idle()
    assert venue.orders == {}
    clock.advance(60)
    rules.check_timed()  # no open orders anywhere now: nothing more fires
    assert len(breaches) == 1
    await desk.stop()


async def test_fix_session_loss_with_open_orders_kills_its_scope(tmp_path):
    desk, venue = make_desk(tmp_path, risk={"limits": {}, "rules": OFF})
    ext = ToyVenue(desk.bus, "FIX.4.4:OPDESK->EXCH")  # a venue reached through a desk initiator session
    desk.router.add_venue(ext)
    await desk.start()
    breaches = _breaches(desk)
    await desk.router.submit(order(owner="fix:CLIENT1", client_id="c1"))  # gateway client's order
    await desk.router.submit(order(symbol="ETH-USD", price=60_000, client_id="e1", venue=ext.name))

    def state(session: str, st: SessionState, role: str) -> None:
        desk.bus.publish(FixSessionState(session=session, state=st, role=role))

    state("FIX.4.4:OPDESK->IDLE", SessionState.ACTIVE, "acceptor")
    state("FIX.4.4:OPDESK->IDLE", SessionState.DISCONNECTED, "acceptor")  # no open orders: nothing
    state("FIX.4.4:OPDESK->CLIENT1", SessionState.ACTIVE, "acceptor")
    state("FIX.4.4:OPDESK->CLIENT1", SessionState.LOGOUT_IN_PROGRESS, "acceptor")  # not lost yet
    assert breaches == []
    state("FIX.4.4:OPDESK->CLIENT1", SessionState.DISCONNECTED, "acceptor")
    assert [(b.rule, b.scope) for b in breaches] == [("fix_session_loss", "bot:fix:CLIENT1")]
    ext.disconnect()
    state(ext.name, SessionState.RECONNECTING, "initiator")
    assert [(b.rule, b.scope) for b in breaches][1] == ("fix_session_loss", "instrument:ETH-USD")
    await desk.services["killswitch"].idle()
    assert venue.orders == {}
    ks = desk.services["killswitch"]
    assert [p["order"] for p in ks.pending_cancels()] == ["FIX.4.4:OPDESK->EXCH:ETH-USD:e1"]
    await desk.stop()


async def test_orderly_desk_shutdown_is_not_a_fix_session_loss(tmp_path):
    desk, _venue = make_desk(tmp_path, risk={"limits": {}, "rules": OFF})
    await desk.start()
    breaches = _breaches(desk)
    await desk.router.submit(order(owner="fix:CLIENT1", client_id="c1"))
    desk.bus.publish(FixSessionState(session="FIX.4.4:OPDESK->CLIENT1", state=SessionState.ACTIVE, role="acceptor"))
    await desk.stop()  # announces the orderly shutdown before any engine (and so any session) stops
    desk.bus.publish(
        FixSessionState(session="FIX.4.4:OPDESK->CLIENT1", state=SessionState.DISCONNECTED, role="acceptor")
    )
    assert breaches == []
    assert desk.services["risk"].state("bot:fix:CLIENT1") is TradingState.ACTIVE
