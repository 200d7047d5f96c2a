"""Grid levels: exact prices (Decimal, snapped to the instrument's tick) between a lower and upper bound.

Kinds:

* ``arithmetic`` — equal price gaps: ``L_i = lower + i·(upper - lower)/(n - 1)``.
* ``geometric`` — equal ratios: ``L_i = lower·(upper/lower)^(i/(n - 1))`` (computed with 34-digit Decimal).
* ``fibonacci`` — gaps proportional to Fibonacci numbers growing outwards from the middle, so the
  grid is densest at the centre (where the price starts) and widens towards the bounds: the gap ``d``
  gaps from the centre weighs ``F(d + 2)`` = 1, 2, 3, 5, 8, …
* ``volatility`` — equal gaps of ``multiplier x volatility`` (an ATR in price units, or a realised
  stdev of log returns times the centre price) centred on ``center``; if ``n`` such levels do not fit
  between the bounds the gap shrinks to fit, and the block is shifted to stay inside them.

Every price is rounded to the nearest tick (half up). Two levels landing on the same tick is an error:
the grid is too dense for the tick size.

A grid of ``n`` levels has ``n - 1`` cells; cell ``i`` buys at ``L_i`` and sells the same quantity at
``L_{i+1}`` (see ``engines.grid.backtest`` for the trading semantics). Quantities are per cell.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Literal

Kind = Literal["arithmetic", "geometric", "fibonacci", "volatility"]
KINDS: tuple[str, ...] = ("arithmetic", "geometric", "fibonacci", "volatility")

_CTX = Context(prec=34)


def snap(price: Decimal, tick: Decimal) -> Decimal:
    """Nearest multiple of ``tick`` (half up), with the tick's exponent."""
    return ((price / tick).to_integral_value(rounding=ROUND_HALF_UP) * tick).quantize(tick)


def snap_down(qty: Decimal, lot: Decimal) -> Decimal:
    return ((qty / lot).to_integral_value(rounding=ROUND_DOWN) * lot).quantize(lot)


def _check(lower: Decimal, upper: Decimal, n: int) -> None:
    if n < 2:
        raise ValueError(f"a grid needs at least 2 levels, got {n}")
    if not (Decimal(0) < lower < upper):
        raise ValueError(f"need 0 < lower < upper, got lower={lower} upper={upper}")


def snap_levels(raw: Sequence[Decimal], tick: Decimal) -> tuple[Decimal, ...]:
    out = tuple(snap(p, tick) for p in raw)
    for a, b in itertools.pairwise(out):
        if b <= a:
            raise ValueError(f"levels {a} and {b} collide at tick {tick}: too many levels for the range")
    return out


def arithmetic(lower: Decimal, upper: Decimal, n: int, tick: Decimal) -> tuple[Decimal, ...]:
    _check(lower, upper, n)
    with localcontext(_CTX):
        step = (upper - lower) / (n - 1)
        return snap_levels([lower + step * i for i in range(n)], tick)


def geometric(lower: Decimal, upper: Decimal, n: int, tick: Decimal) -> tuple[Decimal, ...]:
    _check(lower, upper, n)
    with localcontext(_CTX):
        ratio = upper / lower
        raw = [lower * ratio ** (Decimal(i) / (n - 1)) for i in range(n)]
        raw[-1] = upper  # exact ends, not 1 ulp off from the power
        return snap_levels(raw, tick)


