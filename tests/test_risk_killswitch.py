from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest

from engines.events import EngineState, EngineStatusChanged
from engines.orders import OrderAccepted, OrderRejected, Side
from engines.risk.events import KillProgress, KillSwitchAction, TradingState, TradingStateChanged
from engines.venue import OpenOrder
from tests.risk_venue import ToyVenue, VenueDown, _Resting, make_desk, order

NO_RULES = {"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}}


def _collect(desk, cls):
    out: list = []
    desk.bus.subscribe(cls, out.append)
    return out


async def _wait_for(desk, cls, predicate, timeout: float = 5.0):
    """Wait for a bus event matching ``predicate`` (published from now on)."""
    fut = asyncio.get_running_loop().create_future()

    def on(ev):
        if predicate(ev) and not fut.done():
            fut.set_result(ev)

    sub = desk.bus.subscribe(cls, on)
    try:
        return await asyncio.wait_for(fut, timeout)
    finally:
        sub.cancel()


async def test_kill_during_a_burst_of_fills_and_quotes(tmp_path):
    desk, venue = make_desk(tmp_path, risk=NO_RULES)
    await desk.start()
    ks = desk.services["killswitch"]
    accepted = _collect(desk, OrderAccepted)
    halted_seq: list[int] = []
    desk.bus.subscribe(
        TradingStateChanged, lambda ev: halted_seq.append(ev.seq) if ev.state is TradingState.HALTED else None
    )
    rejected = _collect(desk, OrderRejected)
    rng = random.Random(11)
    enough = asyncio.Event()
    desk.bus.subscribe(OrderAccepted, lambda ev: enough.set() if len(accepted) >= 600 else None)
    stop = asyncio.Event()
    sent = {"n": 0}

    async def quoter(owner: str, symbol: str, base: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            side = Side.BUY if i % 2 else Side.SELL
            px = base - rng.randint(1, 50) if side is Side.BUY else base + rng.randint(1, 50)
            await desk.router.submit(
                order(
                    symbol=symbol,
                    side=side,
                    qty=rng.randint(1, 5),
                    price=px,
                    owner=owner,
                    client_id=f"{owner}-{i}",
                )
            )
            sent["n"] += 1
            await asyncio.sleep(0)

    async def filler() -> None:
        while not stop.is_set():
            if venue.orders:
                (owner, cid), r = rng.choice(sorted(venue.orders.items(), key=lambda kv: kv[1].order_id))
                venue.fill(owner, cid, rng.randint(1, r.leaves))
            await asyncio.sleep(0)

    tasks = [
        asyncio.create_task(quoter("mm-btc", "BTC-USD", 130_000)),
        asyncio.create_task(quoter("mm-btc2", "BTC-USD", 130_000)),
        asyncio.create_task(quoter("grid-eth", "ETH-USD", 64_000)),
        asyncio.create_task(filler()),
    ]
    await asyncio.wait_for(enough.wait(), 10)
    report = await ks.kill(reason="burst test", source="cli", actor="pytest")
    # keep the burst going a while after the kill: every new order must be refused
    n_after = sent["n"]
    while sent["n"] < n_after + 300:
        await asyncio.sleep(0)
    stop.set()
    await asyncio.gather(*tasks)

    assert len(halted_seq) == 1
    assert [a for a in accepted if a.seq > halted_seq[0]] == []
    assert venue.orders == {}
    assert desk.services["risk"].orders.orders == {}
    assert report.pending == () and report.requested == report.confirmed > 0
    late = [r for r in rejected if r.seq > halted_seq[0]]
    assert len(late) >= 300 and all(r.reason == "trading halted (desk): no new orders" for r in late)
    await desk.stop()


async def test_kill_with_a_disconnected_venue_reports_pending_and_cancels_on_reconnect(tmp_path):
    desk, toy = make_desk(tmp_path, risk=NO_RULES)
    fixv = ToyVenue(desk.bus, "fixv")
    desk.router.add_venue(fixv)
    await desk.start()
    ks = desk.services["killswitch"]
    progress = _collect(desk, KillProgress)
    for i in range(3):
        assert await desk.router.submit(order(client_id=f"t{i}", venue="toy"))
    for i in range(2):
        assert await desk.router.submit(order(client_id=f"f{i}", venue="fixv", owner="fix:CLIENT"))
    fixv.disconnect()

    report = await ks.kill("desk", reason="venue down test", source="console", actor="op")
    assert report.requested == 5 and report.confirmed == 3
    assert report.pending == ("fixv:BTC-USD:f0", "fixv:BTC-USD:f1")
    assert progress[-1].pending == report.pending and not progress[-1].done
    assert [p["order"] for p in ks.pending_cancels()] == ["fixv:BTC-USD:f0", "fixv:BTC-USD:f1"]
    assert all(p["reason"] == "venue disconnected" for p in ks.pending_cancels())
    assert toy.orders == {} and len(fixv.orders) == 2
    # still disconnected: a retry sends nothing and the orders stay visible
    assert await ks.retry_pending() == 0 and len(ks.pending_cancels()) == 2

    fixv.reconnect()
    done = asyncio.ensure_future(_wait_for(desk, KillProgress, lambda ev: ev.done and ev.scope == "desk"))
    desk.bus.publish(EngineStatusChanged(engine="fixv", state=EngineState.RUNNING))
    final = await asyncio.wait_for(done, 5)
    assert (final.requested, final.confirmed, final.pending) == (5, 5, ())
    assert [(p.confirmed, p.pending) for p in progress[-2:]] == [(4, ("fixv:BTC-USD:f1",)), (5, ())]
    assert fixv.orders == {} and fixv.cancel_calls == 2
    assert ks.pending_cancels() == []
    await desk.stop()


class RecordingVenue(ToyVenue):
    """Like a FIX venue: cannot list open orders while down, but keeps its own record of them."""

    async def open_orders(self, owner=None, symbol=None):
        if not self.connected:
            raise VenueDown(f"{self.name} disconnected")
        return await super().open_orders(owner, symbol)

    def known_orders(self, owner=None, symbol=None):
        return [OpenOrder(self.name, r.req.symbol, r.order_id, r.req.client_id, r.req.owner, r.req.side,
                          r.req.price, r.leaves, r.filled)
                for r in self.orders.values() if owner is None or r.req.owner == owner]


async def test_kill_with_a_disconnected_venue_uses_the_venues_own_record(tmp_path):
    desk, _toy = make_desk(tmp_path, risk=NO_RULES)
    fixv = RecordingVenue(desk.bus, "fixv")
    desk.router.add_venue(fixv)
    await desk.start()
    assert await desk.router.submit(order(client_id="f0", venue="fixv", owner="mm-btc"))
    # an order of a previous life of the desk, restored by the venue from its store: the desk's
    # tracker never saw it
    fixv.orders[("mm-btc", "f-old")] = _Resting(99, order(client_id="f-old", venue="fixv", owner="mm-btc"), 5)
    fixv.disconnect()
    report = await desk.services["killswitch"].kill("desk", reason="venue down", source="console")
    assert report.pending == ("fixv:BTC-USD:f-old", "fixv:BTC-USD:f0")
    fixv.reconnect()
    done = asyncio.ensure_future(_wait_for(desk, KillProgress, lambda ev: ev.done and ev.scope == "desk"))
    desk.bus.publish(EngineStatusChanged(engine="fixv", state=EngineState.RUNNING))
    final = await asyncio.wait_for(done, 5)
    assert final.pending == () and fixv.orders == {}
    await desk.stop()


async def test_cancels_acknowledged_later_are_waited_for(tmp_path):
    desk, venue = make_desk(tmp_path, risk=NO_RULES, venue_kw={"async_acks": True})
    await desk.start()
    for i in range(4):
        await desk.router.submit(order(client_id=f"o{i}", owner="bot-a" if i % 2 else "bot-b"))
    report = await desk.services["killswitch"].kill("bot:bot-a", reason="acks", source="cli")
    assert (report.requested, report.confirmed, report.pending) == (2, 2, ())
    assert sorted(venue.orders) == [("bot-b", "o0"), ("bot-b", "o2")]
    assert desk.services["risk"].effective_state("bot-b", "BTC-USD") is TradingState.ACTIVE
    await desk.stop()


async def test_flatten_sends_reduce_only_orders_while_halted(tmp_path):
    desk, venue = make_desk(tmp_path, risk=NO_RULES)
    await desk.start()
    await desk.router.submit(order(side=Side.BUY, qty=12, client_id="b1"))
    venue.fill("mm-btc", "b1", 12)
    await desk.router.submit(order(side=Side.BUY, qty=3, client_id="b2"))
    accepted = _collect(desk, OrderAccepted)
    actions = _collect(desk, KillSwitchAction)
    report = await desk.services["killswitch"].kill(reason="flat", source="console", flatten=True)
    assert report.flatten == ("mm-btc BTC-USD +12: sell 12 kill-flatten-1 sent",)
    assert [(a.client_id, a.side, a.qty) for a in accepted] == [("kill-flatten-1", Side.SELL, 12)]
    assert [a.action for a in actions] == ["kill", "flatten"]
    # the flatten order rests on the toy venue (it has no matching): it is not swept as a new order
    assert list(venue.orders) == [("mm-btc", "kill-flatten-1")]
    await desk.stop()


async def test_restart_comes_up_halted_until_rearmed(tmp_path):
    desk, _ = make_desk(tmp_path, risk=NO_RULES)
    await desk.start()
    ks = desk.services["killswitch"]
    await ks.kill("bot:mm-btc", reason="runaway", source="cli", actor="alice")
    await ks.kill("desk", reason="panic", source="signal")
    await ks.rearm("bot:mm-btc", reason="fixed", source="console", actor="bob")
    await desk.stop()

    desk2, _ = make_desk(tmp_path, risk=NO_RULES)
    risk2 = desk2.services["risk"]
    assert risk2.state("desk") is TradingState.HALTED  # before any engine starts
    assert risk2.state("bot:mm-btc") is TradingState.ACTIVE
    changes = _collect(desk2, TradingStateChanged)
    await desk2.start()
    assert [(c.scope, c.state, c.source) for c in changes] == [("desk", TradingState.HALTED, "startup")]
    assert changes[0].reason == "latched at restart: panic"
    assert not await desk2.router.submit(order())
    result = await desk2.services["killswitch"].rearm("desk", reason="all clear", source="cli", actor="carol")
    assert result == {"scope": "desk", "state": "active", "previous": "halted", "pending": []}
    assert await desk2.router.submit(order())
    await desk2.stop()

    desk3, _ = make_desk(tmp_path, risk=NO_RULES)
    assert desk3.services["risk"].states.scopes() == {}

    con = sqlite3.connect(tmp_path / "risk.sqlite")
    rows = con.execute(
        "SELECT action, scope, source, reason, actor, detail FROM audit ORDER BY id"
    ).fetchall()
    con.close()
    assert rows == [
        ("kill", "bot:mm-btc", "cli", "runaway", "alice", ""),
        ("kill", "desk", "signal", "panic", "", ""),
        ("rearm", "bot:mm-btc", "console", "fixed", "bob", "halted->active"),
        ("rearm", "desk", "cli", "all clear", "carol", "halted->active"),
    ]


async def test_rearm_to_reducing_and_bad_scopes(tmp_path):
    desk, _ = make_desk(tmp_path, risk=NO_RULES)
    await desk.start()
    ks = desk.services["killswitch"]
    await ks.kill("instrument:BTC-USD", reason="x", source="cli")
    await ks.rearm("instrument:BTC-USD", reason="wind down", source="cli", state=TradingState.REDUCING)
    assert desk.services["risk"].state("instrument:BTC-USD") is TradingState.REDUCING
    for bad in ("everything", "bot:", "venue:sim"):
        try:
            await ks.kill(bad, reason="x", source="cli")
        except ValueError as exc:
            assert "bad scope" in str(exc)
        else:
            raise AssertionError(bad)
    await desk.stop()


async def test_kill_during_a_burst_on_the_matching_engine(tmp_path):
    """The real matching engine: quoters re-quote, a taker crosses the book (fills), the desk is killed."""
    from engines.clock import ManualClock
    from engines.config import DeskConfig
    from engines.orders import Fill, TimeInForce
    from engines.runtime import Desk

    cfg = DeskConfig(
        sim={"enabled": False},
        mm=[],
        grid=[],
        fix={"enabled": False},
        risk=NO_RULES,
        matching={"journal": False},
    )
    desk = Desk(cfg, clock=ManualClock(), data_dir=tmp_path).build(
        ["engines.matching.service:build", "engines.risk.service:build"]
    )
    await desk.start()
    engine = desk.services["matching"]
    ks = desk.services["killswitch"]
    accepted = _collect(desk, OrderAccepted)
    fills = _collect(desk, Fill)
    halted: list[int] = []
    desk.bus.subscribe(
        TradingStateChanged, lambda ev: halted.append(ev.seq) if ev.state is TradingState.HALTED else None
    )
    rng = random.Random(5)
    enough = asyncio.Event()
    desk.bus.subscribe(Fill, lambda ev: enough.set() if len(fills) >= 400 else None)
    stop = asyncio.Event()
    sent = {"n": 0}

    async def quoter(owner: str, symbol: str, mid: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            side = Side.BUY if i % 2 else Side.SELL
            px = mid - rng.randint(1, 20) if side is Side.BUY else mid + rng.randint(1, 20)
            await desk.router.submit(
                order(
                    symbol=symbol,
                    side=side,
                    qty=rng.randint(1, 5),
                    price=px,
                    owner=owner,
                    client_id=f"{owner}-{i}",
                    venue="sim",
                )
            )
            sent["n"] += 1
            await asyncio.sleep(0)

    async def taker() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            symbol = "BTC-USD" if i % 2 else "ETH-USD"
            mid = 130_000 if symbol == "BTC-USD" else 64_000
            px = mid + 25 if side is Side.BUY else mid - 25
            await desk.router.submit(
                order(
                    symbol=symbol,
                    side=side,
                    qty=rng.randint(1, 8),
                    price=px,
                    owner="taker",
                    client_id=f"t-{i}",
                    venue="sim",
                    tif=TimeInForce.IOC,
                )
            )
            sent["n"] += 1
            await asyncio.sleep(0)

    tasks = [
        asyncio.create_task(quoter("mm-a", "BTC-USD", 130_000)),
        asyncio.create_task(quoter("mm-b", "BTC-USD", 130_000)),
        asyncio.create_task(quoter("grid-eth", "ETH-USD", 64_000)),
        asyncio.create_task(taker()),
    ]
    await asyncio.wait_for(enough.wait(), 20)
    assert len(engine.open_orders()) > 0
    report = await ks.kill(reason="burst on the matching engine", source="cli")
    n_after = sent["n"]
    while sent["n"] < n_after + 400:
        await asyncio.sleep(0)
    stop.set()
    await asyncio.gather(*tasks)
    assert len(halted) == 1
    assert [a for a in accepted if a.seq > halted[0]] == []
    assert [f for f in fills if f.seq > halted[0]] == []
    assert engine.open_orders() == []
    assert report.pending == () and report.requested == report.confirmed > 0
    assert desk.services["risk"].orders.orders == {}
    await desk.stop()


async def test_restart_cancels_orders_a_venue_restored_in_a_latched_scope(tmp_path):
    """A crash after the latch was written but before the venue's cancels were journaled: the matching
    engine restores the orders at start, and the kill switch cancels them before any bot starts."""
    import sqlite3 as sq

    from engines.config import DeskConfig
    from engines.risk.store import SCHEMA
    from engines.runtime import Desk

    cfg = DeskConfig(sim={"enabled": False}, mm=[], grid=[], fix={"enabled": False}, risk=NO_RULES)
    builders = ["engines.matching.service:build", "engines.risk.service:build"]
    desk = Desk(cfg, data_dir=tmp_path).build(builders)
    await desk.start()
    for i in range(3):
        assert await desk.router.submit(
            order(client_id=f"x{i}", owner="bot-x", venue="sim", price=129_990 - i)
        )
    assert await desk.router.submit(order(client_id="y0", owner="bot-y", venue="sim", price=129_980))
    await desk.stop()
    con = sq.connect(tmp_path / "risk.sqlite")
    con.executescript(SCHEMA)
    con.execute("INSERT INTO latch VALUES ('bot:bot-x', 'halted', 'crash test', 'cli', 1)")
    con.commit()
    con.close()

    desk2 = Desk(cfg, data_dir=tmp_path).build(builders)
    progress = _collect(desk2, KillProgress)
    await desk2.start()
    engine = desk2.services["matching"]
    assert [o.owner for o in engine.open_orders()] == ["bot-y"]
    assert [(p.scope, p.requested, p.confirmed, p.done) for p in progress] == [("bot:bot-x", 3, 3, True)]
    await desk2.stop()


def test_an_unreadable_latch_refuses_to_start(tmp_path):
    from engines.risk.store import LatchUnreadable

    (tmp_path / "risk.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LatchUnreadable, match="refusing to start"):
        make_desk(tmp_path, risk=NO_RULES)


class _SlowVenue(ToyVenue):
    """A remote venue: the order reaches it only when the test lets the network deliver it."""

    def __init__(self, bus, name: str) -> None:
        super().__init__(bus, name)
        self.deliver = asyncio.Event()
        self.entered = asyncio.Event()

    async def submit(self, order) -> None:
        self.entered.set()
        await self.deliver.wait()
        await super().submit(order)


async def test_an_order_in_flight_when_the_kill_lands_is_cancelled_when_the_venue_accepts_it(tmp_path):
    desk, _ = make_desk(tmp_path, risk=NO_RULES)
    remote = _SlowVenue(desk.bus, "remote")
    desk.router.add_venue(remote)
    await desk.start()
    ks = desk.services["killswitch"]
    in_flight = asyncio.create_task(desk.router.submit(order(client_id="late", venue="remote")))
    await asyncio.wait_for(remote.entered.wait(), 5)  # past the gate, waiting on the "network"
    report = await ks.kill(reason="in flight", source="cli")
    assert report.requested == 0  # nothing was at any venue yet
    done = asyncio.ensure_future(_wait_for(desk, KillProgress, lambda ev: ev.done and ev.confirmed == 1))
    remote.deliver.set()
    assert await in_flight  # the gate had passed it before the kill
    final = await asyncio.wait_for(done, 5)
    assert (final.scope, final.requested, final.pending) == ("desk", 1, ())
    assert remote.orders == {} and remote.cancel_calls == 1
    await desk.stop()
