"""Interoperability with a real third-party FIX engine: QuickFIX (C++), through its Python binding.

* QuickFIX as initiator against our acceptor + gateway on the real matching engine: logon, orders,
  a forced sequence gap (QuickFIX jumps its MsgSeqNum; we ask for a resend, it gap-fills), logout.
* QuickFIX as acceptor for our initiator: logon, orders, a forced gap in our sequence (QuickFIX asks for
  a resend; we gap-fill), QuickFIX asking us to replay application messages (we resend them with
  PossDupFlag and OrigSendingTime), logout.

Both sides validate against the desk's own dictionary: QuickFIX loads ``spec/OPDESK-FIX44.xml`` as its
DataDictionary, which also proves the file is a well-formed QuickFIX dictionary.

QuickFIX calls its application from its own threads; the callbacks only put what they see into
thread-safe queues, which the asyncio side reads with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import queue
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engines.bus import Bus
from engines.config import DeskConfig
from engines.fix.application import Application
from engines.fix.dictionary import DEFAULT_FILES
from engines.fix.events import FixMessageLogged, SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import FixMessage, Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import SqliteStore
from engines.runtime import Desk

try:
    import quickfix as qf
except ImportError:  # pragma: no cover - depends on the environment
    qf = None

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        qf is None,
        reason="quickfix is not installed (pip install -e '.[interop]'; it compiles for ~7 minutes)",
    ),
]

TS = "20260101-00:00:00.000"
WAIT = 10.0


def _fields(raw: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in raw.replace("\x01", "|").split("|"):
        if "=" in part:
            tag, _, value = part.partition("=")
            out.setdefault(int(tag), value)
    return out


if qf is not None:

    class QFApp(qf.Application):  # type: ignore[misc,name-defined]
        """Records what QuickFIX sees; as an acceptor, answers every NewOrderSingle with an ER New."""

        def __init__(self, *, broker: bool = False) -> None:
            super().__init__()
            self.broker = broker
            self.events: queue.Queue[tuple[str, dict[int, str], str]] = queue.Queue()
            self.session_id: Any = None
            self.exec_seq = 0

        def onCreate(self, sessionID: Any) -> None:  # QuickFIX names its callbacks
            self.session_id = sessionID

        def onLogon(self, sessionID: Any) -> None:
            self.events.put(("logon", {}, ""))

        def onLogout(self, sessionID: Any) -> None:
            self.events.put(("logout", {}, ""))

        def toAdmin(self, message: Any, sessionID: Any) -> None:
            raw = message.toString()
            self.events.put(("admin-out", _fields(raw), raw))

        def fromAdmin(self, message: Any, sessionID: Any) -> None:
            raw = message.toString()
            self.events.put(("admin-in", _fields(raw), raw))

        def toApp(self, message: Any, sessionID: Any) -> None:
            return None

        def fromApp(self, message: Any, sessionID: Any) -> None:
            raw = message.toString()
            f = _fields(raw)
            self.events.put(("app-in", f, raw))
            if self.broker and f.get(35) == "D" and f.get(43) != "Y":
                self.exec_seq += 1
                er = qf.Message()
                er.getHeader().setField(35, "8")
                for tag, value in (
                    (37, f"QF{self.exec_seq}"), (11, f[11]), (17, f"E{self.exec_seq}"), (150, "0"), (39, "0"),
                    (55, f[55]), (54, f[54]), (38, f[38]), (151, f[38]), (14, "0"), (6, "0"),
                ):  # fmt: skip
                    er.setField(tag, value)
                qf.Session.sendToTarget(er, sessionID)

        async def wait(self, kind: str, pred: Any = None, timeout: float = WAIT) -> dict[int, str]:
            """The next event of ``kind`` (and matching ``pred``), skipping others."""
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise TimeoutError(f"QuickFIX: no {kind} event")
                try:
                    k, f, _ = await asyncio.to_thread(self.events.get, True, min(left, 0.5))
                except queue.Empty:
                    continue
                if k == kind and (pred is None or pred(f)):
                    return f


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _qf_settings(tmp_path: Path, body: str) -> Any:
    path = tmp_path / "quickfix.cfg"
    (tmp_path / "qfstore").mkdir(exist_ok=True)
    (tmp_path / "qflog").mkdir(exist_ok=True)
    path.write_text(
        "[DEFAULT]\n"
        f"FileStorePath={tmp_path / 'qfstore'}\nFileLogPath={tmp_path / 'qflog'}\n"
        "StartTime=00:00:00\nEndTime=00:00:00\nUseDataDictionary=Y\n"
        f"DataDictionary={DEFAULT_FILES['FIX.4.4']}\nHeartBtInt=30\nReconnectInterval=1\n"
        "ValidateUserDefinedFields=N\n" + body
    )
    return qf.SessionSettings(str(path))


def _qf_message(msg_type: str, fields: list[tuple[int, str]]) -> Any:
    m = qf.Message()
    m.getHeader().setField(35, msg_type)
    for tag, value in fields:
        m.setField(tag, value)
    return m


def _nos(cl: str, side: str, qty: str, price: str) -> list[tuple[int, str]]:
    return [(11, cl), (55, "BTC-USD"), (54, side), (60, TS), (38, qty), (40, "2"), (44, price), (59, "1")]


# --- QuickFIX initiator -> our acceptor + gateway ---------------------------------------------------------


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    cfg = DeskConfig(
        desk={"name": "interop", "data_dir": str(tmp_path)},
        instruments={"BTC-USD": {"tick_size": "0.5", "lot_size": "0.001", "base": "BTC", "quote": "USD"}},
        mm=[],
        grid=[],
        # One client trades with itself here: no self-trade prevention.
        matching={"journal": False, "self_trade": "none", "rest": {"enabled": False}, "ws": {"enabled": False}},
        risk={"limits": {"max_orders_per_second": None}},
        fix={"sessions": [{"name": "qf", "role": "acceptor", "sender_comp_id": "OPDESK", "target_comp_id": "QFCLIENT"}]},
    )  # fmt: skip
    d = Desk(cfg).build(
        ["engines.matching.service:build", "engines.risk.service:build", "engines.fix.service:build"]
    )
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


async def test_quickfix_initiator_against_our_gateway(desk: Desk, tmp_path: Path) -> None:
    ours = desk.services["fix"].session("qf")
    logged: list[FixMessageLogged] = []
    desk.bus.subscribe(FixMessageLogged, lambda e: logged.append(e) if e.session == ours.key else None)
    port = desk.services["fix"].acceptor.port
    settings = _qf_settings(
        tmp_path,
        "[SESSION]\nConnectionType=initiator\nBeginString=FIX.4.4\nSenderCompID=QFCLIENT\nTargetCompID=OPDESK\n"
        f"SocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n",
    )
    app = QFApp()
    initiator = qf.SocketInitiator(app, qf.FileStoreFactory(settings), settings, qf.FileLogFactory(settings))
    initiator.start()
    try:
        await app.wait("logon")
        await ours.wait_state(SessionState.ACTIVE)
        sid = app.session_id

        # An order rests: QuickFIX receives (and validates) our ExecutionReport New.
        qf.Session.sendToTarget(_qf_message("D", _nos("q1", "1", "0.05", "65000")), sid)
        er = await app.wait("app-in", lambda f: f.get(35) == "8")
        assert (er[11], er[150], er[39], er[38], er[44], er[151], er[14]) == (
            "q1",
            "0",
            "0",
            "0.05",
            "65000",
            "0.05",
            "0",
        )

        # A forced gap: QuickFIX skips five sequence numbers. We ask for a resend from the first missing
        # number, QuickFIX gap-fills, and the order behind the gap is then processed.
        qf_session = qf.Session.lookupSession(sid)
        expected = ours.next_target_seq
        qf_session.setNextSenderMsgSeqNum(expected + 5)
        qf.Session.sendToTarget(_qf_message("D", _nos("q2", "2", "0.02", "65000")), sid)
        rr = await app.wait("admin-in", lambda f: f.get(35) == "2")
        assert (rr[7], rr[16]) == (str(expected), "0")
        fill = await app.wait(
            "app-in", lambda f: f.get(35) == "8" and f.get(11) == "q2" and f.get(150) == "F"
        )
        assert (fill[39], fill[32], fill[31], fill[14], fill[151]) == ("2", "0.02", "65000", "0.02", "0")
        resting = await app.wait(
            "app-in", lambda f: f.get(35) == "8" and f.get(11) == "q1" and f.get(150) == "F"
        )
        assert (resting[39], resting[14], resting[151], resting[6]) == ("1", "0.02", "0.03", "65000")
        gap_fills = [e for e in logged if e.direction == "in" and e.msg_type == "4"]
        assert gap_fills and "|123=Y|" in gap_fills[-1].raw and f"|36={expected + 5}|" in gap_fills[-1].raw
        assert ours.next_target_seq == expected + 6

        # Cancel the rest of q1.
        qf.Session.sendToTarget(
            _qf_message("F", [(41, "q1"), (11, "q1c"), (55, "BTC-USD"), (54, "1"), (60, TS)]), sid
        )
        cx = await app.wait("app-in", lambda f: f.get(35) == "8" and f.get(150) == "4")
        assert (cx[11], cx[41], cx[39], cx[151], cx[14]) == ("q1c", "q1", "4", "0", "0.02")
    finally:
        await asyncio.to_thread(initiator.stop)
    await app.wait("logout")
    await ours.wait_state(SessionState.DISCONNECTED)
    logouts = [e for e in logged if e.msg_type == "5"]
    assert [e.direction for e in logouts] == ["in", "out"]


# --- our initiator -> QuickFIX acceptor ------------------------------------------------------------------


class Collect(Application):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[FixMessage] = asyncio.Queue()

    def from_app(self, msg: FixMessage, session: Session) -> None:
        self.inbox.put_nowait(msg)

    async def next(self) -> FixMessage:
        return await asyncio.wait_for(self.inbox.get(), WAIT)


async def test_our_initiator_against_quickfix_acceptor(tmp_path: Path) -> None:
    port = _free_port()
    settings = _qf_settings(
        tmp_path,
        f"[SESSION]\nConnectionType=acceptor\nSocketAcceptPort={port}\nBeginString=FIX.4.4\n"
        "SenderCompID=QFBROKER\nTargetCompID=OPDESK\n",
    )
    qapp = QFApp(broker=True)
    acceptor = qf.SocketAcceptor(qapp, qf.FileStoreFactory(settings), settings, qf.FileLogFactory(settings))
    acceptor.start()
    app = Collect()
    store = SqliteStore(tmp_path / "ours.sqlite")
    bus = Bus()
    logged: list[FixMessageLogged] = []
    bus.subscribe(FixMessageLogged, logged.append)
    session = Session(
        SessionID("FIX.4.4", "OPDESK", "QFBROKER"),
        SessionSettings(heartbeat_interval=30),
        app,
        store,
        bus=bus,
    )
    initiator = Initiator(session, "127.0.0.1", port, seed=3)
    try:
        await initiator.start()
        await session.wait_state(SessionState.ACTIVE, WAIT)
        await qapp.wait("logon")

        session.send_nowait(Message("D", _nos("o1", "1", "1", "100")))
        er = await app.next()
        assert (er.msg_type, er.get_str(11), er.get_str(150), er.get_str(37)) == ("8", "o1", "0", "QF1")
        nos1 = await qapp.wait("app-in", lambda f: f.get(35) == "D")
        seq_o1 = int(nos1[34])

        # A forced gap in our sequence: QuickFIX asks for the missing messages, we gap-fill (they were
        # never sent), and QuickFIX then takes the order behind the gap.
        gap_from = session.next_sender_seq
        session.next_sender_seq += 4
        session.send_nowait(Message("D", _nos("o2", "2", "2", "101")))
        rr = await qapp.wait("admin-out", lambda f: f.get(35) == "2")
        assert (rr[7], rr[16]) == (str(gap_from), "0")
        gf = await qapp.wait("admin-in", lambda f: f.get(35) == "4")
        assert (gf[34], gf[123], gf[36], gf[43]) == (str(gap_from), "Y", str(gap_from + 4), "Y")
        er2 = await app.next()
        assert (er2.get_str(11), er2.get_str(150), er2.get_str(37)) == ("o2", "0", "QF2")

        # QuickFIX forgets what it has from us since o1: it asks again, we replay o1 and o2 with
        # PossDupFlag=Y and their original SendingTime, admin messages as gap fills.
        qf_session = qf.Session.lookupSession(qapp.session_id)
        qf_session.setNextTargetMsgSeqNum(seq_o1)
        session.send_nowait(Message("D", _nos("o3", "1", "3", "99")))
        rr = await qapp.wait("admin-out", lambda f: f.get(35) == "2")
        assert rr[7] == str(seq_o1)
        replay = await qapp.wait("app-in", lambda f: f.get(35) == "D" and f.get(11) == "o1")
        assert (replay[34], replay[43]) == (str(seq_o1), "Y") and 122 in replay
        replay2 = await qapp.wait("app-in", lambda f: f.get(35) == "D" and f.get(11) == "o2")
        assert replay2[43] == "Y"
        er3 = await app.next()
        assert (er3.get_str(11), er3.get_str(37)) == ("o3", "QF3")

        await initiator.stop("end of test")
        await qapp.wait("logout")
        assert session.state is SessionState.DISCONNECTED
        out_types = [e.msg_type for e in logged if e.direction == "out"]
        assert out_types[0] == "A" and out_types[-1] == "5"
    finally:
        await initiator.stop()
        await asyncio.to_thread(acceptor.stop)
        await store.close()
