"""FIX session layer (FIX 4.2 and 4.4): state machine, sequence numbers, admin messages.

SKELETON — the public API is fixed; bodies are being filled in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

from engines.clock import Clock
from engines.fix.application import Application
from engines.fix.errors import RejectInfo
from engines.fix.events import SessionState
from engines.fix.message import FixMessage, Message
from engines.fix.store import MessageStore, ResetPolicy

__all__ = ["Session", "SessionID", "SessionSettings", "SessionState", "Validator"]


@dataclass(frozen=True, slots=True)
class SessionID:
    begin_string: str
    sender_comp_id: str
    target_comp_id: str

    def __str__(self) -> str:
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}"


class SessionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heartbeat_interval: int = 30
    reset: ResetPolicy = ResetPolicy.NEVER
    validate_messages: bool = True
    sending_time_window: float = 120.0  # seconds
    username: str | None = None
    password: SecretStr | None = None
    logon_timeout: float = 10.0
    logout_timeout: float = 2.0
    max_reconnect_attempts: int | None = None
    reconnect_base: float = 0.5
    reconnect_max: float = 30.0
    reconnect_jitter: float = 0.2


class Validator(Protocol):
    def validate(self, msg: FixMessage) -> RejectInfo | None: ...


class Session:
    def __init__(
        self,
        session_id: SessionID,
        settings: SessionSettings,
        application: Application,
        store: MessageStore,
        *,
        role: str,
        clock: Clock | None = None,
        bus: Any = None,
        validator: Validator | None = None,
        log_dir: Any = None,
    ) -> None:
        raise NotImplementedError

    @property
    def state(self) -> SessionState: ...

    def send_nowait(self, msg: Message | Any) -> int: ...

    async def send(self, msg: Message | Any) -> int: ...

    async def logout(self, reason: str = "", timeout: float | None = None) -> None: ...

    async def wait_state(self, state: SessionState, timeout: float = 5.0) -> None: ...

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None: ...
