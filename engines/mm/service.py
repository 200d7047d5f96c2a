"""Builder: one :class:`MarketMaker` per enabled ``[[mm]]`` table, plus the reference feeds they need.

Bots register in ``desk.services["bots"]`` (name → bot with ``pause()/resume()/status()``), feeds in
``desk.services["feeds"]``. Each bot keeps its SQLite store at ``<data_dir>/mm-<name>.sqlite``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engines.config import ConfigError
from engines.feeds.binance import BinanceBookTickerFeed
from engines.feeds.venue_mid import VenueMidFeed
from engines.instruments import OffGridError
from engines.mm.bot import MarketMaker
from engines.mm.quote import QuoteParams

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine


def build(desk: Desk) -> list[Engine]:
    engines: list[Engine] = []
    feeds: dict[str, object] = desk.services.setdefault("feeds", {})
    bots: dict[str, object] = desk.services.setdefault("bots", {})
    binance: dict[str, dict[str, str]] = {}  # url -> {exchange symbol: desk symbol}
    stale: dict[str, float] = {}
    for cfg in desk.config.mm:
        if not cfg.enabled:
            continue
        source = cfg.reference_source
        if source.startswith("mid:"):
            venue = source.removeprefix("mid:")
            name = f"feed-mid-{venue}"
            if name not in feeds:
                feed = VenueMidFeed(desk.bus, desk.instruments, venue)
                feeds[name] = feed
                engines.append(feed)
        elif source == "binance":
            binance.setdefault(cfg.binance_url, {})[cfg.reference_symbol.upper()] = cfg.symbol
            stale[cfg.binance_url] = min(stale.get(cfg.binance_url, cfg.stale_after), cfg.stale_after)
    for i, (url, symbols) in enumerate(sorted(binance.items())):
        name = "feed-binance" if i == 0 else f"feed-binance-{i}"
        feed = BinanceBookTickerFeed(desk.bus, url=url, symbols=symbols, name=name, stale_after=stale[url])
        feeds[name] = feed
        engines.append(feed)
    matching = desk.services.get("matching")
    for cfg in desk.config.mm:
        if not cfg.enabled:
            continue
        try:
            QuoteParams.from_config(cfg, desk.instruments[cfg.symbol])
        except OffGridError as exc:  # sizes must sit on the instrument's lot grid
            raise ConfigError(f"invalid configuration:\n  mm {cfg.name!r}: {exc}") from None
        bot = MarketMaker(
            cfg,
            bus=desk.bus,
            clock=desk.clock,
            router=desk.router,
            instrument=desk.instruments[cfg.symbol],
            services=desk.services,
            store_path=desk.data_dir / f"mm-{cfg.name}.sqlite",
            # The matching engine keeps (and restores) its trade history: fill recovery after a crash.
            trade_source=matching if matching is not None and cfg.venue == desk.config.matching.venue else None,
        )
        bots[cfg.name] = bot
        engines.append(bot)
    return engines
