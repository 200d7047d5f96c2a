from __future__ import annotations

from decimal import Decimal as D

import pytest

from engines.grid import levels as lv


def test_arithmetic_exact():
    assert lv.arithmetic(D("3000"), D("3400"), 5, D("0.05")) == (
        D("3000.00"), D("3100.00"), D("3200.00"), D("3300.00"), D("3400.00"),
    )
    # a step that is not a whole tick is rounded half up per level
    assert lv.arithmetic(D("100"), D("101"), 4, D("0.01")) == (D("100.00"), D("100.33"), D("100.67"), D("101.00"))


def test_geometric_exact():
    assert lv.geometric(D("100"), D("200"), 5, D("0.01")) == (
        D("100.00"), D("118.92"), D("141.42"), D("168.18"), D("200.00"),
    )
    assert lv.geometric(D("100"), D("400"), 3, D("0.5")) == (D("100.0"), D("200.0"), D("400.0"))


def test_fibonacci_exact():
    assert lv.fib_weights(5) == [3, 2, 1, 2, 3]
    assert lv.fib_weights(6) == [3, 2, 1, 1, 2, 3]
    assert lv.fib_weights(9) == [8, 5, 3, 2, 1, 2, 3, 5, 8]
    # 5 gaps over 110: weights 3,2,1,2,3 sum 11 → gaps 30, 20, 10, 20, 30
    assert lv.fibonacci(D("100"), D("210"), 6, D("0.01")) == (
        D("100.00"), D("130.00"), D("150.00"), D("160.00"), D("180.00"), D("210.00"),
    )
    # 6 gaps over 100: weights 3,2,1,1,2,3 sum 12 → 25, 16.67, 8.33, 8.33, 16.67, 25
    assert lv.fibonacci(D("100"), D("200"), 7, D("0.01")) == (
        D("100.00"), D("125.00"), D("141.67"), D("150.00"), D("158.33"), D("175.00"), D("200.00"),
    )


def test_volatility_exact_and_clamped():
    assert lv.volatility(D("100"), D("200"), 5, D("0.01"), center=D("150"), step=D("7.5")) == (
        D("135.00"), D("142.50"), D("150.00"), D("157.50"), D("165.00"),
    )
    # near the top bound the block shifts down to stay inside
    assert lv.volatility(D("100"), D("200"), 5, D("0.01"), center=D("195"), step=D("7.5"))[-1] == D("200.00")
    # a step too wide for the range shrinks to fit exactly
    assert lv.volatility(D("100"), D("200"), 3, D("0.01"), center=D("150"), step=D("80")) == (
        D("100.00"), D("150.00"), D("200.00"),
    )


def test_vol_step_from_atr_and_stdev():
    closes = [100.0, 102.0, 101.0, 104.0]
    highs = [101.0, 103.0, 102.5, 105.0]
    lows = [99.0, 100.5, 100.0, 101.5]
    # true ranges: max(2.5, 3, 0.5)=3; max(2.5, .5, 2)=2.5; max(3.5, 4, .5)=4 → mean 3.1666…
    assert lv.atr(highs, lows, closes, 3) == pytest.approx(19 / 6)
    assert lv.vol_step(multiplier=2.0, center=100.0, closes=closes, highs=highs, lows=lows, window=3) == D(
        repr(2.0 * (19 / 6))
    )
    step = lv.vol_step(multiplier=1.0, center=100.0, closes=[100, 101, 100, 101], method="stdev", window=0)
    assert step > 0
    levels = lv.make_levels("volatility", D("90"), D("110"), 5, D("0.01"), center=D("100"), step=D("2.5"))
    assert levels == (D("95.00"), D("97.50"), D("100.00"), D("102.50"), D("105.00"))


def test_tick_collision_and_bad_input():
    with pytest.raises(ValueError, match="collide"):
        lv.arithmetic(D("100"), D("100.05"), 10, D("0.01"))
    with pytest.raises(ValueError, match="lower < upper"):
        lv.arithmetic(D("100"), D("90"), 3, D("0.01"))
    with pytest.raises(ValueError, match="unknown grid kind"):
        lv.make_levels("spiral", D("1"), D("2"), 3, D("0.01"))


def test_quantities_and_plan():
    levels = lv.arithmetic(D("100"), D("140"), 5, D("0.01"))
    assert lv.quantities(levels, D("0.001"), qty=D("0.5")) == (D("0.500"),) * 4
    # 1000 quote per level: 1000/100=10, 1000/110=9.0909→9.090, 1000/120→8.333, 1000/130→7.692
    assert lv.quantities(levels, D("0.001"), quote_per_level=D("1000")) == (
        D("10.000"), D("9.090"), D("8.333"), D("7.692"),
    )
    assert lv.quantities(levels, D("0.01"), total_investment=D("400")) == (
        D("1.00"), D("0.90"), D("0.83"), D("0.76"),
    )
    plan = lv.GridPlan(levels, (D("1"),) * 4, stop_loss=D("90"), take_profit=D("150"))
    assert plan.start_index(D("115")) == 2  # empty level 120: buys at 100, 110; sells at 130, 140
    # buys at 100 and 110 (210) + base for cells 2, 3 (2 units) at 115
    assert plan.investment(D("115")) == D("440")
    assert plan.start_index(D("500")) == 4
    with pytest.raises(ValueError, match="cell quantities"):
        lv.GridPlan(levels, (D("1"),) * 5)
