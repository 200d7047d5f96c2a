"""Interoperability with a real third-party FIX engine: QuickFIX (C++), through its Python binding.

* QuickFIX as initiator against our acceptor + gateway on the real matching engine: logon, orders
  (ExecutionReports validated by QuickFIX), a forced sequence gap (QuickFIX jumps its MsgSeqNum; we
  ask for a resend, it gap-fills and we process the order behind the gap), cancel, logout.
* QuickFIX as acceptor for our initiator: logon, orders, a forced gap in our sequence (QuickFIX asks
  for a resend; we gap-fill), QuickFIX asking us to replay application messages (we resend them with
  PossDupFlag and OrigSendingTime), logout.

QuickFIX runs in a child process (``tests/peers/quickfix_peer.py``) driven over stdin/stdout, and
validates everything it receives against the desk's own dictionary ``spec/OPDESK-FIX44.xml`` — which
also proves the file is a dictionary QuickFIX accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable
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

HAVE_QUICKFIX = importlib.util.find_spec("quickfix") is not None
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not HAVE_QUICKFIX,
        reason="quickfix is not installed (pip install -e '.[interop]'; it compiles from source for ~7 minutes)",
    ),
]

PEER = Path(__file__).parent / "peers" / "quickfix_peer.py"
TS = "20260101-00:00:00.000"
WAIT = 30.0  # bounded waits for a child process; generous because a loaded CI machine is slow to start QuickFIX


def fields_of(raw: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in raw.split("|"):
        if "=" in part:
            tag, _, value = part.partition("=")
            out.setdefault(int(tag), value)
    return out


class QuickFIX:
    """The QuickFIX peer process: commands in, events out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, tmp_path: Path, role: str, session: str, *, broker: bool = False) -> QuickFIX:
        (tmp_path / "qfstore").mkdir(exist_ok=True)
        (tmp_path / "qflog").mkdir(exist_ok=True)
        cfg = tmp_path / "quickfix.cfg"
        cfg.write_text(
            "[DEFAULT]\n"
            f"ConnectionType={role}\nFileStorePath={tmp_path / 'qfstore'}\nFileLogPath={tmp_path / 'qflog'}\n"
            "StartTime=00:00:00\nEndTime=00:00:00\nUseDataDictionary=Y\n"
            f"DataDictionary={DEFAULT_FILES['FIX.4.4']}\nHeartBtInt=30\nReconnectInterval=1\n"
            f"[SESSION]\nBeginString=FIX.4.4\n{session}"
        )
        args = [str(PEER), str(cfg), role, *(["--broker"] if broker else [])]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        peer = cls(proc)
        await peer.wait("ready")
        return peer

    def command(self, cmd: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())

    def send(self, msg_type: str, fields: list[tuple[int, str]]) -> None:
        self.command("send", type=msg_type, fields=fields)

    async def wait(
        self, event: str, pred: Callable[[dict[int, str]], bool] | None = None, timeout: float = WAIT
    ) -> dict[int, str]:
        """Fields of the next ``event`` (matching ``pred``); other events are skipped."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise EOFError(f"QuickFIX peer exited ({await self.proc.wait()}) waiting for {event}")
                ev = json.loads(line)
                f = fields_of(ev.get("raw", ""))
                if ev["event"] == event and (pred is None or pred(f)):
                    return f if "raw" in ev else {k: v for k, v in ev.items() if k != "event"}

    async def expected_target(self) -> int:
        self.command("expected_target")
        return int((await self.wait("expected_target"))["seq"])

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                self.command("stop")
                await self.wait("stopped")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proc.wait(), 5)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    peer = await QuickFIX.start(
        tmp_path,
        "initiator",
        f"SenderCompID=QFCLIENT\nTargetCompID=OPDESK\nSocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n",
    )
    try:
        await peer.wait("logon")
        await ours.wait_state(SessionState.ACTIVE)

        # An order rests: QuickFIX receives (and validates) our ExecutionReport New.
        peer.send("D", _nos("q1", "1", "0.05", "65000"))
        er = await peer.wait("app-in", lambda f: f.get(35) == "8")
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
        expected = ours.next_target_seq
        peer.command("set_next_sender", seq=expected + 5)
        peer.send("D", _nos("q2", "2", "0.02", "65000"))
        rr = await peer.wait("admin-in", lambda f: f.get(35) == "2")
        assert (rr[7], rr[16]) == (str(expected), "0")
        # The resting q1 (maker) hears of the trade first, then q2 (taker).
        rest = await peer.wait(
            "app-in", lambda f: f.get(35) == "8" and f.get(11) == "q1" and f.get(150) == "F"
        )
        assert (rest[39], rest[14], rest[151], rest[6]) == ("1", "0.02", "0.03", "65000")
        fill = await peer.wait(
            "app-in", lambda f: f.get(35) == "8" and f.get(11) == "q2" and f.get(150) == "F"
        )
        assert (fill[39], fill[32], fill[31], fill[14], fill[151]) == ("2", "0.02", "65000", "0.02", "0")
        gap_fills = [e for e in logged if e.direction == "in" and e.msg_type == "4"]
        assert gap_fills and "|123=Y|" in gap_fills[0].raw and f"|36={expected + 5}|" in gap_fills[0].raw
        assert ours.next_target_seq == expected + 6

        # Cancel the rest of q1.
        peer.send("F", [(41, "q1"), (11, "q1c"), (55, "BTC-USD"), (54, "1"), (60, TS)])
        cx = await peer.wait("app-in", lambda f: f.get(35) == "8" and f.get(150) == "4")
        assert (cx[11], cx[41], cx[39], cx[151], cx[14]) == ("q1c", "q1", "4", "0", "0.02")
        assert not [e for e in logged if e.msg_type in ("3", "j")]  # no rejects either way

        # QuickFIX logs out; we answer and disconnect.
        peer.command("stop")
        await peer.wait("logout")
        await ours.wait_state(SessionState.DISCONNECTED)
        assert [e.direction for e in logged if e.msg_type == "5"] == ["in", "out"]
    finally:
        await peer.stop()


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
    peer = await QuickFIX.start(
        tmp_path,
        "acceptor",
        f"SocketAcceptPort={port}\nSenderCompID=QFBROKER\nTargetCompID=OPDESK\n",
        broker=True,
    )
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
        await peer.wait("logon")

        session.send_nowait(Message("D", _nos("o1", "1", "1", "100")))
        er = await app.next()
        assert (er.msg_type, er.get_str(11), er.get_str(150), er.get_str(37)) == ("8", "o1", "0", "QF1")
        seq_o1 = int((await peer.wait("app-in", lambda f: f.get(35) == "D"))[34])

        # A forced gap in our sequence: QuickFIX asks for the missing messages, we gap-fill (they were
        # never sent), and QuickFIX then takes the order behind the gap.
        gap_from = session.next_sender_seq
        session.next_sender_seq += 4
        session.send_nowait(Message("D", _nos("o2", "2", "2", "101")))
        rr = await peer.wait("admin-out", lambda f: f.get(35) == "2")
        assert (rr[7], rr[16]) == (str(gap_from), "0")
        gf = await peer.wait("admin-in", lambda f: f.get(35) == "4")
        assert (gf[34], gf[123], gf[36], gf[43]) == (str(gap_from), "Y", str(gap_from + 4), "Y")
        er2 = await app.next()
        assert (er2.get_str(11), er2.get_str(150), er2.get_str(37)) == ("o2", "0", "QF2")

        # QuickFIX forgets what it has from us since o1 and asks again: we replay o1 and o2 with
        # PossDupFlag=Y and OrigSendingTime, the gap between them as a gap fill. (Its counter is read
        # first: QuickFIX counts a message only after its callback returned.)
        async with asyncio.timeout(WAIT):
            while await peer.expected_target() != session.next_sender_seq:
                pass
        peer.command("set_next_target", seq=seq_o1)
        # The command travels on the child's stdin, o3 on the socket: o3 must not overtake it.
        assert await peer.expected_target() == seq_o1
        session.send_nowait(Message("D", _nos("o3", "1", "3", "99")))
        rr = await peer.wait("admin-out", lambda f: f.get(35) == "2")
        assert (rr[7], rr[16]) == (str(seq_o1), "0")
        replay = await peer.wait("app-in", lambda f: f.get(35) == "D" and f.get(11) == "o1")
        assert (replay[34], replay[43]) == (str(seq_o1), "Y") and 122 in replay
        gap = await peer.wait("admin-in", lambda f: f.get(35) == "4")
        assert (gap[34], gap[123], gap[36]) == (str(seq_o1 + 1), "Y", str(gap_from + 4))
        replay2 = await peer.wait("app-in", lambda f: f.get(35) == "D" and f.get(11) == "o2")
        assert (replay2[34], replay2[43]) == (str(gap_from + 4), "Y")
        er3 = await app.next()
        assert (er3.get_str(11), er3.get_str(37)) == ("o3", "QF3")

        await initiator.stop("end of test")
        await peer.wait("logout")
        assert session.state is SessionState.DISCONNECTED
        out_types = [e.msg_type for e in logged if e.direction == "out"]
        assert out_types[0] == "A" and out_types[-1] == "5"
        assert not [e for e in logged if e.msg_type in ("3", "j")]
    finally:
        await initiator.stop()
        await peer.stop()
        await store.close()
