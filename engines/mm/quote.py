"""The quote engine: pure functions from (reference, inventory, parameters) to prices and sizes.

Arithmetic is in ``Decimal`` from the reference's shortest repr, so results are exact and testable to
the tick; outputs are integer ticks and lots.

* centre = reference * (1 - skew/1e4), skew = clamp(skew_bps_per_unit * (inventory - target), ±max_skew):
  long inventory moves the centre down (sells are more eager, buys less), short moves it up.
* half = clamp(spread_bps, min_spread_bps, max_spread_bps) / 2; level i (0-based) sits at
  half + i * level_step_bps from the centre: bid = centre * (1 - d/1e4), ask = centre * (1 + d/1e4).
* Rounding to the tick grid is always away from the centre — bids down, asks up — so rounding only
  ever widens a quote; an ask that would touch the bid is moved one tick up.
* Sizes: level i quotes order_qty + i * qty_increment lots; with ``max_position`` the cumulative size
  on each side is trimmed so that all of it filling would not take |position| past the limit, and a
  level below the instrument's minimum quantity is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from engines.instruments import Instrument
from engines.mm.config import MMBotConfig
from engines.orders import Side

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class QuoteParams:
    spread_bps: Decimal
    levels: int = 1
    level_step_bps: Decimal = Decimal(0)
    qty_lots: int = 1
    qty_increment_lots: int = 0
    min_spread_bps: Decimal = Decimal(0)
    max_spread_bps: Decimal = Decimal(500)
    target_inventory_lots: int = 0
    skew_bps_per_lot: Decimal = Decimal(0)
    max_skew_bps: Decimal = Decimal(50)
    max_position_lots: int | None = None

    @classmethod
    def from_config(cls, cfg: MMBotConfig, inst: Instrument) -> QuoteParams:
        lot = inst.lot_size
        return cls(
            spread_bps=cfg.spread_bps,
            levels=cfg.levels,
            level_step_bps=cfg.level_step_bps,
            qty_lots=inst.to_lots(cfg.order_qty),
            qty_increment_lots=inst.to_lots(cfg.qty_increment),
            min_spread_bps=cfg.min_spread_bps,
            max_spread_bps=cfg.max_spread_bps,
            target_inventory_lots=inst.to_lots(cfg.target_inventory),
            skew_bps_per_lot=cfg.skew_bps_per_unit * lot,
            max_skew_bps=cfg.max_skew_bps,
            max_position_lots=None if cfg.limits.max_position is None else int(cfg.limits.max_position / lot),
        )


@dataclass(frozen=True, slots=True)
class QuoteLevel:
    side: Side
    level: int
    price: int  # ticks
    qty: int  # lots


@dataclass(frozen=True, slots=True)
class QuoteSet:
    centre: Decimal
    skew_bps: Decimal
    spread_bps: Decimal
    bids: tuple[QuoteLevel, ...]
    asks: tuple[QuoteLevel, ...]

    def all(self) -> tuple[QuoteLevel, ...]:
        return self.bids + self.asks


def _dec(x: float | Decimal | int) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def effective_spread_bps(p: QuoteParams) -> Decimal:
    return min(max(p.spread_bps, p.min_spread_bps), p.max_spread_bps)


def skew_bps(inventory_lots: int, p: QuoteParams) -> Decimal:
    raw = p.skew_bps_per_lot * (inventory_lots - p.target_inventory_lots)
    return min(max(raw, -p.max_skew_bps), p.max_skew_bps)


def round_bid(price: Decimal, tick: Decimal) -> int:
    return int((price / tick).to_integral_value(rounding=ROUND_FLOOR))


def round_ask(price: Decimal, tick: Decimal) -> int:
    return int((price / tick).to_integral_value(rounding=ROUND_CEILING))


def level_sizes(p: QuoteParams, side: Side, inventory_lots: int, min_qty_lots: int = 1) -> list[int]:
    """Sizes per level for one side, trimmed to the position limit (cumulative), dropping tiny levels."""
    if p.max_position_lots is None:
        room = None
    elif side is Side.BUY:
        room = p.max_position_lots - inventory_lots
    else:
        room = p.max_position_lots + inventory_lots
    out: list[int] = []
    for i in range(p.levels):
        qty = p.qty_lots + i * p.qty_increment_lots
        if room is not None:
            qty = min(qty, room)
        if qty < max(1, min_qty_lots):
            break
        out.append(qty)
        if room is not None:
            room -= qty
    return out


def compute_quotes(reference: float | Decimal, inventory_lots: int, p: QuoteParams, inst: Instrument) -> QuoteSet:
    ref = _dec(reference)
    skew = skew_bps(inventory_lots, p)
    centre = ref * (1 - skew / BPS)
    spread = effective_spread_bps(p)
    half = spread / 2
    tick = inst.tick_size
    bids: list[QuoteLevel] = []
    asks: list[QuoteLevel] = []
    for i, qty in enumerate(level_sizes(p, Side.BUY, inventory_lots, inst.min_qty_lots)):
        d = (half + i * p.level_step_bps) / BPS
        bids.append(QuoteLevel(Side.BUY, i, round_bid(centre * (1 - d), tick), qty))
    best_bid = bids[0].price if bids else None
    for i, qty in enumerate(level_sizes(p, Side.SELL, inventory_lots, inst.min_qty_lots)):
        d = (half + i * p.level_step_bps) / BPS
        px = round_ask(centre * (1 + d), tick)
        if best_bid is not None and px <= best_bid:
            px = best_bid + 1  # never let our own ask touch our own bid
        asks.append(QuoteLevel(Side.SELL, i, px, qty))
    return QuoteSet(centre, skew, spread, tuple(bids), tuple(asks))


def moved_bps(current_ticks: int, target_ticks: int) -> Decimal:
    if current_ticks == 0:
        return Decimal("Infinity")
    return abs(Decimal(target_ticks - current_ticks)) / Decimal(current_ticks) * BPS


def needs_refresh(
    current_ticks: int,
    current_qty: int,
    target: QuoteLevel,
    *,
    tolerance_bps: Decimal,
    age: float,
    max_age: float,
) -> bool:
    """Replace a working order when its price is more than ``tolerance_bps`` off the target, its size
    differs, or it is at least ``max_age`` seconds old."""
    if age >= max_age:
        return True
    if current_qty != target.qty:
        return True
    return moved_bps(current_ticks, target.price) > tolerance_bps
