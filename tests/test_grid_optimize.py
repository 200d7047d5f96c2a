from __future__ import annotations

import json
from decimal import Decimal as D

import numpy as np
import pytest

from engines.grid.optimize import (
    Evaluator,
    Setup,
    genetic,
    grid_points,
    grid_search,
    random_search,
    strategy_from,
    write_strategy,
)
from engines.grid.strategy import load_strategy

# A triangle wave 95 → 105 → 95 …, starting at 100, on a 0.5 grid: every swing touches both bounds.
UP = np.arange(95.0, 105.0, 0.5)  # 95 … 104.5
DOWN = np.arange(105.0, 95.0, -0.5)  # 105 … 95.5
WAVE = np.concatenate([np.arange(100.0, 105.0, 0.5)] + [np.concatenate([DOWN, UP])] * 20 + [[105.0]])

SPACE = {"lower": [90.0, 93.0, 95.0], "upper": [105.0, 107.0, 110.0], "levels": [2, 3, 5]}
BEST = {"lower": 95.0, "upper": 105.0, "levels": 2}


def test_known_optimum_by_grid_search_in_two_processes():
    # Why 95/105/2 wins on return: a bound the price never touches leaves capital idle, and with the
    # capital split over more cells each full swing earns investment·(gap/price) / cells.
    setup = Setup(fee=0.0005, investment=1000.0, objective="return")
    with Evaluator(WAVE, setup, workers=2) as ev:
        seen = []
        trials = grid_search(ev, SPACE, progress=lambda d, n: seen.append((d, n)))
    assert len(trials) == 27 and seen[-1] == (27, 27)
    best = trials[0]
    assert best.params == BEST
    # one cell: buy 1000/95 base at 95, sell at 105; 20 round trips
    q = 1000.0 / 95.0
    assert best.metrics["round_trips"] == 20
    assert best.metrics["grid_profit"] == pytest.approx(20 * q * (105 * (1 - 0.0005) - 95 * (1 + 0.0005)))
    assert trials[1].score < best.score


@pytest.mark.parametrize("method", ["random", "genetic"])
def test_random_and_genetic_find_it_too(method):
    setup = Setup(fee=0.0005, investment=1000.0, objective="calmar")
    with Evaluator(WAVE, setup, workers=1) as ev:
        if method == "random":
            trials = random_search(ev, SPACE, n=60, seed=1)
        else:
            trials = genetic(ev, SPACE, population=10, generations=6, seed=1)
    assert trials[0].params == BEST


def test_ranges_grid_points_and_invalid_combinations():
    pts = grid_points({"lower": (90.0, 100.0), "levels": (2, 4), "kind": ["arithmetic"]}, steps=3)
    assert pts == [
        {"lower": 90.0, "levels": 2, "kind": "arithmetic"},
        {"lower": 90.0, "levels": 3, "kind": "arithmetic"},
        {"lower": 90.0, "levels": 4, "kind": "arithmetic"},
        {"lower": 95.0, "levels": 2, "kind": "arithmetic"},
        {"lower": 95.0, "levels": 3, "kind": "arithmetic"},
        {"lower": 95.0, "levels": 4, "kind": "arithmetic"},
        {"lower": 100.0, "levels": 2, "kind": "arithmetic"},
        {"lower": 100.0, "levels": 3, "kind": "arithmetic"},
        {"lower": 100.0, "levels": 4, "kind": "arithmetic"},
    ]
    with Evaluator(WAVE, Setup(), workers=1) as ev:
        (t,) = ev.run([{"lower": 110.0, "upper": 100.0, "levels": 3}])
    assert t.score == float("-inf") and "lower < upper" in t.metrics["error"]
    with pytest.raises(ValueError, match="unknown objective"):
        Evaluator(WAVE, Setup(objective="luck"))


def test_strategy_json_round_trip(tmp_path):
    setup = Setup(fee=0.0005, investment=1000.0)
    with Evaluator(WAVE, setup, workers=1) as ev:
        best = grid_search(ev, {**SPACE, "stop_loss_pct": [5.0]})[0]
    strat = strategy_from(best, setup, symbol="ETH-USD", method="grid", prices=WAVE)
    path = write_strategy(tmp_path / "s.json", strat)
    data = json.loads(path.read_text())
    assert data["kind"] == "explicit" and data["prices"] == ["95.0", "105.0"] and data["symbol"] == "ETH-USD"
    back = load_strategy(path)
    plan = back.plan(D("0.05"), D("0.01"))
    assert plan.levels == (D("95.00"), D("105.00"))
    assert plan.qty == (D("10.52"),)  # 1000 / 95 snapped down to the lot
    assert plan.stop_loss == D("90.25")
