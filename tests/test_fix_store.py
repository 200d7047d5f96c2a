"""Message stores: round trips, reset policies, and a SIGKILL / restart of a real initiator process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap

import pytest

from engines.clock import ManualClock
from engines.fix.acceptor import Acceptor
from engines.fix.events import SessionState
from engines.fix.message import build
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import MemoryStore, ResetPolicy, SqliteStore
from tests.fix_peer import RawPeer, tags

KEY = "FIX.4.4:SRV->CLI"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_store_round_trip_and_reset(kind, tmp_path) -> None:
    store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "fix.db")
    await store.open()
    m = {i: build("FIX.4.4", "D", i, "SRV", "CLI", [(11, f"c{i}")]) for i in range(1, 8)}
    assert (await store.load(KEY)).next_sender == 1
    await store.save(KEY, 4, 7, [(1, m[1]), (2, m[2]), (3, m[3])])
    await store.save(KEY, 7, 7, [(5, m[5]), (6, m[6])])  # 4 was an admin message: not stored
    await store.save("other", 9, 9, [(1, m[1])])
    s = await store.load(KEY)
    assert (s.next_sender, s.next_target) == (7, 7)
    assert await store.messages(KEY, 2, 0) == [(2, m[2]), (3, m[3]), (5, m[5]), (6, m[6])]
    assert await store.messages(KEY, 1, 2) == [(1, m[1]), (2, m[2])]
    assert await store.messages(KEY, 4, 5) == [(5, m[5])]
    await store.reset(KEY, 123)
    s = await store.load(KEY)
    assert (s.next_sender, s.next_target, s.created_ns) == (1, 1, 123)
    assert await store.messages(KEY, 1, 0) == []
    assert await store.messages("other", 1, 0) == [(1, m[1])]
    await store.close()
    if kind == "sqlite":  # persisted across reopen
        again = SqliteStore(tmp_path / "fix.db")
        await again.open()
        assert (await again.load("other")).next_sender == 9
        assert await again.messages("other", 1, 1) == [(1, m[1])]
        await again.close()


@pytest.mark.parametrize(
    ("policy", "peer_logs_out", "expect"),
    [
        (ResetPolicy.NEVER, True, (3, 3)),
        (ResetPolicy.LOGOUT, True, (1, 1)),
        (ResetPolicy.LOGOUT, False, (2, 2)),
        (ResetPolicy.DISCONNECT, False, (1, 1)),
    ],
)
async def test_reset_policy(policy, peer_logs_out, expect, tmp_path) -> None:
    clock = ManualClock()
    store = SqliteStore(tmp_path / "fix.db")
    session = Session(SessionID("FIX.4.4", "SRV", "CLI"), SessionSettings(reset=policy), store=store, clock=clock)
    acceptor = Acceptor([session])
    await acceptor.start()
    try:
        p = await RawPeer.connect(acceptor.port, clock)
        await p.logon()
        await session.wait_state(SessionState.ACTIVE)
        if peer_logs_out:
            await p.send("5")
            await p.expect("5")
        await p.close()
        await session.wait_state(SessionState.DISCONNECTED)
        s = await store.load(KEY)
        assert (s.next_sender, s.next_target) == expect
        assert (session.next_sender_seq, session.next_target_seq) == expect
    finally:
        await acceptor.stop()
        await store.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from engines.fix.application import Application
    from engines.fix.events import SessionState
    from engines.fix.initiator import Initiator
    from engines.fix.message import Message
    from engines.fix.session import Session, SessionID, SessionSettings
    from engines.fix.store import SqliteStore

    async def main(port, db, mode):
        s = Session(SessionID("FIX.4.4", "CLI", "SRV"), SessionSettings(max_reconnect_attempts=1),
                    Application(), SqliteStore(db))
        ini = Initiator(s, "127.0.0.1", port, seed=1)
        await ini.start()
        await s.wait_state(SessionState.ACTIVE, 10)
        i = 0
        while mode == "flood":
            s.send_nowait(Message("D", [(11, f"ord-{i}"), (55, "BTC-USD"), (54, 1), (38, 1), (40, 1)]))
            i += 1
            if i % 7 == 0:
                await asyncio.sleep(0)
        await asyncio.Event().wait()

    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
    """
)


class Listener:
    def __init__(self) -> None:
        self.conns: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(lambda r, w: self.conns.put_nowait((r, w)), "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def accept(self, clock) -> RawPeer:
        r, w = await asyncio.wait_for(self.conns.get(), 15)
        return RawPeer(r, w, clock, sender="SRV", target="CLI")


async def spawn(port: int, db, mode: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(port), str(db), mode, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_sigkill_loses_no_sequence_number_and_no_sent_message(tmp_path) -> None:
    from engines.clock import SystemClock

    clock = SystemClock()
    db = tmp_path / "client.db"
    lst = Listener()
    port = await lst.start()
    child = await spawn(port, db, "flood")
    try:
        p = await lst.accept(clock)
        logon = await p.expect("A", timeout=15)
        assert logon.get_int(34) == 1
        await p.send("A", [(98, 0), (108, 30)])
        seen: dict[int, bytes] = {}
        while len(seen) < 300:
            m = await p.expect("D")
            seen[m.get_int(34)] = m.get(11)
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
        # Drain whatever was already on the wire before the kill.
        try:
            while True:
                m = await p.read(timeout=2)
                if m.msg_type == "D":
                    seen[m.get_int(34)] = m.get(11)
        except (EOFError, TimeoutError, ConnectionError):
            pass
        await p.close()
        last_seen = max(seen)
        assert sorted(seen) == list(range(2, last_seen + 1))  # gap-free on the wire

        child = await spawn(port, db, "idle")
        p2 = await lst.accept(clock)
        logon2 = await p2.expect("A", timeout=15)
        first_new = logon2.get_int(34)
        assert first_new > last_seen  # no sequence number is used twice
        assert logon2.get(141) is None
        p2.seq = 2
        await p2.send("A", [(98, 0), (108, 30)])
        await p2.send("2", [(7, 2), (16, 0)])
        covered: set[int] = set()
        while len(covered) < first_new - 1:  # 2..first_new (its own Logon is gap-filled)
            m = await p2.read()
            s = m.get_int(34)
            if m.msg_type == "4":
                assert m.get(123) == b"Y"
                covered.update(range(s, m.get_int(36)))
            else:
                assert m.msg_type == "D" and m.get(43) == b"Y" and m.get(122) is not None
                covered.add(s)
                if s in seen:
                    assert m.get(11) == seen[s]  # the very message the peer saw before the kill
        assert covered == set(range(2, first_new + 1))
        assert all(s in covered for s in seen)
        # And it continues from the right sequence number.
        await p2.send("1", [(112, "after-restart")])
        hb = await p2.expect("0")
        assert tags(hb, 34, 112) == {34: str(first_new + 1), 112: "after-restart"}
        await p2.close()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        lst.server.close()
