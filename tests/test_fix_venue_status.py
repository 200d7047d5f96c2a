"""Order status over FIX: the gateway answers OrderStatusRequest (H) and OrderMassStatusRequest (AF), the
FIX venue asks with them, and loopback orders count once in risk.

Real desks (matching, risk, FIX builders; SQLite in tmp_path), real sockets on 127.0.0.1, our own
Initiator sessions as clients; every status report is checked tag by tag.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from engines.config import DeskConfig
from engines.fix.config import FixConfig
from engines.fix.errors import IncorrectTagValue
from engines.fix.events import SessionState
from engines.fix.message import FixMessage, Message
from engines.fix.venue import FixVenue, OrderStatusUnavailable
from engines.orders import Fill, OrderAccepted, OrderCanceled, OrderRequest, Side
from engines.runtime import Desk
from tests.test_fix_gateway import BUILDERS, HEADER, TS, connect, desk_config, maker, nos


def status_body(msg: FixMessage) -> list[tuple[int, str]]:
    """The fields of a status report without the session header/trailer and TransactTime."""
    return [(t, v.decode()) for t, v in msg.pairs() if t not in HEADER]


def sent_by(log_dir: Path, begin: str, sender: str, msg_type: str) -> list[list[tuple[int, str]]]:
    """The body fields of every ``msg_type`` the session sent, as its audit log recorded the wire bytes."""
    out = []
    (log,) = log_dir.glob(f"{begin}-{sender}-*.messages.log")
    for line in log.read_text(encoding="latin-1").splitlines():
        _, direction, raw = line.split(maxsplit=2)  # the log shows SOH as "|"
        fields = [(int(k), v) for k, _, v in (f.partition("=") for f in raw.strip("|").split("|"))]
        if direction == "out" and (35, msg_type) in fields:
            out.append([(k, v) for k, v in fields if k not in HEADER])
    return out


def loop_config(tmp_path: Path, *, journal: bool = False, begin: str = "FIX.4.4", **fix: Any) -> DeskConfig:
    """The test desk plus the desk's own loopback initiator LOOP (a FIX venue named "loop")."""
    cfg = desk_config(tmp_path, rules={"fix_session_loss": False})
    cfg.matching.journal = journal
    loop = cfg.fix.sessions[0].model_copy(
        update={"name": "loop", "role": "initiator", "sender_comp_id": "LOOP", "target_comp_id": "OPDESK",
                "begin_string": begin, **fix}
    )  # fmt: skip
    cfg.fix.sessions.append(loop)
    return cfg


class Events:
    """Order events of one venue, in order, with a wait for the n-th."""

    def __init__(self, desk: Desk, venue: str) -> None:
        self.items: list[Any] = []
        self._arrived = asyncio.Event()
        for et in (OrderAccepted, Fill, OrderCanceled):
            desk.bus.subscribe(et, self._on)
        self.venue = venue

    def _on(self, ev: Any) -> None:
        if ev.venue == self.venue:
            self.items.append(ev)
            self._arrived.set()

    async def until(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.items) < n:
                self._arrived.clear()
                await self._arrived.wait()


# --- the gateway: AF and H on the wire -------------------------------------------------------------------


