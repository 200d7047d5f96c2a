"""Acceptor: serves many sessions on one port. SKELETON."""

from __future__ import annotations

import ssl

from engines.fix.session import Session


class Acceptor:
    def __init__(self, sessions: list[Session] = (), *, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        raise NotImplementedError

    def add_session(self, session: Session) -> None: ...

    @property
    def port(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
