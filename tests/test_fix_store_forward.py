"""Store-and-forward on acceptor sessions: reports for a client that is not logged on are stored under the
session's next MsgSeqNum and replayed (PossDup, OrigSendingTime) on the client's ResendRequest after it
logs on again — also after a desk restart and a SIGKILL — and the FIX venue applies such a fill once.

Real desks (matching, risk, FIX builders; SQLite in tmp_path), real sockets on 127.0.0.1; the messages on
the wire are read back from the desk's audit log and the client's inbox, tag by tag.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from engines.fix.events import SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import FixMessage, Message, encode, parse, parse_utc_timestamp
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import MemoryStore, ResetPolicy, SqliteStore
from engines.fix.venue import FixVenue
from engines.orders import Fill, OrderCanceled, Side
from engines.runtime import Desk
from tests.test_fix_gateway import BUILDERS, Client, Connected, body, desk_config, maker, nos
from tests.test_fix_interop import HAVE_QUICKFIX, TS, QuickFIX
from tests.test_fix_venue_status import Events, _place, loop_config


def wire(log_dir: Path, begin: str, sender: str, target: str) -> list[tuple[str, dict[int, str]]]:
    """Every message of one session's audit log: (direction, fields) in order."""
    out = []
    log = log_dir / f"{begin}-{sender}-{target}.messages.log"
    for line in log.read_text(encoding="latin-1").splitlines():
        _, direction, raw = line.split(maxsplit=2)  # the log shows SOH as "|"
        out.append((direction, {int(k): v for k, _, v in (f.partition("=") for f in raw.strip("|").split("|"))}))
    return out


def brief(fields: dict[int, str]) -> tuple[str, ...]:
    """MsgType, MsgSeqNum and the session-level tags that matter here."""
    keys = (35, 34, 43, 7, 16, 123, 36, 141)
    return tuple(f"{k}={fields[k]}" for k in keys if k in fields)


async def client(port: int, comp_id: str = "CLIENT", *, store: MemoryStore | None = None,
                 reset: ResetPolicy = ResetPolicy.NEVER) -> Connected:  # fmt: skip
    app = Client()
    session = Session(
        SessionID("FIX.4.4", comp_id, "OPDESK"), SessionSettings(heartbeat_interval=30, reset=reset), app,
        store or MemoryStore(),
    )  # fmt: skip
    initiator = Initiator(session, "127.0.0.1", port, seed=1)
    await initiator.start()
    await session.wait_state(SessionState.ACTIVE)
    return Connected(session, app, initiator)


