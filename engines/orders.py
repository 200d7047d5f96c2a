"""Order vocabulary shared by every engine: sides, types, requests and the order-lifecycle events.

Prices are integer ticks and quantities integer lots of the order's instrument
(``engines.instruments.Instrument`` converts at the edges). Order-lifecycle events are lossless.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from engines.events import Event


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(enum.StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class Liquidity(enum.StrEnum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """A new order as any source (bot, grid, FIX client, operator) asks for it."""

    symbol: str
    side: Side
    qty: int
    price: int | None = None  # ticks; None for market orders
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    client_id: str = ""
    owner: str = "operator"
    venue: str = "sim"


# --- lifecycle events (lossless) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(Event):
    symbol: str
    order_id: int
    client_id: str
    owner: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: int | None
    qty: int
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Event):
    """Refused by the risk gate (``source="risk"``) or the venue (``source=<venue>``), with the reason."""

    symbol: str
    client_id: str
    owner: str
    side: Side
    price: int | None
    qty: int
    reason: str
    source: str
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(Event):
    """An order left the book unfilled or partly filled: status CANCELED or EXPIRED, with the reason."""

    symbol: str
    order_id: int
    client_id: str
    owner: str
    side: Side
    price: int | None
    canceled_qty: int
    filled_qty: int
    status: OrderStatus = OrderStatus.CANCELED
    reason: str = ""
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaced(Event):
    symbol: str
    order_id: int
    client_id: str
    orig_client_id: str
    owner: str
    side: Side
    price: int | None
    qty: int  # new open (leaves) quantity
    kept_priority: bool
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRejected(Event):
    symbol: str
    order_id: int | None
    client_id: str
    owner: str
    reason: str
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill(Event):
    """One side of a trade, as its owner sees it. ``fee`` is in quote currency (negative = rebate)."""

    symbol: str
    order_id: int
    client_id: str
    owner: str
    side: Side
    price: int
    qty: int
    leaves_qty: int
    liquidity: Liquidity
    fee: float
    trade_id: int
    venue: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"
