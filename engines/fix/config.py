from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from engines.configbase import Listen, Section


class FixSessionConfig(Section):
    """One FIX session (initiator or acceptor side)."""

    name: str
    role: Literal["initiator", "acceptor"] = "initiator"
    begin_string: Literal["FIX.4.2", "FIX.4.4"] = "FIX.4.4"
    sender_comp_id: str
    target_comp_id: str
    host: str = "127.0.0.1"
    port: int = 0  # initiator: 0 means the desk's own acceptor
    heartbeat_interval: int = 30
    username: str | None = None
    password: SecretStr | None = None


class FixConfig(Section):
    enabled: bool = True
    acceptor: Listen = Listen(port=0)
    sessions: list[FixSessionConfig] = []
