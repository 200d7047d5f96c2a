"""Risk and kill-switch events (all lossless).

Scopes are strings: ``"desk"``, ``"bot:<name>"`` (orders whose owner is that bot), ``"instrument:<symbol>"``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from engines.events import Event


class TradingState(enum.StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that reduce position
    HALTED = "halted"  # nothing but cancels (and explicit flatten)


DESK = "desk"


def bot_scope(name: str) -> str:
    return f"bot:{name}"


def instrument_scope(symbol: str) -> str:
    return f"instrument:{symbol}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingStateChanged(Event):
    scope: str
    state: TradingState
    previous: TradingState
    reason: str
    source: str  # console, cli, signal, rule:<name>, api, startup
    KEY_FIELD: ClassVar[str | None] = "scope"


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitchAction(Event):
    """An audited kill or re-arm (also written to the audit table)."""

    action: str  # "kill" | "rearm" | "flatten"
    scope: str
    reason: str
    source: str
    actor: str = ""
    KEY_FIELD: ClassVar[str | None] = "scope"


@dataclass(frozen=True, slots=True, kw_only=True)
class KillProgress(Event):
    """Cancels of a kill being confirmed: published as they land and when the kill completes."""

    scope: str
    requested: int
    confirmed: int
    pending: tuple[str, ...] = ()  # "venue:symbol:client_id" of cancels not yet confirmed
    done: bool = False
    elapsed_ms: float = 0.0
    KEY_FIELD: ClassVar[str | None] = "scope"


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskBreach(Event):
    """An automatic rule or limit fired."""

    rule: str
    scope: str
    value: str
    limit: str
    detail: str = ""
    KEY_FIELD: ClassVar[str | None] = "scope"
