from __future__ import annotations

import numpy as np
import pytest

from engines.grid.market_state import MarketStateDetector, adx, efficiency_ratio, markov_trend


def test_efficiency_ratio_exact():
    assert efficiency_ratio([100, 101, 102, 103]) == 1.0
    assert efficiency_ratio([100, 102, 101, 103]) == pytest.approx(3 / 5)
    assert efficiency_ratio([100, 101, 100]) == 0.0
    assert efficiency_ratio([100, 100]) == 0.0


def test_adx_straight_line_and_zigzag():
    line = [100.0 + i for i in range(40)]
    assert adx(line, 14) == pytest.approx(100.0)
    zigzag = [100.0 + (i % 2) for i in range(40)]
    assert adx(zigzag, 14) < 5.0  # Wilder smoothing leaves a small residue of the alternation
    assert adx(line[:20], 14) == 0.0  # not enough data


def test_markov_estimate():
    # blocks of 4 moves: trending (straight), ranging (zigzag), trending, ranging, trending
    up = [0, 1, 2, 3]
    zz = [0, 1, 0, 1]
    prices: list[float] = []
    base = 100.0
    for blk in (up, zz, up, zz, up):
        prices.extend(base + x for x in blk)
        base = prices[-1]
    prices.append(base + 1)
    p, label = markov_trend(prices, 4, 0.5)
    assert label == "trending"
    # transitions from trending: T→R twice → (0 + 1) / (2 + 2)
    assert p == pytest.approx(0.25)


def test_detector_classifies_trend_and_range():
    rng = np.random.default_rng(4)
    det = MarketStateDetector(40, er_threshold=0.5, adx_threshold=45)
    assert det.update(100.0).regime == "unknown"
    for i in range(60):
        r = det.update(100.0 + 0.5 * i + rng.normal(0, 0.05))
    assert r.regime == "trending" and r.direction == "up" and r.efficiency_ratio > 0.8
    for i in range(60):
        r = det.update(130.0 + (1 if i % 2 else -1) * 0.5 + rng.normal(0, 0.05))
    assert r.regime == "ranging" and r.efficiency_ratio < 0.2
