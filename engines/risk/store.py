"""The kill switch's SQLite file: the latched trading states and the audit trail.

The latch is read synchronously (stdlib sqlite3) when the desk is built, so a restarted desk is
HALTED before any engine starts. Writes go through one aiosqlite writer task fed by a queue: the
kill path only appends to a list (no await before the state is HALTED); :meth:`flush` waits until
everything queued is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS latch (
    scope TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    action TEXT NOT NULL,
    scope TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True, slots=True)
class LatchRow:
    scope: str
    state: str
    reason: str
    source: str
    ts: int


def read_latch(path: Path) -> list[LatchRow]:
    """The persisted non-ACTIVE scopes (empty if the file does not exist yet)."""
    if not path.exists():
        return []
    try:
        con = sqlite3.connect(path)
        try:
            con.executescript(SCHEMA)
            rows = con.execute("SELECT scope, state, reason, source, ts FROM latch ORDER BY ts").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        # Fail closed: a desk that cannot tell whether it was killed must not start trading.
        raise LatchUnreadable(
            f"kill-switch latch {path} is unreadable ({exc}); refusing to start. Move the file aside to start "
            "un-latched (the audit trail in it is lost)."
        ) from None
    return [LatchRow(*r) for r in rows]


class LatchUnreadable(RuntimeError):
    pass


class RiskStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: list[tuple[str, tuple[Any, ...]]] = []
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._db: aiosqlite.Connection | None = None
        self.writes = 0

    # --- producers (synchronous) ---------------------------------------------------------------------------
    def latch(self, scope: str, state: str, reason: str, source: str, ts: int) -> None:
        if state == "active":
            self._put("DELETE FROM latch WHERE scope = ?", (scope,))
        else:
            self._put(
                "INSERT INTO latch (scope, state, reason, source, ts) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(scope) DO UPDATE SET state=excluded.state, reason=excluded.reason, "
                "source=excluded.source, ts=excluded.ts",
                (scope, state, reason, source, ts),
            )

    def audit(
        self, ts: int, action: str, scope: str, source: str, reason: str, actor: str, detail: str = ""
    ) -> None:
        self._put(
            "INSERT INTO audit (ts, action, scope, source, reason, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ts, action, scope, source, reason, actor, detail),
        )

    def _put(self, sql: str, args: tuple[Any, ...]) -> None:
        self._queue.append((sql, args))
        if self._wake is not None:
            self._wake.set()
            assert self._idle is not None
            self._idle.clear()

    # --- the writer ------------------------------------------------------------------------------------------
    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")  # a latch that is not on disk is not a latch
        await self._db.executescript(SCHEMA)
        await self._db.commit()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        if self._queue:
            self._wake.set()
        else:
            self._idle.set()
        self._task = asyncio.create_task(self._run(), name="risk-store")

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None and self._db is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    for sql, args in batch:
                        await self._db.execute(sql, args)
                    await self._db.commit()
                except Exception:  # keep the writer alive: the next kill must still be recorded
                    log.exception("risk store: could not write %d rows to %s", len(batch), self.path)
                    continue
                self.writes += len(batch)
            self._idle.set()

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        if self._idle is None:
            return
        while self._queue or not self._idle.is_set():
            await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def audit_rows(self, limit: int = 100) -> list[dict[str, Any]]:
        await self.flush()
        if self._db is None:
            return []
        cur = await self._db.execute(
            "SELECT id, ts, action, scope, source, reason, actor, detail FROM audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        rows = await cur.fetchall()
        keys = ("id", "ts", "action", "scope", "source", "reason", "actor", "detail")
        return [dict(zip(keys, r)) for r in reversed(list(rows))]
