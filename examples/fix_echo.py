"""The FIX engine as a library: an acceptor that answers NewOrderSingle with an ExecutionReport, and
an initiator that logs on, sends three orders, prints the reports and logs out.

    python examples/fix_echo.py            # both ends in one process, over 127.0.0.1
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from engines.fix.acceptor import Acceptor
from engines.fix.application import Application
from engines.fix.events import SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import FixMessage, Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import SqliteStore


class Broker(Application):
    """Acceptor side: acknowledge every order. Other application messages get a
    BusinessMessageReject from the default ``from_app`` (raise UnsupportedMessageType)."""

    def from_app(self, msg: FixMessage, session: Session) -> None:
        if msg.msg_type != "D":
            return super().from_app(msg, session)
        session.send_nowait(Message("8", [
            (37, "ORD-" + (msg.get_str(11) or "")), (11, msg.get(11)), (17, "EXEC-1"), (150, "0"), (39, "0"),
            (55, msg.get(55)), (54, msg.get(54)), (38, msg.get(38)), (151, msg.get(38)), (14, 0), (6, 0),
        ]))
        return None


class Trader(Application):
    def __init__(self) -> None:
        self.reports: asyncio.Queue[FixMessage] = asyncio.Queue()

    def on_logon(self, session: Session) -> None:
        print(f"logged on: {session.key}")

    async def from_app(self, msg: FixMessage, session: Session) -> None:  # callbacks may be async
        await self.reports.put(msg)


async def main() -> None:
    data = Path(tempfile.mkdtemp())
    broker = Session(SessionID("FIX.4.4", "BROKER", "TRADER"), SessionSettings(password="change-me"), Broker(),
                     SqliteStore(data / "broker.db"), log_dir=data / "logs")
    acceptor = Acceptor([broker], host="127.0.0.1", port=0)
    await acceptor.start()

    trader_app = Trader()
    trader = Session(SessionID("FIX.4.4", "TRADER", "BROKER"),
                     SessionSettings(heartbeat_interval=30, password="change-me"), trader_app,
                     SqliteStore(data / "trader.db"))
    initiator = Initiator(trader, "127.0.0.1", acceptor.port)
    await initiator.start()
    await trader.wait_state(SessionState.ACTIVE)

    for i in range(3):
        seq = await trader.send(Message("D", [(11, f"c{i}"), (55, "BTC-USD"), (54, 1), (38, 1), (40, 1),
                                              (60, "20260101-00:00:00")]))
        er = await asyncio.wait_for(trader_app.reports.get(), 5)
        print(f"sent seq {seq}; ExecutionReport seq {er.seq_num}: {er!r}")

    await initiator.stop("end of day")
    await acceptor.stop()
    print(f"audit log (passwords masked): {broker.audit_path}")


if __name__ == "__main__":
    asyncio.run(main())
