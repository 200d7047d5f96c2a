"""TEMPORARY: builds the real MatchingEngine (no journal) until engines/matching/service.py lands."""

from __future__ import annotations

from engines.matching.engine import MatchingEngine


def build(desk):
    cfg = desk.config.matching
    e = MatchingEngine(desk.bus, desk.instruments, venue=cfg.venue, depth_levels=cfg.depth_levels)
    desk.services["matching"] = e
    return [e]
