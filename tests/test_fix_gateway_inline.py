"""The gateway's in-line order path (no task per NewOrderSingle) with the matching journal on: reports are
still sent only after the journal's commit, and a client's operations and reports keep their order
when a cancel (which runs as a task) is in flight between new orders. Also the gateway's fast
OrderRequest constructor against the dataclass's own."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engines.config import DeskConfig
from engines.fix import gateway as gw
from engines.fix.message import Message
from engines.orders import OrderRequest, OrderType, Side, TimeInForce
from engines.runtime import Desk
from tests.test_fix_gateway import BUILDERS, TS, body, connect, nos


@pytest.fixture
async def journaled(tmp_path: Path) -> AsyncIterator[Desk]:
    cfg = DeskConfig(
        desk={"name": "t", "data_dir": str(tmp_path)},
        instruments={"BTC-USD": {"tick_size": "0.5", "lot_size": "0.001", "base": "BTC", "quote": "USD"}},
        mm=[], grid=[],
        matching={"journal": True, "self_trade": "none", "maker_fee_bps": "0", "taker_fee_bps": "0",
                  "rest": {"enabled": False},
                  "ws": {"enabled": False}},
        risk={"limits": {"max_orders_per_second": None}},
        fix={"sessions": [{"name": "c1", "role": "acceptor", "sender_comp_id": "OPDESK",
                           "target_comp_id": "CLIENT"}]},
    )  # fmt: skip
    d = Desk(cfg).build(BUILDERS)
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


async def test_new_orders_go_in_line_and_reports_wait_for_the_journal(journaled: Desk) -> None:
    gateway = journaled.services["fix"].gateway
    matching = journaled.services["matching"]
    spawned: list[str] = []
    spawn = gateway._spawn

    def counting_spawn(coro):  # type: ignore[no-untyped-def]
        spawned.append(coro.__qualname__)
        spawn(coro)

    gateway._spawn = counting_spawn
    flushed_before_send: list[bool] = []
    ops_at_report: dict[int, int] = {}
    send, send_now = gateway._send, gateway._send_now

    def noting_send(session, msg):  # type: ignore[no-untyped-def]
        ops_at_report[id(msg)] = matching.ops  # the engine operations up to the one this report is about
        send(session, msg)

    def checking_send_now(session, msg):  # type: ignore[no-untyped-def]
        # Everything the engine did up to the report's own operation is committed when the report leaves
        # (the journal's ``ops`` counter as last written); later operations may still be pending.
        flushed_before_send.append(matching.journal.next_ids[2] >= ops_at_report[id(msg)])
        send_now(session, msg)

    gateway._send = noting_send
    gateway._send_now = checking_send_now
    c = await connect(journaled)
    # One read on the desk's side: a resting buy, its cancel (a task: awaits the journal), a new order
    # that must wait behind the cancel, then a crossing sell.
    c.send(nos("o1", "1", "0.05", "65000"))
    c.send(Message("F", [(41, "o1"), (11, "x1"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "0.05")]))
    c.send(nos("o2", "1", "0.02", "65000"))
    c.send(nos("o3", "2", "0.02", "65000"))
    got = [await c.next() for _ in range(6)]
    assert [(dict(body(m))[11], dict(body(m))[150]) for m in got] == [
        ("o1", "0"), ("x1", "4"), ("o2", "0"), ("o3", "0"), ("o2", "F"), ("o3", "F"),
    ]  # fmt: skip
    assert spawned.count("Gateway._cancel") == 1
    assert all(flushed_before_send) and len(flushed_before_send) == 6
    # Once nothing is in flight, new orders take no task at all.
    spawned.clear()
    c.send(nos("o4", "1", "0.01", "64000"))
    assert dict(body(await c.next()))[150] == "0"
    assert spawned == [] and not gateway._tasks
    assert gateway.counts["errors"] == 0
    assert [o.client_id for o in matching.open_orders(owner="fix:CLIENT")] == ["o4"]


def test_fast_order_request_is_the_dataclass_instance() -> None:
    assert gw._order_request is gw._order_request_fast
    args = ("BTC-USD", Side.BUY, 10, None, OrderType.MARKET, TimeInForce.IOC, False, "c1", "fix:X", "sim")
    fast = gw._order_request(*args)
    slow = OrderRequest(symbol="BTC-USD", side=Side.BUY, qty=10, price=None, type=OrderType.MARKET,
                        tif=TimeInForce.IOC, post_only=False, client_id="c1", owner="fix:X", venue="sim")  # fmt: skip
    assert type(fast) is OrderRequest
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.qty = 5  # type: ignore[misc]


def test_ack_and_fill_builders_give_exec_reports_bytes() -> None:
    """The acknowledgement's and the fill's own formats (FIX 4.4) against the general builder, over
    orders of every shape: the same body, byte for byte; 4.2 sessions go through the general builder."""
    import random
    from decimal import Decimal

    from engines.bus import Bus
    from engines.clock import ManualClock
    from engines.fix.session import SessionID
    from engines.instruments import Instrument
    from engines.orders import Fill, Liquidity, OrderStatus
    from engines.venue import OrderRouter

    class _Session:
        def __init__(self, begin: str) -> None:
            self.session_id = SessionID(begin, "OPDESK", "CLIENT")

    bus = Bus()
    inst = Instrument("BTC-USD", Decimal("0.5"), Decimal("0.001"))
    g = gw.Gateway(bus=bus, router=OrderRouter(bus), instruments={"BTC-USD": inst}, clock=ManualClock())
    rng = random.Random(7)
    for _ in range(400):
        session = _Session(rng.choice(["FIX.4.4", "FIX.4.4", "FIX.4.2"]))
        qty = rng.randint(1, 50)
        market = rng.random() < 0.2
        order = gw.GatewayOrder(
            "fix:CLIENT", f"c{rng.randint(1, 999)}", "BTC-USD", rng.choice([Side.BUY, Side.SELL]),
            OrderType.MARKET if market else OrderType.LIMIT,
            TimeInForce.IOC if market else rng.choice([TimeInForce.GTC, TimeInForce.FOK]),
            None if market else rng.randint(1, 200_000), qty,
            order_id=rng.choice([None, rng.randint(1, 10**6)]), account=rng.choice(["", "ACC1"]),
        )  # fmt: skip
        cum = rng.randint(0, qty)
        order.cum, order.notional = cum, cum * rng.randint(1, 200_000)
        order.status = rng.choice([OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED])
        g._exec_seq = seq = rng.randint(0, 10**6)
        ack = g._ack_report(session, order).body()
        g._exec_seq = seq
        assert ack == g._exec_report(session, order, "0").body()
        leaves = qty - cum
        ev = Fill(
            symbol="BTC-USD", order_id=order.order_id or 1, client_id=order.cl_ord_id, owner=order.owner,
            side=order.side, price=rng.randint(1, 200_000), qty=rng.randint(1, 50), leaves_qty=leaves,
            liquidity=rng.choice([Liquidity.MAKER, Liquidity.TAKER]), fee=rng.choice([0.0, -0.25, 1.5e-05, 3.0]),
            trade_id=1,
        )  # fmt: skip
        g._exec_seq = seq
        fill = g._fill_report(session, order, ev).body()
        g._exec_seq = seq
        v42 = session.session_id.begin_string == "FIX.4.2"
        exec_type = ("2" if leaves == 0 else "1") if v42 else "F"
        general = g._exec_report(
            session, order, exec_type, last=(ev.price, ev.qty), liquidity=ev.liquidity, fee=ev.fee
        ).body()
        assert fill == general