async def test_fill_while_away_is_replayed_after_the_clients_resend_request(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path, rules={"fix_session_loss": False})).build(BUILDERS)
    await d.start()
    try:
        fix = d.services["fix"]
        c = await client(fix.acceptor.port)
        c.send(nos("r1", "1", "0.05", "65000"))
        ack = await c.next()
        oid = ack.get_str(37)
        await c.initiator.stop("client goes away")  # Logout exchanged: acceptor out 3, in 3
        acc = fix.acceptor.session("OPDESK", "CLIENT")
        assert acc.state is SessionState.DISCONNECTED and acc.next_sender_seq == 4

        await maker(d, Side.SELL, 50, 130000, "m1")  # fills r1 (0.05 @ 65000) while CLIENT is away
        gw = fix.gateway
        await gw.drain()
        assert (gw.counts["dropped"], gw.counts["stored"], acc.next_sender_seq) == (0, 1, 5)
        await acc.flushed()  # the offline commit (it runs at the end of the turn anyway)
        ((seq, raw),) = await fix.store.messages(acc.key, 4, 0)
        assert seq == 4 and parse(raw).msg_type == "8"  # committed before anyone asked

        await c.initiator.start()
        await c.session.wait_state(SessionState.ACTIVE)
        rep = await c.next()
        assert (rep.msg_type, rep.seq_num, rep.get(43)) == ("8", 4, b"Y")
        orig, sent = parse_utc_timestamp(rep.get(122)), parse_utc_timestamp(rep.get(52))
        assert orig is not None and sent is not None and orig <= sent
        assert orig == parse_utc_timestamp(parse(raw).get(52))  # OrigSendingTime = the stored SendingTime
        assert [(t, v) for t, v in body(rep) if t not in (43, 122)] == [
            (37, oid), (11, "r1"), (17, "*"), (150, "F"), (39, "2"), (55, "BTC-USD"), (54, "1"), (38, "0.05"),
            (40, "2"), (44, "65000"), (59, "1"), (32, "0.05"), (31, "65000"), (151, "0"), (14, "0.05"),
            (6, "65000"), (12, "0"), (13, "3"), (851, "1"),
        ]  # fmt: skip
        assert rep.get(17) == parse(raw).get(17)  # the same execution, the same ExecID
        await c.session.wait_for(lambda: c.session.next_target_seq == 6)
        assert c.app.empty() and not c.session.resend_pending
    finally:
        await d.stop()
    # On the wire, as the desk's audit log has it: the second logon, the client's gap, the replay.
    log = [(d_, brief(f)) for d_, f in wire(d.data_dir / "fix" / "logs", "FIX.4.4", "OPDESK", "CLIENT")]
    second = log[[i for i, (_, b) in enumerate(log) if b[0] == "35=A"][2] :]
    assert second[:5] == [
        ("in", ("35=A", "34=4")),
        ("out", ("35=A", "34=5")),
        ("in", ("35=2", "34=5", "7=4", "16=0")),
        ("out", ("35=8", "34=4", "43=Y")),
        ("out", ("35=4", "34=5", "43=Y", "123=Y", "36=6")),
    ]


async def test_cancel_and_expiry_while_away_in_order_and_nothing_dropped(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path, rules={"fix_session_loss": False})).build(BUILDERS)
    await d.start()
    try:
        fix = d.services["fix"]
        c = await client(fix.acceptor.port)
        c.send(nos("a1", "1", "0.05", "64000"))
        c.send(nos("a2", "1", "0.02", "64001"))
        assert [(await c.next()).get_str(39) for _ in range(2)] == ["0", "0"]
        await c.initiator.stop("away")
        d.services["matching"].cancel("BTC-USD", owner="fix:CLIENT", client_id="a1")
        await maker(d, Side.SELL, 10, 128002, "m1")  # a2: 0.01 of 0.02
        await d.services["killswitch"].kill(reason="test", source="test")  # a2's rest canceled by the kill switch
        gw = fix.gateway
        await gw.drain()
        assert (gw.counts["dropped"], gw.counts["stored"]) == (0, 3)
        await c.initiator.start()
        await c.session.wait_state(SessionState.ACTIVE)
        got = [await c.next() for _ in range(3)]
        assert [(m.seq_num, m.get_str(43), m.get_str(11), m.get_str(150), m.get_str(39), m.get_str(14))
                for m in got] == [
            (5, "Y", "a1", "4", "4", "0"),
            (6, "Y", "a2", "F", "1", "0.01"),
            (7, "Y", "a2", "4", "4", "0.01"),
        ]  # fmt: skip
    finally:
        await d.stop()


