"""Price data for research: CSV files (prices or OHLC candles) and a seeded synthetic generator.

CSV: a header row is required. A column named ``close`` (or ``price``) is the price; ``open``,
``high``, ``low``, ``time`` (or ``timestamp``) are read when present. Column names are case-blind.
A header-less single-column file of numbers is also accepted.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class Series:
    """Closes (always) and, for candles, open/high/low and times (seconds since the epoch)."""

    close: np.ndarray
    open: np.ndarray | None = None
    high: np.ndarray | None = None
    low: np.ndarray | None = None
    time: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.close)


def _floats(rows: list[list[str]], i: int) -> np.ndarray:
    return np.asarray([float(r[i]) for r in rows], dtype=np.float64)


def read_csv(path: str | Path) -> Series:
    path = Path(path)
    with path.open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(x.strip() for x in r)]
    if not rows:
        raise ValueError(f"{path}: no data")
    head = [h.strip().lower() for h in rows[0]]
    try:
        float(head[0])
        has_header = False
    except ValueError:
        has_header = True
    if not has_header:
        if len(head) != 1:
            raise ValueError(f"{path}: a file without a header must have one column of prices")
        return Series(close=_floats(rows, 0))
    body = rows[1:]
    if not body:
        raise ValueError(f"{path}: header but no rows")
    cols = {name: i for i, name in enumerate(head)}
    ci = cols.get("close", cols.get("price"))
    if ci is None:
        raise ValueError(f"{path}: needs a 'close' or 'price' column (has: {', '.join(head)})")
    try:
        close = _floats(body, ci)
        extra = {k: _floats(body, cols[k]) if k in cols else None for k in ("open", "high", "low")}
        ti = cols.get("time", cols.get("timestamp"))
        times = _floats(body, ti) if ti is not None else None
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{path}: bad number: {exc}") from None
    return Series(close=close, time=times, **extra)


def write_csv(path: str | Path, series: Series) -> None:
    cols = [("time", series.time), ("open", series.open), ("high", series.high), ("low", series.low)]
    present = [(n, a) for n, a in cols if a is not None] + [("close", series.close)]
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([n for n, _ in present])
        for row in zip(*(a for _, a in present)):
            w.writerow([repr(float(x)) for x in row])


def synthetic(
    n: int,
    *,
    seed: int = 7,
    start: float = 100.0,
    vol: float = 0.001,
    drift: float = 0.0,
    mean_revert: float = 0.0,
) -> np.ndarray:
    """A seeded price path of ``n`` points: log-normal random walk with per-step ``vol`` and ``drift``;
    ``mean_revert`` > 0 pulls the log price back towards ``log(start)`` (an Ornstein-Uhlenbeck walk,
    the ranging market a grid likes)."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(drift, vol, n - 1)
    if mean_revert <= 0:
        logp = np.concatenate(([0.0], np.cumsum(shocks)))
    else:
        logp = np.empty(n)
        logp[0] = 0.0
        a = 1.0 - mean_revert
        # x_t = a·x_{t-1} + e_t: a plain loop (~0.3 s per million points; research data, not a hot path)
        x = 0.0
        for i, e in enumerate(shocks, 1):
            x = a * x + e
            logp[i] = x
    return start * np.exp(logp)
