"""Builds one :class:`GridBot` per enabled ``[[grid]]`` table and registers it in ``desk.services["bots"]``
(name -> bot with ``pause()``, ``resume()``, ``status()``), the registry the console and kill switch use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engines.grid.bot import GridBot

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine


def build(desk: Desk) -> list[Engine]:
    bots: list[Engine] = []
    registry = desk.services.setdefault("bots", {})
    for cfg in desk.config.grid:
        if not cfg.enabled:
            continue
        bot = GridBot(desk, cfg)
        registry[bot.name] = bot
        bots.append(bot)
    return bots