async def test_stored_reports_survive_a_desk_restart(tmp_path: Path) -> None:
    cfg = desk_config(tmp_path, rules={"fix_session_loss": False})
    cfg.matching.journal = True
    d1 = Desk(cfg).build(BUILDERS)
    await d1.start()
    cstore = MemoryStore()  # the client keeps its own sequence numbers across our restart
    c = await client(d1.services["fix"].acceptor.port, store=cstore)
    c.send(nos("k1", "2", "0.03", "66000"))
    oid = (await c.next()).get_str(37)
    await c.initiator.stop("away")
    await d1.stop()

    d2 = Desk(cfg).build(BUILDERS)
    await d2.start()
    try:
        fix = d2.services["fix"]
        acc = fix.acceptor.session("OPDESK", "CLIENT")
        assert (acc.state, acc.next_sender_seq) == (SessionState.DISCONNECTED, 4)
        await maker(d2, Side.BUY, 30, 132000, "m1")  # the restored order fills while CLIENT is away
        await fix.gateway.drain()
        assert (fix.gateway.counts["dropped"], fix.gateway.counts["stored"], fix.gateway.counts["adopted"]) == (0, 1, 1)
        c.initiator.port = fix.acceptor.port
        await c.initiator.start()
        await c.session.wait_state(SessionState.ACTIVE)
        rep = await c.next()
        assert (rep.seq_num, rep.get(43), rep.get_str(37), rep.get_str(11), rep.get_str(150), rep.get_str(39),
                rep.get_str(32), rep.get_str(31), rep.get_str(14)) == (4, b"Y", oid, "k1", "F", "2", "0.03",
                                                                       "66000", "0.03")  # fmt: skip
        assert rep.get(122) is not None
    finally:
        await d2.stop()


CHILD = r"""
import asyncio, sys
from engines.fix.message import Message
from engines.fix.session import Session, SessionID
from engines.fix.store import SqliteStore

async def main():
    s = Session(SessionID("FIX.4.4", "OPDESK", "CLIENT"), store=SqliteStore(sys.argv[1]), role="acceptor")
    await s.open()
    n = 0
    while True:
        for _ in range(7):  # several messages per loop turn: one commit for them
            n += 1
            seq = s.send_nowait(Message("8", [(37, n), (11, f"c{n}"), (17, f"e{n}"), (150, "0"), (39, "0")]))
        await s.flushed()  # committed: from here the messages are the client's, whatever happens
        print(seq, flush=True)

asyncio.run(main())
"""


async def test_sigkill_while_storing_for_an_absent_client_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "fix.sqlite"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(db), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert child.stdout is not None
    confirmed = 0
    try:
        async with asyncio.timeout(20):
            while confirmed < 2000:
                confirmed = int(await child.stdout.readline())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    store = SqliteStore(db)
    await store.open()
    try:
        seqs = await store.load("FIX.4.4:OPDESK->CLIENT")
        msgs = await store.messages("FIX.4.4:OPDESK->CLIENT", 1, 0)
    finally:
        await store.close()
    # Every message confirmed before the kill is there, under its number; the next number is past all.
    assert [s for s, _ in msgs][:confirmed] == list(range(1, confirmed + 1))
    assert all(parse(raw).get_str(11) == f"c{s}" for s, raw in msgs)
    assert seqs.next_sender == len(msgs) + 1 > confirmed


async def test_reset_seq_num_logon_discards_stored_reports(tmp_path: Path) -> None:
    d = Desk(desk_config(tmp_path, rules={"fix_session_loss": False})).build(BUILDERS)
    await d.start()
    try:
        fix = d.services["fix"]
        c = await client(fix.acceptor.port)
        c.send(nos("z1", "1", "0.05", "65000"))
        await c.next()
        await c.initiator.stop("away")
        await maker(d, Side.SELL, 50, 130000, "m1")
        await fix.gateway.drain()
        acc = fix.acceptor.session("OPDESK", "CLIENT")
        assert acc.stored_offline == 1
        # The client logs on with ResetSeqNumFlag: both sides start at 1 and the stored report is gone
        # (QuickFIX does the same); the client learns the fill by asking for order status.
        c.session.settings.reset = ResetPolicy.LOGON
        await c.initiator.start()
        await c.session.wait_state(SessionState.ACTIVE)
        assert (c.session.next_target_seq, acc.next_sender_seq) == (2, 2)
        await acc.flushed()
        assert await fix.store.messages(acc.key, 1, 0) == []
        c.send(Message("H", [(11, "z1"), (55, "BTC-USD"), (54, "1")]))
        st = await c.next()
        assert (st.seq_num, st.get_str(150), st.get_str(39), st.get_str(14)) == (2, "I", "2", "0.05")
    finally:
        await d.stop()