async def test_mass_status_reports_every_open_order_with_exact_tags(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path)).build(BUILDERS)
    await d.start()
    try:
        c = await connect(d)
        c.send(nos("o1", "1", "0.05", "65000.5"))
        oid1 = (await c.next()).get_str(37)
        c.send(nos("o2", "2", "0.3", "66000"))
        oid2 = (await c.next()).get_str(37)
        c.send(nos("e1", "1", "1", "3000", symbol="ETH-USD"))
        oid3 = (await c.next()).get_str(37)
        await maker(d, Side.BUY, 100, 132000, "m1")  # takes 0.1 of o2 at 66000
        assert dict(status_body(await c.next()))[150] == "F"

        c.send(Message("AF", [(584, "ms1"), (585, "7")]))
        r1, r2, r3 = await c.next(), await c.next(), await c.next()
        assert status_body(r1) == [
            (37, oid1), (11, "o1"), (584, "ms1"), (911, "3"), (17, "0"), (150, "I"), (39, "0"), (55, "BTC-USD"),
            (54, "1"), (38, "0.05"), (40, "2"), (44, "65000.5"), (59, "1"), (151, "0.05"), (14, "0"), (6, "0"),
        ]  # fmt: skip
        assert status_body(r2) == [
            (37, oid2), (11, "o2"), (584, "ms1"), (911, "3"), (17, "0"), (150, "I"), (39, "1"), (55, "BTC-USD"),
            (54, "2"), (38, "0.3"), (40, "2"), (44, "66000"), (59, "1"), (151, "0.2"), (14, "0.1"), (6, "66000"),
        ]  # fmt: skip
        assert status_body(r3) == [
            (37, oid3), (11, "e1"), (584, "ms1"), (911, "3"), (912, "Y"), (17, "0"), (150, "I"), (39, "0"),
            (55, "ETH-USD"), (54, "1"), (38, "1"), (40, "2"), (44, "3000"), (59, "1"), (151, "1"), (14, "0"),
            (6, "0"),
        ]  # fmt: skip

        # 585=1: one security only; the side qualifier (54) narrows it further.
        c.send(Message("AF", [(584, "ms2"), (585, "1"), (55, "BTC-USD"), (54, "2")]))
        only = status_body(await c.next())
        assert (only[0], only[1], only[2:5]) == ((37, oid2), (11, "o2"), [(584, "ms2"), (911, "1"), (912, "Y")])

        # Nothing matches: one report saying so — TotNumReports 0, last, no order (37=NONE, 39=8, 54=7).
        c.send(Message("AF", [(584, "ms3"), (585, "1"), (55, "ETH-USD"), (54, "2")]))
        assert status_body(await c.next()) == [
            (37, "NONE"), (584, "ms3"), (911, "0"), (912, "Y"), (17, "0"), (150, "I"), (39, "8"), (55, "ETH-USD"),
            (54, "7"), (151, "0"), (14, "0"), (6, "0"), (58, "no orders"),
        ]  # fmt: skip

        # Another client sees only its own orders: none.
        other = await connect(d, "CLIENT2")
        other.send(Message("AF", [(584, "x"), (585, "7")]))
        assert dict(status_body(await other.next()))[911] == "0"

        # A MassStatusReqType the gateway does not serve: BusinessMessageReject, 379 = the request's id.
        seq = c.send(Message("AF", [(584, "ms4"), (585, "3")]))
        rej = await c.next()
        assert rej.msg_type == "j"
        assert status_body(rej) == [
            (45, str(seq)), (372, "AF"), (379, "ms4"), (380, "0"),
            (58, "MassStatusReqType 3 is not supported (1 and 7 are)"),
        ]  # fmt: skip
        assert c.app.empty()
    finally:
        await d.stop()


async def test_mass_status_includes_orders_of_an_earlier_connection(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path, rules={"fix_session_loss": False})).build(BUILDERS)
    await d.start()
    try:
        c = await connect(d)
        c.send(nos("early", "1", "0.05", "64000"))
        oid = (await c.next()).get_str(37)
        await c.initiator.stop("client goes away")
        # The gateway forgets nothing it needs: the order rests on the engine as fix:CLIENT's. Drop the
        # gateway's own record too, as a restart would, so the report comes from the engine.
        d.services["fix"].gateway.orders.clear()
        d.services["fix"].gateway.by_id.clear()
        await c.initiator.start()
        await c.session.wait_state(SessionState.ACTIVE)
        c.send(Message("AF", [(584, "again"), (585, "7")]))
        assert status_body(await c.next())[:8] == [
            (37, oid), (11, "early"), (584, "again"), (911, "1"), (912, "Y"), (17, "0"), (150, "I"), (39, "0"),
        ]  # fmt: skip
        assert d.services["fix"].gateway.counts["adopted"] == 1
    finally:
        await d.stop()


