"""Initiator and acceptor as a library: logon, credentials, reconnect with backoff, TLS, and a
sequence gap recovered between two of our own sessions over a real socket."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from typing import Any

import pytest

from engines.bus import Bus
from engines.clock import ManualClock, SystemClock
from engines.fix.acceptor import Acceptor
from engines.fix.application import Application
from engines.fix.events import FixMessageLogged, FixSessionState, SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import ResetPolicy, SqliteStore
from tests.fix_peer import RawPeer, tags


class Listener:
    """A bare TCP server handing out RawPeers (the far side of our initiator)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.conns: asyncio.Queue[RawPeer] = asyncio.Queue()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(
            lambda r, w: self.conns.put_nowait(RawPeer(r, w, self.clock, sender="SRV", target="CLI")),
            "127.0.0.1",
            0,
        )
        return self.server.sockets[0].getsockname()[1]

    async def accept(self) -> RawPeer:
        return await asyncio.wait_for(self.conns.get(), 5)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def client(clock: Any, bus: Bus | None = None, **settings: Any) -> Session:
    return Session(SessionID("FIX.4.4", "CLI", "SRV"), SessionSettings(**settings), Application(), clock=clock,
                   bus=bus)


async def test_initiator_logon_with_credentials_and_reset() -> None:
    clock = ManualClock()
    bus = Bus(clock)
    logged: list[FixMessageLogged] = []
    bus.subscribe(FixMessageLogged, logged.append)
    lst = Listener(clock)
    port = await lst.start()
    s = client(clock, bus, heartbeat_interval=15, username="desk", password="pa55word!", reset=ResetPolicy.LOGON)
    s.next_sender_seq = 40  # a reset-on-logon session starts again at 1
    ini = Initiator(s, "127.0.0.1", port, seed=3)
    await ini.start()
    try:
        p = await lst.accept()
        logon = await p.expect("A")
        assert tags(logon, 34, 98, 108, 141, 553, 554) == {
            34: "1", 98: "0", 108: "15", 141: "Y", 553: "desk", 554: "pa55word!"
        }
        await p.send("A", [(98, 0), (108, 15), (141, "Y")])
        await s.wait_state(SessionState.ACTIVE)
        assert (s.next_sender_seq, s.next_target_seq) == (2, 2)
        out = [e.raw for e in logged if e.msg_type == "A" and e.direction == "out"]
        assert out and "554=***" in out[0] and "pa55word!" not in out[0]
        await p.send("1", [(112, "hi")])
        assert tags(await p.expect("0"), 34, 112) == {34: "2", 112: "hi"}
        stop = asyncio.create_task(ini.stop("bye"))
        lo = await p.expect("5")
        assert tags(lo, 34, 58) == {34: "3", 58: "bye"}
        await p.send("5")
        await stop
        assert s.state is SessionState.DISCONNECTED
    finally:
        await ini.stop()
        lst.close()


async def test_initiator_reconnects_with_backoff_after_disconnect() -> None:
    clock = SystemClock()
    bus = Bus(clock)
    states: list[SessionState] = []
    bus.subscribe(FixSessionState, lambda e: states.append(e.state))
    lst = Listener(clock)
    port = await lst.start()
    s = client(clock, bus, reconnect_base=0.01, reconnect_jitter=0.5)
    ini = Initiator(s, "127.0.0.1", port, seed=11)
    await ini.start()
    try:
        p1 = await lst.accept()
        await p1.expect("A")
        await p1.close()  # dropped before the logon answer
        p2 = await lst.accept()
        logon2 = await p2.expect("A")
        assert logon2.get_int(34) == 2  # the first Logon consumed seq 1
        await p2.send("A", [(98, 0), (108, 30)])
        await s.wait_state(SessionState.ACTIVE)
        assert states[:6] == [
            SessionState.CONNECTING, SessionState.LOGON_IN_PROGRESS, SessionState.DISCONNECTED,
            SessionState.RECONNECTING, SessionState.CONNECTING, SessionState.LOGON_IN_PROGRESS,
        ]
        assert states[-1] is SessionState.ACTIVE
        assert len(ini.delays) == 1 and 0.005 <= ini.delays[0] <= 0.015
        # The backoff doubles per consecutive failure, capped, with seeded jitter.
        probe = Initiator(s, "127.0.0.1", port, seed=1)
        assert [round(probe.backoff(n) / (0.01 * 2 ** (n - 1)), 3) for n in (1, 2, 3)] == [
            round(1 + 0.5 * (2 * r - 1), 3) for r in _randoms(1, 3)
        ]
        assert probe.backoff(40) <= s.settings.reconnect_max * 1.5
        await p2.close()
    finally:
        await ini.stop()
        lst.close()