async def test_store_offline_off_drops_as_before(tmp_path: Path) -> None:
    cfg = desk_config(tmp_path, rules={"fix_session_loss": False})
    cfg.fix.sessions[0] = cfg.fix.sessions[0].model_copy(update={"store_offline": False})
    d = Desk(cfg).build(BUILDERS)
    await d.start()
    try:
        fix = d.services["fix"]
        c = await client(fix.acceptor.port)
        c.send(nos("x1", "1", "0.05", "65000"))
        await c.next()
        await c.initiator.stop("away")
        await maker(d, Side.SELL, 50, 130000, "m1")
        await fix.gateway.drain()
        assert (fix.gateway.counts["dropped"], fix.gateway.counts["stored"]) == (1, 0)
        assert fix.acceptor.session("OPDESK", "CLIENT").next_sender_seq == 4
    finally:
        await d.stop()


# --- the FIX venue (initiator side) applies a replayed fill once ----------------------------------------


async def test_fix_venue_applies_a_replayed_fill_once_with_status_requests(tmp_path: Path) -> None:
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue, fix, risk = d.router.venues["loop"], d.services["fix"], d.services["risk"]
        assert isinstance(venue, FixVenue)
        for cid, px in (("p-1", 120000), ("p-2", 120002), ("p-3", 120004)):
            await _place(d, "bot", cid, px)
        await ev.until(3)
        await fix.logout("loop")
        await maker(d, Side.SELL, 30, 120004, "m1")  # p-3: 30
        await maker(d, Side.SELL, 100, 120002, "m2")  # p-3: 70 (filled), p-2: 30
        d.services["matching"].cancel("BTC-USD", owner="fix:LOOP", client_id="p-2")  # p-2: rest canceled
        await fix.gateway.drain()
        assert (fix.gateway.counts["dropped"], fix.gateway.counts["stored"]) == (0, 4)
        await fix.reconnect("loop")
        await venue.session.wait_state(SessionState.ACTIVE)
        # The stored reports come back (PossDup) and are applied as they happened, not summarised.
        await ev.until(7)
        got = [(type(e).__name__, e.client_id, getattr(e, "qty", None) or getattr(e, "canceled_qty", None),
                e.price) for e in ev.items[3:]]  # fmt: skip
        assert got == [
            ("Fill", "p-3", 30, 120004),
            ("Fill", "p-3", 70, 120004),
            ("Fill", "p-2", 30, 120002),
            ("OrderCanceled", "p-2", 70, 120002),
        ]
        # The status request that follows (a bot reconciling) reports the same: nothing learned twice.
        (o,) = await venue.open_orders()
        assert (o.client_id, o.qty, o.filled_qty) == ("p-1", 100, 0)
        assert len(ev.items) == 7 and venue.counts["fills"] == 3
        assert risk.positions.qty("bot", "BTC-USD") == 130
        assert [o.client_id for o in venue.known_orders()] == ["p-1"]
    finally:
        await d.stop()


def _report(seq: int, fields: list[tuple[int, str]], *, poss_dup: bool = False) -> FixMessage:
    """An ExecutionReport from the gateway (OPDESK) to LOOP, as bytes off the wire."""
    body = b"".join(b"%d=%s\x01" % (t, v.encode()) for t, v in fields)
    now = b"20260101-00:00:01.000"
    extra = b"43=Y\x01122=20260101-00:00:00.000\x01" if poss_dup else b""
    return parse(encode(b"FIX.4.4", b"8", seq, b"OPDESK", b"LOOP", now, body, extra))


