from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.grid.backtest import GridSpec, backtest, backtest_loop, position_codes
from engines.grid.data import Series, read_csv, synthetic, write_csv

EXACT = ("round_trips", "buys", "sells", "stopped_at")
MONEY = ("grid_profit", "fees", "initial_capital", "final_equity")


def agree(a, b):
    for k in EXACT:
        assert getattr(a, k) == getattr(b, k), k
    for k in MONEY:  # to the cent
        assert abs(getattr(a, k) - getattr(b, k)) < 0.005, k
        assert getattr(a, k) == pytest.approx(getattr(b, k), abs=1e-6), k
    for k in ("total_return", "max_drawdown", "sharpe"):
        assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-9, abs=1e-12), k
    assert np.allclose(a.equity, b.equity, rtol=0, atol=1e-6)


def test_hand_worked_example():
    # levels 90..110 step 5, 1 unit per cell, fee 0.1%; start at 101 → empty level 105
    spec = GridSpec.make([90, 95, 100, 105, 110], 1.0, fee=0.001)
    prices = [101, 99, 104, 106, 100, 94, 111]
    r = backtest(np.array(prices, float), spec)
    # t1 99: buy 100 (cell 2). t2 104: nothing (sell at 105). t3 106: sell 105 → round trip on cell 2
    # t4 100: buy 100 again. t5 94: buy 95. t6 111: sell 100, 105, 110 → cells 1, 2 round trips,
    # cell 3 closes its initial purchase.
    assert (r.buys, r.sells, r.round_trips) == (3, 4, 3)
    unit = 5 * 1 - 0.001 * (100 + 105)  # cell 2: buy 100 sell 105
    unit1 = 5 - 0.001 * (95 + 100)  # cell 1
    assert r.grid_profit == pytest.approx(2 * unit + unit1, abs=1e-12)
    # capital: buys at 90, 95, 100 + base for cell 3 bought at 101, all with the fee
    assert r.initial_capital == pytest.approx((90 + 95 + 100 + 101) * 1.001)
    agree(r, backtest_loop(prices, spec))


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_equals_loop_oracle(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(2, 600))
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.012, T)))
    if seed % 3 == 0:
        p = np.round(p)  # prices exactly on levels
    n = int(rng.integers(2, 15))
    L = np.sort(rng.choice(np.arange(75, 130), n, replace=False)).astype(float)
    q = rng.uniform(0.1, 2, n - 1)
    sl = float(rng.uniform(70, 95)) if seed % 4 == 0 else None
    tp = float(rng.uniform(105, 130)) if seed % 5 == 0 else None
    spec = GridSpec.make(L, q, fee=0.001 * (seed % 3), stop_loss=sl, take_profit=tp)
    agree(backtest(p, spec), backtest_loop(p, spec))


def test_oracle_on_larger_synthetic_slice():
    p = synthetic(20_000, seed=3, start=100, vol=0.002, mean_revert=0.002)
    L = np.linspace(p.min() * 1.01, p.max() * 0.99, 41)
    spec = GridSpec.make(L, 0.5, fee=0.00075, stop_loss=float(p.min()) - 1)
    a, b = backtest(p, spec), backtest_loop(p, spec)
    assert a.round_trips > 100
    agree(a, b)


def test_stop_loss_liquidates_and_stays_flat():
    spec = GridSpec.make([90, 95, 100, 105, 110], 1.0, fee=0.0, stop_loss=85)
    prices = np.array([101, 96, 84, 120, 130], float)
    r = backtest(prices, spec)
    assert r.stopped_at == 2
    # bought 100 at t1 and 95, 90 at t2, then sold all 4 units (incl. cell 3's initial) at 84
    assert r.equity[2] == r.equity[3] == r.equity[4] == r.final_equity
    assert r.final_equity == pytest.approx(90 + 95 + 100 + 101 - (100 - 84) - (95 - 84) - (90 - 84) - (101 - 84))
    agree(r, backtest_loop(prices, spec))


