"""The matching engine's journal: SQLite (aiosqlite, WAL), written in batches off the hot path.

The engine records synchronously and cheaply, into three in-memory buffers owned by this object:

* ``orders``: order id -> the book's order list, for every order whose state changed (last write wins);
* ``events``: the lifecycle events it published (accepted, rejected, canceled/expired, replaced,
  cancel-rejected), in publish order;
* ``trades``: the ``Trade`` events, in trade-id order;
* ``bulk``: one entry per bulk cancel (``engine.cancel_all``, the kill switch's path): the symbol,
  scope, reason and its ``OrderCanceled`` events.

A writer task wakes when there is something to write, takes a *snapshot* of all three buffers in
one synchronous step on the event loop (so the snapshot sits exactly between two engine operations),
and writes it as ONE transaction: order rows upserted with their state at that instant, events and
trades appended, the id counters in ``meta``. Operations made until the writer task runs again go
into the next batch (group commit).

With ``sync="normal"`` (the default) a batch is written and committed on the event loop through a
plain ``sqlite3`` connection, as the FIX session store does: in WAL mode without fsync a commit is a
write to the WAL file, and doing it in place costs less CPU than handing each statement to
aiosqlite's thread, which has to win the GIL back from a busy loop after every step (~4 us per order
on the FIX gateway's flow, the same rows). The WAL checkpoint (it fsyncs) never runs there: the writer
connection has auto-checkpointing off and a PASSIVE checkpoint runs on a worker thread once about
``CHECKPOINT_BYTES`` of WAL were written (SQLite's own default is 1,000 pages). With ``sync="full"`` (an fsync per commit) batches go through aiosqlite's
thread as before. Opening, restoring and the bulk-cancel housekeeping always use aiosqlite.

Tables: ``orders`` (one row per order: its latest state, including resting priority ``prio``),
``order_events`` (append-only lifecycle log), ``trades`` (append-only), ``meta``, and
``bulk_cancels`` (append-only): one row per bulk cancel — symbol, owner (NULL: everyone's), reason,
timestamp, and as JSON arrays in publish order the order ids and their canceled lots, and the bus
``seq`` of each ``OrderCanceled``: a JSON array, or ``{"from": a, "to": b}`` when they are exactly
a..b (the usual case: nothing else was published in between). A 10,000-order kill is thus one row, not 20,000 (it has to be durable
within the kill switch's 50 ms). The row *is* the durable record of the cancels: the orders' own rows
are set CANCELED afterwards, by one set-based ``UPDATE`` in a transaction of its own once nothing is
waiting to be acknowledged (``applied`` = 1 then); a journal opened with unapplied rows (a crash in
between) applies them before restoring, so a bulk-canceled order is never restored.

Restore: the resting orders (status new/partially_filled, leaves > 0) ordered by ``prio`` — the
book's time priority — and the last ``trade_history`` trades per symbol, plus per-symbol totals and
the next order/trade ids.

The guarantee ("acknowledged" = journaled):
  Batches are committed in order and each is atomic, so the database always holds a *prefix* of the
  engine's operation history: after a crash the restored books are exactly the books as they were
  after some operation k, never a mix. ``await journal.flush()`` (``engine.flush()``) returns once
  every operation performed before the call is committed. An order or trade is *acknowledged* when a
  flush issued after it has returned; the REST API and the matching venue (FIX gateway) flush before
  they answer. With ``synchronous=NORMAL`` (the default) in WAL mode a committed transaction survives
  the process being killed (SIGKILL, crash) — it is in the OS page cache/WAL file — but the last
  transactions may be lost if the *machine* loses power; ``sync="full"`` makes every commit fsync
  and survive power loss as well. Bus events are published before they are journaled: an in-process
  subscriber may see an operation that a crash then loses (it dies with the process too); anything
  that leaves the process must flush first.

If a write fails (disk full, I/O error) the journal marks itself ``failed``, the engine reports
``degraded`` and ``flush()`` raises :class:`JournalError`, so nothing more is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
import sqlite3
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import aiosqlite

from engines.marketdata import Trade
from engines.matching.book import STATUS_NAMES
from engines.orders import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    OrderType,
    Side,
    TimeInForce,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL,
    tif TEXT NOT NULL, post_only INTEGER NOT NULL, price INTEGER, qty INTEGER NOT NULL,
    filled INTEGER NOT NULL, leaves INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    client_id TEXT NOT NULL, owner TEXT NOT NULL, venue TEXT NOT NULL, prio INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_resting ON orders (prio) WHERE status IN ('new', 'partially_filled');
CREATE TABLE IF NOT EXISTS order_events (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL,
    symbol TEXT NOT NULL, order_id INTEGER, client_id TEXT NOT NULL, owner TEXT NOT NULL,
    status TEXT NOT NULL, price INTEGER, qty INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, symbol TEXT NOT NULL, price INTEGER NOT NULL,
    qty INTEGER NOT NULL, aggressor TEXT NOT NULL, maker_order_id INTEGER NOT NULL,
    taker_order_id INTEGER NOT NULL, maker_owner TEXT NOT NULL, taker_owner TEXT NOT NULL,
    maker_fee REAL NOT NULL, taker_fee REAL NOT NULL, venue TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_symbol ON trades (symbol, trade_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bulk_cancels (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, symbol TEXT NOT NULL, owner TEXT, reason TEXT NOT NULL,
    count INTEGER NOT NULL, order_ids TEXT NOT NULL, qtys TEXT NOT NULL, seqs TEXT NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0
);
"""

