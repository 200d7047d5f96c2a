"""The matching journal: restart restores books (with priority) and trades; SIGKILL loses nothing
acknowledged (a real child process is killed mid-stream)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engines.bus import Bus
from engines.clock import ManualClock
from engines.marketdata import Trade
from engines.matching.engine import MatchingEngine
from engines.matching.journal import Journal, JournalError
from engines.orders import OrderRequest, OrderStatus, Side
from tests.matching_crash_child import SYMBOL, make_engine, step

REPO = Path(__file__).resolve().parent.parent


def book_state(engine: MatchingEngine) -> list[tuple[Any, ...]]:
    """Every resting order in priority order: (side, id, price, leaves, filled, owner, client id)."""
    book = engine.book(SYMBOL)
    return [
        (side, o[0], o[2], o[3], o[5], o[4], o[8][1]) for side in (0, 1) for o in book.iter_orders(side)
    ]


def unstamped(t: Trade) -> tuple[Any, ...]:
    """A trade without its bus sequence number (a new process has a new bus)."""
    return (t.ts, t.trade_id, t.price, t.qty, t.aggressor, t.maker_order_id, t.taker_order_id, t.maker_owner,
            t.taker_owner, t.maker_fee, t.taker_fee)


def lim(side: Side, px: int, qty: int, owner: str, cid: str) -> OrderRequest:
    return OrderRequest(symbol=SYMBOL, side=side, price=px, qty=qty, owner=owner, client_id=cid)


async def test_restart_restores_resting_orders_priority_trades_and_ids(tmp_path: Path) -> None:
    db = tmp_path / "matching.sqlite"
    e1 = make_engine(Bus(ManualClock()), Journal(db, trade_history=1_000_000))
    await e1.start()
    e1.submit(lim(Side.SELL, 1000, 5, "a", "a1"))
    e1.submit(lim(Side.SELL, 1000, 5, "b", "b1"))
    e1.submit(lim(Side.SELL, 1001, 5, "c", "c1"))
    e1.submit(lim(Side.BUY, 990, 7, "d", "d1"))
    e1.submit(lim(Side.BUY, 1000, 3, "t", "t1"))  # trade 1: a1 partly filled
    e1.replace(SYMBOL, owner="a", client_id="a1", new_client_id="a2", price=None, qty=5)  # qty up: loses priority
    e1.cancel(SYMBOL, owner="c", client_id="c1")
    e1.submit(lim(Side.BUY, 999, 2, "d", "d2"))
    before = book_state(e1)
    trades_before = e1.recent_trades(SYMBOL, 100)
    await e1.flush()
    with sqlite3.connect(db) as con:  # committed: another connection sees it
        assert con.execute("SELECT COUNT(*) FROM trades").fetchone() == (1,)
        assert con.execute("SELECT value FROM meta WHERE key='ops'").fetchone() == (8,)
    await e1.stop()

    e2 = make_engine(Bus(ManualClock()), Journal(db, trade_history=1_000_000))
    await e2.start()
    try:
        assert book_state(e2) == before
        assert before == [  # bids best first; b1 ahead of a2 (a1's quantity went up: lost priority)
            (0, 7, 999, 2, 0, "d", "d2"),  # id 6 went to a2's new priority
            (0, 4, 990, 7, 0, "d", "d1"),
            (1, 2, 1000, 5, 0, "b", "b1"),
            (1, 1, 1000, 5, 3, "a", "a2"),
        ]
        assert [unstamped(t) for t in e2.recent_trades(SYMBOL, 100)] == [unstamped(t) for t in trades_before]
        e2.book(SYMBOL).check()
        assert e2.stats(SYMBOL)["trade_count"] == 1 and e2.stats(SYMBOL)["volume_lots"] == 3
        # ids continue, client ids still resolve, priority still holds
        view = e2.order(SYMBOL, owner="a", client_id="a2")
        assert view is not None and (view.order_id, view.filled_qty, view.leaves_qty) == (1, 3, 5)
        res = e2.submit(lim(Side.BUY, 1000, 6, "t", "t2"))
        assert res.order_id == 8 and res.status is OrderStatus.FILLED
        (t,) = [t for t in e2.recent_trades(SYMBOL, 100) if t.taker_order_id == 8][:1]
        assert (t.trade_id, t.maker_order_id, t.qty) == (2, 2, 5)  # b1 first
        assert e2.cancel(SYMBOL, owner="d", client_id="d1")
        await e2.flush()
    finally:
        await e2.stop()
    e3 = make_engine(Bus(ManualClock()), Journal(db))
    await e3.start()
    try:
        assert [o[1] for o in book_state(e3)] == [7, 1]
        assert book_state(e3)[1][3:5] == (4, 4)  # a2: 1 more lot filled by t2
    finally:
        await e3.stop()


async def test_flush_without_changes_returns_and_failed_journal_refuses(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    e = make_engine(Bus(ManualClock()), j)
    await e.start()
    await asyncio.wait_for(e.flush(), 5)
    e.submit(lim(Side.SELL, 1000, 5, "a", "a1"))
    await asyncio.wait_for(e.flush(), 5)
    assert j.batches == 1 and j.status()["backlog"] == 0
    j.failed = "disk full"  # as the writer sets it when a write raises
    with pytest.raises(JournalError, match="disk full"):
        await e.flush()
    assert e.status()["state"] == "degraded"
    j.failed = None
    await e.stop()


async def test_bulk_cancel_is_one_journal_entry_and_survives_restart(tmp_path: Path) -> None:
    db = tmp_path / "bulk.sqlite"
    e1 = make_engine(Bus(ManualClock()), Journal(db))
    await e1.start()
    e1.submit(lim(Side.SELL, 1001, 5, "a", "a1"))
    e1.submit(lim(Side.SELL, 1002, 4, "b", "b1"))
    await e1.flush()  # a1, b1 written
    e1.submit(lim(Side.BUY, 1001, 2, "t", "t1"))  # a1 partly filled (3 left), in the next batch
    e1.submit(lim(Side.BUY, 990, 7, "a", "a2"))  # accepted and bulk-canceled within one batch
    e1.submit(lim(Side.BUY, 989, 1, "c", "c1"))
    res = e1.cancel_all(owner="a", reason="kill")
    assert [(r.order_id, r.client_id, r.confirmed) for r in res] == [(1, "a1", True), (4, "a2", True)]
    e1.submit(lim(Side.BUY, 990, 6, "a", "a3"))  # after the bulk cancel, same batch: stays live
    await e1.flush()
    with sqlite3.connect(db) as con:  # acknowledged = the bulk row is committed
        rows = con.execute("SELECT symbol, owner, reason, count, order_ids, qtys FROM bulk_cancels").fetchall()
        assert rows == [(SYMBOL, "a", "kill", 2, "[1, 4]", "[3, 7]")]
        seqs = json.loads(con.execute("SELECT seqs FROM bulk_cancels").fetchone()[0])
        assert seqs["to"] - seqs["from"] == 1  # each OrderCanceled's own bus seq, consecutive here
    await e1.stop()  # the orders' rows are updated once nothing waits (at the latest on close)
    final = {1: "canceled:0:kill", 2: "new:4:", 3: "filled:0:", 4: "canceled:0:kill", 5: "new:1:", 6: "new:6:"}
    with sqlite3.connect(db) as con:
        assert dict(con.execute("SELECT order_id, status || ':' || leaves || ':' || reason FROM orders")) == final
        assert con.execute("SELECT applied FROM bulk_cancels").fetchall() == [(1,)]
        # as if the process died between committing the bulk row and updating the orders' rows
        con.execute("UPDATE orders SET status = 'new', leaves = 3, reason = '' WHERE order_id = 1")
        con.execute("UPDATE bulk_cancels SET applied = 0")
    for _ in range(2):
        e2 = make_engine(Bus(ManualClock()), Journal(db))
        await e2.start()
        try:
            assert [(o[0], o[5], o[6]) for o in book_state(e2)] == [(0, "a", "a3"), (0, "c", "c1"), (1, "b", "b1")]
            assert e2.order(SYMBOL, owner="a", client_id="a1") is None  # closed: only resting orders come back
        finally:
            await e2.stop()
        with sqlite3.connect(db) as con:
            assert dict(con.execute("SELECT order_id, status || ':' || leaves || ':' || reason FROM orders")) == final


def replay(ops: int, seed: int) -> tuple[MatchingEngine, list[Trade]]:
    engine = make_engine(Bus(ManualClock()), None)
    rng = random.Random(seed)
    for n in range(ops):
        step(engine, rng, n)
    return engine, engine.recent_trades(SYMBOL, 10**9)


@pytest.mark.slow
async def test_sigkill_mid_stream_loses_no_acknowledged_order_or_trade(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite"
    seed = 11
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.matching_crash_child", str(db), str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    acks: list[tuple[int, int, set[int]]] = []
    try:
        assert child.stdout is not None
        while len(acks) < 300:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"child died: {child.stderr.read() if child.stderr else ''}")
            parts = line.split()
            assert parts[0] == "ACK"
            acks.append((int(parts[1]), int(parts[2]), {int(x) for x in parts[3:]}))
    finally:
        child.send_signal(signal.SIGKILL)  # mid-stream: it was busy with the next burst
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    acked_ops, acked_trade, acked_resting = acks[-1]

    restored = make_engine(Bus(ManualClock()), Journal(db, trade_history=1_000_000))
    await restored.start()
    try:
        journaled_ops = restored.ops
        # the journal holds a prefix of the stream that includes everything acknowledged
        assert journaled_ops >= acked_ops > 0
        expected, expected_trades = replay(journaled_ops, seed)
        assert book_state(restored) == book_state(expected)
        restored.book(SYMBOL).check()
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT trade_id, price, qty, maker_order_id, taker_order_id FROM trades ORDER BY trade_id")
            db_trades = rows.fetchall()
        assert db_trades == [(t.trade_id, t.price, t.qty, t.maker_order_id, t.taker_order_id) for t in expected_trades]
        assert acked_trade == 0 or db_trades[acked_trade - 1][0] == acked_trade  # every acked trade is there
        # every order resting at the last acknowledgement is resting now, unless a later (journaled)
        # operation filled, canceled or replaced it
        now_resting = {o[1] for o in book_state(restored)}
        gone = acked_resting - now_resting
        if journaled_ops == acked_ops:
            assert not gone
        for oid in gone:
            view = expected.order(SYMBOL, order_id=oid)
            assert view is not None and view.status is not OrderStatus.NEW
        # and the engine goes on: new ids do not collide with journaled ones
        res = restored.submit(OrderRequest(symbol=SYMBOL, side=Side.BUY, price=1, qty=1, owner="z", client_id="z"))
        assert res.order_id is not None and res.order_id > max([*now_resting, 0])
    finally:
        await restored.stop()


def test_bulk_cancel_seqs_are_a_range_only_when_consecutive() -> None:
    from types import SimpleNamespace

    from engines.matching.journal import _seqs_json

    evs = [SimpleNamespace(seq=n) for n in (7, 8, 9)]
    assert json.loads(_seqs_json(evs)) == {"from": 7, "to": 9}
    gap = [SimpleNamespace(seq=n) for n in (7, 9, 10)]  # a subscriber published #8 in between
    assert json.loads(_seqs_json(gap)) == [7, 9, 10]


async def test_a_batch_that_awaits_is_journaled_only_after_its_events_are_published(tmp_path: Path) -> None:
    db = tmp_path / "batch.sqlite"
    e = make_engine(Bus(ManualClock()), Journal(db))
    await e.start()
    try:
        with e.batch():
            e.submit(lim(Side.SELL, 1001, 5, "a", "a1"))
            e.submit(lim(Side.BUY, 1001, 2, "b", "b1"))
            await asyncio.sleep(0.01)  # the writer runs meanwhile: it must not snapshot yet
        await asyncio.wait_for(e.flush(), 5)
        with sqlite3.connect(db) as con:
            seqs = [r[0] for r in con.execute("SELECT seq FROM order_events ORDER BY id")]
            assert seqs and 0 not in seqs and seqs == sorted(seqs)
    finally:
        await e.stop()



async def test_both_write_paths_write_the_same_tables(tmp_path: Path, monkeypatch: Any) -> None:
    """sync=normal commits batches in line (its own sqlite3 connection, checkpoints on a worker thread),
    sync=full through aiosqlite's thread: the same seeded stream gives the same rows and the same restore."""
    import engines.matching.journal as jm

    monkeypatch.setattr(jm, "CHECKPOINT_BYTES", 100_000)  # several checkpoints during the stream
    expected, expected_trades = replay(600, 5)
    got = {}
    for sync in ("normal", "full"):
        db = tmp_path / f"{sync}.sqlite"
        e1 = make_engine(Bus(ManualClock()), Journal(db, sync=sync, trade_history=1_000_000))
        await e1.start()
        rng = random.Random(5)
        for n in range(600):
            step(e1, rng, n)
            if n % 7 == 0:
                await asyncio.wait_for(e1.flush(), 5)
        await asyncio.wait_for(e1.flush(), 5)
        assert (e1.journal._w is not None) == (sync == "normal")
        assert (e1.journal._ckpt_conn is not None) == (sync == "normal")  # a checkpoint ran on a worker
        await e1.stop()
        with sqlite3.connect(db) as con:
            got[sync] = {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                         for t in ("orders", "order_events", "trades", "meta", "bulk_cancels")}  # fmt: skip
        assert [r[0] for r in got[sync]["trades"]] == [t.trade_id for t in expected_trades]
        assert dict(got[sync]["meta"])["ops"] == 600
        assert len(got[sync]["order_events"]) > 300 and got[sync]["bulk_cancels"]
        e2 = make_engine(Bus(ManualClock()), Journal(db, sync=sync, trade_history=1_000_000))
        await e2.start()
        try:
            assert book_state(e2) == book_state(expected)
        finally:
            await e2.stop()
    assert got["normal"] == got["full"]  # ts from the ManualClock, bus seqs from a fresh bus: all equal