async def test_fill_learned_from_status_first_is_not_applied_again_from_the_replay(tmp_path: Path) -> None:
    """The other order of arrival: a status report tells of a fill (CumQty ahead), then the stored report of
    that execution arrives (PossDup). The fill counts once; a later, real fill still counts."""
    d = Desk(loop_config(tmp_path)).build(BUILDERS)
    ev = Events(d, "loop")
    await d.start()
    try:
        venue, risk = d.router.venues["loop"], d.services["risk"]
        assert isinstance(venue, FixVenue)
        await _place(d, "bot", "q-1", 120000)
        await ev.until(1)
        session = venue.session
        assert session is not None
        order = [(37, "1"), (11, "q-1")]
        common = [(55, "BTC-USD"), (54, "1"), (38, "0.1"), (40, "2"), (44, "60000"), (59, "1")]
        venue.from_app(_report(90, [*order, (17, "0"), (150, "I"), (39, "1"), *common, (151, "0.07"),
                                    (14, "0.03"), (6, "60000")]), session)  # fmt: skip
        venue.from_app(_report(89, [*order, (17, "x-7"), (150, "F"), (39, "1"), *common, (32, "0.03"),
                                    (31, "60000"), (151, "0.07"), (14, "0.03"), (6, "60000")], poss_dup=True),
                       session)  # fmt: skip
        venue.from_app(_report(91, [*order, (17, "x-8"), (150, "F"), (39, "1"), *common, (32, "0.02"),
                                    (31, "60000"), (151, "0.05"), (14, "0.05"), (6, "60000")]), session)  # fmt: skip
        fills = [(e.qty, e.leaves_qty) for e in ev.items if isinstance(e, Fill)]
        assert fills == [(30, 70), (20, 50)]
        assert venue.counts["duplicates"] == 1
        assert risk.positions.qty("bot", "BTC-USD") == 50
        assert not [e for e in ev.items if isinstance(e, OrderCanceled)]
    finally:
        await d.stop()



# --- interop: QuickFIX as the absent client ----------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.skipif(not HAVE_QUICKFIX, reason="quickfix is not installed (pip install -e '.[interop]')")
async def test_quickfix_client_gets_the_fill_made_while_it_was_away(tmp_path: Path) -> None:
    """QuickFIX (C++) logs out with an order resting; the order fills; a new QuickFIX process on the same
    file store logs on, detects the gap itself, sends ResendRequest and accepts our replay (PossDup)."""
    cfg = desk_config(tmp_path, rules={"fix_session_loss": False})
    cfg.fix.sessions.append(cfg.fix.sessions[0].model_copy(update={"name": "qf", "target_comp_id": "QFCLIENT"}))
    d = Desk(cfg).build(BUILDERS)
    await d.start()
    port = d.services["fix"].acceptor.port
    session = f"SenderCompID=QFCLIENT\nTargetCompID=OPDESK\nSocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n"
    peer = await QuickFIX.start(tmp_path, "initiator", session)
    try:
        await peer.wait("logon")
        peer.send("D", [(11, "qa"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "0.05"), (40, "2"), (44, "65000"),
                        (59, "1")])  # fmt: skip
        ack = await peer.wait("app-in", lambda f: f.get(35) == "8")
        await peer.stop()  # logout; the process exits, its file store keeps its sequence numbers
        ours = d.services["fix"].acceptor.session("OPDESK", "QFCLIENT")
        await ours.wait_state(SessionState.DISCONNECTED)
        await maker(d, Side.SELL, 50, 130000, "m1")
        await d.services["fix"].gateway.drain()
        stored_seq = ours.next_sender_seq - 1
        assert d.services["fix"].gateway.counts["dropped"] == 0

        peer = await QuickFIX.start(tmp_path, "initiator", session)
        rr = await peer.wait("admin-out", lambda f: f.get(35) == "2")  # QuickFIX asks before its onLogon
        assert (rr[7], rr[16]) == (str(stored_seq), "0")
        fill = await peer.wait("app-in", lambda f: f.get(35) == "8")
        assert (fill[34], fill[43], fill[11], fill[37], fill[150], fill[39], fill[32], fill[31], fill[14]) == (
            str(stored_seq), "Y", "qa", ack[37], "F", "2", "0.05", "65000", "0.05",
        )  # fmt: skip
        assert 122 in fill
    finally:
        await peer.stop()
        await d.stop()
