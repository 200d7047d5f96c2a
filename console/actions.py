"""The console's one door to the desk's engines: every operator action goes through :class:`DeskActions`.

The in-process implementation sends each action to the desk's shared operator dispatcher
(:func:`engines.commands.execute`), the same one the remote channel and the control API use, so a kill
means the same thing wherever it comes from. The remote console substitutes an implementation with
the same async methods that sends the actions over its channel. Panels never call engines themselves.
Each method raises :class:`ActionUnavailable` with an operator-readable reason when the desk refuses.
"""

from __future__ import annotations

from typing import Any

from engines.commands import CommandError, execute


class ActionUnavailable(RuntimeError):
    """The action cannot be carried out; the message says why, for the operator."""


class DeskActions:
    """Operator actions on an in-process desk."""

    source = "console"

    def __init__(self, desk: Any, *, actor: str = "operator") -> None:
        self.desk = desk
        self.actor = actor

    async def _do(self, action: str, **params: Any) -> Any:
        try:
            return await execute(self.desk, action, params, source=self.source, actor=self.actor)
        except CommandError as exc:
            raise ActionUnavailable(str(exc)) from None

    async def kill(self, scope: str = "desk", *, reason: str = "operator kill from the console") -> Any:
        return await self._do("kill", scope=scope, reason=reason)

    async def rearm(self, scope: str = "desk", *, reason: str = "operator re-arm from the console") -> Any:
        return await self._do("rearm", scope=scope, reason=reason)

    async def pause(self, bot: str) -> Any:
        return await self._do("pause", bot=bot)

    async def resume(self, bot: str) -> Any:
        return await self._do("resume", bot=bot)

    async def cancel_all(self, symbol: str | None = None, *, owner: str | None = None) -> int:
        """Cancel every open order (of ``owner``) on ``symbol`` at every venue; returns how many."""
        result = await self._do("cancel_all", symbol=symbol, owner=owner)
        return int(result.get("canceled", 0)) if isinstance(result, dict) else 0

    async def fix_logout(self, session: str) -> Any:
        return await self._do("fix_logout", session=session)

    async def fix_reconnect(self, session: str) -> Any:
        return await self._do("fix_reconnect", session=session)
