"""The market maker's store commits what the bot learned from its venue only after the venue's own
journal holds it (the barrier), and its own intents without waiting for the venue."""

from __future__ import annotations

import asyncio
import sqlite3

from engines.mm.store import INSERT_FILL, MMStore


def _fill_row(trade_id: int) -> tuple[str, tuple]:
    return INSERT_FILL, ("mm1-1", 7, trade_id, "BTC-USD", "buy", 129948, 20, "0.1", "maker", 1)


def _committed_trades(path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [t for (t,) in db.execute("SELECT trade_id FROM fills ORDER BY trade_id")]


async def test_venue_derived_writes_wait_for_the_venue_barrier(tmp_path):
    venue_journaled = asyncio.Event()
    barrier_calls = 0

    async def barrier() -> None:
        nonlocal barrier_calls
        barrier_calls += 1
        await venue_journaled.wait()

    store = MMStore(tmp_path / "mm1.sqlite", barrier=barrier)
    await store.open()
    try:
        await store.write_now()  # nothing from the venue in this batch: no barrier
        assert barrier_calls == 0
        store.write(_fill_row(1))
        flushed = asyncio.ensure_future(store.flush())
        while barrier_calls == 0:
            await asyncio.sleep(0)
        assert not flushed.done() and _committed_trades(tmp_path / "mm1.sqlite") == []
        venue_journaled.set()
        await flushed
        assert _committed_trades(tmp_path / "mm1.sqlite") == [1]
    finally:
        await store.close()


async def test_a_failed_venue_journal_does_not_lose_the_bots_record(tmp_path, caplog):
    async def barrier() -> None:
        raise RuntimeError("matching journal: disk full")

    store = MMStore(tmp_path / "mm1.sqlite", barrier=barrier)
    await store.open()
    try:
        store.write(_fill_row(1))
        store.write(_fill_row(2))
        await store.flush()
        store.write(_fill_row(3))
        await store.flush()
    finally:
        await store.close()
    assert _committed_trades(tmp_path / "mm1.sqlite") == [1, 2, 3]
    assert store.barrier_failed
    assert [r.getMessage() for r in caplog.records if "venue journal unavailable" in r.getMessage()] == [
        f"mm store {tmp_path / 'mm1.sqlite'}: venue journal unavailable (matching journal: disk full); "
        "writing without the barrier"]
