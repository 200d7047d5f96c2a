"""OrderMassCancelRequest (q) / OrderMassCancelReport (r), FIX 4.4: the gateway on the wire with exact tags,
the FIX venue's cancel_all through it (and its fallback to per-order cancels), and a kill of a desk whose
bot trades on the loopback FIX venue.

Real desks (matching, risk, FIX builders; SQLite in tmp_path), real sockets on 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engines.fix.errors import UnsupportedMessageType
from engines.fix.message import FixMessage, Message
from engines.fix.venue import FixVenue
from engines.orders import OrderCanceled, Side
from engines.runtime import Desk
from tests.test_fix_gateway import BUILDERS, TS, body, connect, desk_config, nos
from tests.test_fix_venue_status import Events, _place, loop_config, sent_by


def report_body(msg: FixMessage) -> list[tuple[int, str]]:
    """An r's fields without the header and TransactTime; our id for the request (37) shown as '*mc'."""
    out = body(msg)
    return [(t, "*mc" if t == 37 and re.fullmatch(r"[0-9a-f]+-mc\d+", v) else v) for t, v in out]


def wire(log_dir: Path, begin: str, sender: str, target: str) -> list[tuple[str, list[tuple[int, str]]]]:
    """Every message of one session's audit log: (direction, fields) in order."""
    out = []
    for line in (log_dir / f"{begin}-{sender}-{target}.messages.log").read_text(encoding="latin-1").splitlines():
        _, direction, raw = line.split(maxsplit=2)  # the log shows SOH as "|"
        fields = [(int(k), v) for k, _, v in (f.partition("=") for f in raw.strip("|").split("|"))]
        out.append((direction, [(k, v) for k, v in fields if k not in (8, 9)]))
    return out


def q(cl: str, req_type: str, **tags: str) -> Message:
    m = Message("q", [(11, cl), (530, req_type)])
    if "symbol" in tags:
        m.append(55, tags["symbol"])
    if "side" in tags:
        m.append(54, tags["side"])
    return m.append(60, TS)


