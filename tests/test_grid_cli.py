from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from engines.grid.backtest import backtest
from engines.grid.data import read_csv
from engines.grid.optimize import Setup, spec_for
from engines.grid.strategy import load_strategy


def opdesk(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opdesk", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def test_backtest_json_matches_the_library(tmp_path):
    csv = tmp_path / "p.csv"
    prices = 100 + 5 * np.sin(np.arange(2000) / 40.0) + np.arange(2000) / 1000
    csv.write_text("time,close\n" + "".join(f"{60 * i},{float(p)!r}\n" for i, p in enumerate(prices)))
    r = opdesk("grid", "backtest", "--csv", str(csv), "--lower", "96", "--upper", "104", "--levels", "9",
               "--fee", "0.001", "--json", "--points", "5")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["levels"] == [96.0, 97.0, 98.0, 99.0, 100.0, 101.0, 102.0, 103.0, 104.0]
    s = read_csv(csv)
    params = {"lower": 96.0, "upper": 104.0, "levels": 9, "kind": "arithmetic", "vol_mult": 1.0,
              "stop_loss_pct": 0.0, "take_profit_pct": 0.0}
    assert doc["params"] == params
    lib = backtest(s.close, spec_for(params, Setup(fee=0.001), s.close), periods_per_year=365 * 1440)
    assert doc["result"] == lib.summary()
    assert [i for i, _ in doc["equity"]] == [0, 500, 1000, 1499, 1999]
    assert doc["equity"][-1][1] == lib.final_equity


def test_optimize_json_and_strategy_file(tmp_path):
    out = tmp_path / "strategy.json"
    r = opdesk("grid", "optimize", "--synthetic", "5000", "--seed", "3", "--method", "grid",
               "--param", "lower=95,97", "--param", "upper=103,105", "--param", "levels=3,5",
               "--param", "kind=arithmetic", "--workers", "1", "--out", str(out), "--symbol", "ETH-USD", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["evaluated"] == 8 and doc["method"] == "grid" and len(doc["top"]) == 8
    scores = [t["score"] for t in doc["top"]]
    assert scores == sorted(scores, reverse=True)
    assert doc["space"]["levels"] == [3, 5]
    strat = load_strategy(out)
    assert strat.symbol == "ETH-USD" and strat.params == doc["best"]["params"]
    assert strat.score == doc["best"]["score"]
    # the strategy file backtests to the score the optimiser gave it
    r = opdesk("grid", "backtest", "--synthetic", "5000", "--seed", "3", "--strategy", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["result"]["total_return"] == pytest.approx(doc["best"]["score"], rel=1e-9)


def test_bad_param_is_reported():
    r = opdesk("grid", "optimize", "--synthetic", "100", "--param", "nonsense", "--json")
    assert r.returncode != 0 and "expected NAME=LOW:HIGH" in r.stderr


def test_bad_data_is_reported(tmp_path):
    (tmp_path / "bad.csv").write_text("time,volume\n1,2\n")
    r = opdesk("grid", "backtest", "--csv", str(tmp_path / "bad.csv"), "--json")
    assert r.returncode == 2 and "needs a 'close' or 'price' column" in r.stderr and r.stdout == ""


def test_backtest_on_kraken_candles_from_a_local_server(tmp_path):
    from tests.test_grid_kraken import T0, Server

    server = Server(total=30)
    try:
        r = opdesk("grid", "backtest", "--kraken", "XBTUSD", "--interval", "1", "--since", str(T0 - 60),
                   "--kraken-url", server.url, "--cache", str(tmp_path / "c.sqlite"), "--lower", "105",
                   "--upper", "125", "--levels", "5", "--json")
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["data"] == "kraken XBTUSD 1m (30 candles)"
    # closes 100.5 … 129.5 rising one a minute: the grid only ever sells
    assert doc["result"]["sells"] == 4 and doc["result"]["buys"] == 0
    assert len(server.seen) == 11  # 10 pages of 3, then an empty page
