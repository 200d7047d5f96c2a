"""Operator commands on a desk, in one place: the console, the remote channel and the control API all
send the same named actions here, so a kill means the same thing wherever it comes from.

Each action takes JSON-able parameters and returns a JSON-able result; a bad request raises
:class:`CommandError` with a message for the operator. ``source`` says where the command came from
(console, remote, cli, api) and ``actor`` who sent it (a token name); both reach the audit trail.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from engines.events import LogRecordEvent, jsonable

if TYPE_CHECKING:
    from engines.runtime import Desk

log = logging.getLogger(__name__)

#: Actions that change the desk; a viewer may run only the others.
MUTATING = frozenset({"kill", "rearm", "pause", "resume", "cancel_all", "fix_logout", "fix_reconnect"})
ACTIONS = MUTATING | {"status"}


class CommandError(Exception):
    """A command the desk refuses, phrased for the operator."""


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _service(desk: Desk, name: str) -> Any:
    service = desk.services.get(name)
    if service is None:
        raise CommandError(f"this desk has no {name} service")
    return service


def _text(params: dict[str, Any], key: str, default: str | None = None) -> str:
    value = params.get(key, default)
    if not isinstance(value, str) or not value:
        raise CommandError(f"{key}: a non-empty string is required")
    return value


async def execute(desk: Desk, action: str, params: dict[str, Any], *, source: str, actor: str = "") -> Any:
    """Run ``action`` on ``desk``; returns a JSON-able result."""
    if action not in ACTIONS:
        raise CommandError(f"unknown action {action!r} (known: {', '.join(sorted(ACTIONS))})")
    if action in MUTATING:
        who = f"{source}:{actor}" if actor else source
        log.warning("operator action %s %s by %s", action, params, who)
        desk.bus.publish(LogRecordEvent(level="WARNING", source=who, message=f"{action} {params}"))
    if action == "status":
        return jsonable(desk.status())
    if action in ("kill", "rearm"):
        switch = _service(desk, "killswitch")
        scope = params.get("scope") or "desk"
        reason = _text(params, "reason", f"{action} from {source}")
        try:
            if action == "kill":
                result = await switch.kill(
                    scope, reason=reason, source=source, actor=actor, flatten=bool(params.get("flatten"))
                )
            else:
                result = await switch.rearm(scope, reason=reason, source=source, actor=actor)
        except ValueError as exc:  # a malformed scope
            raise CommandError(str(exc)) from None
        return result.to_dict() if hasattr(result, "to_dict") else jsonable(result)
    if action in ("pause", "resume"):
        bots = desk.services.get("bots") or {}
        name = _text(params, "bot")
        bot = bots.get(name)
        if bot is None:
            raise CommandError(f"no bot named {name!r} (known: {', '.join(sorted(bots)) or 'none'})")
        await _maybe_await(getattr(bot, action)())
        return {"bot": name, "paused": action == "pause"}
    if action == "cancel_all":
        symbol = params.get("symbol")
        owner = params.get("owner")
        if symbol is not None and symbol not in desk.instruments:
            raise CommandError(f"symbol: unknown instrument {symbol!r}")
        results = []
        for venue in desk.router.venues.values():
            results.extend(await venue.cancel_all(owner=owner, symbol=symbol))
        return {"canceled": sum(1 for r in results if r.confirmed), "unconfirmed": sum(1 for r in results if not r.confirmed)}
    # FIX session control
    fix = _service(desk, "fix")
    session = _text(params, "session")
    method = getattr(fix, "logout" if action == "fix_logout" else "reconnect", None)
    if method is None:
        raise CommandError(f"the FIX service cannot {action.removeprefix('fix_')}")
    try:
        await _maybe_await(method(session))
    except KeyError:
        raise CommandError(f"no FIX session {session!r}") from None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return {"session": session, "action": action}
