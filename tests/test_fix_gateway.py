"""The FIX gateway over real sockets on the real matching engine and risk gate, and the FIX venue.

A desk is built with the matching, risk and FIX builders (SQLite stores in tmp_path); clients are our
own Initiator sessions over loopback. Every answer is checked field by field (sending times and
ExecIDs aside, which are checked for shape).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engines.config import DeskConfig
from engines.fix.application import Application
from engines.fix.config import FixSessionConfig, TLSConfig
from engines.fix.events import SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import FixMessage, Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import MemoryStore
from engines.orders import Fill, OrderAccepted, OrderCanceled, OrderRequest, OrderType, Side, TimeInForce
from engines.runtime import Desk

BUILDERS = ["engines.matching.service:build", "engines.risk.service:build", "engines.fix.service:build"]
HEADER = {8, 9, 35, 49, 56, 34, 52, 10, 60}
TS = "20260101-00:00:00.000"


class Client(Application):
    """A FIX client application that queues every application message it receives."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[FixMessage] = asyncio.Queue()

    def from_app(self, msg: FixMessage, session: Session) -> None:
        self.inbox.put_nowait(msg)

    def from_admin(self, msg: FixMessage, session: Session) -> None:
        if msg.msg_type in ("3", "j"):
            self.inbox.put_nowait(msg)

    async def next(self, timeout: float = 5.0) -> FixMessage:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    def empty(self) -> bool:
        return self.inbox.empty()


def body(msg: FixMessage) -> list[tuple[int, str]]:
    """The message's fields without the session header/trailer and TransactTime; ExecID shown as '*'."""
    out = []
    for tag, value in msg.pairs():
        if tag in HEADER:
            continue
        text = value.decode()
        if tag == 17:
            assert re.fullmatch(r"[0-9a-f]+-\d+", text), text
            text = "*"
        out.append((tag, text))
    return out


def desk_config(tmp_path: Path, **risk: Any) -> DeskConfig:
    return DeskConfig(
        desk={"name": "t", "data_dir": str(tmp_path)},
        instruments={
            "BTC-USD": {"tick_size": "0.5", "lot_size": "0.001", "base": "BTC", "quote": "USD"},
            "ETH-USD": {"tick_size": "0.05", "lot_size": "0.01", "base": "ETH", "quote": "USD"},
        },
        mm=[],
        grid=[],
        matching={"journal": False, "maker_fee_bps": "0", "taker_fee_bps": "0", "rest": {"enabled": False},
                  "ws": {"enabled": False}},
        risk={"limits": {"max_orders_per_second": None}, "per_owner": {"fix:CLIENT": {"max_order_qty": "1"}},
              **risk},
        fix={
            "sessions": [
                {"name": "c1", "role": "acceptor", "sender_comp_id": "OPDESK", "target_comp_id": "CLIENT"},
                {"name": "c2", "role": "acceptor", "sender_comp_id": "OPDESK", "target_comp_id": "CLIENT2"},
                {"name": "c42", "role": "acceptor", "begin_string": "FIX.4.2", "sender_comp_id": "OPDESK",
                 "target_comp_id": "CLIENT42"},
            ],
        },
    )  # fmt: skip


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    d = Desk(desk_config(tmp_path)).build(BUILDERS)
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


class Connected:
    def __init__(self, session: Session, app: Client, initiator: Initiator) -> None:
        self.session, self.app, self.initiator = session, app, initiator

    def send(self, msg: Message) -> int:
        return self.session.send_nowait(msg)

    async def next(self, timeout: float = 5.0) -> FixMessage:
        return await self.app.next(timeout)


async def connect(desk: Desk, comp_id: str = "CLIENT", begin: str = "FIX.4.4") -> Connected:
    app = Client()
    session = Session(
        SessionID(begin, comp_id, "OPDESK"), SessionSettings(heartbeat_interval=30), app, MemoryStore()
    )
    initiator = Initiator(session, "127.0.0.1", desk.services["fix"].acceptor.port, seed=1)
    await initiator.start()
    await session.wait_state(SessionState.ACTIVE)
    return Connected(session, app, initiator)