async def test_mass_cancel_on_the_wire(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path, rules={"fix_session_loss": False})).build(BUILDERS)
    await d.start()
    try:
        c = await connect(d)
        other = await connect(d, "CLIENT2")
        oids = {}
        for cl, side, qty, px, sym in (("o1", "1", "0.05", "64000", "BTC-USD"), ("o2", "2", "0.02", "66000", "BTC-USD"),
                                       ("e1", "1", "1", "3000", "ETH-USD")):  # fmt: skip
            c.send(nos(cl, side, qty, px, symbol=sym))
            oids[cl] = (await c.next()).get_str(37)
        other.send(nos("keep", "1", "0.01", "63000"))
        await other.next()

        # 530=1: one security; its orders are canceled one report each (150=4), then the r.
        c.send(q("mc1", "1", symbol="BTC-USD"))
        canceled = [await c.next() for _ in range(2)]
        assert [(m.get_str(11), m.get_str(150), m.get_str(39), m.get_str(151)) for m in canceled] == [
            ("o1", "4", "4", "0"), ("o2", "4", "4", "0"),
        ]  # fmt: skip
        r = await c.next()
        assert r.msg_type == "r"
        assert report_body(r) == [
            (11, "mc1"), (37, "*mc"), (530, "1"), (531, "1"), (533, "2"), (534, "2"), (41, "o1"), (535, oids["o1"]),
            (41, "o2"), (535, oids["o2"]), (55, "BTC-USD"),
        ]  # fmt: skip

        # 530=7: everything left of this client (e1), nothing of CLIENT2's.
        c.send(q("mc2", "7"))
        e1 = await c.next()
        assert (e1.get_str(11), e1.get_str(150), e1.get_str(55)) == ("e1", "4", "ETH-USD")
        assert report_body(await c.next()) == [
            (11, "mc2"), (37, "*mc"), (530, "7"), (531, "7"), (533, "1"), (534, "1"), (41, "e1"), (535, oids["e1"]),
        ]  # fmt: skip
        assert [o.client_id for o in d.services["matching"].open_orders(owner="fix:CLIENT2")] == ["keep"]

        # Nothing left: answered all the same, 533=0 and no group.
        c.send(q("mc3", "7"))
        assert report_body(await c.next()) == [(11, "mc3"), (37, "*mc"), (530, "7"), (531, "7"), (533, "0")]

        # The side qualifier (54) narrows it.
        c.send(nos("s1", "1", "0.01", "60000"))
        c.send(nos("s2", "2", "0.01", "70000"))
        s2 = [(await c.next()).get_str(37) for _ in range(2)][1]
        c.send(q("mc4", "7", side="2"))
        assert (await c.next()).get_str(11) == "s2"
        assert report_body(await c.next())[4:] == [(533, "1"), (534, "1"), (41, "s2"), (535, s2), (54, "2")]

        # Request types the gateway does not serve, an unknown security: r with 531=0 and the reason.
        c.send(q("mc5", "3"))
        assert report_body(await c.next()) == [
            (11, "mc5"), (37, "*mc"), (530, "3"), (531, "0"), (532, "0"), (533, "0"),
            (58, "MassCancelRequestType 3 is not supported (1 and 7 are)"),
        ]  # fmt: skip
        c.send(q("mc6", "1", symbol="XRP-USD"))
        assert report_body(await c.next()) == [
            (11, "mc6"), (37, "*mc"), (530, "1"), (531, "0"), (532, "1"), (533, "0"), (55, "XRP-USD"),
            (58, "unknown symbol XRP-USD"),
        ]  # fmt: skip
        # A required tag missing: the session's Reject (373=1, 371=530); 530=1 without the symbol too.
        seq = c.send(Message("q", [(11, "mc7"), (60, TS)]))
        rej = await c.next()
        assert (rej.msg_type, rej.get_str(45), rej.get_str(373), rej.get_str(371), rej.get_str(372)) == (
            "3", str(seq), "1", "530", "q",
        )  # fmt: skip
        seq = c.send(Message("q", [(11, "mc8"), (530, "1"), (60, TS)]))
        rej = await c.next()
        assert (rej.msg_type, rej.get_str(45), rej.get_str(371)) == ("3", str(seq), "55")
        assert d.services["fix"].gateway.counts["mass_cancels"] == 6
        assert [o.client_id for o in d.services["matching"].open_orders(owner="fix:CLIENT")] == ["s1"]
        assert c.app.empty()

        # FIX 4.2 has no q: not in its dictionary, a session Reject (invalid MsgType).
        c42 = await connect(d, "CLIENT42", "FIX.4.2")
        seq = c42.send(Message("q", [(11, "x"), (530, "7"), (60, TS)]))
        rej = await c42.next()
        assert (rej.msg_type, rej.get_str(45), rej.get_str(372)) == ("3", str(seq), "q")
    finally:
        await d.stop()


async def test_fix_venue_cancel_all_is_one_mass_cancel(tmp_path: Path) -> None:
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue = d.router.venues["loop"]
        assert isinstance(venue, FixVenue) and venue.mass_cancel
        await _place(d, "bot-a", "a-1", 120000)
        await _place(d, "bot-a", "a-2", 120002)
        await _place(d, "bot-b", "b-1", 140000, Side.SELL)
        await ev.until(3)
        # A bot's own cancel_all cannot be a session-wide q: per order.
        (r,) = await venue.cancel_all(owner="bot-b")
        assert (r.client_id, r.confirmed) == ("b-1", True)
        await _place(d, "bot-b", "b-2", 140002, Side.SELL)
        await ev.until(5)
        results = await venue.cancel_all()
        assert sorted((r.client_id, r.owner, r.confirmed, r.reason) for r in results) == [
            ("a-1", "bot-a", True, ""), ("a-2", "bot-a", True, ""), ("b-2", "bot-b", True, ""),
        ]  # fmt: skip
        assert sorted(e.client_id for e in ev.items if isinstance(e, OrderCanceled)) == ["a-1", "a-2", "b-1", "b-2"]
        assert d.services["matching"].open_orders(owner="fix:LOOP") == []
        assert venue.counts["mass_cancels"] == 1 and venue.known_orders() == []
    finally:
        await d.stop()
    logs = d.data_dir / "fix" / "logs"
    assert [[(t, v) for t, v in m if t != 11] for m in sent_by(logs, "FIX.4.4", "LOOP", "q")] == [[(530, "7")]]
    assert [dict(m)[41] for m in sent_by(logs, "FIX.4.4", "LOOP", "F")] == ["b-1"]  # only the bot's own
    (r,) = [f for direction, f in wire(logs, "FIX.4.4", "OPDESK", "LOOP") if direction == "out" and f[0] == (35, "r")]
    assert [(t, v) for t, v in r if t in (530, 531, 533, 534, 41)] == [
        (530, "7"), (531, "7"), (533, "3"), (534, "3"), (41, "a-1"), (41, "a-2"), (41, "b-2"),
    ]  # fmt: skip