def _randoms(seed: int, n: int) -> list[float]:
    import random

    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


async def test_initiator_gives_up_after_max_attempts() -> None:
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()  # nothing listens on the port any more
    s = client(SystemClock(), max_reconnect_attempts=3, reconnect_base=0.001)
    ini = Initiator(s, "127.0.0.1", port, seed=1)
    await ini.start()
    await asyncio.wait_for(ini._task, 5)
    assert s.state is SessionState.DISCONNECTED
    assert s.reason.startswith("gave up after 3 attempts: connect failed")
    assert ini.attempts == 3 and len(ini.delays) == 2


async def test_logon_refused_by_peer_and_logon_timeout() -> None:
    clock = ManualClock()
    lst = Listener(clock)
    port = await lst.start()
    s = client(clock, reconnect_base=0.01, logon_timeout=10)
    ini = Initiator(s, "127.0.0.1", port, seed=1)
    await ini.start()
    try:
        p = await lst.accept()
        await p.expect("A")
        await p.send("5", [(58, "unknown user")])
        await s.wait_state(SessionState.RECONNECTING)
        assert s.reason == "logon refused by peer: unknown user; retry in 0.01s"
        p2 = await lst.accept()
        await p2.expect("A")
        await s.wait_state(SessionState.LOGON_IN_PROGRESS)
        clock.advance(10)
        s.check_timers()
        assert await p2.expect_closed() == b""
        await s.wait_state(SessionState.RECONNECTING)
        assert s.reason.startswith("logon timeout")
    finally:
        await ini.stop()
        lst.close()


class Orders(Application):
    def __init__(self) -> None:
        self.got: list[str] = []

    def from_app(self, msg: Any, session: Session) -> None:
        self.got.append(msg.get_str(11))


def _tls_contexts(tmp_path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    return server, client_ctx


@pytest.mark.parametrize("tls", [False, True])
async def test_library_round_trip_with_gap_and_resend(tmp_path, tls) -> None:
    server_ctx, client_ctx = _tls_contexts(tmp_path) if tls else (None, None)
    srv_app, cli_app = Orders(), Orders()
    srv = Session(SessionID("FIX.4.4", "SRV", "CLI"), SessionSettings(), srv_app, SqliteStore(tmp_path / "srv.db"))
    acc = Acceptor([srv], ssl_context=server_ctx)
    await acc.start()
    cli = Session(SessionID("FIX.4.4", "CLI", "SRV"), SessionSettings(), cli_app, SqliteStore(tmp_path / "cli.db"))
    ini = Initiator(cli, "127.0.0.1", acc.port, ssl_context=client_ctx, server_hostname="localhost" if tls else None)
    await ini.start()
    try:
        await cli.wait_state(SessionState.ACTIVE)
        await srv.wait_state(SessionState.ACTIVE)
        for i in range(3):
            await cli.send(Message("D", [(11, f"c{i}")]))
        await srv.wait_for(lambda: len(srv_app.got) == 3)
        # Force a gap: the server "loses" seq 2..4 of its own... messages it then never wrote.
        await srv.send(Message("8", [(11, "e0")]))
        await srv.store.save(srv.key, srv.next_sender_seq + 3, srv.next_target_seq,
                             [(srv.next_sender_seq + i, _er(srv, srv.next_sender_seq + i, f"lost{i}")) for i in range(3)])
        srv.next_sender_seq += 3
        await srv.send(Message("8", [(11, "e4")]))
        # The client asks for the gap; the server replays the stored messages with PossDup; in order.
        await cli.wait_for(lambda: cli_app.got == ["e0", "lost0", "lost1", "lost2", "e4"])
        assert not cli.resend_pending
        assert cli.next_target_seq == srv.next_sender_seq
        await ini.stop("done")
        assert cli.state is SessionState.DISCONNECTED
        await srv.wait_state(SessionState.DISCONNECTED)
    finally:
        await ini.stop()
        await acc.stop()
        await cli.store.close()
        await srv.store.close()


def _er(session: Session, seq: int, clordid: str) -> bytes:
    from engines.fix.message import encode, utc_timestamp

    return encode(b"FIX.4.4", b"8", seq, b"SRV", b"CLI", utc_timestamp(session.clock.time_ns()),
                  b"11=%s\x01" % clordid.encode())