def test_position_codes_match_searchsorted():
    rng = np.random.default_rng(5)
    p = np.round(rng.uniform(90, 120, 50_000), 1)
    for L in (np.linspace(95, 115, 41), np.sort(rng.choice(np.arange(900, 1200), 17, replace=False)) / 10):
        d = np.searchsorted(L, p, "left")
        ref = 2 * d + (np.append(L, np.inf)[d] == p)
        assert np.array_equal(position_codes(p, L), ref)


def test_csv_round_trip_and_synthetic(tmp_path):
    a = synthetic(1000, seed=11)
    b = synthetic(1000, seed=11)
    assert np.array_equal(a, b) and a[0] == 100.0
    s = Series(close=a[:5], time=np.arange(5.0), high=a[:5] + 1, low=a[:5] - 1, open=a[:5])
    write_csv(tmp_path / "c.csv", s)
    back = read_csv(tmp_path / "c.csv")
    assert np.array_equal(back.close, s.close) and np.array_equal(back.high, s.high)
    (tmp_path / "p.csv").write_text("101.5\n102\n")
    assert list(read_csv(tmp_path / "p.csv").close) == [101.5, 102.0]
    (tmp_path / "bad.csv").write_text("time,volume\n1,2\n")
    with pytest.raises(ValueError, match="'close' or 'price'"):
        read_csv(tmp_path / "bad.csv")


@pytest.mark.parametrize(("mean_revert", "n_levels", "calm"), [(0.0, 4, True), (0.01, 9, False)])
def test_oracle_on_calm_and_choppy_series(mean_revert, n_levels, calm):
    # calm: few level changes (the equity curve is built with np.repeat); choppy: a change every few
    # steps (built by gathering per segment). Both must equal the oracle.
    p = synthetic(20_000, seed=9, start=100, vol=0.0002, mean_revert=mean_revert)
    L = np.linspace(p.min() + 0.01, p.max() - 0.01, n_levels)
    c = position_codes(p, L)
    changes = np.count_nonzero(c[1:] != c[:-1])
    assert (changes * 32 < len(p)) == calm
    spec = GridSpec.make(L, 1.0, fee=0.001)
    agree(backtest(p, spec), backtest_loop(p, spec))


@settings(max_examples=150, deadline=None)
@given(
    prices=st.lists(st.integers(80, 120), min_size=2, max_size=120),
    levels=st.sets(st.integers(85, 115), min_size=2, max_size=8),
    fee_bp=st.integers(0, 30),
    stop=st.one_of(st.none(), st.integers(78, 95)),
)
def test_property_vectorised_equals_oracle(prices, levels, fee_bp, stop):
    # integer prices and levels: touches, gaps through several levels and runs on one level abound
    spec = GridSpec.make(sorted(levels), 1.5, fee=fee_bp / 10_000, stop_loss=stop)
    p = np.asarray(prices, dtype=float)
    agree(backtest(p, spec), backtest_loop(p, spec))


@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
@pytest.mark.parametrize("seed", range(6))
def test_chunk_boundaries_change_nothing(monkeypatch, chunk, seed):
    import engines.grid.backtest as bt

    rng = np.random.default_rng(100 + seed)
    p = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))), 1)
    L = np.sort(rng.choice(np.arange(850, 1150), 9, replace=False)) / 10
    spec = GridSpec.make(L, rng.uniform(0.5, 2, 8), fee=0.001, stop_loss=85.0 if seed % 2 else None)
    whole = backtest(p, spec)
    monkeypatch.setattr(bt, "CHUNK", chunk)
    parts = backtest(p, spec)
    agree(parts, backtest_loop(p, spec))
    assert parts.summary() == pytest.approx(whole.summary(), rel=1e-12)
    assert np.array_equal(parts.equity, whole.equity)
