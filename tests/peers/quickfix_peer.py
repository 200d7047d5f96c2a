"""A QuickFIX (C++ engine, Python binding) peer in its own process, driven over stdin/stdout.

Run as ``python tests/peers/quickfix_peer.py CONFIG acceptor|initiator [--broker]``. Why a process of its own: QuickFIX
calls the application from its own threads, and stopping it inside a process that also runs an asyncio
loop and aiosqlite threads crashed intermittently; a child keeps any such crash out of the test process
and is the more realistic peer anyway.

Events go to stdout as JSON lines: ``{"event": "logon"|"logout"|"admin-in"|"admin-out"|"app-in"|...,
"raw": "8=FIX.4.4|..."}``. Commands come on stdin as JSON lines:

* ``{"cmd": "send", "type": "D", "fields": [[11, "q1"], ...]}`` — send an application message;
* ``{"cmd": "set_next_sender", "seq": N}`` / ``{"cmd": "set_next_target", "seq": N}``;
* ``{"cmd": "expected_target"}`` — answers ``{"event": "expected_target", "seq": N}``;
* ``{"cmd": "stop"}`` — log out, stop, answer ``{"event": "stopped"}`` and exit.

With ``--broker`` every NewOrderSingle (not a PossDup replay) is answered with an ExecutionReport New.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

import quickfix as qf

_out = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, **fields})
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def text(message: Any) -> str:
    return message.toString().replace("\x01", "|")


class Peer(qf.Application):
    def __init__(self, broker: bool) -> None:
        super().__init__()
        self.broker = broker
        self.session_id: Any = None
        self.exec_seq = 0

    def onCreate(self, sessionID: Any) -> None:  # QuickFIX names its callbacks
        # A copy: the reference QuickFIX passes is only valid during the call.
        self.session_id = qf.SessionID(
            sessionID.getBeginString().getValue(),
            sessionID.getSenderCompID().getValue(),
            sessionID.getTargetCompID().getValue(),
        )

    def onLogon(self, sessionID: Any) -> None:
        emit("logon")

    def onLogout(self, sessionID: Any) -> None:
        emit("logout")

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        emit("admin-out", raw=text(message))

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        emit("admin-in", raw=text(message))

    def toApp(self, message: Any, sessionID: Any) -> None:
        emit("app-out", raw=text(message))

    def fromApp(self, message: Any, sessionID: Any) -> None:
        raw = text(message)
        emit("app-in", raw=raw)
        fields = dict(part.split("=", 1) for part in raw.split("|") if "=" in part)
        if self.broker and fields.get("35") == "D" and fields.get("43") != "Y":
            self.exec_seq += 1
            er = qf.Message()
            er.getHeader().setField(35, "8")
            for tag, value in (
                (37, f"QF{self.exec_seq}"), (11, fields["11"]), (17, f"E{self.exec_seq}"), (150, "0"),
                (39, "0"), (55, fields["55"]), (54, fields["54"]), (38, fields["38"]), (151, fields["38"]),
                (14, "0"), (6, "0"),
            ):  # fmt: skip
                er.setField(tag, value)
            qf.Session.sendToTarget(er, sessionID)


def main() -> None:
    config, role, broker = sys.argv[1], sys.argv[2], "--broker" in sys.argv[3:]
    settings = qf.SessionSettings(config)
    app = Peer(broker)
    # QuickFIX keeps references to the factories: they live as long as the engine.
    store, log = qf.FileStoreFactory(settings), qf.FileLogFactory(settings)
    if role == "acceptor":
        engine: Any = qf.SocketAcceptor(app, store, settings, log)
    else:
        engine = qf.SocketInitiator(app, store, settings, log)
    engine.start()
    emit("ready")
    for line in sys.stdin:
        cmd = json.loads(line)
        session = qf.Session.lookupSession(app.session_id)
        if cmd["cmd"] == "send":
            m = qf.Message()
            m.getHeader().setField(35, cmd["type"])
            for tag, value in cmd["fields"]:
                m.setField(int(tag), str(value))
            qf.Session.sendToTarget(m, app.session_id)
        elif cmd["cmd"] == "set_next_sender":
            session.setNextSenderMsgSeqNum(int(cmd["seq"]))
        elif cmd["cmd"] == "set_next_target":
            session.setNextTargetMsgSeqNum(int(cmd["seq"]))
        elif cmd["cmd"] == "expected_target":
            emit("expected_target", seq=session.getExpectedTargetNum())
        elif cmd["cmd"] == "stop":
            break
    engine.stop()
    emit("stopped")
    os._exit(0)  # skip interpreter teardown with QuickFIX's threads around


if __name__ == "__main__":
    main()