# Enum values as dict lookups: ``member.value`` is a property (~0.45 us on the sandbox), three per order
# row on the snapshot, which runs on the event loop.
_SIDE_TEXT = {m: m.value for m in Side}
_TYPE_TEXT = {m: m.value for m in OrderType}
_TIF_TEXT = {m: m.value for m in TimeInForce}

_BULK_UPDATE = (
    "UPDATE orders SET status = 'canceled', leaves = 0, reason = ? "
    "WHERE order_id IN (SELECT value FROM json_each(?))"
)


class JournalError(RuntimeError):
    """The journal cannot write: nothing more can be acknowledged."""


@dataclass(frozen=True, slots=True)
class RestingRow:
    order_id: int
    symbol: str
    side: str
    type: str
    tif: str
    post_only: bool
    price: int
    qty: int
    filled: int
    leaves: int
    status: str
    reason: str
    client_id: str
    owner: str
    venue: str
    prio: int


@dataclass
class Restored:
    orders: list[RestingRow] = field(default_factory=list)  # in priority order
    trades: list[Trade] = field(default_factory=list)  # oldest first, per symbol at most trade_history
    totals: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # volume lots, count, notional
    next_order_id: int = 1
    next_trade_id: int = 1
    ops: int = 0  # engine operations (submit/cancel/replace/cancel_all calls) the journal reflects