async def test_fix_venue_falls_back_to_per_order_cancels_when_q_is_refused(tmp_path: Path) -> None:
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue = d.router.venues["loop"]
        assert isinstance(venue, FixVenue)
        await _place(d, "bot", "f-1", 120000)
        await _place(d, "bot", "f-2", 120002)
        await ev.until(2)
        gateway = d.services["fix"].gateway
        real = gateway.from_app

        def no_q(msg: FixMessage, session: Any) -> Any:
            if msg.msg_type == "q":
                raise UnsupportedMessageType("q")  # BusinessMessageReject 380=3
            return real(msg, session)

        gateway.from_app = no_q  # type: ignore[method-assign]
        results = await venue.cancel_all()
        assert sorted((r.client_id, r.confirmed) for r in results) == [("f-1", True), ("f-2", True)]
        assert venue.mass_cancel is False and venue.counts["mass_cancels"] == 0
        assert d.services["matching"].open_orders(owner="fix:LOOP") == []
    finally:
        await d.stop()
    logs = d.data_dir / "fix" / "logs"
    assert len(sent_by(logs, "FIX.4.4", "LOOP", "q")) == 1
    assert sorted(dict(m)[41] for m in sent_by(logs, "FIX.4.4", "LOOP", "F")) == ["f-1", "f-2"]


async def test_kill_of_a_desk_trading_on_the_loopback_fix_venue_confirms_every_cancel(tmp_path: Path) -> None:
    cfg = loop_config(tmp_path, journal=True)
    d = Desk(cfg).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        for i in range(5):
            await _place(d, "bot", f"k-{i}", 120000 + i)
            await _place(d, "bot", f"s-{i}", 140000 + i, Side.SELL)
        await ev.until(10)
        ks = d.services["killswitch"]
        report = await ks.kill(reason="test kill", source="test")
        assert report.pending == () and report.requested == report.confirmed > 0
        canceled = sorted(e.client_id for e in ev.items if isinstance(e, OrderCanceled))
        assert canceled == sorted([f"k-{i}" for i in range(5)] + [f"s-{i}" for i in range(5)])
        assert d.services["matching"].open_orders() == []
        venue = d.router.venues["loop"]
        assert isinstance(venue, FixVenue) and venue.known_orders() == [] and venue.counts["mass_cancels"] == 1
        assert ks.pending == {}
    finally:
        await d.stop()
    logs = d.data_dir / "fix" / "logs"
    assert [[(t, v) for t, v in m if t != 11] for m in sent_by(logs, "FIX.4.4", "LOOP", "q")] == [[(530, "7")]]
    assert sent_by(logs, "FIX.4.4", "LOOP", "F") == []  # no per-order cancel was needed
    # The desk-wide kill reaches the matching engine directly too (the gateway's side of the loopback is
    # an owner there), whose bulk cancel runs first: the r finds nothing left (533=0) and the venue
    # confirms each order from the 150=4 reports that came before it.
    (r,) = [f for direction, f in wire(logs, "FIX.4.4", "OPDESK", "LOOP") if direction == "out" and f[0] == (35, "r")]
    assert [(t, v) for t, v in r if t in (530, 531, 533)] == [(530, "7"), (531, "7"), (533, "0")]
