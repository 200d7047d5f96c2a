"""The FIX venue's durable order map: which desk owner each ClOrdID it sent belongs to.

A FIX counterparty knows an order by ClOrdID (11), which it echoes on every ExecutionReport — including
the order-status reports (35=8 150=I) that answer OrderStatusRequest (H) and OrderMassStatusRequest
(AF). It does not know the desk's owners (bots, the operator). :class:`VenueOrderStore` keeps
``ClOrdID → owner`` (with symbol, side, price and quantity) in SQLite, written and committed **before**
the NewOrderSingle or cancel/replace that uses the ClOrdID leaves, so after a restart — even after a
SIGKILL — every order the counterparty can report is attributed to its owner, and on FIX 4.2 (no AF) the
venue knows which ClOrdIDs to ask about with H.

Synchronous ``sqlite3`` in WAL mode with ``synchronous=NORMAL``: a commit is a write to the WAL, no
fsync (what it must survive is the process dying, not the machine) — tens of microseconds, at the rate
bots send orders (autocommit: every statement is its own transaction). Closed orders are marked closed
and pruned a day later, when the store opens.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS venue_orders (
    cl_ord_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price INTEGER,
    qty INTEGER NOT NULL,
    open INTEGER NOT NULL DEFAULT 1,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS venue_orders_open ON venue_orders(open);
"""

#: Closed rows older than this are deleted when the store opens (a day: ExecutionReports for them are
#: long over).
PRUNE_AFTER_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class StoredOrder:
    cl_ord_id: str
    owner: str
    symbol: str
    side: str  # Side value ("buy" / "sell")
    price: int | None
    qty: int


class VenueOrderStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self, now_ns: int) -> list[StoredOrder]:
        """Open (creating) the store; returns the orders still marked open."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        db.execute("DELETE FROM venue_orders WHERE open = 0 AND updated_ns < ?", (now_ns - PRUNE_AFTER_NS,))
        self._db = db
        rows = db.execute(
            "SELECT cl_ord_id, owner, symbol, side, price, qty FROM venue_orders WHERE open = 1 ORDER BY rowid"
        ).fetchall()
        return [StoredOrder(*r) for r in rows]

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def opened(self, o: StoredOrder, now_ns: int) -> None:
        """Record a ClOrdID about to be sent; committed before returning."""
        if self._db is None:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO venue_orders(cl_ord_id, owner, symbol, side, price, qty, open, updated_ns) "
            "VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
            (o.cl_ord_id, o.owner, o.symbol, o.side, o.price, o.qty, now_ns),
        )

    def closed(self, cl_ord_ids: list[str], now_ns: int) -> None:
        """Mark ClOrdIDs closed (filled, canceled, rejected, replaced, or unknown to the counterparty)."""
        if self._db is None or not cl_ord_ids:
            return
        self._db.executemany(
            "UPDATE venue_orders SET open = 0, updated_ns = ? WHERE cl_ord_id = ?",
            [(now_ns, c) for c in cl_ord_ids],
        )

    def close(self) -> None:
        if self._db is None:
            return
        self._db.close()
        self._db = None