def nos(cl: str, side: str, qty: str, price: str | None, *, tif: str = "1", symbol: str = "BTC-USD",
        v42: bool = False) -> Message:  # fmt: skip
    m = Message("D", [(11, cl)])
    if v42:
        m.append(21, "1")
    m.append(55, symbol).append(54, side).append(60, TS).append(38, qty)
    if price is None:
        m.append(40, "1")
    else:
        m.append(40, "2").append(44, price)
    return m.append(59, tif)


def maker(desk: Desk, side: Side, qty: int, price: int, cid: str, owner: str = "maker") -> Any:
    """An order of another (non-FIX) owner, straight through the router."""
    req = OrderRequest(symbol="BTC-USD", side=side, qty=qty, price=price, client_id=cid, owner=owner)
    return desk.router.submit(req)


# --- orders --------------------------------------------------------------------------------------------


async def test_new_order_single_is_acknowledged(desk: Desk) -> None:
    c = await connect(desk)
    c.send(nos("o1", "1", "0.05", "65000.5"))
    er = await c.next()
    assert er.msg_type == "8"
    oid = er.get_str(37)
    assert oid is not None and oid.isdigit()
    assert body(er) == [
        (37, oid), (11, "o1"), (17, "*"), (150, "0"), (39, "0"), (55, "BTC-USD"), (54, "1"), (38, "0.05"),
        (40, "2"), (44, "65000.5"), (59, "1"), (151, "0.05"), (14, "0"), (6, "0"),
    ]  # fmt: skip
    opened = desk.services["matching"].open_orders(owner="fix:CLIENT")
    assert [(o.client_id, o.price, o.qty) for o in opened] == [("o1", 130001, 50)]


async def test_crossing_orders_fill_with_exact_cum_and_avg(desk: Desk) -> None:
    c = await connect(desk)
    await maker(desk, Side.SELL, 20, 130000, "m1")  # 0.02 @ 65000
    await maker(desk, Side.SELL, 30, 130001, "m2")  # 0.03 @ 65000.5
    c.send(nos("b1", "1", "0.1", "65001"))
    new, f1, f2 = await c.next(), await c.next(), await c.next()
    oid = new.get_str(37)
    assert body(new)[3:5] == [(150, "0"), (39, "0")]
    assert body(f1) == [
        (37, oid), (11, "b1"), (17, "*"), (150, "F"), (39, "1"), (55, "BTC-USD"), (54, "1"), (38, "0.1"),
        (40, "2"), (44, "65001"), (59, "1"), (32, "0.02"), (31, "65000"), (151, "0.08"), (14, "0.02"),
        (6, "65000"), (12, "0"), (13, "3"), (851, "2"),
    ]  # fmt: skip
    assert body(f2) == [
        (37, oid), (11, "b1"), (17, "*"), (150, "F"), (39, "1"), (55, "BTC-USD"), (54, "1"), (38, "0.1"),
        (40, "2"), (44, "65001"), (59, "1"), (32, "0.03"), (31, "65000.5"), (151, "0.05"), (14, "0.05"),
        (6, "65000.3"), (12, "0"), (13, "3"), (851, "2"),
    ]  # fmt: skip
    # The rest of the order rests; a seller crossing it fills it completely: 39=2, leaves 0.
    await maker(desk, Side.SELL, 50, 130002, "m3")
    f3 = await c.next()
    assert dict(body(f3))[150] == "F"
    fields = dict(body(f3))
    assert (fields[39], fields[32], fields[31], fields[151], fields[14], fields[6], fields[851]) == (
        "2",
        "0.05",
        "65001",
        "0",
        "0.1",
        "65000.65",
        "1",
    )
    assert c.app.empty()


