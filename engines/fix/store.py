"""Message stores: per session the next sender/target sequence numbers and every message sent.

The session persists outbound messages *before* writing them to the socket, in batches: every
message queued during one event-loop turn goes into one transaction together with the current
sequence numbers (group commit). SQLite in WAL mode with ``synchronous=NORMAL`` makes a committed
transaction survive the death of the process (SIGKILL) — only an OS crash or power loss could lose the
last transactions, and then the peer's ResendRequest/gap-fill logic recovers. So after a SIGKILL at
any point: every message that reached the wire is in the store, and the stored next sender sequence
number is above all of them.

Inbound (target) sequence numbers are saved in the same batches after the messages were processed;
a crash between processing and the commit makes the session ask for those messages again (they come
back as PossDup, at-least-once, as with QuickFIX).

A store may also offer ``save_now`` (same arguments as ``save``, synchronous, committed when it
returns); the session's flusher then commits without an await. Both stores here do.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosqlite

from engines.fix.message import FixFramer, parse

log = logging.getLogger(__name__)


class ResetPolicy(enum.StrEnum):
    """When a session's sequence numbers go back to 1 and its stored messages are dropped."""

    NEVER = "never"
    LOGON = "logon"  # every logon (we send and expect 141=Y)
    LOGOUT = "logout"  # after a logout exchange
    DISCONNECT = "disconnect"  # after any disconnect


@dataclass(slots=True)
class SeqState:
    next_sender: int = 1
    next_target: int = 1
    created_ns: int = 0


class MessageStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load(self, session: str) -> SeqState:
        """Sequence numbers of ``session`` (1/1 for a session never seen)."""
        ...

    async def save(
        self, session: str, next_sender: int, next_target: int, messages: Sequence[tuple[int, bytes]] = ()
    ) -> None:
        """Atomically store sent messages (seq, raw) and the sequence numbers."""
        ...

    async def messages(self, session: str, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Stored messages with ``begin <= seq <= end`` in order (``end`` 0 = no upper bound)."""
        ...

    async def reset(self, session: str, created_ns: int = 0) -> None:
        """Drop the messages of ``session`` and set both sequence numbers to 1."""
        ...


class MemoryStore:
    """A store in memory (tests, sessions that reset every day and need no recovery)."""

    def __init__(self) -> None:
        self._seqs: dict[str, SeqState] = {}
        self._msgs: dict[str, dict[int, bytes]] = {}
        self.saves = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load(self, session: str) -> SeqState:
        s = self._seqs.get(session)
        return SeqState(s.next_sender, s.next_target, s.created_ns) if s else SeqState()

    async def save(
        self, session: str, next_sender: int, next_target: int, messages: Sequence[tuple[int, bytes]] = ()
    ) -> None:
        self.save_now(session, next_sender, next_target, messages)

    def save_now(
        self, session: str, next_sender: int, next_target: int, messages: Sequence[tuple[int, bytes]] = ()
    ) -> None:
        self.saves += 1
        s = self._seqs.setdefault(session, SeqState())
        s.next_sender, s.next_target = next_sender, next_target
        if messages:
            self._msgs.setdefault(session, {}).update(messages)

    async def messages(self, session: str, begin: int, end: int) -> list[tuple[int, bytes]]:
        stored = self._msgs.get(session, {})
        return sorted((s, m) for s, m in stored.items() if s >= begin and (end == 0 or s <= end))

    async def reset(self, session: str, created_ns: int = 0) -> None:
        self._seqs[session] = SeqState(1, 1, created_ns)
        self._msgs.pop(session, None)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS fix_session (
    session TEXT PRIMARY KEY,
    next_sender INTEGER NOT NULL,
    next_target INTEGER NOT NULL,
    created_ns INTEGER NOT NULL DEFAULT 0
);
-- One row per committed batch: the raw messages back to back (they frame themselves), so a batch
-- costs one B-tree insert however many messages it holds. Resends read the overlapping batches.
CREATE TABLE IF NOT EXISTS fix_batch (
    session TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (session, first_seq)
) WITHOUT ROWID;
"""

_INSERT = "INSERT OR REPLACE INTO fix_batch (session, first_seq, last_seq, data) VALUES (?, ?, ?, ?)"
_UPSERT = (
    "INSERT INTO fix_session (session, next_sender, next_target) VALUES (?, ?, ?) "
    "ON CONFLICT(session) DO UPDATE SET next_sender = excluded.next_sender, next_target = excluded.next_target"
)


def _batch_row(session: str, messages: Sequence[tuple[int, bytes]]) -> tuple[str, int, int, bytes]:
    seqs, raws = zip(*messages)  # unzipped in C (a batch holds hundreds of messages under load)
    return (session, min(seqs), max(seqs), b"".join(raws))


class SqliteStore:
    """A store in one SQLite file (WAL) shared by any number of sessions.

    Writes (``save``/``save_now``, ``reset``) go through a plain ``sqlite3`` connection in the caller's
    thread: a group commit of one batch is one insert + one upsert + COMMIT, which in WAL mode with
    ``synchronous=NORMAL`` is a write to the WAL file without fsync (tens of µs for a batch of 50
    messages). Doing it in the event loop removes a thread hop per batch whose latency (the worker has
    to win the GIL from a busy loop several times) dominated the round trip. What can take long — the
    WAL checkpoint, which fsyncs, and reading stored messages back for a resend — runs off the loop:
    resends read through aiosqlite; the writer has auto-checkpointing off, and a PASSIVE checkpoint runs
    on a worker thread (a connection of its own) after every ``checkpoint_bytes`` written.
    """

    def __init__(self, path: str | Path, *, checkpoint_bytes: int = 8 << 20) -> None:
        self.path = Path(path)
        self.checkpoint_bytes = checkpoint_bytes
        self._db: aiosqlite.Connection | None = None
        self._w: sqlite3.Connection | None = None
        self._unckpt = 0
        self._ckpt_task: asyncio.Task[None] | None = None
        self._ckpt_conn: sqlite3.Connection | None = None
        self.saves = 0
        self.checkpoints = 0

    async def open(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path)
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed (not an OS crash); see module docstring.
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(_SCHEMA)
        await db.commit()
        w = sqlite3.connect(self.path, check_same_thread=False)
        w.execute("PRAGMA synchronous=NORMAL")  # per connection, like the two below
        w.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on a worker thread (_checkpoint)
        w.execute("PRAGMA busy_timeout=5000")
        self._w = w
        self._db = db

    async def close(self) -> None:
        task, self._ckpt_task = self._ckpt_task, None
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await task
        if self._ckpt_conn is not None:
            c, self._ckpt_conn = self._ckpt_conn, None
            c.close()
        if self._w is not None:
            w, self._w = self._w, None
            w.close()
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SqliteStore is not open")
        return self._db

    def _writer(self) -> sqlite3.Connection:
        if self._w is None:
            raise RuntimeError("SqliteStore is not open")
        return self._w

    async def load(self, session: str) -> SeqState:
        row = self._writer().execute(
            "SELECT next_sender, next_target, created_ns FROM fix_session WHERE session = ?", (session,)
        ).fetchone()
        return SeqState(*row) if row else SeqState()

    async def save(
        self, session: str, next_sender: int, next_target: int, messages: Sequence[tuple[int, bytes]] = ()
    ) -> None:
        self.save_now(session, next_sender, next_target, messages)

    def save_now(
        self, session: str, next_sender: int, next_target: int, messages: Sequence[tuple[int, bytes]] = ()
    ) -> None:
        """``save``, committed before it returns (the session's flusher calls this, no await)."""
        conn = self._writer()
        self.saves += 1
        try:
            if messages:
                row = _batch_row(session, messages)
                conn.execute(_INSERT, row)
                self._unckpt += len(row[3])
            conn.execute(_UPSERT, (session, next_sender, next_target))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        if self._unckpt >= self.checkpoint_bytes and (self._ckpt_task is None or self._ckpt_task.done()):
            self._unckpt = 0
            with contextlib.suppress(RuntimeError):  # no running loop: the next save starts it
                self._ckpt_task = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database (fsync) off the event loop; PASSIVE never blocks the writer."""
        try:
            await asyncio.to_thread(self._checkpoint_sync)
            self.checkpoints += 1
        except Exception as exc:  # a failed checkpoint loses nothing (the WAL keeps it); next one retries
            log.warning("FIX store %s: WAL checkpoint failed: %s", self.path, exc)

    def _checkpoint_sync(self) -> None:
        # A connection of its own: on the reader's, a resend's open SELECT would make it fail (LOCKED).
        # Used by one checkpoint at a time (``_ckpt_task``), from a worker thread.
        if self._ckpt_conn is None:
            self._ckpt_conn = sqlite3.connect(self.path, check_same_thread=False)
        self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def messages(self, session: str, begin: int, end: int) -> list[tuple[int, bytes]]:
        async with self._conn().execute(
            "SELECT data FROM fix_batch WHERE session = ? AND last_seq >= ? AND (? = 0 OR first_seq <= ?) "
            "ORDER BY first_seq",
            (session, begin, end, end),
        ) as cur:
            rows = await cur.fetchall()
        out: dict[int, bytes] = {}
        framer = FixFramer()
        for (data,) in rows:
            for raw in framer.feed(bytes(data)):
                seq = parse(raw).seq_num
                if seq is not None and seq >= begin and (end == 0 or seq <= end):
                    out[seq] = raw  # a later batch wins (a message stored again after a reset)
        return sorted(out.items())

    async def reset(self, session: str, created_ns: int = 0) -> None:
        conn = self._writer()
        try:
            conn.execute("DELETE FROM fix_batch WHERE session = ?", (session,))
            conn.execute(
                "INSERT INTO fix_session (session, next_sender, next_target, created_ns) VALUES (?, 1, 1, ?) "
                "ON CONFLICT(session) DO UPDATE SET next_sender = 1, next_target = 1, created_ns = excluded.created_ns",
                (session, created_ns),
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
