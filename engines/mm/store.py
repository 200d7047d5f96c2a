"""The bot's SQLite store (aiosqlite, WAL): orders, fills, positions, an outbox and a little metadata.

Writes go through one writer task in arrival order; each batch is one transaction, so a fill and the
position it produces land together or not at all. Order *intents* are written with
:meth:`MMStore.write_now`, which returns only after the commit: an order is on disk before it can be
sent. Everything else is fire-and-forget (:meth:`MMStore.write`), off the quoting path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

Op = tuple[str, Sequence[Any]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    level INTEGER NOT NULL, price INTEGER NOT NULL, qty INTEGER NOT NULL, filled INTEGER NOT NULL,
    state TEXT NOT NULL, order_id INTEGER, reason TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_state ON orders(state);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, order_id INTEGER NOT NULL,
    trade_id INTEGER NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, price INTEGER NOT NULL,
    qty INTEGER NOT NULL, fee TEXT NOT NULL, liquidity TEXT NOT NULL, ts INTEGER NOT NULL,
    UNIQUE(order_id, trade_id));
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY, position TEXT NOT NULL, avg_price TEXT NOT NULL, realised TEXT NOT NULL,
    fees TEXT NOT NULL, fills INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, client_id TEXT NOT NULL,
    payload TEXT NOT NULL, status TEXT NOT NULL, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox(status);
"""

TERMINAL_STATES = ("filled", "canceled", "rejected")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    kind: str
    client_id: str
    payload: dict[str, Any]
    status: str


class MMStore:
    def __init__(self, path: Path, *, barrier: Callable[[], Awaitable[None]] | None = None) -> None:
        self.path = path
        # What the bot learned from its venue (fills, acks) is committed only after the venue's own
        # journal holds it: after a crash the store is never ahead of the venue, and what the venue
        # has that the store lacks the bot recovers from the venue's trade history.
        self.barrier = barrier
        self.barrier_failed = False
        self._db: aiosqlite.Connection | None = None
        self._queue: list[tuple[list[Op], asyncio.Future[None] | None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.ops = 0

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")  # WAL+NORMAL survives a process kill
        await self._db.executescript(SCHEMA)
        await self._db.commit()
        self._task = asyncio.create_task(self._writer(), name=f"mm-store:{self.path.name}")

    async def close(self) -> None:
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    # --- writes --------------------------------------------------------------------------------------
    def write(self, *ops: Op) -> None:
        """Queue ops to be committed together, without waiting (after the venue barrier, if any)."""
        self._queue.append((list(ops), None))
        self._wake.set()

    async def write_now(self, *ops: Op) -> None:
        """Queue ops and wait until they (and everything queued before) are committed. For the bot's
        own intents, which must be on disk before they are sent: no venue barrier unless the batch
        also carries something queued with :meth:`write`."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((list(ops), fut))
        self._wake.set()
        await fut

    async def flush(self) -> None:
        await self.write_now()

    async def _wait_for_venue(self) -> None:
        assert self.barrier is not None
        try:
            await self.barrier()
        except Exception as exc:  # the venue's journal failed: keep the bot's own record regardless
            if not self.barrier_failed:
                log.error("mm store %s: venue journal unavailable (%s); writing without the barrier", self.path, exc)
            self.barrier_failed = True

    async def _writer(self) -> None:
        assert self._db is not None
        db = self._db
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                if self.barrier is not None and any(fut is None for _, fut in batch):
                    await self._wait_for_venue()
                for ops, _ in batch:
                    for sql, params in ops:
                        await db.execute(sql, params)
                        self.ops += 1
                await db.commit()
                self.batches += 1
                for _, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_result(None)
            except Exception as exc:  # a failing write must not leave waiters hanging
                log.exception("mm store write failed")
                for _, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_exception(exc)

    # --- reads (startup) -----------------------------------------------------------------------------
    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        assert self._db is not None
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def meta(self, key: str) -> str | None:
        rows = await self._all("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self.write_now(("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value)))

    async def max_seq(self) -> int:
        rows = await self._all("SELECT COALESCE(MAX(seq), 0) FROM orders")
        return int(rows[0][0])

    async def open_orders(self) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT client_id, seq, symbol, side, level, price, qty, filled, state, order_id, reason, created_ns "
            "FROM orders WHERE state NOT IN (?, ?, ?) ORDER BY seq",
            TERMINAL_STATES,
        )
        keys = ("client_id", "seq", "symbol", "side", "level", "price", "qty", "filled", "state", "order_id",
                "reason", "created_ns")
        return [dict(zip(keys, r)) for r in rows]

    async def order_states(self) -> dict[str, str]:
        return {r[0]: r[1] for r in await self._all("SELECT client_id, state FROM orders")}

    async def fills(self) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT client_id, order_id, trade_id, symbol, side, price, qty, fee, liquidity, ts FROM fills ORDER BY id"
        )
        keys = ("client_id", "order_id", "trade_id", "symbol", "side", "price", "qty", "fee", "liquidity", "ts")
        return [dict(zip(keys, r)) for r in rows]

    async def position(self, symbol: str) -> dict[str, Any] | None:
        rows = await self._all(
            "SELECT position, avg_price, realised, fees, fills FROM positions WHERE symbol=?", (symbol,)
        )
        if not rows:
            return None
        return dict(zip(("position", "avg_price", "realised", "fees", "fills"), rows[0]))

    async def pending_outbox(self) -> list[OutboxRow]:
        rows = await self._all(
            "SELECT id, kind, client_id, payload, status FROM outbox WHERE status IN ('pending', 'sent') ORDER BY id"
        )
        return [OutboxRow(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]


# --- SQL for the OMS / bot (kept here so the schema and its statements live together) ----------------

INSERT_ORDER = (
    "INSERT OR IGNORE INTO orders(client_id, seq, symbol, side, level, price, qty, filled, state, order_id, "
    "reason, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_ORDER = "UPDATE orders SET state=?, filled=?, order_id=?, reason=?, updated_ns=? WHERE client_id=?"
INSERT_OUTBOX = "INSERT INTO outbox(kind, client_id, payload, status, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?)"
UPDATE_OUTBOX = "UPDATE outbox SET status=?, updated_ns=? WHERE kind=? AND client_id=? AND status IN ('pending', 'sent')"
INSERT_FILL = (
    "INSERT OR IGNORE INTO fills(client_id, order_id, trade_id, symbol, side, price, qty, fee, liquidity, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPSERT_POSITION = (
    "INSERT OR REPLACE INTO positions(symbol, position, avg_price, realised, fees, fills, updated_ns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