async def test_order_status_request_44(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path)).build(BUILDERS)
    await d.start()
    try:
        c = await connect(d)
        c.send(nos("o1", "1", "0.05", "65000"))
        oid = (await c.next()).get_str(37)
        c.send(Message("H", [(11, "o1"), (790, "st1"), (55, "BTC-USD"), (54, "1")]))
        assert status_body(await c.next()) == [
            (37, oid), (11, "o1"), (790, "st1"), (17, "0"), (150, "I"), (39, "0"), (55, "BTC-USD"), (54, "1"),
            (38, "0.05"), (40, "2"), (44, "65000"), (59, "1"), (151, "0.05"), (14, "0"), (6, "0"),
        ]  # fmt: skip
        c.send(Message("F", [(41, "o1"), (11, "x1"), (55, "BTC-USD"), (54, "1"), (60, TS)]))
        assert dict(status_body(await c.next()))[150] == "4"
        # A closed order is reported as the engine remembers it.
        c.send(Message("H", [(11, "o1"), (55, "BTC-USD"), (54, "1")]))
        assert status_body(await c.next()) == [
            (37, oid), (11, "o1"), (17, "0"), (150, "I"), (39, "4"), (55, "BTC-USD"), (54, "1"), (38, "0.05"),
            (40, "2"), (44, "65000"), (59, "1"), (151, "0"), (14, "0"), (6, "0"),
        ]  # fmt: skip
        c.send(Message("H", [(11, "nope"), (55, "BTC-USD"), (54, "2")]))
        assert status_body(await c.next()) == [
            (37, "NONE"), (11, "nope"), (17, "0"), (150, "I"), (39, "8"), (103, "5"), (55, "BTC-USD"), (54, "2"),
            (151, "0"), (14, "0"), (6, "0"), (58, "unknown order"),
        ]  # fmt: skip
    finally:
        await d.stop()


async def test_order_status_request_42(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path)).build(BUILDERS)
    await d.start()
    try:
        c = await connect(d, "CLIENT42", "FIX.4.2")
        c.send(nos("a1", "2", "0.2", "66000", v42=True))
        oid = (await c.next()).get_str(37)
        await maker(d, Side.BUY, 50, 132000, "m1")
        assert dict(status_body(await c.next()))[150] == "1"
        c.send(Message("H", [(11, "a1"), (55, "BTC-USD"), (54, "2")]))
        # 4.2 has no ExecType I: ExecTransType 3 (Status), ExecType = OrdStatus.
        assert status_body(await c.next()) == [
            (37, oid), (11, "a1"), (17, "0"), (20, "3"), (150, "1"), (39, "1"), (55, "BTC-USD"), (54, "2"),
            (38, "0.2"), (40, "2"), (44, "66000"), (59, "1"), (151, "0.15"), (14, "0.05"), (6, "66000"),
        ]  # fmt: skip
        c.send(Message("H", [(11, "zz"), (55, "BTC-USD"), (54, "1")]))
        assert status_body(await c.next()) == [
            (37, "NONE"), (11, "zz"), (17, "0"), (20, "3"), (150, "8"), (39, "8"), (103, "5"), (55, "BTC-USD"),
            (54, "1"), (151, "0"), (14, "0"), (6, "0"), (58, "unknown order"),
        ]  # fmt: skip
        # AF is not a FIX 4.2 message: refused by the session's dictionary.
        c.send(Message("AF", [(584, "m"), (585, "7")]))
        rej = await c.next()
        assert rej.msg_type == "3" and rej.get_str(372) == "AF"
    finally:
        await d.stop()


# --- the FIX venue asks ------------------------------------------------------------------------------------