async def test_two_fix_clients_trade_with_each_other(desk: Desk) -> None:
    a, b = await connect(desk), await connect(desk, "CLIENT2")
    a.send(nos("s1", "2", "0.5", "65000"))
    assert dict(body(await a.next()))[150] == "0"
    b.send(nos("b1", "1", "0.2", "65010", tif="3"))  # IOC buyer takes 0.2 at the seller's price
    new_b, fill_b = await b.next(), await b.next()
    assert dict(body(new_b))[150] == "0"
    fb = dict(body(fill_b))
    assert (fb[150], fb[39], fb[32], fb[31], fb[14], fb[151], fb[6], fb[851]) == (
        "F",
        "2",
        "0.2",
        "65000",
        "0.2",
        "0",
        "65000",
        "2",
    )
    fa = dict(body(await a.next()))
    assert (fa[150], fa[39], fa[32], fa[31], fa[14], fa[151], fa[851]) == (
        "F",
        "1",
        "0.2",
        "65000",
        "0.2",
        "0.3",
        "1",
    )


async def test_cancel(desk: Desk) -> None:
    c = await connect(desk)
    c.send(nos("o1", "2", "0.3", "66000"))
    oid = (await c.next()).get_str(37)
    c.send(Message("F", [(41, "o1"), (11, "x1"), (55, "BTC-USD"), (54, "2"), (60, TS), (38, "0.3")]))
    er = await c.next()
    assert body(er) == [
        (37, oid), (11, "x1"), (41, "o1"), (17, "*"), (150, "4"), (39, "4"), (55, "BTC-USD"), (54, "2"),
        (38, "0.3"), (40, "2"), (44, "66000"), (59, "1"), (151, "0"), (14, "0"), (6, "0"), (58, "canceled"),
    ]  # fmt: skip
    assert desk.services["matching"].open_orders(owner="fix:CLIENT") == []


