"""FIX session layer (FIX 4.2 and 4.4): state machine, sequence numbers and the admin messages.

One :class:`Session` per (BeginString, SenderCompID, TargetCompID). Transports (initiator, acceptor)
hand it a connected stream with :meth:`Session.run`; the session owns everything on the wire after
that: Logon, Heartbeat/TestRequest, ResendRequest (asking and serving), SequenceReset (GapFill and
Reset), Reject, Logout, BusinessMessageReject, and the checks of the FIX session test cases (see
README "FIX engine" and tests/test_fix_session.py, one test per case).

Inbound messages are processed in the reader task in arrival order. Outbound messages get their
sequence number at once (:meth:`Session.send_nowait`) and are written by a flusher task in batches:
each batch is committed to the :class:`~engines.fix.store.MessageStore` *before* it is written to the
socket, so what the peer saw is always recoverable (group commit keeps that fast).

Timers (heartbeat, TestRequest, logon/logout timeouts) read the injected clock; a timer task calls
:meth:`Session.check_timers` periodically, and tests call it directly after moving a ManualClock.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import logging.handlers
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from zlib import adler32

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engines.clock import Clock, SystemClock
from engines.fix.application import Application
from engines.fix.errors import (
    BusinessReject,
    BusinessRejectReason,
    DoNotSend,
    FieldNotFound,
    IncorrectTagValue,
    RejectInfo,
    RejectLogon,
    SessionNotActive,
    SessionRejectReason,
    UnsupportedMessageType,
)
from engines.fix.events import FixMessageLogged, FixSessionState, FixSessionStats, SessionState
from engines.fix.message import (
    ADMIN_TYPES,
    HEARTBEAT,
    LOGON,
    LOGOUT,
    REJECT,
    RESEND_REQUEST,
    SEQUENCE_RESET,
    SESSION_HEADER_TAGS,
    SOH,
    TEST_REQUEST,
    FixFramer,
    FixMessage,
    Message,
    byte_sum,
    encode,
    from_simplefix,
    mask,
    parse,
    parse_utc_timestamp,
    utc_timestamp,
)
from engines.fix.store import MemoryStore, MessageStore, ResetPolicy
from engines.logs import register_secret

__all__ = ["Session", "SessionID", "SessionSettings", "SessionState", "Validator"]

log = logging.getLogger(__name__)

#: MsgType texts as bytes (the common ones; others are encoded per message).
_MT_BYTES = {t: t.encode() for t in ("0", "1", "2", "3", "4", "5", "A", "j", "D", "F", "G", "H", "8", "9", "V", "W",
                                     "X", "Y", "AE", "AF", "AR", "BE", "BF")}
#: The trailer for each checksum value.
_TRAILERS = tuple(b"10=%03d\x01" % i for i in range(256))
#: The default ``Application.to_app`` does nothing: not called for every outbound message.
_NOOP_TO_APP = Application.to_app
_ACTIVE = SessionState.ACTIVE
_LOGOUT_IN_PROGRESS = SessionState.LOGOUT_IN_PROGRESS
#: Queued out-of-order messages kept per session while a gap is being filled.
MAX_QUEUED = 10_000
#: Longest time an advanced inbound sequence number waits to be saved when nothing is sent.
TARGET_SAVE_INTERVAL = 0.05


@dataclass(frozen=True, slots=True)
class SessionID:
    """BeginString / SenderCompID / TargetCompID, from our side."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str

    def __str__(self) -> str:
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}"

    def reversed(self) -> SessionID:
        """The same session seen from the peer."""
        return SessionID(self.begin_string, self.target_comp_id, self.sender_comp_id)


class SessionSettings(BaseModel):
    """Per-session behaviour (pydantic, so it can come straight from config)."""

    model_config = ConfigDict(extra="forbid")

    heartbeat_interval: int = Field(default=30, ge=1)  # HeartBtInt we send (initiator); acceptor adopts the peer's
    reset: ResetPolicy = ResetPolicy.NEVER
    validate_messages: bool = True  # run the validator (data dictionary) on application messages
    sending_time_window: float = 120.0  # seconds; SendingTime further from our clock is rejected
    check_comp_ids: bool = True
    username: str | None = None  # initiator: sent as 553; acceptor: required from the peer if set
    password: SecretStr | None = None  # initiator: sent as 554; acceptor: required from the peer if set
    logon_timeout: float = 10.0
    logout_timeout: float = 2.0
    test_request_factor: float = 1.2  # TestRequest after this x HeartBtInt of silence
    disconnect_factor: float = 2.4  # disconnect after this x HeartBtInt of silence with a TestRequest out
    max_reconnect_attempts: int | None = None  # None = forever
    reconnect_base: float = 0.5  # seconds; doubled per failed attempt
    reconnect_max: float = 30.0
    reconnect_jitter: float = 0.2  # ± fraction of the delay
    publish_messages: bool = True  # FixMessageLogged on the bus for every message
    log_max_bytes: int = 10_000_000  # audit log rotation
    log_backups: int = 5
    # Acceptor: an application message sent while the peer is not logged on (disconnected, or in the
    # middle of logon/logout) is not refused: it gets the next MsgSeqNum and is committed to the store
    # without being written, so the peer's ResendRequest after its next Logon replays it (PossDup), as
    # QuickFIX does. A ResetSeqNumFlag logon (or a reset policy firing) discards such messages.
    store_offline: bool = True


class Validator(Protocol):
    """Validates application messages (the data dictionary); a RejectInfo is answered with 35=3."""

    def validate(self, msg: FixMessage) -> RejectInfo | None: ...