async def _place(d: Desk, owner: str, cid: str, price: int, side: Side = Side.BUY) -> None:
    req = OrderRequest(symbol="BTC-USD", side=side, qty=100, price=price, client_id=cid, owner=owner, venue="loop")
    assert await d.router.submit(req)


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
async def test_venue_open_orders_survive_a_restart_with_their_owners(tmp_path: Path, begin: str) -> None:
    cfg = loop_config(tmp_path, journal=True, begin=begin)
    d1 = Desk(cfg).build(BUILDERS)
    ev = Events(d1, "loop")
    await d1.start()
    await _place(d1, "bot-a", "a-1", 120000)
    await _place(d1, "bot-a", "a-2", 120002)
    await _place(d1, "bot-b", "b-1", 140000, Side.SELL)
    await ev.until(3)
    await maker(d1, Side.SELL, 30, 120002, "m1")  # a-2 partly filled
    await ev.until(4)
    # Close the desk without its bots: the orders stay at the venue (the matching journal keeps them).
    await d1.stop()

    d2 = Desk(cfg).build(BUILDERS)
    ev2 = Events(d2, "loop")
    await d2.start()
    try:
        venue = d2.router.venues["loop"]
        assert isinstance(venue, FixVenue) and venue.counts["restored"] == 3
        got = sorted((o.owner, o.client_id, o.side, o.price, o.qty, o.filled_qty) for o in await venue.open_orders())
        assert got == [
            ("bot-a", "a-1", Side.BUY, 120000, 100, 0),
            ("bot-a", "a-2", Side.BUY, 120002, 70, 30),
            ("bot-b", "b-1", Side.SELL, 140000, 100, 0),
        ]
        # a-2's 30 lots filled before the restart: its owner has that fill; none is invented from CumQty.
        assert not [e for e in ev2.items if isinstance(e, Fill)]
        sent = venue.counts["status_requests"]
        assert [o.client_id for o in await venue.open_orders(owner="bot-b")] == ["b-1"]
        assert venue.counts["status_requests"] == sent + 1  # asked again: the venue is the truth
        # Orders it knows only from the store are real orders: they cancel over FIX.
        assert (await d2.router.cancel("loop", "BTC-USD", "a-1", "bot-a")).confirmed
        behind = d2.services["matching"].open_orders(owner="fix:LOOP")
        assert sorted(o.client_id for o in behind) == ["a-2", "b-1"]
        results = await venue.cancel_all()
        assert sorted((r.client_id, r.owner, r.confirmed) for r in results) == [
            ("a-2", "bot-a", True),
            ("b-1", "bot-b", True),
        ]
        assert d2.services["matching"].open_orders(owner="fix:LOOP") == []
    finally:
        await d2.stop()
    # On the wire (the session's audit log): 4.4 asked for all orders with AF 585=7, twice, and cancel_all
    # sent one OrderMassCancelRequest (530=7; the loopback supports it); 4.2 has no AF and asked per
    # ClOrdID it held, with H.
    logs = d2.data_dir / "fix" / "logs"
    if begin == "FIX.4.4":
        asked = sent_by(logs, begin, "LOOP", "AF")
        assert [[(tag, v.split("-")[1]) if tag == 584 else (tag, v) for tag, v in m] for m in asked] == [
            [(584, "ms1"), (585, "7")], [(584, "ms2"), (585, "7")],
        ]  # fmt: skip
        assert [[(t, v) for t, v in m if t != 11] for m in sent_by(logs, begin, "LOOP", "q")] == [[(530, "7")]]
    else:
        h = sent_by(logs, begin, "LOOP", "H")
        # First round: restored orders, OrderID not known yet; later rounds carry the reported 37.
        assert h[:3] == [
            [(11, "a-1"), (55, "BTC-USD"), (54, "1")],
            [(11, "a-2"), (55, "BTC-USD"), (54, "1")],
            [(11, "b-1"), (55, "BTC-USD"), (54, "2")],
        ]
        assert h[3] == [(37, "1"), (11, "a-1"), (55, "BTC-USD"), (54, "1")]


async def test_venue_status_unknown_when_the_session_is_down_or_silent(tmp_path: Path) -> None:
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue = d.router.venues["loop"]
        await _place(d, "bot", "k-1", 120000)
        await ev.until(1)
        # The counterparty swallows AF: no complete answer within status_timeout.
        gateway = d.services["fix"].gateway
        real = gateway.from_app
        gateway.from_app = lambda msg, session: None if msg.msg_type == "AF" else real(msg, session)  # type: ignore[method-assign]
        venue.status_timeout = 0.3
        with pytest.raises(OrderStatusUnavailable, match="no complete mass status answer"):
            await venue.open_orders()
        gateway.from_app = real  # type: ignore[method-assign]
        assert [o.client_id for o in await venue.open_orders()] == ["k-1"]
        # Logged out: unknown at once, no round trip; what the venue believes is still there.
        await d.services["fix"].logout("loop")
        with pytest.raises(OrderStatusUnavailable, match="not logged on"):
            await venue.open_orders()
        assert [o.client_id for o in venue.known_orders()] == ["k-1"]
    finally:
        await d.stop()


