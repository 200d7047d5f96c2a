"""Historical candles from an OHLC endpoint in Kraken's REST format, cached locally in SQLite.

``GET {base_url}/0/public/OHLC?pair=XBTUSD&interval=60&since=1700000000`` answers
``{"error": [], "result": {"XXBTZUSD": [[time, open, high, low, close, vwap, volume, count], …],
"last": 1700043200}}`` (prices as strings; at most 720 candles a page; ``last`` is the ``since`` for
the next page). The result key may differ from the requested pair, so the first key that is not
``last`` is the data.

Failures: HTTP 429 and Kraken's ``EAPI:Rate limit exceeded`` / ``EGeneral:Too many requests`` are
retried with exponential backoff (``Retry-After`` honoured when the server sends it), as are 5xx
answers and transport errors; any other HTTP status or Kraken error is raised as
:class:`KrakenError` at once. ``sleep`` is injectable so tests never wait.

The cache is a plain SQLite file (``candles`` table keyed by pair, interval, time). A request whose
range is already in the cache does not touch the network.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.grid.data import Series

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

RATE_LIMIT_ERRORS = ("EAPI:Rate limit exceeded", "EGeneral:Too many requests")
DEFAULT_BASE_URL = "https://api.kraken.com"


class KrakenError(Exception):
    """The endpoint refused the request (or kept failing past the retry budget)."""


class CandleCache:
    """SQLite store of candles: one row per (pair, interval, time)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS candles (pair TEXT, interval INTEGER, time INTEGER, open REAL,"
            " high REAL, low REAL, close REAL, vwap REAL, volume REAL, count INTEGER,"
            " PRIMARY KEY (pair, interval, time))"
        )
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def put(self, pair: str, interval: int, rows: list[list[Any]]) -> int:
        self.db.executemany(
            "INSERT OR REPLACE INTO candles VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (pair, interval, int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                 float(r[5]), float(r[6]), int(r[7]))
                for r in rows
            ],
        )
        self.db.commit()
        return len(rows)

    def span(self, pair: str, interval: int) -> tuple[int, int] | None:
        row = self.db.execute(
            "SELECT MIN(time), MAX(time) FROM candles WHERE pair=? AND interval=?", (pair, interval)
        ).fetchone()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def get(self, pair: str, interval: int, since: int = 0, until: int | None = None) -> Series:
        q = "SELECT time, open, high, low, close FROM candles WHERE pair=? AND interval=? AND time>=?"
        args: list[Any] = [pair, interval, since]
        if until is not None:
            q += " AND time<=?"
            args.append(until)
        rows = self.db.execute(q + " ORDER BY time", args).fetchall()
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        return Series(close=a[:, 4], open=a[:, 1], high=a[:, 2], low=a[:, 3], time=a[:, 0])


class KrakenOHLC:
    """Fetch candles page by page with retries and backoff; cache them."""

    def __init__(
        self,
        cache: CandleCache,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
    ) -> None:
        self.cache = cache
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        # httpx is imported here, not at module level: ``import httpx`` pulls in rich when rich is
        # installed (its CLI entry point), and engines must not load UI libraries.
        import httpx

        self._httpx = httpx
        self.client = client or httpx.Client(timeout=timeout)
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self.client.close()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff)
            except ValueError:
                pass
        return min(self.backoff * 2**attempt, self.max_backoff)

    def page(self, pair: str, interval: int, since: int | None = None) -> tuple[list[list[Any]], int]:
        """One page: (rows, last). Retries rate limits, 5xx and transport errors with backoff."""
        params: dict[str, Any] = {"pair": pair, "interval": interval}
        if since is not None:
            params["since"] = since
        url = f"{self.base_url}/0/public/OHLC"
        reason = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries += 1
            retry_after: str | None = None
            self.requests += 1
            try:
                resp = self.client.get(url, params=params)
            except self._httpx.TransportError as exc:
                reason = f"transport error: {exc!r}"
            else:
                if resp.status_code == 429:
                    reason = "HTTP 429 Too Many Requests"
                    retry_after = resp.headers.get("retry-after")
                elif resp.status_code >= 500:
                    reason = f"HTTP {resp.status_code}"
                elif resp.status_code != 200:
                    raise KrakenError(f"HTTP {resp.status_code} from {url}: {resp.text[:200]}")
                else:
                    try:
                        body = resp.json()
                    except ValueError:
                        raise KrakenError(f"not JSON from {url}: {resp.text[:200]!r}") from None
                    errors = body.get("error") or []
                    if any(e in RATE_LIMIT_ERRORS for e in errors):
                        reason = f"rate limited: {', '.join(errors)}"
                    elif errors:
                        raise KrakenError(f"{pair}: {', '.join(errors)}")
                    else:
                        result = body.get("result") or {}
                        keys = [k for k in result if k != "last"]
                        if not keys:
                            raise KrakenError(f"{pair}: no data in the answer")
                        return result[keys[0]], int(result.get("last", 0))
            if attempt == self.max_retries:
                break
            delay = self._delay(attempt, retry_after)
            log.warning("kraken OHLC %s: %s; retry %d in %.1fs", pair, reason, attempt + 1, delay)
            self.sleep(delay)
        raise KrakenError(f"{pair}: gave up after {self.max_retries + 1} attempts: {reason}")

    def history(
        self,
        pair: str,
        interval: int = 60,
        since: int = 0,
        until: int | None = None,
        *,
        max_pages: int = 100,
        progress: Callable[[int, int], None] | None = None,
    ) -> Series:
        """Candles from ``since`` to ``until`` (all available if None), from the cache when it covers
        the range, else fetched onwards from the cache's newest candle."""
        span = self.cache.span(pair, interval)
        covered = span is not None and span[0] <= since and until is not None and span[1] >= until
        if not covered:
            cursor = since if span is None or span[1] < since or span[0] > since else span[1]
            for page_no in range(max_pages):
                rows, last = self.page(pair, interval, cursor)
                self.cache.put(pair, interval, rows)
                if progress is not None:
                    progress(page_no + 1, len(rows))
                newest = int(rows[-1][0]) if rows else cursor
                if not rows or last <= cursor or (until is not None and newest >= until):
                    break
                cursor = last
        return self.cache.get(pair, interval, since, until)
