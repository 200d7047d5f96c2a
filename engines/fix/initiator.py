"""Initiator: connects out, logs on, reconnects with exponential backoff and jitter. SKELETON."""

from __future__ import annotations

import ssl

from engines.fix.session import Session


class Initiator:
    def __init__(self, session: Session, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                 seed: int | None = None) -> None:
        raise NotImplementedError

    async def start(self) -> None: ...

    async def stop(self, reason: str = "") -> None: ...