async def test_venue_falls_back_to_h_when_the_counterparty_refuses_af(tmp_path: Path) -> None:
    # A counterparty that drops reports for an absent client (no store-and-forward).
    d = Desk(loop_config(tmp_path, store_offline=False)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue = d.router.venues["loop"]
        await _place(d, "bot", "h-1", 120000)
        await _place(d, "bot", "h-2", 120001)
        await ev.until(2)
        # h-2 is canceled while the session is down: the gateway drops the report (the client is away).
        fix = d.services["fix"]
        await fix.logout("loop")
        d.services["matching"].cancel("BTC-USD", owner="fix:LOOP", client_id="h-2")
        await fix.reconnect("loop")
        await venue.session.wait_state(SessionState.ACTIVE)
        assert sorted(o.client_id for o in venue.known_orders()) == ["h-1", "h-2"]
        gateway = d.services["fix"].gateway
        real = gateway.from_app

        def no_af(msg: FixMessage, session: Any) -> Any:
            if msg.msg_type == "AF":
                from engines.fix.errors import UnsupportedMessageType

                raise UnsupportedMessageType("AF")
            return real(msg, session)

        gateway.from_app = no_af  # type: ignore[method-assign]
        assert [o.client_id for o in await venue.open_orders()] == ["h-1"]
        assert venue.mass_status is False and venue.counts["vanished"] == 1
        assert [o.client_id for o in venue.known_orders()] == ["h-1"]
    finally:
        await d.stop()


async def test_venue_falls_back_to_h_on_a_session_reject_of_af(tmp_path: Path) -> None:
    # A counterparty whose dictionary lacks AF answers with a session-level Reject (35=3 372=AF).
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue = d.router.venues["loop"]
        await _place(d, "bot", "s-1", 120000)
        await ev.until(1)
        gateway = d.services["fix"].gateway
        real = gateway.from_app

        def reject_af(msg: FixMessage, session: Any) -> Any:
            if msg.msg_type == "AF":
                raise IncorrectTagValue(585)  # the session answers 35=3 373=5 371=585 372=AF
            return real(msg, session)

        gateway.from_app = reject_af  # type: ignore[method-assign]
        assert [o.client_id for o in await venue.open_orders()] == ["s-1"]
        assert venue.mass_status is False
    finally:
        await d.stop()


async def test_venue_reports_orders_it_did_not_send_unattributed_and_cancels_them(tmp_path: Path) -> None:
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue = d.router.venues["loop"]
        await _place(d, "bot", "u-1", 120000)
        await ev.until(1)
        venue._forget(venue._orders["u-1"])  # as if another process had sent it on this session
        assert await venue.open_orders(owner="bot") == []  # no bot claims it ...
        (o,) = await venue.open_orders()  # ... a desk-wide query sees it, owner unknown
        assert (o.client_id, o.owner, o.qty, o.price) == ("u-1", "", 100, 120000)
        assert venue.counts["adopted"] == 1
        (r,) = await venue.cancel_all()
        assert (r.client_id, r.owner, r.confirmed) == ("u-1", "", True)
        assert d.services["matching"].open_orders(owner="fix:LOOP") == []
    finally:
        await d.stop()


async def test_fills_missed_while_disconnected_are_learned_from_status_reports(tmp_path: Path) -> None:
    # A counterparty that drops reports for an absent client (no store-and-forward; see
    # tests/test_fix_store_forward.py for the replay): the venue learns the fills from status reports.
    d = Desk(loop_config(tmp_path, store_offline=False)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue, fix, risk = d.router.venues["loop"], d.services["fix"], d.services["risk"]
        for cid, px in (("p-1", 120000), ("p-2", 120002), ("p-3", 120004)):
            await _place(d, "bot", cid, px)
        await ev.until(3)
        await fix.logout("loop")  # from here the gateway's reports to LOOP are dropped
        await maker(d, Side.SELL, 30, 120004, "m1")  # p-3: 30
        await maker(d, Side.SELL, 100, 120002, "m2")  # p-3: 70 (filled), p-2: 30
        d.services["matching"].cancel("BTC-USD", owner="fix:LOOP", client_id="p-2")  # p-2 canceled, 30 filled
        await maker(d, Side.SELL, 10, 120000, "m3")  # p-1: 10
        await fix.reconnect("loop")
        await venue.session.wait_state(SessionState.ACTIVE)
        assert len(ev.items) == 3

        (o,) = await venue.open_orders()
        assert (o.client_id, o.qty, o.filled_qty) == ("p-1", 90, 10)
        learned = [
            (type(e).__name__, e.client_id, getattr(e, "qty", None) or getattr(e, "canceled_qty", None),
             e.price, getattr(e, "leaves_qty", None))
            for e in ev.items[3:]
        ]  # fmt: skip
        assert learned == [
            ("Fill", "p-1", 10, 120000, 90),  # AF: still open, CumQty 10
            ("Fill", "p-2", 30, 120002, 70),  # H: canceled after 30 filled ...
            ("OrderCanceled", "p-2", 70, 120002, None),  # ... and then the rest canceled
            ("Fill", "p-3", 100, 120004, 0),  # H: filled while we were away
        ]
        # Risk sees the bot's true position and open quantity, counted once.
        assert risk.positions.qty("bot", "BTC-USD") == 140
        assert risk.orders.open_side_qty("bot", "BTC-USD", Side.BUY) == 90
        assert [o.client_id for o in venue.known_orders()] == ["p-1"]
    finally:
        await d.stop()


# --- risk: a loopback order counts once -----------------------------------------------------------------------


async def test_loopback_order_counts_once_in_risk(tmp_path: Path) -> None:
    cfg = loop_config(tmp_path)
    cfg.risk.limits.max_orders_per_second = 100.0
    d = Desk(cfg).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        risk = d.services["risk"]
        assert risk.gate.upstream == frozenset({"fix:LOOP"})
        await _place(d, "bot", "r-1", 120000)
        await ev.until(1)
        # One open order, under its real owner and venue; one rate token, taken by the bot.
        assert [(v, o.owner, o.client_id) for v, _, o in risk.orders.open_orders()] == [("loop", "bot", "r-1")]
        assert risk.orders.per_symbol == {"BTC-USD": 1}
        assert risk.orders.open_side_qty("bot", "BTC-USD", Side.BUY) == 100
        assert risk.orders.open_side_qty("fix:LOOP", "BTC-USD", Side.BUY) == 0
        assert set(risk.gate._buckets) == {"bot"}
        assert risk.gate._buckets["bot"].tokens == pytest.approx(99.0, abs=0.01)
        assert risk.gate.checked == 1
        await maker(d, Side.SELL, 40, 120000, "m1")
        await ev.until(2)
        # One position: the bot's 40 lots long (the maker's 40 short); none for the gateway's client.
        assert {k: p.qty for k, p in risk.positions.positions.items()} == {
            ("bot", "BTC-USD"): 40,
            ("maker", "BTC-USD"): -40,
        }
        assert risk.orders.open_side_qty("bot", "BTC-USD", Side.BUY) == 60
    finally:
        await d.stop()


async def test_external_clients_are_always_gated(tmp_path: Path) -> None:
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    await d.start()
    try:
        c = await connect(d)  # fix:CLIENT: max_order_qty 1 (desk_config)
        c.send(nos("big", "1", "2", "65000"))
        er = dict(status_body(await c.next()))
        assert (er[150], er[103]) == ("8", "3")
        assert "fix:CLIENT" not in d.services["risk"].gate.upstream
    finally:
        await d.stop()


def test_gated_upstream_only_for_the_desks_own_loopback() -> None:
    base = {"sender_comp_id": "OPDESK", "target_comp_id": "EXT", "role": "acceptor", "name": "ext"}
    with pytest.raises(ValidationError, match="external FIX clients are always gated"):
        FixConfig(sessions=[{**base, "gated_upstream": True}])
    with pytest.raises(ValidationError, match="only the desk's own loopback"):
        FixConfig(sessions=[{"name": "remote", "sender_comp_id": "ME", "target_comp_id": "BROKER", "port": 9876,
                             "gated_upstream": True}])  # fmt: skip
    loop = {"name": "loop", "sender_comp_id": "LOOP", "target_comp_id": "OPDESK"}
    assert FixConfig(sessions=[loop]).upstream_gated_owners() == {"fix:LOOP"}
    assert FixConfig(sessions=[{**loop, "gated_upstream": False}]).upstream_gated_owners() == set()
    counterpart = {"name": "loop-acc", "role": "acceptor", "sender_comp_id": "OPDESK", "target_comp_id": "LOOP"}
    assert FixConfig(sessions=[loop, {**counterpart, "gated_upstream": True}]).upstream_gated_owners() == {"fix:LOOP"}
    assert FixConfig(sessions=[loop, {**counterpart, "gated_upstream": False}]).upstream_gated_owners() == set()


def test_fill_trade_ids_come_from_the_exec_id_in_every_process() -> None:
    # A fill replayed after a restart (ResendRequest) must carry the trade id it had before, so a bot's
    # P&L, which dedupes on (order_id, trade_id), counts it once.
    from engines.bus import Bus

    a, b = (FixVenue("v", bus=Bus(), instruments={}) for _ in range(2))
    assert a._trade_id(b"6b0247a7a1b2-12") == b._trade_id(b"6b0247a7a1b2-12") != a._trade_id(b"6b0247a7a1b2-13")
    assert 0 <= a._trade_id(b"x") < 1 << 56