async def test_cancel_of_unknown_order_is_rejected(desk: Desk) -> None:
    c = await connect(desk)
    c.send(Message("F", [(41, "nope"), (11, "x1"), (55, "BTC-USD"), (54, "1"), (60, TS)]))
    rej = await c.next()
    assert rej.msg_type == "9"
    assert body(rej) == [
        (37, "NONE"),
        (11, "x1"),
        (41, "nope"),
        (39, "8"),
        (434, "1"),
        (102, "1"),
        (58, "unknown order"),
    ]
    c.send(Message("G", [(41, "nope"), (11, "x2"), (21, "1"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"),
                         (40, "2"), (44, "1")]))  # fmt: skip
    rej = await c.next()
    assert body(rej) == [
        (37, "NONE"),
        (11, "x2"),
        (41, "nope"),
        (39, "8"),
        (434, "2"),
        (102, "1"),
        (58, "unknown order"),
    ]


async def test_replace_then_cancel_by_the_new_id(desk: Desk) -> None:
    c = await connect(desk)
    c.send(nos("o1", "1", "0.1", "60000"))
    oid = (await c.next()).get_str(37)
    c.send(Message("G", [(41, "o1"), (11, "o2"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "0.25"), (40, "2"),
                         (44, "60000.5")]))  # fmt: skip
    er = await c.next()
    rep = body(er)
    new_oid = er.get_str(37)
    assert rep == [
        (37, new_oid), (11, "o2"), (41, "o1"), (17, "*"), (150, "5"), (39, "0"), (55, "BTC-USD"), (54, "1"),
        (38, "0.25"), (40, "2"), (44, "60000.5"), (59, "1"), (151, "0.25"), (14, "0"), (6, "0"),
    ]  # fmt: skip
    assert new_oid is not None and oid is not None
    opened = desk.services["matching"].open_orders(owner="fix:CLIENT")
    assert [(o.client_id, o.price, o.qty) for o in opened] == [("o2", 120001, 250)]
    c.send(Message("F", [(41, "o2"), (11, "x"), (55, "BTC-USD"), (54, "1"), (60, TS)]))
    cx = dict(body(await c.next()))
    assert (cx[150], cx[39], cx[11], cx[41], cx[151]) == ("4", "4", "x", "o2", "0")


async def test_replace_after_partial_fill_keeps_cum(desk: Desk) -> None:
    c = await connect(desk)
    c.send(nos("o1", "1", "0.1", "60000"))
    await c.next()
    await maker(desk, Side.SELL, 40, 120000, "m1")
    f = dict(body(await c.next()))
    assert (f[14], f[151]) == ("0.04", "0.06")
    c.send(Message("G", [(41, "o1"), (11, "o2"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "0.2"), (40, "2"),
                         (44, "60000")]))  # fmt: skip
    rep = dict(body(await c.next()))
    assert (rep[150], rep[39], rep[38], rep[14], rep[151], rep[6]) == (
        "5",
        "1",
        "0.2",
        "0.04",
        "0.16",
        "60000",
    )
    # A new quantity at or below what has filled is refused; the order stays as it was.
    c.send(Message("G", [(41, "o2"), (11, "o3"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "0.04"), (40, "2"),
                         (44, "60000")]))  # fmt: skip
    rej = await c.next()
    assert rej.msg_type == "9"
    assert dict(body(rej))[58] == "new quantity 0.04 is not above the filled 0.04"
    assert dict(body(rej))[434] == "2"


async def test_risk_gate_refusal_is_an_execution_report_rejected(desk: Desk) -> None:
    c = await connect(desk)
    c.send(nos("big", "1", "1.5", "65000"))  # per_owner fix:CLIENT max_order_qty = 1
    er = await c.next()
    assert body(er) == [
        (37, "NONE"), (11, "big"), (17, "*"), (150, "8"), (39, "8"), (103, "3"), (55, "BTC-USD"), (54, "1"),
        (38, "1.5"), (40, "2"), (44, "65000"), (59, "1"), (151, "0"), (14, "0"), (6, "0"),
        (58, "risk: order quantity 1500 lots exceeds max_order_qty 1000 lots"),
    ]  # fmt: skip
    assert desk.services["matching"].open_orders(owner="fix:CLIENT") == []


@pytest.mark.parametrize(
    ("order", "rej", "text"),
    [
        (nos("p", "1", "0.01", "65000.3"), "99", "BTC-USD: price 65000.3 is not a multiple of tick size 0.5"),
        (
            nos("q", "1", "0.0005", "65000"),
            "13",
            "BTC-USD: quantity 0.0005 is not a multiple of lot size 0.001",
        ),
        (nos("s", "1", "1", "1", symbol="DOGE-USD"), "1", "unknown symbol DOGE-USD"),
        (nos("t", "1", "0.01", "65000", tif="6"), "11", "TimeInForce 6 is not supported"),
    ],
    ids=["off-grid-price", "off-grid-qty", "unknown-symbol", "unsupported-tif"],
)
async def test_gateway_rejects_with_the_reason(desk: Desk, order: Message, rej: str, text: str) -> None:
    c = await connect(desk)
    c.send(order)
    er = dict(body(await c.next()))
    assert (er[150], er[39], er[103], er[58]) == ("8", "8", rej, text)


async def test_duplicate_clordid_of_an_open_order(desk: Desk) -> None:
    c = await connect(desk)
    c.send(nos("o1", "1", "0.01", "60000"))
    await c.next()
    c.send(nos("o1", "1", "0.01", "60000"))
    er = dict(body(await c.next()))
    assert (er[150], er[103], er[58]) == ("8", "6", "duplicate ClOrdID o1")


async def test_fix42_execution_reports(desk: Desk) -> None:
    c = await connect(desk, "CLIENT42", "FIX.4.2")
    c.send(nos("o1", "1", "0.05", "65000", v42=True))
    new = body(await c.next())
    assert new[3:6] == [(20, "0"), (150, "0"), (39, "0")]
    await maker(desk, Side.SELL, 20, 130000, "m1")
    part = dict(body(await c.next()))
    assert (part[20], part[150], part[39], part[32], part[14]) == ("0", "1", "1", "0.02", "0.02")
    assert 851 not in part  # LastLiquidityInd is 4.3+
    await maker(desk, Side.SELL, 30, 130000, "m2")
    full = dict(body(await c.next()))
    assert (full[150], full[39], full[14], full[151], full[6]) == ("2", "2", "0.05", "0", "65000")


async def test_unsupported_message_type_gets_business_reject(desk: Desk) -> None:
    c = await connect(desk)
    # An OrderCancelReject sent to the gateway (in the dictionary, not a request the gateway serves).
    seq = c.send(Message("9", [(37, "1"), (11, "o"), (41, "p"), (39, "0"), (434, "1")]))
    rej = await c.next()
    assert rej.msg_type == "j"
    assert body(rej) == [(45, str(seq)), (372, "9"), (380, "3"), (58, "Unsupported Message Type 9")]


@pytest.mark.parametrize(
    ("fields", "reason", "ref_tag", "text"),
    [
        ([(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (40, "2"), (44, "1")], "1", "38",
         "Required tag missing: 38 (OrderQty)"),
        ([(11, "a"), (55, "BTC-USD"), (54, "9"), (60, TS), (38, "1"), (40, "2")], "5", "54",
         "Value is incorrect (out of range) for this tag: 54=9"),
        ([(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "x"), (40, "2")], "6", "38",
         "Incorrect data format for value: 38=x"),
        ([(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"), (40, "2"), (9999, "z")], "0", "9999",
         "Invalid tag number: 9999"),
        ([(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"), (40, "2"), (58, "")], "4", "58",
         "Tag specified without a value: 58 (Text)"),
        ([(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"), (40, "2"), (262, "m")], "2", "262",
         "Tag not defined for this message type: 262 (MDReqID) in NewOrderSingle"),
        ([(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"), (38, "2"), (40, "2")], "13", "38",
         "Tag appears more than once: 38 (OrderQty)"),
        ([(11, "a"), (453, "2"), (448, "P"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"), (40, "2")], "16",
         "453", "Incorrect NumInGroup count for repeating group: 453 (NoPartyIDs)=2, 1 entries"),
        ([(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"), (40, "2"), (50, "desk")], "14", "50",
         "Tag specified out of required order: 50 (SenderSubID)"),
        ([(11, "a"), (453, "1"), (447, "D"), (448, "P"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "1"), (40, "2")],
         "15", "447", "Repeating group fields out of order: 447 (PartyIDSource)"),
    ],
    ids=["1-required", "5-value", "6-format", "0-invalid-tag", "4-no-value", "2-not-in-message", "13-repeated",
         "16-group-count", "14-order", "15-group-order"],
)  # fmt: skip
async def test_validation_rejects_on_the_wire(
    desk: Desk, fields: list[tuple[int, str]], reason: str, ref_tag: str, text: str
) -> None:
    c = await connect(desk)
    seq = c.send(Message("D", fields))
    rej = await c.next()
    assert rej.msg_type == "3"
    assert body(rej) == [(45, str(seq)), (371, ref_tag), (372, "D"), (373, reason), (58, text)]
    # The rejected message consumed its sequence number; the session goes on.
    c.send(nos("ok", "1", "0.01", "60000"))
    assert dict(body(await c.next()))[150] == "0"


async def test_invalid_msg_type_rejected_on_the_wire(desk: Desk) -> None:
    c = await connect(desk)
    seq = c.send(Message("ZZ", [(11, "a")]))
    rej = await c.next()
    assert body(rej) == [(45, str(seq)), (371, "35"), (372, "ZZ"), (373, "11"), (58, "Invalid MsgType: ZZ")]


async def test_validation_can_be_switched_off_per_session(tmp_path: Path) -> None:
    cfg = desk_config(tmp_path)
    cfg.fix.sessions[0].validate_messages = False
    d = Desk(cfg).build(BUILDERS)
    await d.start()
    try:
        c = await connect(d)
        c.send(Message("D", [(11, "a"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "0.01"), (40, "2"),
                             (44, "60000"), (9999, "z")]))  # fmt: skip
        assert dict(body(await c.next()))[150] == "0"  # the unknown tag passes; the order is accepted
        # Without the dictionary the gateway still refuses what it cannot trade: a bad Side -> 373=5.
        seq = c.send(Message("D", [(11, "b"), (55, "BTC-USD"), (54, "9"), (38, "1"), (40, "1")]))
        rej = await c.next()
        assert body(rej) == [
            (45, str(seq)),
            (371, "54"),
            (372, "D"),
            (373, "5"),
            (58, "value of tag 54 is incorrect"),
        ]
    finally:
        await d.stop()


# --- market data ---------------------------------------------------------------------------------------


def md_request(
    req_id: str, symbols: list[str], *, sub: str = "1", depth: int = 5, types: str = "01"
) -> Message:
    m = Message("V", [(262, req_id), (263, sub), (264, depth), (265, "1"), (267, len(types))])
    for t in types:
        m.append(269, t)
    m.append(146, len(symbols))
    for s in symbols:
        m.append(55, s)
    return m


async def test_market_data_snapshot_and_incremental_refresh(desk: Desk) -> None:
    c = await connect(desk)
    await maker(desk, Side.BUY, 100, 129990, "b1")  # 0.1 @ 64995
    await maker(desk, Side.SELL, 50, 130010, "a1")  # 0.05 @ 65005
    c.send(md_request("md1", ["BTC-USD"], types="012"))
    snap = await c.next()
    assert snap.msg_type == "W"
    assert body(snap) == [
        (262, "md1"), (55, "BTC-USD"), (268, "2"),
        (269, "0"), (270, "64995"), (271, "0.1"), (290, "1"),
        (269, "1"), (270, "65005"), (271, "0.05"), (290, "1"),
    ]  # fmt: skip
    # A new best bid: one incremental refresh with a new level.
    await maker(desk, Side.BUY, 30, 129995, "b2")
    inc = await c.next()
    assert inc.msg_type == "X"
    assert body(inc) == [
        (262, "md1"),
        (268, "1"),
        (279, "0"),
        (269, "0"),
        (55, "BTC-USD"),
        (270, "64997.5"),
        (271, "0.03"),
    ]
    # A trade that takes part of the ask: the trade print and the changed level.
    await maker(desk, Side.BUY, 20, 130010, "b3", owner="taker")
    inc = await c.next()
    assert body(inc) == [
        (262, "md1"), (268, "2"),
        (279, "0"), (269, "2"), (55, "BTC-USD"), (270, "65005"), (271, "0.02"),
        (279, "1"), (269, "1"), (55, "BTC-USD"), (270, "65005"), (271, "0.03"),
    ]  # fmt: skip
    # Unsubscribe; the snapshot request behind it is answered after the unsubscribe took effect.
    c.send(md_request("md1", ["BTC-USD"], sub="2"))
    c.send(md_request("md2", ["BTC-USD"], sub="0", types="1"))  # snapshot only, offers only
    snap = await c.next()
    assert body(snap) == [
        (262, "md2"),
        (55, "BTC-USD"),
        (268, "1"),
        (269, "1"),
        (270, "65005"),
        (271, "0.03"),
        (290, "1"),
    ]
    # A book change now sends no refresh: the next message is the answer to the next request.
    await maker(desk, Side.BUY, 10, 129000, "b4")
    c.send(md_request("md3", ["BTC-USD"], sub="0", depth=1, types="0"))
    snap = await c.next()
    assert body(snap) == [
        (262, "md3"),
        (55, "BTC-USD"),
        (268, "1"),
        (269, "0"),
        (270, "64997.5"),
        (271, "0.03"),
        (290, "1"),
    ]


async def test_market_data_request_for_unknown_symbol_is_rejected(desk: Desk) -> None:
    c = await connect(desk)
    c.send(md_request("md9", ["BTC-USD", "NOPE-USD"]))
    rej = await c.next()
    assert rej.msg_type == "Y"
    assert body(rej) == [(262, "md9"), (281, "0"), (58, "unknown symbol NOPE-USD")]


# --- the FIX venue and the demo desk --------------------------------------------------------------------


async def test_demo_desk_fix_session_is_active_at_startup(tmp_path: Path) -> None:
    from engines.config import load_config
    from engines.runtime import BUILDERS as ALL

    d = Desk(load_config(), data_dir=tmp_path).build(list(ALL))
    await d.start()
    try:
        fix = d.services["fix"]
        assert fix.session("demo-client").state is SessionState.ACTIVE
        states = {s.key: s.state for s in fix.all_sessions()}
        assert states == {
            "FIX.4.4:DESKCLIENT->OPDESK": SessionState.ACTIVE,
            "FIX.4.4:OPDESK->DESKCLIENT": SessionState.ACTIVE,
        }
        assert d.router.venues["demo-client"].connected
        assert (tmp_path / "fix" / "fix.sqlite").exists()
    finally:
        await d.stop()
    assert fix.session("demo-client").state is SessionState.DISCONNECTED


async def test_fix_venue_trades_through_the_loopback_session(tmp_path: Path) -> None:
    cfg = desk_config(tmp_path)
    cfg.fix.sessions.append(
        cfg.fix.sessions[0].model_copy(
            update={"name": "loop", "role": "initiator", "sender_comp_id": "LOOP", "target_comp_id": "OPDESK"}
        )
    )
    d = Desk(cfg).build(BUILDERS)
    events: list[Any] = []
    arrived = asyncio.Event()

    def on_event(e: Any) -> None:
        if e.venue == "loop":
            events.append(e)
            arrived.set()

    for et in (OrderAccepted, Fill, OrderCanceled):
        d.bus.subscribe(et, on_event)

    async def until(n: int) -> None:
        while len(events) < n:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 5)

    await d.start()
    try:
        venue = d.router.venues["loop"]
        assert venue.connected and venue.session_id == "FIX.4.4:LOOP->OPDESK"
        req = OrderRequest(symbol="BTC-USD", side=Side.BUY, qty=100, price=120000, client_id="bot-1", owner="bot",
                           venue="loop", tif=TimeInForce.GTC, type=OrderType.LIMIT)  # fmt: skip
        assert await d.router.submit(req)
        await until(1)
        acc = events[0]
        assert isinstance(acc, OrderAccepted)
        assert (acc.owner, acc.client_id, acc.price, acc.qty, acc.venue) == (
            "bot",
            "bot-1",
            120000,
            100,
            "loop",
        )
        # Behind the venue, the gateway's client fix:LOOP owns the order on the matching engine.
        assert [o.client_id for o in d.services["matching"].open_orders(owner="fix:LOOP")] == ["bot-1"]
        await maker(d, Side.SELL, 40, 120000, "m1")
        await until(2)
        fill = events[1]
        assert isinstance(fill, Fill)
        assert (fill.owner, fill.price, fill.qty, fill.leaves_qty, fill.venue) == (
            "bot",
            120000,
            40,
            60,
            "loop",
        )
        opened = await venue.open_orders(owner="bot")
        assert [(o.client_id, o.qty, o.filled_qty) for o in opened] == [("bot-1", 60, 40)]
        result = await d.router.cancel("loop", "BTC-USD", "bot-1", "bot")
        assert result.confirmed
        canceled = events[2]
        assert isinstance(canceled, OrderCanceled)
        assert (canceled.canceled_qty, canceled.filled_qty, canceled.venue) == (60, 40, "loop")
        assert await venue.open_orders() == []
        assert d.services["matching"].open_orders(owner="fix:LOOP") == []
    finally:
        await d.stop()


async def test_desk_fix_over_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    cfg = desk_config(tmp_path)
    cfg.fix.acceptor_tls = TLSConfig(enabled=True, cert=cert, key=key)
    cfg.fix.sessions.append(
        FixSessionConfig(
            name="tls-loop",
            sender_comp_id="TLSLOOP",
            target_comp_id="OPDESK",
            tls=TLSConfig(enabled=True, ca=cert),
        )
    )
    d = Desk(cfg).build(BUILDERS)
    await d.start()
    try:
        fix = d.services["fix"]
        loop_session = fix.session("tls-loop")
        assert loop_session.state is SessionState.ACTIVE
        assert loop_session._writer.get_extra_info("ssl_object") is not None  # the bytes went over TLS
        assert d.router.venues["tls-loop"].connected
        # A client without TLS gets no session: the acceptor only speaks TLS.
        app = Client()
        plain = Session(
            SessionID("FIX.4.4", "CLIENT", "OPDESK"), SessionSettings(max_reconnect_attempts=1), app
        )
        ini = Initiator(plain, "127.0.0.1", fix.acceptor.port, seed=1)
        await ini.start()
        with pytest.raises(TimeoutError):
            await plain.wait_state(SessionState.ACTIVE, timeout=0.5)
        await ini.stop()
    finally:
        await d.stop()


async def test_gateway_takes_over_orders_restored_after_a_restart(tmp_path: Path) -> None:
    # The matching journal keeps the client's resting order over a desk restart; the restarted gateway
    # reports its fills and accepts its cancel. (No risk kill on the client's disconnect here.)
    cfg = desk_config(tmp_path, rules={"fix_session_loss": False})
    cfg.matching.journal = True
    d1 = Desk(cfg).build(BUILDERS)
    await d1.start()
    c = await connect(d1)
    c.send(nos("o1", "1", "0.05", "60000"))
    oid = (await c.next()).get_str(37)
    await c.initiator.stop("desk restart")
    await d1.stop()

    d2 = Desk(cfg).build(BUILDERS)
    await d2.start()
    try:
        c.initiator.port = d2.services["fix"].acceptor.port  # same client session: sequence numbers go on
        await c.initiator.start()
        await c.session.wait_state(SessionState.ACTIVE)
        assert [o.client_id for o in d2.services["matching"].open_orders(owner="fix:CLIENT")] == ["o1"]
        await maker(d2, Side.SELL, 20, 120000, "m1")
        fill = dict(body(await c.next()))
        assert (fill[37], fill[11], fill[150], fill[39], fill[32], fill[14], fill[151]) == (
            oid,
            "o1",
            "F",
            "1",
            "0.02",
            "0.02",
            "0.03",
        )
        c.send(Message("F", [(41, "o1"), (11, "x1"), (55, "BTC-USD"), (54, "1"), (60, TS)]))
        cx = dict(body(await c.next()))
        assert (cx[150], cx[39], cx[11], cx[41], cx[14], cx[151]) == ("4", "4", "x1", "o1", "0.02", "0")
        assert d2.services["fix"].gateway.counts["adopted"] == 1
        await c.initiator.stop()
    finally:
        await d2.stop()


async def test_market_maker_quotes_through_the_fix_venue(tmp_path: Path) -> None:
    from engines.config import load_config
    from engines.runtime import BUILDERS as ALL

    cfg = load_config()
    cfg.mm[0].venue = "demo-client"  # the demo bot quotes over the desk's own FIX session
    d = Desk(cfg, data_dir=tmp_path).build(list(ALL))
    accepted = asyncio.Event()
    seen: list[OrderAccepted] = []

    def on_accepted(ev: OrderAccepted) -> None:
        if ev.venue == "demo-client":
            seen.append(ev)
            accepted.set()

    d.bus.subscribe(OrderAccepted, on_accepted)
    await d.start()
    try:
        await asyncio.wait_for(accepted.wait(), 10)
        first = seen[0]
        assert first.owner == cfg.mm[0].name
        # Behind the venue, the same order rests on the matching engine as the FIX client's.
        behind = d.services["matching"].open_orders(owner="fix:DESKCLIENT")
        assert first.client_id in {o.client_id for o in behind}
    finally:
        await d.stop()
