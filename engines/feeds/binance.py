"""A real WebSocket client for Binance book-ticker streams, publishing ``PriceTick(source="binance")``.

Frames look like ``{"u":400900217,"s":"BTCUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}``
(raw stream) or ``{"stream":"btcusdt@bookTicker","data":{…}}`` (combined stream). The client connects
to ``url``, subscribes with ``{"method":"SUBSCRIBE","params":["btcusdt@bookTicker",…],"id":1}``, and
maps each exchange symbol to a desk symbol; the tick's price is the mid (b + a) / 2.

* Reconnect: any drop or error reconnects after an exponential backoff (``backoff_initial`` doubling up
  to ``backoff_max``, with seeded jitter of 50-100 %), reset once a connection delivers a good frame.
* Staleness: no frame for ``stale_after`` seconds → the feed reports ``stale`` and reconnects; the
  bots see the reference age and stop quoting on their own ``stale_after``.
* Malformed frames (bad JSON, missing fields, non-numeric or non-positive prices, crossed bid/ask) are
  logged and skipped; frames with an update id ``u`` not above the last one are dropped as replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from decimal import Decimal, InvalidOperation
from typing import Any

import websockets
from websockets.asyncio.client import connect

from engines.bus import Bus
from engines.events import PriceTick
from engines.feeds.events import FeedStatus

log = logging.getLogger(__name__)


class MalformedFrame(ValueError):
    pass


def parse_book_ticker(raw: str | bytes) -> tuple[int | None, str, Decimal, Decimal] | None:
    """(update id, exchange symbol, bid, ask) from one frame; None for a request acknowledgement
    (``{"result":null,"id":1}``); :class:`MalformedFrame` for anything else that is not a book ticker."""
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedFrame(f"not JSON: {exc}") from None
    if isinstance(msg, dict) and isinstance(msg.get("data"), dict):
        msg = msg["data"]
    if not isinstance(msg, dict):
        raise MalformedFrame("not an object")
    if "result" in msg and "id" in msg and "s" not in msg:
        return None
    try:
        sym = msg["s"]
        bid = Decimal(str(msg["b"]))
        ask = Decimal(str(msg["a"]))
    except KeyError as exc:
        raise MalformedFrame(f"missing field {exc}") from None
    except InvalidOperation:
        raise MalformedFrame("price is not a number") from None
    if not isinstance(sym, str) or not sym:
        raise MalformedFrame("bad symbol")
    if not (bid.is_finite() and ask.is_finite()) or bid <= 0 or ask <= 0:
        raise MalformedFrame("non-positive price")
    if bid > ask:
        raise MalformedFrame(f"crossed: bid {bid} > ask {ask}")
    u = msg.get("u")
    return (u if isinstance(u, int) else None), sym.upper(), bid, ask


class BinanceBookTickerFeed:
    def __init__(
        self,
        bus: Bus,
        *,
        url: str,
        symbols: dict[str, str],
        name: str = "feed-binance",
        stale_after: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        open_timeout: float = 10.0,
        seed: int = 0,
    ) -> None:
        """``symbols`` maps exchange symbols (``BTCUSDT``) to desk symbols (``BTC-USD``)."""
        self.name = name
        self.bus = bus
        self.url = url
        self.symbols = {k.upper(): v for k, v in symbols.items()}
        self.stale_after = stale_after
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.open_timeout = open_timeout
        self._rng = random.Random(seed)
        self.state = "stopped"
        self.reason = ""
        self.frames = 0
        self.ticks = 0
        self.malformed = 0
        self.replayed = 0
        self.ignored = 0
        self.reconnects = 0
        self.connects = 0
        self._last_u: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_state("stopped", "")

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "state": self.state, "reason": self.reason, "frames": self.frames,
                "ticks": self.ticks, "malformed": self.malformed, "reconnects": self.reconnects}

    def _set_state(self, state: str, reason: str) -> None:
        if state == self.state and reason == self.reason:
            return
        self.state, self.reason = state, reason
        self.bus.publish(FeedStatus(feed=self.name, state=state, reason=reason, frames=self.frames,
                                    malformed=self.malformed, reconnects=self.reconnects))

    # --- the connection loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            self._set_state("connecting", self.url)
            reason = ""
            try:
                async with connect(self.url, open_timeout=self.open_timeout, max_size=1 << 20,
                                   ping_interval=20, ping_timeout=20) as ws:
                    self.connects += 1
                    streams = [f"{s.lower()}@bookTicker" for s in self.symbols]
                    await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
                    self._set_state("live", "")
                    while True:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), self.stale_after)
                        except TimeoutError:
                            reason = f"no frame for {self.stale_after:g}s"
                            self._set_state("stale", reason)
                            break
                        if self._on_frame(raw):
                            attempt = 0  # a good frame: the link works, reset the backoff
            except asyncio.CancelledError:
                raise
            except websockets.exceptions.ConnectionClosed as exc:
                reason = f"connection closed: {exc}"
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.reconnects += 1
            delay = min(self.backoff_max, self.backoff_initial * (2**attempt)) * (0.5 + 0.5 * self._rng.random())
            attempt += 1
            log.warning("%s: %s; reconnecting in %.2fs", self.name, reason, delay)
            self._set_state("reconnecting", f"{reason}; retry in {delay:.2f}s")
            await asyncio.sleep(delay)

    def _on_frame(self, raw: str | bytes) -> bool:
        """Handle one frame; True if it was a good book-ticker frame."""
        self.frames += 1
        try:
            parsed = parse_book_ticker(raw)
        except MalformedFrame as exc:
            self.malformed += 1
            text = raw if isinstance(raw, str) else raw.decode(errors="replace")
            log.warning("%s: malformed frame skipped (%s): %.200s", self.name, exc, text)
            return False
        if parsed is None:  # the SUBSCRIBE acknowledgement
            return False
        u, sym, bid, ask = parsed
        desk_symbol = self.symbols.get(sym)
        if desk_symbol is None:
            self.ignored += 1
            return True
        if u is not None:
            last = self._last_u.get(sym)
            if last is not None and u <= last:
                self.replayed += 1
                return True
            self._last_u[sym] = u
        self.ticks += 1
        self.bus.publish(PriceTick(symbol=desk_symbol, price=float((bid + ask) / 2), source="binance"))
        return True
