"""Parameter search for grid strategies: grid search, random search and a genetic algorithm.

Backtests run in a ``ProcessPoolExecutor`` (one worker per core by default). The price array is
written once to a ``.npy`` file and every worker maps it read-only (``np.load(mmap_mode="r")``):
the OS page cache shares one copy, nothing is pickled per task but the parameters, and it works
with both the fork and spawn start methods. Tasks go in chunks to keep the IPC per backtest small.

A *space* maps a parameter name to a tuple ``(low, high)`` (a continuous range; ints if both ends
are ints) or a list of choices. Parameters: ``lower``, ``upper``, ``levels``, ``kind``,
``vol_mult`` (volatility grids), ``stop_loss_pct`` / ``take_profit_pct`` (distance below the lower
/ above the upper bound, in %; 0 = off). Fixed settings (fee, tick, investment) travel in
:class:`Setup`. The objective is one of :data:`OBJECTIVES` (higher is better).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from engines.grid import levels as lv
from engines.grid.backtest import MINUTES_PER_YEAR, BacktestResult, GridSpec, backtest
from engines.grid.strategy import Strategy

Params = dict[str, Any]
Space = dict[str, tuple[float, float] | list[Any]]
Progress = Callable[[int, int], None]


def _calmar(r: BacktestResult) -> float:
    return r.total_return / max(r.max_drawdown, 1e-9)


OBJECTIVES: dict[str, Callable[[BacktestResult], float]] = {
    "return": lambda r: r.total_return,
    "sharpe": lambda r: r.sharpe,
    "calmar": _calmar,
    "profit": lambda r: r.grid_profit,
    "round_trips": lambda r: float(r.round_trips),
}


@dataclass(frozen=True, slots=True)
class Setup:
    """Settings every backtest of a search shares."""

    fee: float = 0.001
    tick: str = "0.01"
    investment: float = 10_000.0  # quote, spread equally over the cells
    objective: str = "return"
    periods_per_year: float = MINUTES_PER_YEAR
    vol_window: int = 14


@dataclass(slots=True)
class Trial:
    params: Params
    score: float
    metrics: dict[str, Any] = field(default_factory=dict)


# --- turning parameters into a backtest --------------------------------------------------------


def spec_for(params: Params, setup: Setup, prices: np.ndarray) -> GridSpec:
    """Exact levels (Decimal, snapped) from the parameters, then floats for the backtest."""
    kind = str(params.get("kind", "arithmetic"))
    lower = Decimal(repr(float(params["lower"])))
    upper = Decimal(repr(float(params["upper"])))
    n = int(params["levels"])
    tick = Decimal(setup.tick)
    step = None
    center = None
    if kind == "volatility":
        window = min(len(prices) - 1, max(setup.vol_window, 2))
        head = [float(x) for x in prices[: window + 1]]
        center = Decimal(repr(head[-1]))
        step = lv.vol_step(multiplier=float(params.get("vol_mult", 1.0)), center=head[-1], closes=head,
                           window=window)
    levels = lv.make_levels(kind, lower, upper, n, tick, center=center, step=step)
    lf = np.asarray([float(x) for x in levels])
    qty = (setup.investment / (n - 1)) / lf[:-1]
    sl_pct = float(params.get("stop_loss_pct", 0) or 0)
    tp_pct = float(params.get("take_profit_pct", 0) or 0)
    return GridSpec.make(
        lf,
        qty,
        fee=setup.fee,
        stop_loss=lf[0] * (1 - sl_pct / 100) if sl_pct > 0 else None,
        take_profit=lf[-1] * (1 + tp_pct / 100) if tp_pct > 0 else None,
    )


def evaluate(params: Params, setup: Setup, prices: np.ndarray) -> Trial:
    try:
        spec = spec_for(params, setup, prices)
    except ValueError as exc:  # an impossible combination (lower >= upper, levels colliding…)
        return Trial(dict(params), -math.inf, {"error": str(exc)})
    r = backtest(prices, spec, periods_per_year=setup.periods_per_year, keep_equity=False)
    score = OBJECTIVES[setup.objective](r)
    if not math.isfinite(score):
        score = -math.inf
    return Trial(dict(params), score, r.summary())


# --- the worker pool ---------------------------------------------------------------------------

_WORKER_PRICES: np.ndarray | None = None


def _attach(path: str) -> None:
    global _WORKER_PRICES
    _WORKER_PRICES = np.load(path, mmap_mode="r")


def _run_chunk(chunk: list[Params], setup: Setup) -> list[Trial]:
    assert _WORKER_PRICES is not None
    return [evaluate(p, setup, _WORKER_PRICES) for p in chunk]


class Evaluator:
    """Runs batches of parameter sets on ``workers`` processes (1 = in this process)."""

    def __init__(self, prices: np.ndarray, setup: Setup, *, workers: int | None = None) -> None:
        if setup.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {setup.objective!r} (known: {', '.join(OBJECTIVES)})")
        self.setup = setup
        self.prices = np.ascontiguousarray(prices, dtype=np.float64)
        self.workers = workers or os.cpu_count() or 1
        self.evaluated = 0
        self.seconds = 0.0
        self._cache: dict[tuple, Trial] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Evaluator:
        if self.workers > 1:
            self._tmp = tempfile.TemporaryDirectory(prefix="opdesk-grid-")
            path = os.path.join(self._tmp.name, "prices.npy")
            np.save(path, self.prices)
            self._pool = ProcessPoolExecutor(self.workers, initializer=_attach, initargs=(path,))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @staticmethod
    def _key(p: Params) -> tuple:
        return tuple(sorted((k, v) for k, v in p.items()))

    def run(self, batch: Sequence[Params], progress: Progress | None = None) -> list[Trial]:
        """Trials for ``batch`` in order; parameter sets seen before come from the cache."""
        t0 = time.perf_counter()
        todo = []
        queued: set[tuple] = set()
        for p in batch:
            k = self._key(p)
            if k not in self._cache and k not in queued:
                queued.add(k)
                todo.append(p)
        done = len(batch) - len(todo)
        if progress:
            progress(done, len(batch))
        if self._pool is None:
            for p in todo:
                self._cache[self._key(p)] = evaluate(p, self.setup, self.prices)
                done += 1
                if progress:
                    progress(done, len(batch))
        else:
            size = max(1, min(8, math.ceil(len(todo) / (self.workers * 4))))
            chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
            futures = [self._pool.submit(_run_chunk, c, self.setup) for c in chunks]
            for fut in futures:
                for t in fut.result():
                    self._cache[self._key(t.params)] = t
                    done += 1
                if progress:
                    progress(done, len(batch))
        self.evaluated += len(todo)
        self.seconds += time.perf_counter() - t0
        return [self._cache[self._key(p)] for p in batch]

    @property
    def rate(self) -> float:
        """Backtests per second so far."""
        return self.evaluated / self.seconds if self.seconds else 0.0


# --- search strategies -------------------------------------------------------------------------


def _is_range(spec: Any) -> bool:
    return isinstance(spec, tuple) and len(spec) == 2


def _is_int_range(spec: Any) -> bool:
    return _is_range(spec) and all(isinstance(x, int) and not isinstance(x, bool) for x in spec)


def grid_points(space: Space, steps: int = 5) -> list[Params]:
    """Every combination; ranges become ``steps`` evenly spaced values (ints deduplicated)."""
    axes: list[tuple[str, list[Any]]] = []
    for name, spec in space.items():
        if _is_range(spec):
            lo, hi = spec  # type: ignore[misc]
            vals = np.linspace(lo, hi, steps)
            values: list[Any] = (
                sorted({round(float(v)) for v in vals}) if _is_int_range(spec) else [float(v) for v in vals]
            )
        else:
            values = list(spec)
        axes.append((name, values))
    out: list[Params] = [{}]
    for name, values in axes:
        out = [{**p, name: v} for p in out for v in values]
    return out


def _sample(space: Space, rng: np.random.Generator) -> Params:
    p: Params = {}
    for name, spec in space.items():
        if _is_int_range(spec):
            p[name] = int(rng.integers(spec[0], spec[1] + 1))  # type: ignore[index]
        elif _is_range(spec):
            p[name] = float(rng.uniform(spec[0], spec[1]))  # type: ignore[index]
        else:
            p[name] = list(spec)[int(rng.integers(len(spec)))]  # type: ignore[arg-type]
    return p


def random_points(space: Space, n: int, seed: int = 7) -> list[Params]:
    rng = np.random.default_rng(seed)
    return [_sample(space, rng) for _ in range(n)]


def grid_search(ev: Evaluator, space: Space, *, steps: int = 5, progress: Progress | None = None) -> list[Trial]:
    return ranked(ev.run(grid_points(space, steps), progress))


def random_search(
    ev: Evaluator, space: Space, *, n: int = 50, seed: int = 7, progress: Progress | None = None
) -> list[Trial]:
    return ranked(ev.run(random_points(space, n, seed), progress))


def genetic(
    ev: Evaluator,
    space: Space,
    *,
    population: int = 16,
    generations: int = 8,
    elite: int = 2,
    mutation: float = 0.2,
    seed: int = 7,
    progress: Progress | None = None,
) -> list[Trial]:
    """A small generational GA: tournament selection (size 3), uniform crossover, mutation (Gaussian
    at 10% of the range for ranges, re-draw for choices), ``elite`` best kept unchanged. Seeded."""
    rng = np.random.default_rng(seed)
    pop = [_sample(space, rng) for _ in range(population)]
    seen: dict[tuple, Trial] = {}
    total = population * generations
    base = 0

    def prog(done: int, n: int) -> None:
        if progress:
            progress(base + done, total)

    for gen in range(generations):
        trials = ev.run(pop, prog)
        base += len(pop)
        for t in trials:
            seen[Evaluator._key(t.params)] = t
        if gen == generations - 1:
            break
        scored = sorted(trials, key=lambda t: t.score, reverse=True)
        nxt = [dict(t.params) for t in scored[:elite]]

        while len(nxt) < population:
            a, b = _tournament(trials, rng), _tournament(trials, rng)
            child = {k: (a[k] if rng.random() < 0.5 else b[k]) for k in space}
            for name, spec in space.items():
                if rng.random() >= mutation:
                    continue
                if _is_range(spec):
                    lo, hi = spec  # type: ignore[misc]
                    v = float(child[name]) + rng.normal(0, 0.1 * (hi - lo))
                    v = min(max(v, lo), hi)
                    child[name] = round(v) if _is_int_range(spec) else v
                else:
                    child[name] = list(spec)[int(rng.integers(len(spec)))]  # type: ignore[arg-type]
            nxt.append(child)
        pop = nxt
    return ranked(list(seen.values()))


def _tournament(trials: Sequence[Trial], rng: np.random.Generator, size: int = 3) -> Params:
    idx = rng.integers(len(trials), size=size)
    return max((trials[i] for i in idx), key=lambda t: t.score).params


def ranked(trials: Iterable[Trial]) -> list[Trial]:
    return sorted(trials, key=lambda t: t.score, reverse=True)


# --- results -----------------------------------------------------------------------------------


def strategy_from(best: Trial, setup: Setup, *, symbol: str = "", method: str = "", prices: np.ndarray) -> Strategy:
    """The live bot's strategy file for the best trial."""
    spec = spec_for(best.params, setup, prices)
    levels = [Decimal(repr(float(x))) for x in spec.levels]
    return Strategy(
        symbol=symbol,
        kind="explicit",
        lower=levels[0],
        upper=levels[-1],
        levels=len(levels),
        prices=levels,
        quote_per_level=Decimal(repr(round(setup.investment / (len(levels) - 1), 8))),
        stop_loss=None if spec.stop_loss is None else Decimal(repr(round(spec.stop_loss, 10))),
        take_profit=None if spec.take_profit is None else Decimal(repr(round(spec.take_profit, 10))),
        fee=setup.fee,
        objective=setup.objective,
        score=best.score,
        method=method,
        params={k: (v if isinstance(v, str | int) else float(v)) for k, v in best.params.items()},
        metrics={k: v for k, v in best.metrics.items() if v is not None},
    )


def results_json(trials: Sequence[Trial], *, top: int = 10) -> list[dict[str, Any]]:
    out = []
    for t in trials[:top]:
        d = asdict(t)
        d["score"] = t.score if math.isfinite(t.score) else None
        out.append(d)
    return out


def write_strategy(path: str | Path, strategy: Strategy) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(strategy.model_dump(mode="json"), indent=2) + "\n")
    return path
