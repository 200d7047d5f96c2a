"""Market-data events: best bid/offer and depth are conflated; trade prints are lossless."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engines.events import Event
from engines.orders import Side


@dataclass(frozen=True, slots=True, kw_only=True)
class BBO(Event):
    """Best bid and offer in ticks/lots; a side with no orders has price None and qty 0."""

    symbol: str
    bid_px: int | None
    bid_qty: int
    ask_px: int | None
    ask_qty: int
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"
    CONFLATE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Depth(Event):
    """L2 depth: (price ticks, qty lots) per level, best first."""

    symbol: str
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
    book_seq: int = 0
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"
    CONFLATE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade(Event):
    symbol: str
    trade_id: int
    price: int
    qty: int
    aggressor: Side
    maker_order_id: int
    taker_order_id: int
    maker_owner: str
    taker_owner: str
    maker_fee: float
    taker_fee: float
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"
