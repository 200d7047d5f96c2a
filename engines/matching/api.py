"""Builder of the matching engine's network APIs: REST (``matching-rest``) and WebSocket market data
(``matching-ws``). Runs after ``engines.matching.service:build``, which registers the engine as
``desk.services["matching"]``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engines.matching.apitoken import load_or_create_token
from engines.matching.rest import RestApi, RestServer
from engines.matching.ws import MarketDataServer

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine

log = logging.getLogger(__name__)


def build(desk: Desk) -> list[Engine]:
    cfg = desk.config.matching
    if not cfg.enabled or not (cfg.rest.enabled or cfg.ws.enabled):
        return []
    engine = desk.services.get("matching")
    if engine is None:
        log.warning(
            "matching APIs not started: no desk.services['matching'] (engines.matching.api:build must come "
            "after engines.matching.service:build in BUILDERS)"
        )
        return []
    instruments = {s: i for s, i in desk.instruments.items() if s in set(engine.symbols)}
    engines: list[Engine] = []
    if cfg.rest.enabled:
        token = load_or_create_token(cfg.api_token, desk.data_dir)
        api = RestApi(engine, desk.router, instruments, token, venue=cfg.venue, durable_ack=cfg.durable_ack)
        rest = RestServer(api, host=cfg.rest.host, port=cfg.rest.port)
        desk.services["matching-rest"] = rest
        engines.append(rest)
    if cfg.ws.enabled:
        ws = MarketDataServer(
            desk.bus, engine, instruments, host=cfg.ws.host, port=cfg.ws.port, depth_levels=cfg.depth_levels
        )
        desk.services["matching-ws"] = ws
        engines.append(ws)
    return engines
