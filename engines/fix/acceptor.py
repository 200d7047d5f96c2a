"""Acceptor: one listening socket serving many sessions.

A connection's first message must be a Logon; its BeginString, TargetCompID (our SenderCompID) and
SenderCompID (our TargetCompID) pick the :class:`~engines.fix.session.Session` from the registry (or
from ``session_factory`` for dynamic sessions). Unknown sessions, a first message that is not Logon,
and a second connection for a session that is already connected are closed without a reply — the
established connection is untouched (as QuickFIX does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from engines.fix.message import LOGON, FixFramer, mask, parse
from engines.fix.session import Session, SessionID

log = logging.getLogger(__name__)

SessionFactory = Callable[[SessionID], Session | None]


class Acceptor:
    def __init__(
        self,
        sessions: Iterable[Session] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        session_factory: SessionFactory | None = None,
        logon_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self._port = port
        self.ssl_context = ssl_context
        self.session_factory = session_factory
        self.logon_timeout = logon_timeout
        self.sessions: dict[SessionID, Session] = {}
        for s in sessions:
            self.add_session(s)
        self.name = "fix-acceptor"
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.refused = 0  # connections closed before reaching a session

    def add_session(self, session: Session) -> None:
        session.role = "acceptor"
        self.sessions[session.id] = session

    def session(self, sender_comp_id: str, target_comp_id: str, begin_string: str = "FIX.4.4") -> Session:
        return self.sessions[SessionID(begin_string, sender_comp_id, target_comp_id)]

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        for s in self.sessions.values():
            await s.open()
        self._server = await asyncio.start_server(self._handle, self.host, self._port, ssl=self.ssl_context)
        log.info("FIX acceptor listening on %s:%d (%d sessions)", self.host, self.port, len(self.sessions))

    async def stop(self, reason: str = "shutdown") -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(s.logout(reason) for s in self.sessions.values() if s.connected),
                             return_exceptions=True)
        for t in list(self._handlers):
            t.cancel()
        for t in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    def status(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "sessions": {s.key: s.status() for s in self.sessions.values()},
            "refused": self.refused,
        }

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _refuse(self, writer: asyncio.StreamWriter, why: str) -> None:
        self.refused += 1
        peer = writer.get_extra_info("peername")
        log.warning("FIX acceptor: connection from %s refused: %s", peer, why)
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = FixFramer(on_garbled=lambda raw, why: log.warning("garbled before logon (%s): %s", why, mask(raw)))
        frames: list[bytes] = []
        try:
            async with asyncio.timeout(self.logon_timeout):
                while not frames:
                    data = await reader.read(65536)
                    if not data:
                        await self._refuse(writer, "closed before Logon")
                        return
                    frames = framer.feed(data)
        except (TimeoutError, ConnectionError, OSError):
            await self._refuse(writer, "no Logon in time")
            return
        try:
            first = parse(frames[0])
        except ValueError:
            await self._refuse(writer, "unparseable first message")
            return
        if first.msg_type != LOGON:
            await self._refuse(writer, f"first message is not Logon (35={first.msg_type})")
            return
        sid = SessionID(first.begin_string, first.get_str(56) or "", first.get_str(49) or "")
        session = self.sessions.get(sid)
        if session is None and self.session_factory is not None:
            session = self.session_factory(sid)
            if session is not None:
                self.add_session(session)
                await session.open()
        if session is None:
            await self._refuse(writer, f"unknown session {sid}")
            return
        if session.connected:
            await self._refuse(writer, f"{sid} is already connected")
            return
        await session.run(reader, writer, initiator=False, framer=framer, initial=frames)