class Journal:
    def __init__(
        self,
        path: Path | str,
        *,
        sync: str = "normal",
        trade_history: int = 10_000,
        units: dict[str, float] | None = None,
    ) -> None:
        self.path = Path(path)
        self.sync = sync
        self.trade_history = trade_history
        self.units = units or {}  # symbol -> tick size * lot size (for restored notional totals)
        # the engine writes these three directly (cheap, synchronous)
        self.orders: dict[int, list[Any]] = {}
        self.events: list[Any] = []
        self.trades: list[Trade] = []
        # (symbol, owner, reason, order ids, canceled lots, the OrderCanceled events)
        self.bulk: list[tuple[str, str | None, str, list[int], list[int], list[Any]]] = []
        self._db: aiosqlite.Connection | None = None
        self._w: sqlite3.Connection | None = None  # sync="normal": batches are committed through this, in line
        self._unckpt = 0  # WAL bytes written by ``_w`` since its last checkpoint (an estimate)
        self._ckpt_task: asyncio.Task[None] | None = None
        self._ckpt_conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._snap_gen = 0  # batches snapshotted
        self._done_gen = 0  # batches committed
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closing = False
        self.idle = False  # True while the writer waits for work (the engine pokes only then)
        self.failed: str | None = None
        self.batches = 0
        self.rows = 0
        self.next_ids = (1, 1, 0)  # (next order id, next trade id, engine operations) as last written
        self.id_source: Any = None  # the engine: read its counters at snapshot time
        self._json = True  # SQLite has json_each (checked on open)
        self._unapplied = False  # bulk cancels committed whose orders' rows are not updated yet
        self._hold: list[Any] = []  # the last batch's bulk records (see _snapshot)

    # --- open / restore -------------------------------------------------------------------------------
    async def open(self) -> Restored:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path)
        self._db = db
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={'FULL' if self.sync == 'full' else 'NORMAL'}")
        await db.executescript(SCHEMA)
        await db.commit()
        async with db.execute("PRAGMA table_info(bulk_cancels)") as cur:
            if "applied" not in [r[1] for r in await cur.fetchall()]:  # a journal from before that column
                await db.execute("ALTER TABLE bulk_cancels ADD COLUMN applied INTEGER NOT NULL DEFAULT 0")
                await db.commit()
        try:  # JSON functions are built into SQLite >= 3.38 (and most builds before)
            await db.execute("SELECT json_valid('[]')")
            self._json = True
        except aiosqlite.OperationalError:
            self._json = False
        await self._apply_bulk()  # bulk cancels committed before a crash, not yet applied to their orders
        out = Restored()
        async with db.execute(
            "SELECT order_id, symbol, side, type, tif, post_only, price, qty, filled, leaves, status, reason,"
            " client_id, owner, venue, prio FROM orders"
            " WHERE status IN ('new', 'partially_filled') AND leaves > 0 ORDER BY prio"
        ) as cur:
            async for r in cur:
                out.orders.append(RestingRow(*r[:5], bool(r[5]), *r[6:]))  # type: ignore[arg-type]
        async with db.execute(
            "SELECT trade_id, ts, symbol, price, qty, aggressor, maker_order_id, taker_order_id, maker_owner,"
            " taker_owner, maker_fee, taker_fee, venue FROM ("
            "  SELECT *, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY trade_id DESC) AS rn FROM trades"
            ") WHERE rn <= ? ORDER BY trade_id",
            (self.trade_history,),
        ) as cur:
            async for r in cur:
                out.trades.append(
                    Trade(
                        ts=r[1],
                        symbol=r[2],
                        trade_id=r[0],
                        price=r[3],
                        qty=r[4],
                        aggressor=Side(r[5]),
                        maker_order_id=r[6],
                        taker_order_id=r[7],
                        maker_owner=r[8],
                        taker_owner=r[9],
                        maker_fee=r[10],
                        taker_fee=r[11],
                        venue=r[12],
                    )
                )
        async with db.execute(
            "SELECT symbol, SUM(qty), COUNT(*), SUM(price * qty) FROM trades GROUP BY symbol"
        ) as cur:
            async for sym, vol, count, pq in cur:
                out.totals[sym] = (int(vol), int(count), float(pq) * self.units.get(sym, 0.0))
        meta: dict[str, int] = {}
        async with db.execute("SELECT key, value FROM meta") as cur:
            async for k, v in cur:
                meta[k] = v
        async with db.execute("SELECT COALESCE(MAX(order_id), 0) FROM orders") as cur:
            row = await cur.fetchone()
            max_order = row[0] if row else 0
        async with db.execute("SELECT COALESCE(MAX(trade_id), 0) FROM trades") as cur:
            row = await cur.fetchone()
            max_trade = row[0] if row else 0
        out.next_order_id = max(meta.get("next_order_id", 1), max_order + 1)
        out.next_trade_id = max(meta.get("next_trade_id", 1), max_trade + 1)
        out.ops = meta.get("ops", 0)
        self.next_ids = (out.next_order_id, out.next_trade_id, out.ops)
        if self.sync != "full":
            w = sqlite3.connect(self.path, check_same_thread=False)
            w.execute("PRAGMA synchronous=NORMAL")  # per connection
            w.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on a worker thread (_checkpoint)
            w.execute("PRAGMA busy_timeout=5000")
            self._w = w
        log.info(
            "matching journal %s: restored %d resting orders, %d trades", self.path, len(out.orders), len(out.trades)
        )
        return out

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._writer(), name="matching-journal")

    # --- writing ----------------------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        return bool(self.orders or self.events or self.trades or self.bulk)

    def record_bulk_cancel(
        self, symbol: str, owner: str | None, reason: str, order_ids: list[int], qtys: list[int], events: list[Any]
    ) -> None:
        """A bulk cancel on ``symbol``: the orders and their canceled lots, and its ``OrderCanceled``
        events (published, or about to be, before the next snapshot, which reads their ``seq``). The
        orders need no ``orders`` entry: their rows are updated in bulk (an order not written yet is in
        ``orders`` since it was accepted, and its row is written with its state at snapshot time)."""
        self.bulk.append((symbol, owner, reason, order_ids, qtys, events))

    async def _apply_bulk(self) -> None:
        """Set the orders of every committed, unapplied bulk cancel CANCELED (one transaction)."""
        db = self._db
        assert db is not None
        async with db.execute("SELECT id, reason, order_ids FROM bulk_cancels WHERE applied = 0") as cur:
            todo = list(await cur.fetchall())
        if not todo:
            return
        for bulk_id, reason, order_ids in todo:
            if self._json:
                await db.execute(_BULK_UPDATE, (reason, order_ids))
            else:  # an SQLite without JSON functions: one update per order
                await db.executemany(
                    "UPDATE orders SET status = 'canceled', leaves = 0, reason = ? WHERE order_id = ?",
                    [(reason, oid) for oid in json.loads(order_ids)],
                )
            await db.execute("UPDATE bulk_cancels SET applied = 1 WHERE id = ?", (bulk_id,))
        await db.commit()
        self._unapplied = False

    def _snapshot(self) -> tuple[list[Any], list[Any], list[Any], tuple[int, int, int], list[Any]]:
        """Rows for everything recorded so far, as of now (synchronous: between two operations)."""
        orders, self.orders = self.orders, {}
        events, self.events = self.events, []
        trades, self.trades = self.trades, []
        bulk, self.bulk = self.bulk, []
        # A kill's 10,000 events die with this batch: freed after the flush waiters ran (_writer),
        # not on their acknowledgement path.
        self._hold = bulk
        bulk_rows = []
        for symbol, owner, reason, order_ids, qtys, evs in bulk:
            bulk_rows.append(
                (
                    evs[0].ts if evs else 0,
                    symbol,
                    owner,
                    reason,
                    len(order_ids),
                    repr(order_ids),  # a list of ints: its repr is its JSON (and ~2x cheaper to make)
                    repr(qtys),
                    _seqs_json(evs),
                )
            )
        order_rows = []
        side_text, type_text, tif_text = _SIDE_TEXT, _TYPE_TEXT, _TIF_TEXT
        for oid, o in orders.items():
            rec = o[8]
            req = rec[0]
            status = o[6]
            live = status <= 1
            order_rows.append(
                (
                    oid,
                    req.symbol,
                    side_text[req.side],
                    type_text[req.type],
                    tif_text[req.tif],
                    int(req.post_only),
                    o[2],
                    rec[2],
                    o[5],
                    o[3] if live else 0,
                    STATUS_NAMES[status],
                    rec[3],
                    rec[1],
                    o[4],
                    req.venue,
                    o[7],
                )
            )
        event_rows = [_event_row(ev) for ev in events]
        trade_rows = [
            (
                t.trade_id,
                t.ts,
                t.symbol,
                t.price,
                t.qty,
                side_text[t.aggressor],
                t.maker_order_id,
                t.taker_order_id,
                t.maker_owner,
                t.taker_owner,
                t.maker_fee,
                t.taker_fee,
                t.venue,
            )
            for t in trades
        ]
        src = self.id_source
        ids = (src._next_id, src._next_trade, src.ops) if src is not None else self.next_ids
        return order_rows, event_rows, trade_rows, ids, bulk_rows

    def _write_now(
        self,
        order_rows: list[Any],
        event_rows: list[Any],
        trade_rows: list[Any],
        ids: tuple[int, int, int],
        bulk_rows: list[Any],
    ) -> None:
        """``_write`` through the in-line connection: the same statements, committed when it returns."""
        w = self._w
        assert w is not None
        try:
            for sql, params in _statements(order_rows, event_rows, trade_rows, ids, bulk_rows):
                w.executemany(sql, params)
            w.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                w.rollback()
            raise
        n = self._written(order_rows, event_rows, trade_rows, ids, bulk_rows)
        # Each commit appends its dirty pages to the WAL: a few per commit (a leaf per table and index
        # touched, meta) however small, plus the rows' bytes. Small commits (one per order on the REST or
        # venue path) grow the WAL by pages, not rows: counted so, it stays near CHECKPOINT_BYTES.
        self._unckpt += WAL_PAGES_PER_COMMIT * 4096 + WAL_BYTES_PER_ROW * n
        if self._unckpt >= CHECKPOINT_BYTES and (self._ckpt_task is None or self._ckpt_task.done()):
            self._unckpt = 0
            self._ckpt_task = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database (fsync) off the event loop; PASSIVE never blocks the writer."""
        try:
            await asyncio.to_thread(self._checkpoint_sync)
        except Exception as exc:  # a failed checkpoint loses nothing (the WAL keeps it); the next one retries
            log.warning("matching journal %s: WAL checkpoint failed: %s", self.path, exc)

    def _checkpoint_sync(self) -> None:
        # A connection of its own, used by one checkpoint at a time (``_ckpt_task``), from a worker thread.
        if self._ckpt_conn is None:
            self._ckpt_conn = sqlite3.connect(self.path, check_same_thread=False)
        self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def _write(
        self,
        order_rows: list[Any],
        event_rows: list[Any],
        trade_rows: list[Any],
        ids: tuple[int, int, int],
        bulk_rows: list[Any],
    ) -> None:
        if self._w is not None:
            self._write_now(order_rows, event_rows, trade_rows, ids, bulk_rows)
            return
        db = self._db
        assert db is not None
        for sql, params in _statements(order_rows, event_rows, trade_rows, ids, bulk_rows):
            await db.executemany(sql, params)
        await db.commit()
        self._written(order_rows, event_rows, trade_rows, ids, bulk_rows)

    def _written(
        self,
        order_rows: list[Any],
        event_rows: list[Any],
        trade_rows: list[Any],
        ids: tuple[int, int, int],
        bulk_rows: list[Any],
    ) -> int:
        """Bookkeeping after a batch is committed (either path); the number of rows it wrote."""
        if bulk_rows:  # the orders' rows are updated later (_apply_bulk): not on the acknowledgement path
            self._unapplied = True
        self.next_ids = ids
        n = len(order_rows) + len(event_rows) + len(trade_rows) + len(bulk_rows)
        self.rows += n
        return n

    async def _writer(self) -> None:
        assert self._wake is not None
        while True:
            if not self.pending:
                if self._unapplied:  # housekeeping, once nothing waits to be acknowledged
                    try:
                        await self._apply_bulk()
                    except Exception as exc:
                        self.failed = f"{type(exc).__name__}: {exc}"
                        log.exception("matching journal bulk update failed; orders are no longer acknowledged")
                        self._release(JournalError(self.failed))
                        return
                    continue
                if self._closing:
                    return
                self._wake.clear()
                self.idle = True
                await self._wake.wait()
                self.idle = False
                continue
            src = self.id_source
            if src is not None and getattr(src, "_publishing", False):
                # an engine.batch() block awaited before publishing its events: snapshot once they
                # are out (their seq/ts stamped), never an operation whose events are unpublished
                await asyncio.sleep(0.001)
                continue
            self._snap_gen += 1
            gen = self._snap_gen
            batch = self._snapshot()
            try:
                await self._write(*batch)
            except Exception as exc:  # the disk said no: stop acknowledging
                self.failed = f"{type(exc).__name__}: {exc}"
                log.exception("matching journal write failed; orders are no longer acknowledged")
                self._release(JournalError(self.failed))
                return
            self._done_gen = gen
            self.batches += 1
            self._release(None)
            if self._hold:
                await asyncio.sleep(0)  # the woken waiters first
                self._hold = []

    def _release(self, error: Exception | None) -> None:
        keep = []
        for gen, fut in self._waiters:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            elif gen <= self._done_gen:
                fut.set_result(None)
            else:
                keep.append((gen, fut))
        self._waiters = keep

    def poke(self) -> None:
        if self._wake is not None and not self._wake.is_set():
            self.idle = False
            self._wake.set()

    async def flush(self) -> None:
        """Return once everything recorded before this call is committed."""
        if self.failed is not None:
            raise JournalError(self.failed)
        # what must be committed: the pending records go into the next snapshot; otherwise the batch
        # in flight (if any)
        need = self._snap_gen + 1 if self.pending else self._snap_gen
        if need <= self._done_gen:
            return
        if self._task is None or self._task.done():
            raise JournalError(self.failed or "journal is not running")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((need, fut))
        self.poke()
        await fut

    async def close(self) -> None:
        """Write what is pending, then close the database."""
        self._closing = True
        self.poke()
        if self._task is not None:
            try:
                await self._task
            except Exception:
                log.exception("matching journal writer failed on close")
            self._task = None
        ckpt, self._ckpt_task = self._ckpt_task, None
        if ckpt is not None and not ckpt.done():
            with contextlib.suppress(Exception):
                await ckpt
        for attr in ("_ckpt_conn", "_w"):
            conn = getattr(self, attr)
            if conn is not None:
                setattr(self, attr, None)
                conn.close()
        if self._db is not None:
            await self._db.close()
            self._db = None

    def status(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "batches": self.batches,
            "rows": self.rows,
            "backlog": len(self.orders) + len(self.events) + len(self.trades) + len(self.bulk),
            "failed": self.failed,
        }


#: Rows per multi-row INSERT: SQLite does ~20 % less work per row for one statement binding 32 rows than for
#: executemany's one-row statement per row (cachegrind, a batch of 500 orders' rows: 57k -> 47k instructions
#: per order, flattening included; 16 and 64 rows did a little worse).
ROWS_PER_INSERT = 32
#: WAL written through the in-line connection between two checkpoints (estimated: see _write_now).
CHECKPOINT_BYTES = 4 << 20
WAL_PAGES_PER_COMMIT = 5
WAL_BYTES_PER_ROW = 128

_EVENTS_HEAD = (
    "INSERT INTO order_events (seq, ts, kind, symbol, order_id, client_id, owner, status, price, qty, reason) VALUES "
)
_BULK_INSERT = (
    "INSERT INTO bulk_cancels (ts, symbol, owner, reason, count, order_ids, qtys, seqs) VALUES (?,?,?,?,?,?,?,?)"
)
_META = "INSERT OR REPLACE INTO meta VALUES (?, ?)"


def _values(ncols: int, nrows: int) -> str:
    row = "(" + ",".join("?" * ncols) + ")"
    return ",".join([row] * nrows)


def _statements(
    order_rows: list[Any],
    event_rows: list[Any],
    trade_rows: list[Any],
    ids: tuple[int, int, int],
    bulk_rows: list[Any],
) -> list[tuple[str, list[Any]]]:
    """The ``executemany`` calls that write one batch, in order; both write paths run exactly these."""
    out: list[tuple[str, list[Any]]] = []
    _inserts(out, "INSERT OR REPLACE INTO orders VALUES ", 16, order_rows)
    _inserts(out, _EVENTS_HEAD, 11, event_rows)
    _inserts(out, "INSERT INTO trades VALUES ", 13, trade_rows)
    if bulk_rows:
        out.append((_BULK_INSERT, bulk_rows))
    out.append((_META, [("next_order_id", ids[0]), ("next_trade_id", ids[1]), ("ops", ids[2])]))
    return out


def _inserts(out: list[tuple[str, list[Any]]], head: str, ncols: int, rows: list[Any]) -> None:
    """``head`` + VALUES for ``rows``, in their order: full chunks of ROWS_PER_INSERT rows as one multi-row
    statement each (executed together: one call), the rest one row per statement. Rows keep their order
    within a statement, so ``order_events`` ids follow the events' order as before."""
    k = ROWS_PER_INSERT
    n = len(rows) - len(rows) % k
    if n:
        out.append((head + _values(ncols, k), [tuple(chain.from_iterable(rows[i : i + k])) for i in range(0, n, k)]))
    if n < len(rows):
        out.append((head + _values(ncols, 1), rows[n:]))


