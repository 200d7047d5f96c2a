"""The local control API (Starlette): status, kill, re-arm, pause/resume a bot, cancel-all.

Every request needs ``Authorization: Bearer <token>``; a missing or wrong token is answered 401 with
a message saying what is wrong. Payloads are validated with pydantic; errors are 400 with the reason.
"""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engines.events import jsonable
from engines.risk.events import DESK, TradingState
from engines.risk.state import ScopeError, parse_scope

if TYPE_CHECKING:
    from engines.runtime import Desk

Source = Literal["cli", "console", "api"]


class KillBody(BaseModel):
    scope: str = DESK
    reason: str = Field(min_length=1)
    flatten: bool = False
    source: Source = "api"
    actor: str = ""


class RearmBody(BaseModel):
    scope: str = DESK
    reason: str = Field(min_length=1)
    state: Literal["active", "reducing"] = "active"
    source: Source = "api"
    actor: str = ""


class CancelAllBody(BaseModel):
    symbol: str
    owner: str | None = None
    venue: str | None = None


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class ControlApi:
    def __init__(self, desk: Desk, token: str) -> None:
        self.desk = desk
        self._token = token.encode()
        self.requests = 0
        self.unauthorized = 0
        routes = [
            Route("/status", self.status, methods=["GET"]),
            Route("/kill", self.kill, methods=["POST"]),
            Route("/rearm", self.rearm, methods=["POST"]),
            Route("/bots/{name}/{action:str}", self.bot, methods=["POST"]),
            Route("/cancel-all", self.cancel_all, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)
        self.app.add_middleware(_AuthMiddleware, api=self)

    # --- auth ---------------------------------------------------------------------------------------------
    def authorise(self, header: str | None) -> str | None:
        """None if allowed, else the message for the 401."""
        self.requests += 1
        if not header:
            self.unauthorized += 1
            return (
                "missing bearer token: send 'Authorization: Bearer <token>' "
                f"(the desk's token is control.token in its config or the file {self.desk.data_dir / 'control.token'})"
            )
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            self.unauthorized += 1
            return "malformed Authorization header: expected 'Bearer <token>'"
        if not hmac.compare_digest(value.strip().encode(), self._token):
            self.unauthorized += 1
            return "wrong token"
        return None

    def _ks(self) -> Any:
        ks = self.desk.services.get("killswitch")
        if ks is None:
            raise LookupError("this desk has no kill switch (risk engine not built)")
        return ks

    async def _body(self, request: Request, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate(await request.json())
        except ValueError as exc:  # JSON decode errors and ValidationError
            if isinstance(exc, ValidationError):
                msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise _BadRequest(msgs) from None
            raise _BadRequest(f"body is not JSON: {exc}") from None

    def _actor(self, request: Request, given: str) -> str:
        if given:
            return given
        client = request.client
        return f"{client.host}:{client.port}" if client else "unknown"

    # --- endpoints -----------------------------------------------------------------------------------------
    async def status(self, request: Request) -> JSONResponse:
        desk = self.desk
        risk = desk.services.get("risk")
        ks = desk.services.get("killswitch")
        bots = desk.services.get("bots") or {}
        out: dict[str, Any] = {
            "desk": desk.config.desk.name,
            "pid": os.getpid(),
            "data_dir": str(desk.data_dir),
            "desk_state": risk.state(DESK).value if risk else "unknown",
            "states": {s: v.value for s, v in risk.states.scopes().items()} if risk else {},
            "pending_cancels": ks.pending_cancels() if ks else [],
            "last_kill": ks.last_report.to_dict() if ks and ks.last_report else None,
            "positions": risk.positions.snapshot() if risk else [],
            "bots": {name: _safe_status(bot) for name, bot in bots.items()},
            "venues": {name: bool(v.connected) for name, v in desk.router.venues.items()},
            # every engine's own status (as in the headless status line): its state, and e.g. which
            # order book the matching engine runs ("book_impl")
            "engines": {e.name: jsonable(_safe_status(e)) for e in desk.engines},
        }
        return JSONResponse(out)

    async def kill(self, request: Request) -> JSONResponse:
        body: KillBody = await self._body(request, KillBody)
        parse_scope(body.scope)
        report = await self._ks().kill(
            body.scope,
            reason=body.reason,
            source=body.source,
            actor=self._actor(request, body.actor),
            flatten=body.flatten,
        )
        return JSONResponse(report.to_dict())

    async def rearm(self, request: Request) -> JSONResponse:
        body: RearmBody = await self._body(request, RearmBody)
        parse_scope(body.scope)
        result = await self._ks().rearm(
            body.scope,
            reason=body.reason,
            source=body.source,
            actor=self._actor(request, body.actor),
            state=TradingState(body.state),
        )
        return JSONResponse(result)

    async def bot(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        action = request.path_params["action"]
        if action not in ("pause", "resume"):
            return _error(404, f"unknown bot action {action!r}: use pause or resume")
        bots = self.desk.services.get("bots") or {}
        bot = bots.get(name)
        if bot is None:
            return _error(404, f"no bot named {name!r} (known: {', '.join(sorted(bots)) or 'none'})")
        result = getattr(bot, action)()
        if hasattr(result, "__await__"):
            await result
        return JSONResponse({"bot": name, "action": action, "status": _safe_status(bot)})

    async def cancel_all(self, request: Request) -> JSONResponse:
        body: CancelAllBody = await self._body(request, CancelAllBody)
        venues = self.desk.router.venues
        names = [body.venue] if body.venue else list(venues)
        out: list[dict[str, Any]] = []
        for name in names:
            venue = venues.get(name)
            if venue is None:
                return _error(400, f"no venue named {name!r}")
            if not venue.connected:
                out.append({"venue": name, "error": "venue disconnected"})
                continue
            for r in await venue.cancel_all(owner=body.owner, symbol=body.symbol):
                out.append(
                    {
                        "venue": r.venue,
                        "symbol": r.symbol,
                        "client_id": r.client_id,
                        "owner": r.owner,
                        "confirmed": r.confirmed,
                        "reason": r.reason,
                    }
                )
        return JSONResponse({"symbol": body.symbol, "canceled": out})


class _BadRequest(Exception):
    pass


def _safe_status(bot: Any) -> Any:
    try:
        return bot.status()
    except Exception as exc:
        return {"error": str(exc)}


class _AuthMiddleware:
    """Pure ASGI middleware: the token check runs before any endpoint; bad input becomes a 400."""

    def __init__(self, app: Any, api: ControlApi) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for k, v in scope.get("headers", ()):
            if k == b"authorization":
                header = v.decode("latin-1")
        refusal = self.api.authorise(header)
        if refusal is not None:
            await _error(401, refusal)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except (_BadRequest, ScopeError, ValueError) as exc:
            await _error(400, str(exc))(scope, receive, send)
        except LookupError as exc:
            await _error(404, str(exc))(scope, receive, send)
