"""Feed events: connection state of an external reference-price feed (lossless: state changes are rare)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engines.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStatus(Event):
    """``state``: connecting, live, stale, reconnecting, stopped."""

    feed: str
    state: str
    reason: str = ""
    frames: int = 0
    malformed: int = 0
    reconnects: int = 0
    KEY_FIELD: ClassVar[str | None] = "feed"