class Session:
    """One FIX session. Use it through :class:`~engines.fix.initiator.Initiator` or
    :class:`~engines.fix.acceptor.Acceptor`; send with :meth:`send` / :meth:`send_nowait`."""

    def __init__(
        self,
        session_id: SessionID,
        settings: SessionSettings | None = None,
        application: Application | None = None,
        store: MessageStore | None = None,
        *,
        role: str = "initiator",
        clock: Clock | None = None,
        bus: Any = None,
        validator: Validator | None = None,
        log_dir: str | Path | None = None,
    ) -> None:
        if session_id.begin_string not in ("FIX.4.2", "FIX.4.4"):
            raise ValueError(f"unsupported BeginString {session_id.begin_string!r}")
        self.id = session_id
        self.key = str(session_id)
        self.settings = settings or SessionSettings()
        self.app = application or Application()
        # The application, if its to_app is Application's (does nothing): then not called per message.
        self._noop_to_app: Any = self.app if getattr(type(self.app), "to_app", None) is _NOOP_TO_APP and (
            "to_app" not in getattr(self.app, "__dict__", ())) else None
        self.store: MessageStore = store if store is not None else MemoryStore()
        self.role = role
        self.clock: Clock = clock or SystemClock()
        self.bus = bus
        self.validator = validator
        if self.settings.password is not None:
            register_secret(self.settings.password.get_secret_value())

        self._begin = session_id.begin_string.encode()
        self._sender = session_id.sender_comp_id.encode()
        self._target = session_id.target_comp_id.encode()
        self._max_reason = SessionRejectReason.MAX_FOR_VERSION[session_id.begin_string]
        # What the peer's 49/56 must be, as whole fields, for a substring test on the raw message.
        self._hdr_begin = b"8=%s\x019=" % self._begin
        self._hdr_ids = b"\x0149=%s\x0156=%s\x0134=" % (self._sender, self._target)
        self._in_sender = b"\x0149=%s\x01" % self._target
        self._in_target = b"\x0156=%s\x01" % self._sender
        # An inbound header in one of the two usual field orders (ours: 35 49 56 34 52; QuickFIX's: 35 34
        # 49 52 56) with the right BeginString and CompIDs: one match gives MsgSeqNum and SendingTime.
        # Anything else takes the field-by-field checks (same verdicts, see _check_header).
        b8, s49, s56 = (re.escape(x) for x in (self._begin, self._target, self._sender))
        self._hdr_ours = re.compile(
            rb"8=%s\x019=\d+\x0135=[^\x01]*\x0149=%s\x0156=%s\x0134=(\d+)\x0152=([^\x01]*)\x01" % (b8, s49, s56)
        ).match
        self._hdr_qf = re.compile(
            rb"8=%s\x019=\d+\x0135=[^\x01]*\x0134=(\d+)\x0149=%s\x0152=([^\x01]*)\x0156=%s\x01" % (b8, s49, s56)
        ).match
        self._last_st: tuple[bytes | None, int] = (None, 0)

        self._state = SessionState.DISCONNECTED
        self.reason = ""
        self.next_sender_seq = 1
        self.next_target_seq = 1
        self.heartbeat_interval = self.settings.heartbeat_interval
        self._opened = False

        # connection state
        self._writer: asyncio.StreamWriter | None = None
        self._closing: str | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._kick_evt: asyncio.Event | None = None
        self._to_store: list[tuple[int, bytes]] = []
        self._to_wire: list[bytes] = []
        self._saved = (0, 0)
        self._target_saved_at = 0.0
        self._reset_pending = False
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._logon_received = False
        self._logon_sent = False
        self._logout_sent_at: float | None = None
        self._logout_exchanged = False
        self._connected_at = 0.0
        self._last_sent = 0.0
        self._last_recv = 0.0
        self._test_req_id: str | None = None
        self._test_req_count = 0
        self._queued: dict[int, FixMessage | None] = {}
        self._resend_target = 0  # our ResendRequest is pending until next_target_seq passes this
        self._stop_requested = False
        self._state_changed: asyncio.Condition | None = None
        self._in_log: list[bytes] = []  # inbound frames for the audit log, written once per read chunk
        self._offline_commit: asyncio.Handle | asyncio.Task[None] | None = None
        self.stored_offline = 0  # application messages stored while the peer was not logged on

        # statistics
        self.msgs_in = 0
        self.msgs_out = 0
        self.errors = 0
        self.last_heartbeat_ns = 0
        self._rate_mark = (time.monotonic(), 0, 0)
        self.rate_in = 0.0
        self.rate_out = 0.0

        self._audit: logging.handlers.RotatingFileHandler | None = None
        self._audit_size = 0  # bytes in the current audit file (rotation without a tell() per write)
        if log_dir is not None:
            path = Path(log_dir) / f"{session_id.begin_string}-{session_id.sender_comp_id}-{session_id.target_comp_id}.messages.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            # The handler opens, names and rotates the files; lines are written by _audit_write.
            self._audit = logging.handlers.RotatingFileHandler(
                path, maxBytes=self.settings.log_max_bytes, backupCount=self.settings.log_backups, encoding="utf-8"
            )
            self._audit.setFormatter(logging.Formatter("%(message)s"))
            self._audit_size = path.stat().st_size
            self.audit_path: Path | None = path
        else:
            self.audit_path = None

    # --- public API --------------------------------------------------------------------------------
    @property
    def session_id(self) -> SessionID:
        return self.id

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._writer is not None

    @property
    def is_logged_on(self) -> bool:
        return self._state is SessionState.ACTIVE

    @property
    def resend_pending(self) -> bool:
        return self._resend_target > 0

    async def open(self) -> None:
        """Open the store, load the sequence numbers and call ``on_create`` (idempotent)."""
        if self._opened:
            return
        await self.store.open()
        seqs = await self.store.load(self.key)
        self.next_sender_seq, self.next_target_seq = seqs.next_sender, seqs.next_target
        self._saved = (self.next_sender_seq, self.next_target_seq)
        self._opened = True
        await _maybe_await(self.app.on_create(self))

    def send_nowait(self, msg: Message | Any) -> int:
        """Queue an application message; returns its MsgSeqNum (0 if ``to_app`` raised DoNotSend).

        It is committed to the store and written by the flusher within this event-loop turn.
        """
        if self._state is not _ACTIVE:
            if not self.stores_offline:
                raise SessionNotActive(f"{self.key} is {self._state.value}")
            return self._send_offline(msg)
        if self.app is self._noop_to_app and isinstance(msg, Message):
            # _outgoing in line for the usual case (an application without to_app): one report each
            mt = msg.msg_type
            return self._queue(_MT_BYTES.get(mt) or mt.encode("latin-1"), msg.body(), True)
        out = self._outgoing(msg)
        return 0 if out is None else self._queue(out[0], out[1], True)

    def _outgoing(self, msg: Message | Any) -> tuple[bytes, bytes] | None:
        """An application message as (MsgType, body) once the application's ``to_app`` let it go;
        None if it raised DoNotSend."""
        if not isinstance(msg, Message):
            msg = from_simplefix(msg)
        app = self.app
        if app is not self._noop_to_app:
            try:
                app.to_app(msg, self)
            except DoNotSend:
                return None
        mt = msg.msg_type
        mt_b = _MT_BYTES.get(mt)
        if mt_b is None:
            mt_b = mt.encode("latin-1")
        return mt_b, msg.body()

    @property
    def stores_offline(self) -> bool:
        """Whether an application message sent now, while not logged on, is stored for a later resend
        (acceptor sessions with ``store_offline``, once opened) rather than refused."""
        return self.role == "acceptor" and self.settings.store_offline and self._opened

    def _send_offline(self, msg: Message | Any) -> int:
        """Store-and-forward: the message takes the next MsgSeqNum and goes to the store, not the wire.

        Connected (logon or logout in progress): the flusher commits it with its next batch. Not
        connected: committed at the end of this event-loop turn, one transaction for everything sent
        in the turn (at once when there is no running loop). Either way the sequence number and the
        message are committed together, so a SIGKILL loses neither once committed; the peer's next
        Logon finds our MsgSeqNum ahead of what it expects and asks for the gap."""
        out = self._outgoing(msg)
        if out is None:
            return 0
        seq = self._queue(out[0], out[1], True, wire=False)
        self.stored_offline += 1
        if self._flusher is None or self._flusher.done():
            self._schedule_offline_commit()
        else:
            self._kick()
        return seq

    def _schedule_offline_commit(self) -> None:
        if self._offline_commit is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._commit_offline()
            return
        self._offline_commit = loop.call_soon(self._commit_offline)

    def _commit_offline(self) -> None:
        """Commit what was stored while not connected (a connection's flusher takes over otherwise)."""
        self._offline_commit = None
        if self._flusher is not None and not self._flusher.done():
            self._kick()
            return
        if not self._to_store and not self._reset_pending:
            return
        msgs, self._to_store = self._to_store, []
        seqs = (self.next_sender_seq, self.next_target_seq)
        save_now = getattr(self.store, "save_now", None)
        if save_now is not None and not self._reset_pending:
            save_now(self.key, seqs[0], seqs[1], msgs)
            self._saved = seqs
            return
        # An async-only store (or a reset still to apply): in a task, in order, before anything else
        # reads the store (``flushed`` and ``run`` wait for it).
        self._offline_commit = asyncio.get_running_loop().create_task(self._commit_offline_async(msgs, seqs))

    async def _commit_offline_async(self, msgs: list[tuple[int, bytes]], seqs: tuple[int, int]) -> None:
        try:
            if self._reset_pending:
                self._reset_pending = False
                await self.store.reset(self.key, self.clock.time_ns())
            await self.store.save(self.key, seqs[0], seqs[1], msgs)
            self._saved = seqs
        finally:
            self._offline_commit = None

    async def _offline_committed(self) -> None:
        """Everything stored while not connected is committed (before a connection or a flush waiter)."""
        pending = self._offline_commit
        if isinstance(pending, asyncio.Handle):
            pending.cancel()
            self._commit_offline()
            pending = self._offline_commit
        if isinstance(pending, asyncio.Task):
            await asyncio.shield(pending)

    async def send(self, msg: Message | Any) -> int:
        """Queue an application message and wait until it is stored and written; returns MsgSeqNum."""
        seq = self.send_nowait(msg)
        await self.flushed()
        return seq

    async def flushed(self) -> None:
        """Wait until everything queued so far is stored and handed to the socket."""
        if self._flusher is None or self._flusher.done():
            await self._offline_committed()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(fut)
        self._kick()
        await fut

    async def logout(self, reason: str = "", timeout: float | None = None) -> None:
        """Send Logout, wait for the peer's Logout (or the timeout), disconnect. No reconnect after."""
        self._stop_requested = True
        if self._writer is None:
            return
        if self._state in (SessionState.ACTIVE, SessionState.LOGON_IN_PROGRESS) and self._logon_sent:
            self._send_logout(reason)
            self._set_state(SessionState.LOGOUT_IN_PROGRESS, reason)
        else:
            self._disconnect(reason or "logout")
        try:
            await self.wait_disconnected(timeout if timeout is not None else self.settings.logout_timeout)
        except TimeoutError:
            self._disconnect("logout timeout")
            with contextlib.suppress(TimeoutError):
                await self.wait_disconnected(1.0)

    async def wait_state(self, state: SessionState, timeout: float = 5.0) -> None:
        """Wait until the session is in ``state`` (TimeoutError otherwise)."""
        await self._wait(lambda: self._state is state, timeout)

    async def wait_disconnected(self, timeout: float = 5.0) -> None:
        await self._wait(lambda: self._writer is None, timeout)

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked on every state change and flush."""
        await self._wait(predicate, timeout)

    def status(self) -> dict[str, Any]:
        return {
            "session": self.key,
            "role": self.role,
            "state": self._state.value,
            "next_sender_seq": self.next_sender_seq,
            "next_target_seq": self.next_target_seq,
            "msgs_in": self.msgs_in,
            "msgs_out": self.msgs_out,
            "errors": self.errors,
        }

    def set_state(self, state: SessionState, reason: str = "") -> None:
        """For transports: CONNECTING / RECONNECTING / DISCONNECTED around connection attempts."""
        self._set_state(state, reason)

    # --- connection --------------------------------------------------------------------------------
    async def run(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        initiator: bool | None = None,
        framer: FixFramer | None = None,
        initial: list[bytes] | tuple[bytes, ...] = (),
    ) -> str:
        """Serve one connection until it ends; returns the reason it ended.

        The initiator sends Logon first; the acceptor passes the frames it already read (``initial``,
        starting with the peer's Logon) and the framer holding any partial rest.
        """
        if self._writer is not None:
            raise RuntimeError(f"{self.key} already has a connection")
        await self.open()
        await self._offline_committed()
        if initiator is None:
            initiator = self.role == "initiator"
        self._writer = writer
        self._closing = None
        self._logon_received = self._logon_sent = self._logout_exchanged = False
        self._logout_sent_at = None
        self._test_req_id = None
        self._queued.clear()
        self._resend_target = 0
        self._stop_requested = False
        self.heartbeat_interval = self.settings.heartbeat_interval
        now = self.clock.monotonic()
        self._connected_at = self._last_recv = self._last_sent = now
        self._kick_evt = asyncio.Event()
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"fix-flush:{self.key}")
        self._timer = asyncio.create_task(self._timer_loop(), name=f"fix-timer:{self.key}")
        framer = framer or FixFramer()
        framer.on_garbled = self._on_garbled
        self._set_state(SessionState.LOGON_IN_PROGRESS)
        reason = "connection closed"
        try:
            if initiator:
                if self.settings.reset is ResetPolicy.LOGON:
                    self._reset_seqs()
                self._send_logon(reset=self.settings.reset is ResetPolicy.LOGON)
                self._kick()
            frames: list[bytes] = list(initial)
            while True:
                # Per chunk, not per message: what the loop reads from the settings.
                in_log = self._in_log if self._audit is not None else None
                publish = self.bus is not None and self.settings.publish_messages
                validator = self.validator if self.settings.validate_messages else None
                from_app = self.app.from_app
                for raw in frames:
                    # Count, audit-log and parse the frame
                    self.msgs_in += 1
                    if in_log is not None:
                        in_log.append(raw)
                    try:
                        msg = parse(raw)
                    except ValueError:
                        self.errors += 1
                        continue
                    if publish:
                        self.bus.publish(FixMessageLogged(session=self.key, direction="in", raw=mask(raw),
                                                          msg_type=msg.msg_type))
                    mt = msg.msg_type
                    # Fast path, no coroutine per message: an application message while logged on with
                    # no gap being filled. The same checks as _verify_and_dispatch, in the same order.
                    if mt not in ADMIN_TYPES and self._logon_received and not self._queued and not self._resend_target:
                        seq = self._check_header(msg, mt)
                        if seq is None:
                            pass
                        elif seq == self.next_target_seq:
                            # _on_app, inline: validate, then from_app (awaited if it is a coroutine)
                            self.next_target_seq = seq + 1
                            state = self._state
                            if state is _ACTIVE or state is _LOGOUT_IN_PROGRESS:
                                info = validator.validate(msg) if validator is not None else None
                                if info is not None:
                                    self._send_reject(seq, mt, info.reason, info.ref_tag, info.text)
                                else:
                                    try:
                                        result = from_app(msg, self)
                                    except Exception as exc:
                                        self._app_failed(exc, mt, seq)
                                    else:
                                        if result is not None and inspect.isawaitable(result):
                                            await self._await_app(result, mt, seq)
                        else:
                            await self._on_sequenced(msg, mt, seq)
                    else:
                        await self._verify_and_dispatch(msg, mt)
                    if self._closing is not None:
                        break
                if self._in_log:
                    self._audit_frames(b"in  ", self._in_log)
                    self._in_log = []
                self._kick()
                if self._closing is not None:
                    break
                if frames and (self._to_wire or self._to_store):
                    # reader.read() returns without suspending while bytes are buffered: yield once so
                    # the flusher commits and writes this chunk's answers now. Without it a busy reader
                    # would answer a whole burst at its end and the two peers would work in turns.
                    await asyncio.sleep(0)
                data = await reader.read(65536)
                if not data:
                    reason = "peer closed the connection"
                    break
                self._last_recv = self.clock.monotonic()
                frames = framer.feed(data)
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc}"
        except asyncio.CancelledError:
            reason = "cancelled"
            self._closing = self._closing or reason
            await self._end_connection(reason)
            raise
        await self._end_connection(self._closing or reason)
        return self._closing or reason

    async def _end_connection(self, reason: str) -> None:
        self._closing = self._closing or reason
        if self._kick_evt is not None:
            self._kick_evt.set()
        if self._flusher is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._flusher), 5.0)
            if not self._flusher.done():
                self._flusher.cancel()
        if self._timer is not None:
            self._timer.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        for fut in self._flush_waiters:
            if not fut.done():
                fut.set_result(None)
        self._flush_waiters = []
        was_active = self._state in (SessionState.ACTIVE, SessionState.LOGOUT_IN_PROGRESS) and self._logon_received
        policy = self.settings.reset
        if policy is ResetPolicy.DISCONNECT or (policy is ResetPolicy.LOGOUT and self._logout_exchanged):
            self.next_sender_seq = self.next_target_seq = 1
            self._to_store.clear()  # stored-for-later messages of the old numbering go with the reset
            with contextlib.suppress(Exception):
                await self.store.reset(self.key, self.clock.time_ns())
            self._saved = (1, 1)
        self.reason = self._closing or reason
        self._set_state(SessionState.DISCONNECTED, self.reason)
        self._publish_stats()
        if was_active:
            try:
                await _maybe_await(self.app.on_logout(self))
            except Exception:
                log.exception("%s: on_logout failed", self.key)

    def _disconnect(self, reason: str) -> None:
        """Close after the pending output is stored and written."""
        if self._closing is None:
            self._closing = reason
            log.info("%s: disconnecting: %s", self.key, reason)
        self._kick()

    # --- output ------------------------------------------------------------------------------------
    def _kick(self) -> None:
        if self._kick_evt is not None:
            self._kick_evt.set()

    def _queue(self, msg_type: bytes, body: bytes, store: bool, extra_header: bytes = b"", wire: bool = True) -> int:
        seq = self.next_sender_seq
        self.next_sender_seq = seq + 1
        # Same bytes as message.encode, with the constant header parts prepared once per session and
        # BodyLength added up from the parts (one join, no intermediate copy).
        # The CheckSum is the sum of the header's and the body's sums: the body is not copied to be summed.
        # Up to 256 bytes, Adler-32's low half is 1 + the byte sum (see message.byte_sum).
        rest = b"35=%s%s%d\x0152=%s\x01%s" % (msg_type, self._hdr_ids, seq, utc_timestamp(self.clock.time_ns()),
                                              extra_header)
        n = len(body)
        head = b"%s%d\x01%s" % (self._hdr_begin, len(rest) + n, rest)
        total = (adler32(body) & 0xFFFF) - 1 if n <= 256 else byte_sum(body)
        total += (adler32(head) & 0xFFFF) - 1 if len(head) <= 256 else byte_sum(head)
        raw = b"".join((head, body, _TRAILERS[total & 255]))
        if store:
            self._to_store.append((seq, raw))
        if not wire:  # store-and-forward (_send_offline): not on the wire now; its resend is logged then
            return seq
        to_wire = self._to_wire
        if not to_wire and self._kick_evt is not None:
            # The first message since the flusher took the last batch wakes it (the event stays set, or
            # the flusher is busy and loops, until it has taken this one too).
            self._kick_evt.set()
        to_wire.append(raw)
        self._last_sent = self.clock.monotonic()
        self.msgs_out += 1
        if self.bus is not None and self.settings.publish_messages:
            self.bus.publish(FixMessageLogged(session=self.key, direction="out", raw=mask(raw), msg_type=msg_type.decode()))
        return seq

    def _queue_admin(self, msg_type: str, fields: list[tuple[int, Any]]) -> int:
        msg = Message(msg_type, fields)
        try:
            self.app.to_admin(msg, self)
        except Exception:
            log.exception("%s: to_admin failed", self.key)
        return self._queue(msg_type.encode(), msg.body(), False)

    def _wire_only(self, raw: bytes) -> None:
        """A replayed message or gap fill: keeps its old sequence number, never stored again."""
        if not self._to_wire:
            self._kick()
        self._to_wire.append(raw)
        self._last_sent = self.clock.monotonic()
        self.msgs_out += 1
        if self.bus is not None and self.settings.publish_messages:
            self.bus.publish(FixMessageLogged(session=self.key, direction="out", raw=mask(raw), msg_type=parse(raw).msg_type))

    async def _flush_loop(self) -> None:
        evt = self._kick_evt
        assert evt is not None
        while True:
            await evt.wait()
            evt.clear()
            try:
                await self._flush_once()
            except (ConnectionError, OSError) as exc:
                self._closing = self._closing or f"connection error: {exc}"
            if self._closing is not None and not self._to_wire and not self._to_store:
                writer = self._writer
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.close()
                return

    async def _flush_once(self) -> None:
        while True:
            msgs, self._to_store = self._to_store, []
            wire, self._to_wire = self._to_wire, []
            waiters, self._flush_waiters = self._flush_waiters, []
            if self._reset_pending:
                self._reset_pending = False
                await self.store.reset(self.key, self.clock.time_ns())
                self._saved = (1, 1)
            seqs = (self.next_sender_seq, self.next_target_seq)
            saved = self._saved
            # The sender number is saved before anything with it is written. The target number alone
            # is saved at most every TARGET_SAVE_INTERVAL (a crash then costs a resend of those
            # messages as PossDup, never a loss); with outbound traffic it rides along for free.
            if (
                msgs
                or seqs[0] != saved[0]
                or (seqs[1] != saved[1] and (self._closing is not None
                                            or self.clock.monotonic() - self._target_saved_at >= TARGET_SAVE_INTERVAL))
            ):
                # Stored before written: a SIGKILL after this line loses nothing the peer has seen.
                save_now = getattr(self.store, "save_now", None)
                if save_now is not None:
                    save_now(self.key, seqs[0], seqs[1], msgs)
                else:
                    await self.store.save(self.key, seqs[0], seqs[1], msgs)
                self._saved = seqs
                self._target_saved_at = self.clock.monotonic()
            writer = self._writer
            if wire and writer is not None:
                writer.write(b"".join(wire))
                if self._audit is not None:
                    self._audit_frames(b"out ", wire)
                transport = writer.transport
                if transport is not None and transport.get_write_buffer_size() > 1 << 20:
                    await writer.drain()
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
            if self._state_changed is not None:
                await self._notify()
            if not self._to_store and not self._to_wire and not self._reset_pending:
                return

    def _audit_frames(self, direction: bytes, frames: list[bytes]) -> None:
        """Audit-log a batch of frames: one line each, secrets masked by one pass over the batch."""
        if self._audit is None:
            return
        head = utc_timestamp(self.clock.time_ns()) + b" " + direction
        # No field starts a line (each frame begins with 8=), so mask's field-anchored pattern is safe here.
        text = head + (b"\n" + head).join(frames) + b"\n"
        # partition()[1] rather than ``in``: 3.11's bytes ``in`` first tries the needle as an int and
        # formats the TypeError that fails, per test (~0.25 us each, on every inbound message too)
        if text.isascii() and not (
            text.partition(b"554=")[1]
            or text.partition(b"925=")[1]
            or text.partition(b"1402=")[1]
            or text.partition(b"1404=")[1]
        ):
            data = text.replace(SOH, b"|")  # what mask() gives, as the UTF-8 bytes of the file, without decoding
        else:
            data = mask(text).encode("utf-8")
        self._audit_write(data)

    def _write_audit(self, lines: list[str]) -> None:
        if self._audit is None:
            return
        stamp = utc_timestamp(self.clock.time_ns()).decode()
        self._audit_write("".join(f"{stamp} {line}\n" for line in lines).encode("utf-8"))

    def _audit_write(self, data: bytes) -> None:
        """Append lines (UTF-8, each ending in a newline) to the audit file, flushed to the OS at once.

        The same bytes and the same rotation as the RotatingFileHandler's ``handle`` (rolled over when this
        write would reach ``log_max_bytes``), without its per-record work (LogRecord, lock, format, a seek
        and a tell): this runs once per read chunk and once per flush."""
        h = self._audit
        assert h is not None
        if h.maxBytes > 0 and self._audit_size + len(data) >= h.maxBytes:
            h.doRollover()
            self._audit_size = 0
        stream = h.stream
        if stream is None:  # closed by logging.shutdown (interpreter exit): reopened as the handler would
            stream = h.stream = h._open()
        buf = stream.buffer  # the handler's text stream is never written through: bytes go to its buffer
        buf.write(data)
        buf.flush()
        self._audit_size += len(data)

    # --- admin messages we send --------------------------------------------------------------------
    def _send_logon(self, *, reset: bool) -> None:
        fields: list[tuple[int, Any]] = [(98, 0), (108, self.heartbeat_interval)]
        if reset:
            fields.append((141, "Y"))
        s = self.settings
        # Username (553) / Password (554) exist in Logon from FIX 4.3 on; a FIX 4.2 counterparty that
        # wants credentials defines its own tags (add them in Application.to_admin).
        if self.role == "initiator" and self.id.begin_string >= "FIX.4.3":
            if s.username:
                fields.append((553, s.username))
            if s.password is not None:
                fields.append((554, s.password.get_secret_value()))
        self._logon_sent = True
        self._queue_admin(LOGON, fields)

    def _send_logout(self, text: str = "") -> None:
        self._logout_sent_at = self.clock.monotonic()
        self._queue_admin(LOGOUT, [(58, text)] if text else [])

    def _send_heartbeat(self, test_req_id: bytes | None = None) -> None:
        self._queue_admin(HEARTBEAT, [(112, test_req_id)] if test_req_id is not None else [])

    def _send_test_request(self) -> None:
        self._test_req_count += 1
        self._test_req_id = f"TEST{self._test_req_count}"
        self._queue_admin(TEST_REQUEST, [(112, self._test_req_id)])

    def _send_resend_request(self, begin: int, end: int = 0) -> None:
        self._queue_admin(RESEND_REQUEST, [(7, begin), (16, end)])

    def _send_reject(self, ref_seq: int | None, ref_msg_type: str, reason: int, ref_tag: int | None = None,
                     text: str = "") -> None:
        self.errors += 1
        fields: list[tuple[int, Any]] = [(45, ref_seq if ref_seq is not None else 0)]
        if ref_tag is not None:
            fields.append((371, ref_tag))
        if ref_msg_type:
            fields.append((372, ref_msg_type))
        if reason <= self._max_reason:
            fields.append((373, reason))
        elif not text:
            text = f"SessionRejectReason {reason}"
        if text:
            fields.append((58, text))
        log.info("%s: Reject seq=%s reason=%s tag=%s %s", self.key, ref_seq, reason, ref_tag, text)
        self._queue_admin(REJECT, fields)

    def _send_business_reject(self, ref_seq: int, ref_msg_type: str, reason: int, text: str = "",
                              ref_id: str = "") -> None:
        self.errors += 1
        fields: list[tuple[int, Any]] = [(45, ref_seq), (372, ref_msg_type)]
        if ref_id:
            fields.append((379, ref_id))
        fields.append((380, reason))
        if text:
            fields.append((58, text))
        self._queue(b"j", Message("j", fields).body(), True)

    def _logout_and_disconnect(self, text: str) -> None:
        log.warning("%s: %s", self.key, text)
        self.errors += 1
        self._send_logout(text)
        self._disconnect(text)

    # --- timers ------------------------------------------------------------------------------------
    async def _timer_loop(self) -> None:
        period = min(1.0, self.settings.heartbeat_interval / 10)
        last_stats = time.monotonic()
        while True:
            await asyncio.sleep(period)
            self.check_timers()
            if (self.next_sender_seq, self.next_target_seq) != self._saved:
                self._kick()
            now = time.monotonic()
            if now - last_stats >= 1.0:
                self._rates(now)
                self._publish_stats()
                last_stats = now

    def check_timers(self) -> None:
        """Heartbeat, TestRequest, silence and logon/logout timeouts, against the injected clock."""
        if self._writer is None or self._closing is not None:
            return
        now = self.clock.monotonic()
        state = self._state
        if state is SessionState.LOGON_IN_PROGRESS:
            if now - self._connected_at >= self.settings.logon_timeout:
                self._disconnect("logon timeout")
            return
        if state is SessionState.LOGOUT_IN_PROGRESS:
            if self._logout_sent_at is not None and now - self._logout_sent_at >= self.settings.logout_timeout:
                self._disconnect("logout timeout")
            return
        if state is not SessionState.ACTIVE:
            return
        hb = self.heartbeat_interval
        silent = now - self._last_recv
        if self._test_req_id is not None and silent >= self.settings.disconnect_factor * hb:
            self.errors += 1
            self._disconnect(f"no answer to TestRequest {self._test_req_id} after {silent:.1f}s")
            return
        if self._test_req_id is None and silent >= self.settings.test_request_factor * hb:
            self._send_test_request()
        if now - self._last_sent >= hb:
            self._send_heartbeat()

    # --- input -------------------------------------------------------------------------------------
    def _on_garbled(self, raw: bytes, reason: str) -> None:
        self.errors += 1
        log.warning("%s: garbled message ignored (%s): %s", self.key, reason, mask(raw[:200]))

    async def _verify_and_dispatch(self, msg: FixMessage, mt: str) -> None:
        seq = self._check_header(msg, mt)
        if seq is not None:
            await self._on_sequenced(msg, mt, seq)

    def _check_header(self, msg: FixMessage, mt: str) -> int | None:
        """The header checks of every inbound message (first-message-is-Logon, BeginString, MsgSeqNum,
        CompIDs, SendingTime, PossDup/OrigSendingTime). Returns MsgSeqNum, or None when the message was
        answered (Reject/Logout) or dropped here."""
        if not self._logon_received:
            if mt == LOGOUT and self._logon_sent:
                text = msg.get_str(58, "") or ""
                self._logout_exchanged = True
                self._disconnect(f"logon refused by peer: {text}" if text else "logon refused by peer")
                return None
            if mt != LOGON:
                self.errors += 1
                self._disconnect(f"first message is not Logon (35={mt})")
                return None
        raw = msg.raw
        m = self._hdr_ours(raw) or self._hdr_qf(raw)
        if m is not None:
            # BeginString and CompIDs right; these 34 and 52 are the first in the message (the fields
            # before them cannot contain SOH), as the checks below would find them.
            v, raw_st = m.groups()
            seq = int(v)
            expected = self.next_target_seq
        else:
            if not raw.startswith(self._hdr_begin):
                self._logout_and_disconnect(f"Incorrect BeginString {msg.begin_string}")
                return None
            i = raw.find(b"\x0134=")
            v = raw[i + 4 : raw.find(b"\x01", i + 4)] if i >= 0 else b""
            if not v.isdigit():
                self._logout_and_disconnect("MsgSeqNum (34) missing")
                return None
            seq = int(v)
            expected = self.next_target_seq
            if self.settings.check_comp_ids and not (  # partition: see _audit_frames
                raw.partition(self._in_sender)[1] and raw.partition(self._in_target)[1]
            ):
                bad = 49 if msg.get(49) != self._target else 56
                if seq == expected:
                    self.next_target_seq += 1
                self._send_reject(seq, mt, SessionRejectReason.COMPID_PROBLEM, bad, "CompID problem")
                self._logout_and_disconnect("CompID problem")
                return None
            raw_st = msg.get(52)
        if raw_st == self._last_st[0]:  # many messages share a millisecond: parse each stamp once
            sending_time = self._last_st[1]
        else:
            sending_time = parse_utc_timestamp(raw_st)
            if sending_time is not None:
                self._last_st = (raw_st, sending_time)
        if sending_time is None:
            if seq == expected:
                self.next_target_seq += 1
            reason = (SessionRejectReason.REQUIRED_TAG_MISSING if raw_st is None
                      else SessionRejectReason.INCORRECT_DATA_FORMAT_FOR_VALUE)
            self._send_reject(seq, mt, reason, 52, "SendingTime missing or malformed")
            return None
        if abs(sending_time - self.clock.time_ns()) > self.settings.sending_time_window * 1e9:
            if seq == expected:
                self.next_target_seq += 1
            self._send_reject(seq, mt, SessionRejectReason.SENDINGTIME_ACCURACY_PROBLEM, 52,
                              "SendingTime accuracy problem")
            self._logout_and_disconnect("SendingTime accuracy problem")
            return None
        poss_dup = bool(raw.partition(b"\x0143=Y\x01")[1])
        if poss_dup and mt != SEQUENCE_RESET:
            orig = msg.get(122)
            if orig is None:
                if seq == expected:
                    self.next_target_seq += 1
                self._send_reject(seq, mt, SessionRejectReason.REQUIRED_TAG_MISSING, 122,
                                  "Required tag missing: OrigSendingTime")
                return None
            orig_ns = parse_utc_timestamp(orig)
            if orig_ns is None or orig_ns > sending_time:
                if seq == expected:
                    self.next_target_seq += 1
                self._send_reject(seq, mt, SessionRejectReason.SENDINGTIME_ACCURACY_PROBLEM, 122,
                                  "OrigSendingTime after SendingTime")
                self._logout_and_disconnect("OrigSendingTime after SendingTime")
                return None
        return seq

    async def _on_sequenced(self, msg: FixMessage, mt: str, seq: int) -> None:
        """After the header checks: Logon, SequenceReset-Reset, gaps, duplicates, then dispatch."""
        expected = self.next_target_seq
        if mt == LOGON:
            await self._on_logon(msg, seq)
            return
        if mt == SEQUENCE_RESET and msg.get(123) != b"Y":
            self._on_sequence_reset(msg, seq)
            return
        if seq > expected:
            await self._on_too_high(msg, mt, seq)
            return
        if seq < expected:
            if b"\x0143=Y\x01" in msg.raw:
                log.debug("%s: duplicate %s seq %d ignored", self.key, mt, seq)
                return
            self._logout_and_disconnect(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            return
        await self._dispatch(msg, mt, seq)
        if self._queued or self._resend_target:
            await self._drain_queue()

    async def _on_too_high(self, msg: FixMessage, mt: str, seq: int) -> None:
        if mt == LOGOUT:
            # The peer is leaving anyway: answer and close (the gap is recovered at the next logon).
            self._logout_exchanged = True
            if self._logout_sent_at is None:
                self._send_logout()
            self._disconnect("logout received (with a sequence gap)")
            return
        if mt == RESEND_REQUEST:
            # Serve it now (the peer is waiting); only its sequence number waits for the gap fill.
            await self._serve_resend(msg)
            queued: FixMessage | None = None
        else:
            queued = msg
        if len(self._queued) < MAX_QUEUED:
            self._queued.setdefault(seq, queued)
        if seq > self._resend_target:
            if self._resend_target == 0:
                log.info("%s: gap %d..%d: ResendRequest", self.key, self.next_target_seq, seq - 1)
                self._send_resend_request(self.next_target_seq, 0)
            self._resend_target = seq

    async def _drain_queue(self) -> None:
        queued = self._queued
        while queued:
            nxt = self.next_target_seq
            if nxt not in queued:
                for s in [s for s in queued if s < nxt]:
                    del queued[s]
                break
            msg = queued.pop(nxt)
            if msg is None:  # a ResendRequest already served
                self.next_target_seq += 1
                continue
            await self._dispatch(msg, msg.msg_type, nxt)
            if self._closing is not None:
                return
        if self._resend_target and self.next_target_seq > self._resend_target and not queued:
            log.info("%s: resend complete at %d", self.key, self.next_target_seq)
            self._resend_target = 0

    async def _dispatch(self, msg: FixMessage, mt: str, seq: int) -> None:
        """Handle an in-sequence message (``seq == next_target_seq``)."""
        if mt in ADMIN_TYPES:
            if mt == HEARTBEAT:
                self.next_target_seq = seq + 1
                self.last_heartbeat_ns = self.clock.time_ns()
                if self._test_req_id is not None and msg.get_str(112) == self._test_req_id:
                    self._test_req_id = None
            elif mt == TEST_REQUEST:
                self.next_target_seq = seq + 1
                self._send_heartbeat(msg.get(112))
            elif mt == RESEND_REQUEST:
                self.next_target_seq = seq + 1
                await self._serve_resend(msg)
            elif mt == SEQUENCE_RESET:  # GapFill (Reset mode never gets here)
                new = msg.get_int(36)
                if new is None:
                    self.next_target_seq = seq + 1
                    self._send_reject(seq, mt, SessionRejectReason.REQUIRED_TAG_MISSING, 36)
                elif new <= seq:
                    self.next_target_seq = seq + 1
                    self._send_reject(seq, mt, SessionRejectReason.VALUE_IS_INCORRECT, 36,
                                      f"attempt to lower sequence number, invalid value NewSeqNo={new}")
                else:
                    self.next_target_seq = new
            elif mt == REJECT:
                self.next_target_seq = seq + 1
                log.warning("%s: peer rejected our seq %s: %s", self.key, msg.get_str(45), msg.get_str(58, ""))
            elif mt == LOGOUT:
                self.next_target_seq = seq + 1
                self._logout_exchanged = True
                if self._logout_sent_at is None:
                    self._set_state(SessionState.LOGOUT_IN_PROGRESS, msg.get_str(58, "") or "peer logout")
                    self._send_logout()
                    self._disconnect("logout requested by peer")
                else:
                    self._disconnect("logout confirmed")
            elif mt == LOGON:  # a second Logon on a live session
                self.next_target_seq = seq + 1
                self._send_reject(seq, mt, SessionRejectReason.OTHER, None, "already logged on")
            try:
                await _maybe_await(self.app.from_admin(msg, self))
            except Exception:
                log.exception("%s: from_admin failed", self.key)
            return
        pending = self._on_app(msg, mt, seq)
        if pending is not None:
            await self._await_app(pending, mt, seq)

    def _on_app(self, msg: FixMessage, mt: str, seq: int) -> Any:
        """An in-sequence application message: validate, then ``from_app``. Returns the awaitable when
        ``from_app`` is a coroutine function (the caller awaits it through ``_await_app``)."""
        self.next_target_seq = seq + 1
        if self._state is not SessionState.ACTIVE and self._state is not SessionState.LOGOUT_IN_PROGRESS:
            return None
        if self.validator is not None and self.settings.validate_messages:
            info = self.validator.validate(msg)
            if info is not None:
                self._send_reject(seq, mt, info.reason, info.ref_tag, info.text)
                return None
        try:
            result = self.app.from_app(msg, self)
        except Exception as exc:
            self._app_failed(exc, mt, seq)
            return None
        if result is not None and inspect.isawaitable(result):
            return result
        return None

    async def _await_app(self, pending: Any, mt: str, seq: int) -> None:
        try:
            await pending
        except Exception as exc:
            self._app_failed(exc, mt, seq)

    def _app_failed(self, exc: Exception, mt: str, seq: int) -> None:
        """The answer to an exception raised by ``from_app``."""
        if isinstance(exc, UnsupportedMessageType):
            self._send_business_reject(seq, mt, BusinessRejectReason.UNSUPPORTED_MESSAGE_TYPE,
                                       f"Unsupported Message Type {mt}")
        elif isinstance(exc, BusinessReject):
            self._send_business_reject(seq, mt, exc.reason, exc.text, exc.ref_id)
        elif isinstance(exc, FieldNotFound):
            self._send_reject(seq, mt, SessionRejectReason.REQUIRED_TAG_MISSING, exc.tag, str(exc))
        elif isinstance(exc, IncorrectTagValue):
            self._send_reject(seq, mt, SessionRejectReason.VALUE_IS_INCORRECT, exc.tag, str(exc))
        elif not isinstance(exc, SessionNotActive):
            self.errors += 1
            log.error("%s: from_app failed on %s seq %d", self.key, mt, seq, exc_info=exc)

    def _on_sequence_reset(self, msg: FixMessage, seq: int) -> None:
        """SequenceReset-Reset: MsgSeqNum is ignored, NewSeqNo must not go backwards."""
        new = msg.get_int(36)
        if new is None:
            self._send_reject(seq, SEQUENCE_RESET, SessionRejectReason.REQUIRED_TAG_MISSING, 36)
            return
        if new < self.next_target_seq:
            self._send_reject(seq, SEQUENCE_RESET, SessionRejectReason.VALUE_IS_INCORRECT, 36,
                              f"attempt to lower sequence number, invalid value NewSeqNo={new}")
            return
        if new == self.next_target_seq:
            log.warning("%s: SequenceReset to the expected %d", self.key, new)
        self.next_target_seq = new
        for s in [s for s in self._queued if s < new]:
            del self._queued[s]
        if self._resend_target and new > self._resend_target:
            self._resend_target = 0

    async def _on_logon(self, msg: FixMessage, seq: int) -> None:
        if self._logon_received:
            if seq == self.next_target_seq:
                await self._dispatch(msg, LOGON, seq)
            return
        hb = msg.get_int(108)
        if hb is None:
            self._logout_and_disconnect("HeartBtInt (108) missing or invalid in Logon")
            return
        encrypt = msg.get(98)
        if encrypt is not None and encrypt != b"0":
            self._logout_and_disconnect(f"unsupported EncryptMethod {encrypt.decode('latin-1')}")
            return
        reset_requested = msg.get(141) == b"Y"
        initiator = self._logon_sent
        if reset_requested or (not initiator and self.settings.reset is ResetPolicy.LOGON):
            if not initiator:
                # The peer (or our policy) resets both directions; our Logon reply will be seq 1.
                self._reset_seqs()
            else:
                self.next_target_seq = 1
                self._reset_pending = True
        if not initiator:
            s = self.settings
            if s.password is not None or s.username:
                user = msg.get_str(553)
                pwd = msg.get_str(554)
                ok = (not s.username or user == s.username) and (
                    s.password is None or pwd == s.password.get_secret_value()
                )
                if not ok:
                    self._logout_and_disconnect("Invalid username or password")
                    return
        expected = self.next_target_seq
        if seq < expected and not reset_requested:
            self._logout_and_disconnect(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            return
        try:
            await _maybe_await(self.app.from_admin(msg, self))
        except RejectLogon as exc:
            self._logout_and_disconnect(str(exc) or "logon rejected")
            return
        except Exception:
            log.exception("%s: from_admin failed on Logon", self.key)
        self._logon_received = True
        if not initiator:
            self.heartbeat_interval = hb if hb > 0 else self.settings.heartbeat_interval
            self._send_logon(reset=reset_requested or self.settings.reset is ResetPolicy.LOGON)
        if seq == expected:
            self.next_target_seq = seq + 1
        self._set_state(SessionState.ACTIVE, "logged on")
        log.info("%s: logged on (HeartBtInt %d)", self.key, self.heartbeat_interval)
        try:
            await _maybe_await(self.app.on_logon(self))
        except Exception:
            log.exception("%s: on_logon failed", self.key)
        if seq > expected:
            await self._on_too_high(msg, LOGON, seq)
            # The Logon itself was processed: its slot is filled by the resend as a gap fill.
            self._queued[seq] = None

    def _reset_seqs(self) -> None:
        self.next_sender_seq = 1
        self.next_target_seq = 1
        self._to_store.clear()
        self._reset_pending = True

    # --- serving a ResendRequest -------------------------------------------------------------------
    async def _serve_resend(self, msg: FixMessage) -> None:
        begin = msg.get_int(7)
        end = msg.get_int(16)
        if begin is None or end is None:
            self._send_reject(msg.seq_num, RESEND_REQUEST, SessionRejectReason.REQUIRED_TAG_MISSING,
                              7 if begin is None else 16)
            return
        last = self.next_sender_seq - 1
        if end == 0 or end > last:
            end = last
        log.info("%s: serving ResendRequest %d..%d", self.key, begin, end)
        if begin > end:
            return
        # Everything queued so far must be in the store before we read it back.
        pending = {s: r for s, r in self._to_store if begin <= s <= end}
        stored = dict(await self.store.messages(self.key, begin, end))
        stored.update(pending)
        now = utc_timestamp(self.clock.time_ns())
        gap_start: int | None = None
        for s in range(begin, end + 1):
            raw = stored.get(s)
            replay = self._replay(raw, s, now) if raw is not None else None
            if replay is None:
                if gap_start is None:
                    gap_start = s
                continue
            if gap_start is not None:
                self._gap_fill(gap_start, s, now)
                gap_start = None
            self._wire_only(replay)
        if gap_start is not None:
            self._gap_fill(gap_start, end + 1, now)
        self._kick()

    def _gap_fill(self, seq: int, new_seq: int, now: bytes) -> None:
        raw = encode(self._begin, b"4", seq, self._sender, self._target, now, b"123=Y\x0136=%d\x01" % new_seq,
                     b"43=Y\x01122=%s\x01" % now)
        self._wire_only(raw)

    def _replay(self, raw: bytes, seq: int, now: bytes) -> bytes | None:
        old = parse(raw)
        if old.msg_type in ADMIN_TYPES:
            return None
        try:
            self.app.to_app(old, self)  # type: ignore[arg-type]  # a read-only view on replays
        except DoNotSend:
            return None
        orig = old.get(52) or now
        body = b"".join([b"%d=%s\x01" % (t, v) for t, v in old.pairs() if t not in SESSION_HEADER_TAGS])
        return encode(self._begin, old.msg_type.encode("latin-1"), seq, self._sender, self._target, now, body,
                      b"43=Y\x01122=%s\x01" % orig)

    # --- state and events --------------------------------------------------------------------------
    def _set_state(self, state: SessionState, reason: str = "") -> None:
        if state is self._state and not reason:
            return
        changed = state is not self._state
        self._state = state
        self.reason = reason
        if changed:
            log.info("%s: %s %s", self.key, state.value, reason)
            if self.bus is not None:
                self.bus.publish(FixSessionState(session=self.key, state=state, role=self.role, reason=reason))
        if self._state_changed is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        cond = self._state_changed
        if cond is not None:
            async with cond:
                cond.notify_all()

    async def _wait(self, predicate: Any, timeout: float) -> None:
        if predicate():
            return
        if self._state_changed is None:
            self._state_changed = asyncio.Condition()
        cond = self._state_changed

        async def waiter() -> None:
            async with cond:
                await cond.wait_for(predicate)

        await asyncio.wait_for(waiter(), timeout)

    def _rates(self, now: float) -> None:
        t0, n_in, n_out = self._rate_mark
        dt = now - t0
        if dt > 0:
            self.rate_in = (self.msgs_in - n_in) / dt
            self.rate_out = (self.msgs_out - n_out) / dt
        self._rate_mark = (now, self.msgs_in, self.msgs_out)

    def _publish_stats(self) -> None:
        if self.bus is None:
            return
        self.bus.publish(
            FixSessionStats(
                session=self.key,
                state=self._state,
                next_sender_seq=self.next_sender_seq,
                next_target_seq=self.next_target_seq,
                last_heartbeat_ts=self.last_heartbeat_ns,
                msgs_in=self.msgs_in,
                msgs_out=self.msgs_out,
                rate_in=round(self.rate_in, 1),
                rate_out=round(self.rate_out, 1),
                errors=self.errors,
            )
        )

    def __repr__(self) -> str:
        return f"<Session {self.key} {self._state.value} out={self.next_sender_seq} in={self.next_target_seq}>"


async def _maybe_await(result: Any) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


_ = SOH  # re-exported for callers building raw test frames
