"""The FIX engine's fast paths give the same results as the plain ones: field splitting, byte sums, the store's
in-loop writer with off-loop WAL checkpoints (also under SIGKILL), and a large burst through the reader's
fast path."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.fix.acceptor import Acceptor
from engines.fix.application import Application
from engines.fix.events import SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import Message, build, byte_sum, split_fields
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import SqliteStore

_FIELD_RE = re.compile(rb"(\d+)=([^\x01]*)\x01")


def _by_regex(raw: bytes) -> list[tuple[int, bytes]]:
    return [(int(t), v) for t, v in _FIELD_RE.findall(raw)]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"1", b"0", b"7", b"=", b"\x01", b"\x01\x01", b"a", b"01=", b"99999=", b"35="]),
                max_size=30))
def test_split_fields_agrees_with_the_regex_on_any_input(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert split_fields(raw) == _by_regex(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2_000), st.integers(0, 255))
def test_byte_sum_is_sum(data: bytes, fill: int) -> None:
    assert byte_sum(data) == sum(data)
    worst = bytes([fill]) * len(data)  # all-0xff pieces are the edge of Adler-32's exact range
    assert byte_sum(worst) == sum(worst)
    assert byte_sum(memoryview(data)) == sum(data)


def test_split_fields_on_a_real_message() -> None:
    raw = build("FIX.4.4", "D", 7, "A", "B", [(11, "c=1"), (55, "BTC-USD"), (9999, "x"), (58, "")],
                sending_time=b"20260101-00:00:00.000")
    got = split_fields(raw)
    assert got == _by_regex(raw)
    assert (11, b"c=1") in got and (9999, b"x") in got and (58, b"") in got and got[0] == (8, b"FIX.4.4")


async def test_sqlite_writer_commits_are_read_back_and_checkpointed(tmp_path) -> None:
    store = SqliteStore(tmp_path / "fix.db", checkpoint_bytes=2_000)
    await store.open()
    msgs = [(i, build("FIX.4.4", "8", i, "S", "T", [(11, f"c{i}"), (58, "x" * 200)])) for i in range(1, 41)]
    for k in range(0, 40, 10):
        store.save_now("K", k + 11, 3, msgs[k : k + 10])  # committed when it returns, no await
    assert (await store.load("K")).next_sender == 41
    assert await store.messages("K", 1, 0) == msgs  # the reader connection sees every commit
    assert store._ckpt_task is not None
    await store._ckpt_task
    assert store.checkpoints >= 1
    await store.close()
    again = SqliteStore(tmp_path / "fix.db")
    await again.open()
    assert await again.messages("K", 35, 40) == msgs[34:]
    assert (await again.load("K")).next_target == 3
    await again.close()


class _Acks(Application):
    def from_app(self, msg, session) -> None:
        session.send_nowait(Message("8", [(11, msg.get(11)), (150, b"0"), (39, b"0")]))


class _Count(Application):
    def __init__(self, n: int) -> None:
        self.n = n
        self.got: list[bytes] = []
        self.done = asyncio.Event()

    def from_app(self, msg, session) -> None:
        self.got.append(msg.get(11) or b"")
        if len(self.got) == self.n:
            self.done.set()


async def test_a_burst_in_one_write_is_answered_in_order(tmp_path) -> None:
    # 3,000 orders (~0.5 MB) in one write: the acceptor reads them in 64 kB chunks through the reader's
    # fast path (no coroutine per message) and commits + answers chunk by chunk.
    n = 3_000
    acc = Session(SessionID("FIX.4.4", "SRV", "CLI"), SessionSettings(publish_messages=False), _Acks(),
                  SqliteStore(tmp_path / "acc.db"), role="acceptor")
    app = _Count(n)
    ini = Session(SessionID("FIX.4.4", "CLI", "SRV"), SessionSettings(publish_messages=False), app,
                  SqliteStore(tmp_path / "ini.db"))
    acceptor = Acceptor([acc])
    await acceptor.start()
    initiator = Initiator(ini, "127.0.0.1", acceptor.port, seed=1)
    try:
        await initiator.start()
        await ini.wait_state(SessionState.ACTIVE)
        for i in range(n):
            ini.send_nowait(Message("D", [(11, b"c%d" % i), (55, b"BTC-USD"), (54, b"1"), (38, b"1"), (40, b"1"),
                                          (58, b"x" * 100)]))
        await asyncio.wait_for(app.done.wait(), 30)
        assert app.got == [b"c%d" % i for i in range(n)]
        assert (acc.next_target_seq, acc.next_sender_seq) == (n + 2, n + 2)
        # Every report the initiator received is in the acceptor's store, with its sequence number.
        stored = await acc.store.messages(acc.key, 2, 0)
        assert [s for s, _ in stored] == list(range(2, n + 2))
    finally:
        await initiator.stop()
        await acceptor.stop()
        await ini.store.close()
        await acc.store.close()


@pytest.mark.slow
async def test_sigkill_while_wal_checkpoints_run(tmp_path, monkeypatch) -> None:
    # The SIGKILL test of test_fix_store.py with a checkpoint after every 4 kB written, so the killed
    # initiator is checkpointing (on its worker thread) all through the flood.
    import tests.test_fix_store as store_tests

    child = store_tests.CHILD.replace("SqliteStore(db)", "SqliteStore(db, checkpoint_bytes=4096)")
    assert child != store_tests.CHILD
    monkeypatch.setattr(store_tests, "CHILD", child)
    await store_tests.test_sigkill_loses_no_sequence_number_and_no_sent_message(tmp_path)