def fib_weights(gaps: int) -> list[int]:
    """Centre-dense Fibonacci gap weights: the gap ``d`` gaps from the centre weighs ``F(d + 2)``
    (1, 2, 3, 5, 8, …). 5 gaps → [3, 2, 1, 2, 3]; 6 gaps → [3, 2, 1, 1, 2, 3]."""
    fib = [0, 1]
    while len(fib) < gaps + 3:
        fib.append(fib[-1] + fib[-2])
    # distance from the centre in whole gaps: 2·|j - (g-1)/2| floored by halves
    return [fib[abs(2 * j - (gaps - 1)) // 2 + 2] for j in range(gaps)]


def fibonacci(lower: Decimal, upper: Decimal, n: int, tick: Decimal) -> tuple[Decimal, ...]:
    _check(lower, upper, n)
    w = fib_weights(n - 1)
    total = sum(w)
    with localcontext(_CTX):
        span = upper - lower
        raw = [lower]
        acc = 0
        for wj in w:
            acc += wj
            raw.append(lower + span * acc / total)
        return snap_levels(raw, tick)


def volatility(
    lower: Decimal,
    upper: Decimal,
    n: int,
    tick: Decimal,
    *,
    center: Decimal,
    step: Decimal,
) -> tuple[Decimal, ...]:
    """``n`` equally spaced levels ``step`` apart centred on ``center``, kept inside [lower, upper]."""
    _check(lower, upper, n)
    if step <= 0:
        raise ValueError(f"volatility step must be positive, got {step}")
    with localcontext(_CTX):
        step = min(step, (upper - lower) / (n - 1))
        half = step * (n - 1) / 2
        start = min(max(center - half, lower), upper - step * (n - 1))
        return snap_levels([start + step * i for i in range(n)], tick)


# --- volatility estimates (floats: they are estimates, not prices) ---------------------------------


def realised_vol(closes: Sequence[float], window: int = 0) -> float:
    """Sample stdev of log returns over the last ``window`` returns (all if 0)."""
    c = [float(x) for x in closes]
    r = [math.log(b / a) for a, b in itertools.pairwise(c)]
    if window:
        r = r[-window:]
    if len(r) < 2:
        raise ValueError("realised volatility needs at least 3 prices")
    m = sum(r) / len(r)
    return math.sqrt(sum((x - m) ** 2 for x in r) / (len(r) - 1))


def atr(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float], window: int = 14) -> float:
    """Average true range (simple mean of the last ``window`` true ranges)."""
    if not (len(highs) == len(lows) == len(closes)) or len(closes) < 2:
        raise ValueError("ATR needs equal-length high/low/close series of at least 2 candles")
    tr = [
        max(h - lo, abs(h - pc), abs(lo - pc))
        for h, lo, pc in zip(highs[1:], lows[1:], closes[:-1])
    ]
    tr = tr[-window:] if window else tr
    return sum(tr) / len(tr)


def vol_step(
    *,
    multiplier: float,
    center: float,
    closes: Sequence[float] | None = None,
    highs: Sequence[float] | None = None,
    lows: Sequence[float] | None = None,
    window: int = 14,
    method: Literal["atr", "stdev"] = "atr",
) -> Decimal:
    """The level gap for a volatility grid: ``multiplier x ATR`` or ``multiplier x sigma x center``."""
    if closes is None:
        raise ValueError("a volatility grid needs price history")
    if method == "atr":
        if highs is None or lows is None:
            highs = lows = closes  # a close-only series: true range = |close-to-close move|
        v = atr(highs, lows, closes, window)
    else:
        v = realised_vol(closes, window) * center
    return Decimal(repr(multiplier * v))


def make_levels(
    kind: str,
    lower: Decimal,
    upper: Decimal,
    n: int,
    tick: Decimal,
    *,
    center: Decimal | None = None,
    step: Decimal | None = None,
) -> tuple[Decimal, ...]:
    lower, upper, tick = Decimal(lower), Decimal(upper), Decimal(tick)
    if kind == "arithmetic":
        return arithmetic(lower, upper, n, tick)
    if kind == "geometric":
        return geometric(lower, upper, n, tick)
    if kind == "fibonacci":
        return fibonacci(lower, upper, n, tick)
    if kind == "volatility":
        if step is None:
            raise ValueError("a volatility grid needs a step (see vol_step)")
        c = Decimal(center) if center is not None else (lower + upper) / 2
        return volatility(lower, upper, n, tick, center=c, step=Decimal(step))
    raise ValueError(f"unknown grid kind {kind!r} (known: {', '.join(KINDS)})")


# --- the plan for a whole grid -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GridPlan:
    """Levels, quantity per cell (cell ``i`` = buy at ``levels[i]``, sell at ``levels[i+1]``),
    and the whole-grid stop-loss / take-profit prices (None = off)."""

    levels: tuple[Decimal, ...]
    qty: tuple[Decimal, ...]
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None

    def __post_init__(self) -> None:
        if len(self.qty) != len(self.levels) - 1:
            raise ValueError(f"{len(self.levels)} levels need {len(self.levels) - 1} cell quantities")
        if any(q <= 0 for q in self.qty):
            raise ValueError("every cell needs a positive quantity (raise the investment)")

    def start_index(self, price: Decimal) -> int:
        """The empty level at ``price``: the first level at or above it (capped to the top level)."""
        k = sum(1 for lv in self.levels if lv < price)
        return min(k, len(self.levels) - 1)

    def investment(self, price: Decimal) -> Decimal:
        """Quote needed to start at ``price`` (before fees): cash for every buy below the price,
        plus buying the base for every sell above it at ``price``."""
        k = self.start_index(price)
        cash = sum((q * lv for q, lv in zip(self.qty[:k], self.levels[:k])), Decimal(0))
        base = sum(self.qty[k:], Decimal(0))
        return cash + base * price


def quantities(
    levels: Sequence[Decimal],
    lot: Decimal,
    *,
    qty: Decimal | None = None,
    quote_per_level: Decimal | None = None,
    total_investment: Decimal | None = None,
) -> tuple[Decimal, ...]:
    """Quantity per cell, snapped down to the lot: a fixed base ``qty``, a fixed quote amount per
    level (``quote_per_level / buy price``), or ``total_investment`` spread equally in quote."""
    cells = len(levels) - 1
    if qty is not None:
        return tuple(snap_down(Decimal(qty), lot) for _ in range(cells))
    if total_investment is not None:
        quote_per_level = Decimal(total_investment) / cells
    if quote_per_level is None:
        raise ValueError("give qty, quote_per_level or total_investment")
    with localcontext(_CTX):
        return tuple(snap_down(Decimal(quote_per_level) / lv, lot) for lv in levels[:-1])
