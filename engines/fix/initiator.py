"""Initiator: connects out, logs on, and reconnects with exponential backoff and jitter.

    session = Session(SessionID("FIX.4.4", "CLIENT", "BROKER"), settings, MyApp(), SqliteStore(path))
    initiator = Initiator(session, "127.0.0.1", 9876)
    await initiator.start()            # returns at once; the session connects in the background
    await session.wait_state(SessionState.ACTIVE)
    await session.send(order)
    await initiator.stop("end of day") # Logout, wait for the answer, no reconnect

Backoff after the n-th consecutive failure: ``min(reconnect_max, reconnect_base * 2**(n-1))`` scaled by
a random factor in ``1 ± reconnect_jitter`` (seeded, so runs are reproducible). A session that reached
ACTIVE resets the count. After ``max_reconnect_attempts`` failures in a row the initiator gives up
(state DISCONNECTED, reason says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from typing import Any

from engines.fix.events import SessionState
from engines.fix.session import Session

log = logging.getLogger(__name__)


class Initiator:
    def __init__(
        self,
        session: Session,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        seed: int | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.session = session
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.name = f"fix-initiator:{session.key}"
        self._rng = random.Random(seed)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.attempts = 0  # consecutive failures
        self.connections = 0
        self.delays: list[float] = []  # backoff delays used (most recent last, bounded)

    def backoff(self, attempt: int) -> float:
        s = self.session.settings
        base = min(s.reconnect_max, s.reconnect_base * 2 ** max(0, attempt - 1))
        return max(0.0, base * (1 + s.reconnect_jitter * (2 * self._rng.random() - 1)))

    async def start(self) -> None:
        await self.session.open()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, reason: str = "shutdown") -> None:
        self._stopping = True
        s = self.session
        if s.connected:
            await s.logout(reason)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if s.state is not SessionState.DISCONNECTED:
            s.set_state(SessionState.DISCONNECTED, reason)

    def status(self) -> dict[str, Any]:
        return {**self.session.status(), "host": self.host, "port": self.port, "attempts": self.attempts}

    async def _run(self) -> None:
        s = self.session
        while not self._stopping:
            s.set_state(SessionState.CONNECTING, f"{self.host}:{self.port}")
            reason = ""
            logged_on = False
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        self.host,
                        self.port,
                        ssl=self.ssl_context,
                        server_hostname=self.server_hostname if self.ssl_context else None,
                    ),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                reason = f"connect failed: {exc or type(exc).__name__}"
                s.set_state(SessionState.DISCONNECTED, reason)
            else:
                self.connections += 1
                watcher = asyncio.create_task(s.wait_state(SessionState.ACTIVE, timeout=1e9))
                try:
                    reason = await s.run(reader, writer, initiator=True)
                finally:
                    logged_on = watcher.done() and not watcher.cancelled() and watcher.exception() is None
                    watcher.cancel()
            if self._stopping or s._stop_requested:
                break
            self.attempts = 0 if logged_on else self.attempts + 1
            limit = s.settings.max_reconnect_attempts
            if limit is not None and self.attempts >= limit and not logged_on:
                s.set_state(SessionState.DISCONNECTED, f"gave up after {self.attempts} attempts: {reason}")
                log.warning("%s: gave up after %d attempts", s.key, self.attempts)
                break
            delay = self.backoff(max(1, self.attempts))
            self.delays = [*self.delays[-99:], delay]
            s.set_state(SessionState.RECONNECTING, f"{reason}; retry in {delay:.2f}s")
            await asyncio.sleep(delay)
