"""The console's one door to the desk's engines: every operator action goes through :class:`DeskActions`.

The in-process implementation calls engine services directly (``desk.services``, ``desk.router``);
the remote console substitutes an implementation with the same async methods that sends the actions
over its channel. Panels never call engines themselves. Each method raises :class:`ActionUnavailable`
with an operator-readable reason when the desk cannot do it (engine not running, unknown name).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

log = logging.getLogger("console.actions")


class ActionUnavailable(RuntimeError):
    """The action cannot be carried out; the message says why, for the operator."""


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class DeskActions:
    """Operator actions on an in-process desk."""

    source = "console"

    def __init__(self, desk: Any, *, actor: str = "operator") -> None:
        self.desk = desk
        self.actor = actor

    def _service(self, name: str, what: str) -> Any:
        svc = self.desk.services.get(name)
        if svc is None:
            raise ActionUnavailable(f"{what}: the {name} engine is not running on this desk")
        return svc

    # --- kill switch ---------------------------------------------------------------------------------
    async def kill(self, scope: str = "desk", *, reason: str = "operator kill from console") -> Any:
        ks = self._service("killswitch", "kill")
        log.warning("operator kill %s: %s", scope, reason)
        return await ks.kill(scope, reason=reason, source=self.source)

    async def rearm(self, scope: str = "desk", *, reason: str = "operator re-arm from console") -> Any:
        ks = self._service("killswitch", "re-arm")
        log.warning("operator re-arm %s: %s", scope, reason)
        return await ks.rearm(scope, reason=reason, source=self.source)

    # --- bots ----------------------------------------------------------------------------------------
    def _bot(self, name: str) -> Any:
        bots = self.desk.services.get("bots") or {}
        bot = bots.get(name)
        if bot is None:
            raise ActionUnavailable(f"no bot named {name!r} (running: {', '.join(bots) or 'none'})")
        return bot

    async def pause(self, bot: str) -> None:
        log.info("operator pause %s", bot)
        await _maybe_await(self._bot(bot).pause())

    async def resume(self, bot: str) -> None:
        log.info("operator resume %s", bot)
        await _maybe_await(self._bot(bot).resume())

    # --- orders --------------------------------------------------------------------------------------
    async def cancel_all(self, symbol: str | None = None, *, owner: str | None = None) -> int:
        """Cancel every open order (of ``owner``) on ``symbol`` at every venue; returns how many."""
        venues = getattr(self.desk.router, "venues", {})
        if not venues:
            raise ActionUnavailable("cancel all: no venue is connected to this desk")
        log.warning("operator cancel-all symbol=%s owner=%s", symbol or "*", owner or "*")
        n = 0
        for venue in list(venues.values()):
            results = await venue.cancel_all(owner=owner, symbol=symbol)
            n += sum(1 for r in results if getattr(r, "confirmed", True))
        return n

    # --- FIX -----------------------------------------------------------------------------------------
    def _fix_session(self, session: str) -> Any:
        fix = self._service("fix", "FIX")
        finder = getattr(fix, "session", None)
        sess = finder(session) if callable(finder) else None
        if sess is None:
            sessions = getattr(fix, "sessions", {})
            sess = sessions.get(session) if isinstance(sessions, dict) else None
        if sess is None:
            raise ActionUnavailable(f"no FIX session {session!r}")
        return sess

    async def fix_logout(self, session: str) -> None:
        log.warning("operator FIX logout %s", session)
        fix = self._service("fix", "FIX logout")
        if hasattr(fix, "logout"):
            await _maybe_await(fix.logout(session))
            return
        await _maybe_await(self._fix_session(session).logout("operator logout"))

    async def fix_reconnect(self, session: str) -> None:
        log.warning("operator FIX reconnect %s", session)
        fix = self._service("fix", "FIX reconnect")
        if hasattr(fix, "reconnect"):
            await _maybe_await(fix.reconnect(session))
            return
        await _maybe_await(self._fix_session(session).reconnect())
