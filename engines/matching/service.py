"""Builder of the matching engine (``engines.matching.service:build``): one engine for every configured
instrument, its journal at ``<data_dir>/matching.sqlite``, registered as ``desk.services["matching"]``
and as the venue ``config.matching.venue`` on the desk's router."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engines.config import ConfigError
from engines.matching import book_impl
from engines.matching.engine import MatchingEngine
from engines.matching.journal import Journal
from engines.matching.venue import MatchingVenue

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine

log = logging.getLogger(__name__)


def build(desk: Desk) -> list[Engine]:
    cfg = desk.config.matching
    if not cfg.enabled:
        return []
    journal = None
    if cfg.journal:
        journal = Journal(
            desk.data_dir / "matching.sqlite",
            sync=cfg.journal_sync,
            trade_history=cfg.trade_history,
            units={s: float(i.tick_size) * float(i.lot_size) for s, i in desk.instruments.items()},
        )
    try:
        book_class = book_impl.select(cfg.compiled_book)
    except book_impl.CompiledBookUnavailable as exc:  # the CLI reports a ConfigError without a traceback
        raise ConfigError(str(exc)) from None
    engine = MatchingEngine(
        desk.bus,
        desk.instruments,
        venue=cfg.venue,
        maker_fee_bps=cfg.maker_fee_bps,
        taker_fee_bps=cfg.taker_fee_bps,
        self_trade=cfg.self_trade,
        depth_levels=cfg.depth_levels,
        trade_history=cfg.trade_history,
        closed_history=cfg.closed_history,
        journal=journal,
        book_class=book_class,
    )
    log.info("matching: order book implementation %s (compiled_book = %s)", engine.book_impl, cfg.compiled_book)
    desk.services["matching"] = engine
    desk.router.add_venue(MatchingVenue(engine, name=cfg.venue, durable_ack=cfg.durable_ack))
    return [engine]
