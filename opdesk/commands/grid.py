"""``opdesk grid backtest …`` and ``opdesk grid optimize …``: grid-strategy research from the terminal.

Data comes from a CSV file (``--csv``), the seeded synthetic generator (``--synthetic N``) or a
Kraken-format OHLC endpoint (``--kraken PAIR``, cached in SQLite). Output: rich progress bars, a
results table and the equity curve as a braille chart; ``--json`` prints one JSON document instead.
rich and numpy are imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (one of)")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", metavar="PATH", help="CSV of prices or OHLC candles (a 'close' or 'price' column)")
    src.add_argument("--synthetic", metavar="N", type=int, help="N seeded synthetic prices")
    src.add_argument("--kraken", metavar="PAIR", help="candles from a Kraken-format OHLC endpoint, e.g. XBTUSD")
    g.add_argument("--seed", type=int, default=7, help="synthetic: RNG seed (default 7)")
    g.add_argument("--start", type=float, default=100.0, help="synthetic: first price (default 100)")
    g.add_argument("--vol", type=float, default=0.001, help="synthetic: stdev of log returns per step")
    g.add_argument("--drift", type=float, default=0.0, help="synthetic: mean log return per step")
    g.add_argument("--mean-revert", type=float, default=0.0005, help="synthetic: pull towards the start (0 = walk)")
    g.add_argument("--interval", type=int, default=60, help="kraken: candle minutes (default 60)")
    g.add_argument("--since", type=int, default=0, help="kraken: first candle time (unix seconds)")
    g.add_argument("--until", type=int, default=None, help="kraken: last candle time (unix seconds)")
    g.add_argument("--kraken-url", default="https://api.kraken.com", help="kraken: base URL")
    g.add_argument("--cache", metavar="PATH", help="kraken: SQLite cache file (default ~/.cache/opdesk/candles.sqlite)")


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fee", type=float, default=0.001, help="fee per fill as a fraction of notional (default 0.001)")
    p.add_argument("--investment", type=float, default=10_000.0, help="quote spread over the cells (default 10000)")
    p.add_argument("--tick", default="0.01", help="price tick the levels snap to (default 0.01)")
    p.add_argument("--periods-per-year", type=float, default=None,
                   help="Sharpe annualisation (default: from the candle interval, else minutes)")
    p.add_argument("--json", action="store_true", help="print one JSON document (for machines)")


def register(sub: argparse._SubParsersAction) -> None:
    grid = sub.add_parser("grid", help="grid strategy research: backtest and optimise")
    gsub = grid.add_subparsers(dest="grid_command", metavar="ACTION", required=True)

    bt = gsub.add_parser("backtest", help="backtest one grid on price data")
    _data_args(bt)
    _common_args(bt)
    bt.add_argument("--lower", type=float, help="lowest level (default: 10th percentile of the data)")
    bt.add_argument("--upper", type=float, help="highest level (default: 90th percentile)")
    bt.add_argument("--levels", type=int, default=21, help="number of levels (default 21)")
    bt.add_argument("--kind", default="arithmetic", choices=["arithmetic", "geometric", "fibonacci", "volatility"])
    bt.add_argument("--vol-mult", type=float, default=1.0, help="volatility grids: gap = mult x ATR")
    bt.add_argument("--stop-loss-pct", type=float, default=0.0, help="stop this far below the lowest level, %%")
    bt.add_argument("--take-profit-pct", type=float, default=0.0, help="take profit this far above the top, %%")
    bt.add_argument("--strategy", metavar="PATH", help="backtest a strategy JSON instead of the level options")
    bt.add_argument("--points", type=int, default=120, help="--json: equity curve points to include (default 120)")
    bt.set_defaults(func=run_backtest)

    op = gsub.add_parser("optimize", help="search grid parameters; write the best as a strategy JSON")
    _data_args(op)
    _common_args(op)
    op.add_argument("--method", choices=["grid", "random", "genetic"], default="random")
    op.add_argument("--param", action="append", default=[], metavar="NAME=SPEC",
                    help="search space entry: lower=90:100 (range), levels=11,21,41 (choices), kind=arithmetic,"
                    "geometric. Defaults cover lower, upper, levels and kind from the data.")
    op.add_argument("--objective", default="return", choices=["return", "sharpe", "calmar", "profit", "round_trips"])
    op.add_argument("--steps", type=int, default=4, help="grid search: values per range (default 4)")
    op.add_argument("--samples", type=int, default=40, help="random search: parameter sets (default 40)")
    op.add_argument("--population", type=int, default=12, help="genetic: population (default 12)")
    op.add_argument("--generations", type=int, default=5, help="genetic: generations (default 5)")
    op.add_argument("--search-seed", type=int, default=7, help="random/genetic: RNG seed (default 7)")
    op.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    op.add_argument("--top", type=int, default=10, help="rows in the results table (default 10)")
    op.add_argument("--symbol", default="", help="symbol recorded in the strategy file")
    op.add_argument("--out", metavar="PATH", help="write the best as a strategy JSON here")
    op.set_defaults(func=run_optimize)


# --- data ----------------------------------------------------------------------------------------


class DataError(Exception):
    pass


def _load(args: argparse.Namespace, progress: Any = None) -> tuple[Any, str, float]:
    """(closes as a numpy array, a description, periods per year); DataError if it cannot."""
    from engines.grid.kraken import KrakenError

    try:
        return _load_data(args, progress)
    except (ValueError, OSError, KrakenError) as exc:
        raise DataError(str(exc)) from None


def _load_data(args: argparse.Namespace, progress: Any = None) -> tuple[Any, str, float]:
    from engines.grid.data import read_csv, synthetic

    minutes = 525_600.0
    if args.csv:
        s = read_csv(args.csv)
        ppy = minutes
        if s.time is not None and len(s.time) > 1:
            step = float(s.time[1] - s.time[0])
            ppy = 365 * 86_400 / step if step > 0 else minutes
        return s.close, f"{args.csv} ({len(s)} prices)", args.periods_per_year or ppy
    if args.synthetic:
        p = synthetic(args.synthetic, seed=args.seed, start=args.start, vol=args.vol, drift=args.drift,
                      mean_revert=args.mean_revert)
        return p, f"synthetic n={args.synthetic} seed={args.seed} vol={args.vol}", args.periods_per_year or minutes
    from engines.grid.kraken import CandleCache, KrakenOHLC

    cache_path = Path(args.cache).expanduser() if args.cache else Path("~/.cache/opdesk/candles.sqlite").expanduser()
    cache = CandleCache(cache_path)
    fetcher = KrakenOHLC(cache, base_url=args.kraken_url)
    try:
        s = fetcher.history(args.kraken, args.interval, args.since, args.until, progress=progress)
    finally:
        fetcher.close()
        cache.close()
    if len(s) < 2:
        raise ValueError(f"no candles for {args.kraken}")
    ppy = 365 * 86_400 / (args.interval * 60)
    return s.close, f"kraken {args.kraken} {args.interval}m ({len(s)} candles)", args.periods_per_year or ppy


def _console(args: argparse.Namespace) -> Any:
    from rich.console import Console

    # With --json the human output (progress) goes to stderr so stdout stays one JSON document.
    return Console(stderr=True) if args.json else Console()


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _chart(console: Any, equity: Any, title: str) -> None:
    from rich.panel import Panel
    from rich.text import Text

    from opdesk.chart import braille

    width = max(20, min(100, console.width - 16))
    lines = braille([float(x) for x in equity], width=width, height=8)
    hi, lo = float(max(equity)), float(min(equity))
    text = Text()
    for i, line in enumerate(lines):
        label = f"{hi:>11,.2f} " if i == 0 else f"{lo:>11,.2f} " if i == len(lines) - 1 else " " * 12
        text.append(label, style="dim")
        text.append(line, style="cyan")
        if i < len(lines) - 1:
            text.append("\n")
    console.print(Panel(text, title=title, expand=False))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1 else f"{v:,.2f}"
    return "—" if v is None else str(v)


# --- backtest --------------------------------------------------------------------------------------


def run_backtest(args: argparse.Namespace) -> int:
    try:
        return _backtest(args)
    except DataError as exc:
        print(f"opdesk grid backtest: {exc}", file=sys.stderr)
        return 2


def _backtest(args: argparse.Namespace) -> int:
    import numpy as np

    from engines.grid.backtest import backtest
    from engines.grid.optimize import Setup, spec_for
    from engines.grid.strategy import load_strategy

    console = _console(args)
    with _progress(console) as prog:
        task = prog.add_task("loading data", total=None)
        prices, desc, ppy = _load(args, lambda page, rows: prog.update(task, description=f"page {page}"))
        prog.update(task, total=1, completed=1)
        setup = Setup(fee=args.fee, tick=args.tick, investment=args.investment, periods_per_year=ppy)
        if args.strategy:
            from engines.grid.backtest import GridSpec

            strat = load_strategy(args.strategy)
            from decimal import Decimal

            plan = strat.plan(Decimal(args.tick), Decimal("1e-12"))
            spec = GridSpec.make([float(x) for x in plan.levels], [float(q) for q in plan.qty], fee=args.fee,
                                 stop_loss=None if plan.stop_loss is None else float(plan.stop_loss),
                                 take_profit=None if plan.take_profit is None else float(plan.take_profit))
            params: dict[str, Any] = {"strategy": args.strategy}
        else:
            params = {
                "lower": args.lower if args.lower is not None else float(np.percentile(prices, 10)),
                "upper": args.upper if args.upper is not None else float(np.percentile(prices, 90)),
                "levels": args.levels,
                "kind": args.kind,
                "vol_mult": args.vol_mult,
                "stop_loss_pct": args.stop_loss_pct,
                "take_profit_pct": args.take_profit_pct,
            }
            try:
                spec = spec_for(params, setup, prices)
            except ValueError as exc:
                print(f"opdesk grid backtest: {exc}", file=sys.stderr)
                return 2
        bt_task = prog.add_task("backtesting", total=1)
        t0 = time.perf_counter()
        r = backtest(prices, spec, periods_per_year=ppy)
        elapsed = time.perf_counter() - t0
        prog.update(bt_task, completed=1)
    assert r.equity is not None
    summary = r.summary()
    if args.json:
        idx = np.linspace(0, len(r.equity) - 1, min(args.points, len(r.equity))).round().astype(int)
        doc = {
            "data": desc,
            "params": params,
            "levels": [float(x) for x in spec.levels],
            "result": summary,
            "elapsed_ms": round(elapsed * 1e3, 3),
            "equity": [[int(i), float(r.equity[i])] for i in idx],
        }
        print(json.dumps(doc))
        return 0
    from rich.table import Table

    t = Table(title=f"grid backtest: {desc}", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in params.items():
        t.add_row(k, _fmt(v))
    t.add_row("level range", f"{spec.levels[0]:,.2f} … {spec.levels[-1]:,.2f} ({len(spec.levels)})")
    for k, v in summary.items():
        if k in ("total_return", "max_drawdown"):
            t.add_row(k, f"{v * 100:+.2f}%")
        else:
            t.add_row(k, _fmt(v))
    t.add_row("backtest time", f"{elapsed * 1e3:.1f} ms")
    console.print(t)
    _chart(console, r.equity, "equity")
    return 0


# --- optimise -------------------------------------------------------------------------------------


def _parse_value(s: str) -> Any:
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def parse_space(entries: list[str], prices: Any) -> dict[str, Any]:
    import numpy as np

    lo, mid, hi = (float(np.percentile(prices, q)) for q in (2, 50, 98))
    space: dict[str, Any] = {
        "lower": (round(lo, 2), round(mid * 0.995, 2)),
        "upper": (round(mid * 1.005, 2), round(hi, 2)),
        "levels": (5, 61),
        "kind": ["arithmetic", "geometric"],
    }
    for entry in entries:
        name, sep, spec = entry.partition("=")
        if not sep or not name:
            raise SystemExit(f"opdesk grid optimize: --param {entry!r}: expected NAME=LOW:HIGH or NAME=A,B,C")
        if ":" in spec:
            a, b = (_parse_value(x) for x in spec.split(":", 1))
            space[name] = (a, b)
        else:
            space[name] = [_parse_value(x) for x in spec.split(",")]
    return space


def run_optimize(args: argparse.Namespace) -> int:
    try:
        return _optimize(args)
    except DataError as exc:
        print(f"opdesk grid optimize: {exc}", file=sys.stderr)
        return 2


def _optimize(args: argparse.Namespace) -> int:
    from engines.grid import optimize as opt

    console = _console(args)
    with _progress(console) as prog:
        task = prog.add_task("loading data", total=None)
        prices, desc, ppy = _load(args, lambda page, rows: prog.update(task, description=f"page {page}"))
        prog.update(task, total=1, completed=1)
        space = parse_space(args.param, prices)
        setup = opt.Setup(fee=args.fee, tick=args.tick, investment=args.investment, objective=args.objective,
                          periods_per_year=ppy)
        search = prog.add_task(f"{args.method} search", total=None)

        def progress(done: int, total: int) -> None:
            prog.update(search, completed=done, total=total)

        t0 = time.perf_counter()
        with opt.Evaluator(prices, setup, workers=args.workers) as ev:
            if args.method == "grid":
                trials = opt.grid_search(ev, space, steps=args.steps, progress=progress)
            elif args.method == "random":
                trials = opt.random_search(ev, space, n=args.samples, seed=args.search_seed, progress=progress)
            else:
                trials = opt.genetic(ev, space, population=args.population, generations=args.generations,
                                     seed=args.search_seed, progress=progress)
            rate, evaluated, workers = ev.rate, ev.evaluated, ev.workers
        elapsed = time.perf_counter() - t0
    best = trials[0]
    out_path = None
    if args.out and best.score != float("-inf"):
        strat = opt.strategy_from(best, setup, symbol=args.symbol, method=args.method, prices=prices)
        out_path = str(opt.write_strategy(args.out, strat))
    space_json = {k: list(v) if isinstance(v, tuple) else v for k, v in space.items()}
    if args.json:
        print(json.dumps({
            "data": desc,
            "method": args.method,
            "objective": args.objective,
            "space": space_json,
            "evaluated": evaluated,
            "workers": workers,
            "seconds": round(elapsed, 3),
            "backtests_per_s": round(rate, 2),
            "best": opt.results_json(trials, top=1)[0],
            "top": opt.results_json(trials, top=args.top),
            "strategy": out_path,
        }))
        return 0
    from rich.table import Table

    names = list(space)
    t = Table(title=f"{args.method} search on {desc}: top {min(args.top, len(trials))} by {args.objective}")
    t.add_column("#", justify="right")
    for n in names:
        t.add_column(n, justify="right")
    for col in ("score", "return", "max dd", "sharpe", "round trips"):
        t.add_column(col, justify="right")
    for i, tr in enumerate(trials[: args.top], 1):
        m = tr.metrics
        if "error" in m:
            continue
        t.add_row(
            str(i), *(_fmt(tr.params.get(n)) for n in names), _fmt(tr.score),
            f"{m['total_return'] * 100:+.2f}%", f"{m['max_drawdown'] * 100:.2f}%", f"{m['sharpe']:.2f}",
            str(m["round_trips"]),
        )
    console.print(t)
    console.print(f"{evaluated} backtests in {elapsed:.2f} s on {workers} process(es): {rate:.1f} backtests/s")
    if out_path:
        console.print(f"strategy written to {out_path}")
    if best.score != float("-inf"):
        from engines.grid.backtest import backtest

        r = backtest(prices, opt.spec_for(best.params, setup, prices), periods_per_year=ppy)
        assert r.equity is not None
        _chart(console, r.equity, "equity of the best")
    return 0