_seq_of = operator.attrgetter("seq")


def _seqs_json(evs: list[Any]) -> str:
    """The events' bus seqs: a range when they are consecutive (strictly increasing, so first..last
    holding exactly len(evs) numbers means consecutive), else the full list."""
    if evs and evs[-1].seq - evs[0].seq == len(evs) - 1:
        return json.dumps({"from": evs[0].seq, "to": evs[-1].seq})
    return json.dumps(list(map(_seq_of, evs)))


def _event_row(ev: Any) -> tuple[Any, ...]:
    kind = type(ev).__name__
    if isinstance(ev, OrderAccepted):
        return (ev.seq, ev.ts, kind, ev.symbol, ev.order_id, ev.client_id, ev.owner, "new", ev.price, ev.qty, "")
    if isinstance(ev, OrderCanceled):
        return (
            ev.seq, ev.ts, kind, ev.symbol, ev.order_id, ev.client_id, ev.owner, ev.status.value, ev.price,
            ev.canceled_qty, ev.reason,
        )
    if isinstance(ev, OrderReplaced):
        return (
            ev.seq, ev.ts, kind, ev.symbol, ev.order_id, ev.client_id, ev.owner,
            "kept_priority" if ev.kept_priority else "lost_priority", ev.price, ev.qty, ev.orig_client_id,
        )
    if isinstance(ev, OrderRejected):
        return (ev.seq, ev.ts, kind, ev.symbol, None, ev.client_id, ev.owner, "rejected", ev.price, ev.qty, ev.reason)
    if isinstance(ev, CancelRejected):
        return (ev.seq, ev.ts, kind, ev.symbol, ev.order_id, ev.client_id, ev.owner, "cancel_rejected", None, 0, ev.reason)
    return (ev.seq, ev.ts, kind, getattr(ev, "symbol", ""), None, "", "", "", None, 0, "")
