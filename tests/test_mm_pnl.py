"""Average-cost P&L for a scripted sequence of fills: fees, partial fills and a position flip."""

from __future__ import annotations

from decimal import Decimal as D

from engines.mm.pnl import PnL
from engines.orders import Side


def test_scripted_fills_to_exact_figures():
    p = PnL(capital=D(1000))
    assert p.on_fill(Side.BUY, D("1.0"), D(100), D("0.01"), key=(1, 1))
    assert (p.position, p.avg_price) == (D(1), D(100))
    p.on_fill(Side.BUY, D("0.5"), D(103), D("0.005"), key=(2, 2))  # a partial fill of a bigger order
    assert (p.position, p.avg_price) == (D("1.5"), D(101))
    p.on_fill(Side.SELL, D("0.5"), D(104), D("0.005"), key=(3, 3))
    assert (p.position, p.avg_price, p.realised) == (D("1.0"), D(101), D("1.5"))
    p.on_fill(Side.SELL, D("2.0"), D(99), D("0.02"), key=(4, 4))  # flip: close 1.0, open -1.0 at 99
    assert (p.position, p.avg_price, p.realised) == (D(-1), D(99), D("-0.5"))
    p.on_fill(Side.BUY, D("0.25"), D(98), D("0.0025"), key=(5, 5))
    assert (p.position, p.avg_price, p.realised) == (D("-0.75"), D(99), D("-0.25"))
    assert not p.on_fill(Side.BUY, D("0.25"), D(98), D("0.0025"), key=(5, 5))  # duplicate ignored
    p.mark_to(D(97))
    assert p.unrealised == D("1.5")
    assert p.fees == D("0.0425")
    assert p.net == D("1.2075")
    assert p.return_pct == D("0.12075")
    assert p.inventory_value == D("-72.75")
    p.on_fill(Side.BUY, D("0.75"), D(97), D(0), key=(6, 6))
    assert (p.position, p.avg_price, p.realised, p.unrealised) == (D(0), D(0), D("1.25"), D(0))
    assert p.net == D("1.2075")
    assert p.fills == 6 and p.volume == D("5.0")


def test_rebates_reduce_fees():
    p = PnL()
    p.on_fill(Side.SELL, D(2), D(50), D("-0.01"))
    p.on_fill(Side.BUY, D(2), D(49), D("-0.01"))
    assert (p.realised, p.fees, p.net) == (D(2), D("-0.02"), D("2.02"))


def test_starting_inventory_value_drawdown_and_day():
    p = PnL(capital=D(10_000), starting_inventory=D(2), starting_price=D(100))
    assert (p.position, p.avg_price, p.starting_value) == (D(2), D(100), D(200))
    p.mark_to(D(110), day=1)
    assert (p.unrealised, p.net, p.peak_net, p.daily_pnl) == (D(20), D(20), D(20), D(0))
    p.mark_to(D(104))
    assert (p.net, p.drawdown, p.daily_pnl) == (D(8), D(12), D(-12))
    p.mark_to(D(104), day=2)  # a new UTC day starts from the current net
    assert p.daily_pnl == D(0)
    assert p.inventory_value == D(208)
