"""Trending or ranging? A grid earns in ranges and bleeds in trends, so the bot watches for them.

Three measures over a window of prices (closes; the live bot feeds reference ticks):

* **Efficiency ratio** (Kaufman): ``|p_end - p_start| / sum |dp|`` in [0, 1]; 1 = a straight line.
* **ADX** (Wilder) on closes: directional movement from close-to-close moves (a close-only
  series has high = low = close), smoothed with Wilder's 1/n averaging; 0..100.
* **A 2-state Markov regime estimate**: each sub-window of ``window // 4`` moves is labelled trending
  (its efficiency ratio >= the threshold) or ranging; the transition counts between consecutive
  labels give ``P(next = trending | current label)`` - how sticky the current regime is.

The regime is *trending* when the efficiency ratio or the ADX passes its threshold (either can be
switched off with a threshold above its range), else *ranging*; "unknown" until the window is full.
What the bot does about a trend is its configured ``trend_action`` (see ``engines.grid.bot``).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


def efficiency_ratio(prices: Sequence[float]) -> float:
    if len(prices) < 2:
        return 0.0
    path = sum(abs(b - a) for a, b in itertools.pairwise(prices))
    return abs(prices[-1] - prices[0]) / path if path > 0 else 0.0


def adx(prices: Sequence[float], period: int = 14) -> float:
    """Wilder's ADX from closes only. Needs ``2·period + 1`` prices; 0 with fewer."""
    if len(prices) < 2 * period + 1:
        return 0.0
    tr_s = pdm_s = ndm_s = 0.0
    dx: list[float] = []
    adx_v = 0.0
    for i in range(1, len(prices)):
        move = prices[i] - prices[i - 1]
        tr = abs(move)
        pdm = move if move > 0 else 0.0
        ndm = -move if move < 0 else 0.0
        if i <= period:  # seed with plain sums
            tr_s += tr
            pdm_s += pdm
            ndm_s += ndm
            if i < period:
                continue
        else:
            tr_s += tr - tr_s / period
            pdm_s += pdm - pdm_s / period
            ndm_s += ndm - ndm_s / period
        if tr_s <= 0:
            dx.append(0.0)
        else:
            pdi, ndi = pdm_s / tr_s, ndm_s / tr_s
            dx.append(100.0 * abs(pdi - ndi) / (pdi + ndi) if pdi + ndi > 0 else 0.0)
        if len(dx) == period:
            adx_v = sum(dx) / period
        elif len(dx) > period:
            adx_v = (adx_v * (period - 1) + dx[-1]) / period
    return adx_v


def markov_trend(prices: Sequence[float], block: int, er_threshold: float) -> tuple[float, str]:
    """(P(next block trending | current block's label), current label) from consecutive blocks."""
    labels = []
    for start in range(0, len(prices) - block, block):
        seg = prices[start : start + block + 1]
        labels.append(efficiency_ratio(seg) >= er_threshold)
    if not labels:
        return 0.5, "unknown"
    counts = {(a, b): 0 for a in (False, True) for b in (False, True)}
    for a, b in itertools.pairwise(labels):
        counts[(a, b)] += 1
    cur = labels[-1]
    total = counts[(cur, False)] + counts[(cur, True)]
    # Laplace smoothing: with no history from this state the estimate is 1/2.
    p = (counts[(cur, True)] + 1) / (total + 2)
    return p, "trending" if cur else "ranging"


@dataclass(frozen=True, slots=True)
class MarketReading:
    regime: str  # "trending" | "ranging" | "unknown"
    efficiency_ratio: float
    adx: float
    p_trend: float  # Markov: probability the next block is trending
    direction: str  # "up" | "down" | "flat" over the window


class MarketStateDetector:
    """Rolling classifier fed one price at a time (``update``), or a whole series (``classify``)."""

    def __init__(
        self,
        window: int = 60,
        *,
        er_threshold: float = 0.5,
        adx_threshold: float = 40.0,
        adx_period: int = 14,
    ) -> None:
        if window < 8:
            raise ValueError("market-state window must be at least 8 prices")
        self.window = window
        self.er_threshold = er_threshold
        self.adx_threshold = adx_threshold
        self.adx_period = min(adx_period, (window - 1) // 2)
        self.prices: deque[float] = deque(maxlen=window)
        self.reading = MarketReading("unknown", 0.0, 0.0, 0.5, "flat")

    def update(self, price: float) -> MarketReading:
        if math.isfinite(price) and price > 0:
            self.prices.append(price)
        if len(self.prices) == self.window:
            self.reading = self.classify(list(self.prices))
        return self.reading

    def classify(self, prices: Sequence[float]) -> MarketReading:
        er = efficiency_ratio(prices)
        a = adx(prices, self.adx_period)
        p, _ = markov_trend(prices, max(2, len(prices) // 4), self.er_threshold)
        trending = er >= self.er_threshold or a >= self.adx_threshold
        move = prices[-1] - prices[0]
        direction = "up" if move > 0 else "down" if move < 0 else "flat"
        return MarketReading("trending" if trending else "ranging", er, a, p, direction)
