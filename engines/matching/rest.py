"""REST API of the matching engine: a Starlette app served by uvicorn inside the desk's event loop.

Endpoints (all JSON; prices and quantities are decimal strings, converted to ticks/lots with the
instrument, and an off-grid value is a 422 naming the field):

==========  ==========================================  ========================================
method      path                                        what
==========  ==========================================  ========================================
POST        /v1/orders                                  submit (token)
GET         /v1/orders?owner=&symbol=                   open orders (by owner)
GET         /v1/orders/{symbol}/{order_id}              query an order
DELETE      /v1/orders/{symbol}/{order_id}?owner=       cancel (token)
PUT         /v1/orders/{symbol}/{order_id}              cancel/replace (token)
GET/DELETE/PUT /v1/orders/{symbol}/by-client/{client_id}  the same by the owner's client id
GET         /v1/depth/{symbol}?levels=                  L2 depth
GET         /v1/trades/{symbol}?limit=                  recent trades
GET         /v1/stats, /v1/stats/{symbol}               statistics
GET         /v1/health                                  liveness and engine status
GET         /openapi.json                               the OpenAPI 3.1 document
==========  ==========================================  ========================================

Handlers are ``async def`` on purpose: Starlette runs plain ``def`` endpoints in a thread pool, and
the engine is single-threaded (it lives on the desk's loop). Every handler is one synchronous engine
call between parsing and rendering.

Errors have one shape: ``{"error": <code>, "detail": [{"field": <name>, "message": <text>}]}``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engines.events import jsonable
from engines.httpserver import InLoopHttpServer
from engines.instruments import Instrument, OffGridError
from engines.matching.apitoken import check_bearer
from engines.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from engines.venue import OrderRouter

log = logging.getLogger(__name__)

API_VERSION = "1.0"

# --- payload models -----------------------------------------------------------------------------------

_DECIMAL = StringConstraints(pattern=r"^[0-9]{1,20}(\.[0-9]{1,18})?$")
PriceStr = Annotated[
    str, _DECIMAL, Field(description="price as a decimal string, on the tick grid", examples=["65000.5"])
]
QtyStr = Annotated[str, _DECIMAL, Field(description="quantity as a decimal string, on the lot grid", examples=["0.01"])]
OwnerStr = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"),
    Field(description="who the order belongs to: letters, digits and _ . : @ -, at most 64", examples=["alice"]),
]
ClientIdStr = Annotated[str, StringConstraints(pattern=r"^[!-~]{0,64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewOrder(Strict):
    """An order to submit. Limit orders need ``price``; market orders must not have one."""

    symbol: str = Field(examples=["BTC-USD"])
    side: Side
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    price: PriceStr | None = None
    qty: QtyStr
    post_only: bool = False
    client_id: ClientIdStr = Field(default="", description="the owner's own id for the order (unique per owner)")
    owner: OwnerStr


class ReplaceOrder(Strict):
    """Cancel/replace: quantity down keeps time priority; a price change or quantity up loses it."""

    owner: OwnerStr
    new_client_id: ClientIdStr = ""
    price: PriceStr | None = Field(default=None, description="new limit price; omit to keep the price")
    qty: QtyStr = Field(description="new open (leaves) quantity")


class OwnerQuery(Strict):
    owner: OwnerStr


class OptionalOwnerQuery(Strict):
    owner: OwnerStr | None = None


class OpenOrdersQuery(Strict):
    owner: OwnerStr | None = None
    symbol: str | None = None


class DepthQuery(Strict):
    levels: int = Field(default=10, ge=1, le=1000)


class TradesQuery(Strict):
    limit: int = Field(default=100, ge=1, le=10_000)


class OrderAck(BaseModel):
    """The engine's answer to a submit or replace."""

    symbol: str
    order_id: int | None
    client_id: str
    owner: str
    status: OrderStatus
    reason: str = ""
    source: Literal["venue", "risk"] | None = Field(default=None, description="who rejected it, if rejected")
    filled_qty: str
    leaves_qty: str


class LifecycleStep(BaseModel):
    status: str
    reason: str = ""


class OrderInfo(BaseModel):
    symbol: str
    order_id: int
    client_id: str
    owner: str
    side: Side
    type: OrderType | None = None
    tif: TimeInForce | None = None
    price: str | None
    qty: str | None = Field(default=None, description="original quantity")
    filled_qty: str
    leaves_qty: str
    status: OrderStatus
    reason: str = ""
    lifecycle: list[LifecycleStep] = Field(default_factory=list, description="status transitions, oldest first")


class OpenOrderOut(BaseModel):
    symbol: str
    order_id: int
    client_id: str
    owner: str
    side: Side
    price: str | None
    leaves_qty: str
    filled_qty: str


class OpenOrders(BaseModel):
    orders: list[OpenOrderOut]


class DepthOut(BaseModel):
    symbol: str
    bids: list[tuple[str, str]] = Field(description="[price, qty] best first")
    asks: list[tuple[str, str]]


class TradeOut(BaseModel):
    trade_id: int
    price: str
    qty: str
    aggressor: Side
    ts: int = Field(description="nanoseconds since the epoch (desk clock)")


class TradesOut(BaseModel):
    symbol: str
    trades: list[TradeOut] = Field(description="oldest first")


class StatsOut(BaseModel):
    """Per-symbol statistics. Prices and quantities as decimal strings; engine extras pass through."""

    model_config = ConfigDict(extra="allow")
    symbol: str
    trade_count: int = 0
    volume: str = Field(default="0", description="traded quantity, base units")
    notional: str = Field(default="0", description="traded value, quote currency")
    orders: int = Field(default=0, description="accepted orders")
    orders_per_s: float = 0.0
    open_orders: int = 0
    last_price: str | None = None
    bid_px: str | None = None
    bid_qty: str = "0"
    ask_px: str | None = None
    ask_qty: str = "0"


class AllStatsOut(BaseModel):
    symbols: dict[str, StatsOut]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    symbols: list[str]
    engine: dict[str, Any]


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: str
    detail: list[ErrorItem]


# --- errors -------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, error: str, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "detail": [{"field": field, "message": message}]}


def _validation_error(exc: ValidationError, where: str) -> JSONResponse:
    detail = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or where
        detail.append({"field": loc, "message": err["msg"]})
    return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)


MAX_BODY = 16 * 1024  # an order is a few hundred bytes; refuse to buffer anything much bigger


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "too_large", "body", f"request body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "too_large", "body", f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --- routes as data: one table drives both the Starlette router and the OpenAPI document ----------------

Handler = Callable[..., Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    handler: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: tuple[tuple[int, type[BaseModel] | None, str], ...] = ()
    auth: bool = False


_SYMBOL = {"name": "symbol", "in": "path", "required": True, "schema": {"type": "string"}}
_ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}

_ERR = ((404, ErrorOut, "unknown symbol or order"), (422, ErrorOut, "invalid input; detail names the field"))
_AUTH_ERR = (
    (401, ErrorOut, "missing or wrong bearer token"),
    (503, ErrorOut, "the journal could not commit: the operation is not acknowledged"),
)
_ORDER_REF = {"{order_id:int}": "order_id", "by-client/{client_id:str}": "client_id"}

OPS: tuple[Op, ...] = (
    Op(
        "POST",
        "/v1/orders",
        "Submit an order",
        "submit",
        body=NewOrder,
        responses=(
            (201, OrderAck, "accepted (status new, partially_filled, filled; or expired/canceled for IOC/FOK)"),
            (400, OrderAck, "rejected by the venue (status rejected, reason)"),
            (403, OrderAck, "refused by the desk's pre-trade risk gate (status rejected, reason)"),
            (422, ErrorOut, "invalid input (including an off-grid price or quantity); detail names the field"),
            (413, ErrorOut, "request body too large"),
            *_AUTH_ERR,
        ),
        auth=True,
    ),
    Op("GET", "/v1/orders", "Open orders, by owner and/or symbol", "open_orders", query=OpenOrdersQuery,
       responses=((200, OpenOrders, "resting orders"), (422, ErrorOut, "invalid query"))),
    *(
        op
        for ref in _ORDER_REF
        for op in (
            Op("GET", f"/v1/orders/{{symbol}}/{ref}", "Query an order", "get_order", query=OptionalOwnerQuery,
               responses=((200, OrderInfo, "the order"), *_ERR)),
            Op("DELETE", f"/v1/orders/{{symbol}}/{ref}", "Cancel an order", "cancel", query=OwnerQuery,
               responses=((200, OrderInfo, "canceled; the order's final state"),
                          (409, ErrorOut, "the order is no longer open"), *_ERR, *_AUTH_ERR),
               auth=True),
            Op("PUT", f"/v1/orders/{{symbol}}/{ref}", "Cancel/replace an order", "replace", body=ReplaceOrder,
               responses=((200, OrderAck, "replaced"), (400, OrderAck, "rejected by the venue"),
                          (403, ErrorOut, "refused by the pre-trade risk gate"),
                          (409, ErrorOut, "the order is no longer open"), (413, ErrorOut, "request body too large"),
                          *_ERR, *_AUTH_ERR),
               auth=True),
        )
    ),
    Op("GET", "/v1/depth/{symbol}", "L2 depth", "depth", query=DepthQuery, responses=((200, DepthOut, "depth"), *_ERR)),
    Op("GET", "/v1/trades/{symbol}", "Recent trades", "trades", query=TradesQuery,
       responses=((200, TradesOut, "recent trades"), *_ERR)),
    Op("GET", "/v1/stats", "Statistics of every symbol", "all_stats", responses=((200, AllStatsOut, "stats"),)),
    Op("GET", "/v1/stats/{symbol}", "Statistics of one symbol", "stats", responses=((200, StatsOut, "stats"), *_ERR)),
    Op("GET", "/v1/health", "Health", "health", responses=((200, HealthOut, "healthy"), (503, HealthOut, "degraded"))),
)


def openapi_document(ops: tuple[Op, ...] = OPS, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with component schemas generated by pydantic from the payload models."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    for op in ops:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.query is not None:
            models.append((op.query, "validation"))
        for _, model, _ in op.responses:
            if model is not None:
                models.append((model, "serialization"))
    keys, defs = models_json_schema(list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        path = op.path.replace(":int}", "}").replace(":str}", "}")
        params: list[dict[str, Any]] = []
        if "{symbol}" in path:
            params.append(_SYMBOL)
        if "{order_id}" in path:
            params.append(_ORDER_ID)
        if "{client_id}" in path:
            params.append(_CLIENT_ID)
        if op.query is not None:
            qs = schemas.get(op.query.__name__, {})
            required = set(qs.get("required", []))
            for name, prop in qs.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.handler}_{op.method.lower()}" + ("_by_client" if "{client_id}" in path else ""),
            "responses": {},
        }
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keys[(op.body, "validation")]}},
            }
        for status, model, desc in op.responses:
            resp: dict[str, Any] = {"description": desc}
            if model is not None:
                resp["content"] = {"application/json": {"schema": keys[(model, "serialization")]}}
            entry["responses"][str(status)] = resp
        if op.auth:
            entry["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[op.method.lower()] = entry
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "opdesk matching engine",
            "version": API_VERSION,
            "description": "Order entry (bearer token) and market data of the desk's own venue. Prices and "
            "quantities are decimal strings on the instrument's tick and lot grid.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


# --- the app ------------------------------------------------------------------------------------------


def _px(inst: Instrument, ticks: int | None) -> str | None:
    return None if ticks is None else f"{inst.price(ticks).normalize():f}"


def _qty(inst: Instrument, lots: int) -> str:
    return f"{inst.qty(lots).normalize():f}"


class RestApi:
    """The Starlette application over one matching engine."""

    def __init__(
        self,
        engine: Any,
        router: OrderRouter,
        instruments: dict[str, Instrument],
        token: SecretStr,
        *,
        venue: str = "sim",
        durable_ack: bool = True,
    ) -> None:
        self.engine = engine
        self.durable_ack = durable_ack
        self.router = router
        self.instruments = instruments
        self.token = token
        self.venue = venue
        self.requests = 0
        self.rejected_auth = 0
        self._openapi: bytes | None = None
        routes = [Route("/openapi.json", self._openapi_endpoint, methods=["GET"])]
        by_path: dict[str, dict[str, Op]] = {}
        for op in OPS:
            by_path.setdefault(op.path, {})[op.method] = op
        for path, methods in by_path.items():
            routes.append(Route(path, self._dispatcher(methods), methods=list(methods)))
        self.app = Starlette(routes=routes)

    # --- plumbing -------------------------------------------------------------------------------------
    def _dispatcher(self, methods: dict[str, Op]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            op = methods[request.method]
            self.requests += 1
            try:
                if op.auth:
                    why = check_bearer(request.headers.get("authorization"), self.token)
                    if why is not None:
                        self.rejected_auth += 1
                        return JSONResponse(
                            {"error": "unauthorized", "detail": [{"field": "authorization", "message": why}]},
                            status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="opdesk-matching"'},
                        )
                kwargs: dict[str, Any] = dict(request.path_params)
                if op.query is not None:
                    try:
                        kwargs["q"] = op.query.model_validate(dict(request.query_params))
                    except ValidationError as exc:
                        return _validation_error(exc, "query")
                if op.body is not None:
                    raw = await _read_body(request)
                    try:
                        kwargs["body"] = op.body.model_validate_json(raw)
                    except ValidationError as exc:
                        return _validation_error(exc, "body")
                result = getattr(self, "h_" + op.handler)(**kwargs)
                if inspect.isawaitable(result):
                    result = await result
                status, payload = result
                return JSONResponse(payload, status_code=status)
            except ApiError as exc:
                return JSONResponse(exc.body, status_code=exc.status)

        return endpoint

    async def _openapi_endpoint(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = json.dumps(openapi_document(), separators=(",", ":")).encode()
        return Response(self._openapi, media_type="application/json")

    def _inst(self, symbol: str, field: str = "symbol", status: int = 404) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None or symbol not in self.engine.symbols:
            raise ApiError(status, "unknown_symbol", field, f"unknown symbol {symbol!r}")
        return inst

    @staticmethod
    def _ticks(inst: Instrument, value: str, field: str) -> int:
        try:
            ticks = inst.to_ticks(Decimal(value))
        except OffGridError as exc:
            raise ApiError(422, "off_grid", field, str(exc)) from None
        if ticks <= 0:
            raise ApiError(422, "invalid_request", field, "must be greater than zero")
        return ticks

    @staticmethod
    def _lots(inst: Instrument, value: str, field: str) -> int:
        try:
            lots = inst.to_lots(Decimal(value))
        except OffGridError as exc:
            raise ApiError(422, "off_grid", field, str(exc)) from None
        if lots <= 0:
            raise ApiError(422, "invalid_request", field, "must be greater than zero")
        return lots

    def _ack(self, inst: Instrument, res: Any, client_id: str, owner: str, source: str | None = None) -> dict:
        return OrderAck(
            symbol=inst.symbol,
            order_id=res.order_id,
            client_id=client_id,
            owner=owner,
            status=res.status,
            reason=res.reason,
            source=source,  # type: ignore[arg-type]
            filled_qty=_qty(inst, res.filled_qty),
            leaves_qty=_qty(inst, res.leaves_qty),
        ).model_dump(mode="json")

    def _order_json(self, inst: Instrument, view: Any) -> dict[str, Any]:
        return order_view_json(inst, view)

    def _find(self, symbol: str, order_id: int | None, client_id: str | None, owner: str | None) -> tuple[Instrument, Any]:
        inst = self._inst(symbol)
        if client_id is not None and owner is None:
            raise ApiError(422, "invalid_request", "owner", "owner is required to look an order up by client id")
        view = self.engine.order(symbol, owner=owner, client_id=client_id, order_id=order_id)
        if view is None:
            field = "order_id" if order_id is not None else "client_id"
            raise ApiError(404, "unknown_order", field, f"no order {order_id or client_id!r} on {symbol}")
        return inst, view

    async def _durable(self, what: str) -> None:
        """Acknowledge only what the engine's journal holds (``engine.flush()``: returns once every
        operation before it is committed). A journal that cannot write is a 503: the operation took
        effect in memory but is not durable, and the client must not take it as acknowledged."""
        flush = getattr(self.engine, "flush", None)
        if flush is None or not self.durable_ack:
            return
        try:
            result = flush()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # JournalError, or the journal's own I/O error
            log.error("matching journal flush failed after %s: %s", what, exc)
            raise ApiError(503, "not_durable", "journal", f"{what} done but not journaled: {exc}") from None

    # --- handlers ---------------------------------------------------------------------------------------
    async def h_submit(self, body: NewOrder) -> tuple[int, Any]:
        inst = self._inst(body.symbol, status=422)
        if body.type is OrderType.LIMIT and body.price is None:
            raise ApiError(422, "invalid_request", "price", "price is required for limit orders")
        if body.type is OrderType.MARKET and body.price is not None:
            raise ApiError(422, "invalid_request", "price", "market orders take no price")
        price = None if body.price is None else self._ticks(inst, body.price, "price")
        qty = self._lots(inst, body.qty, "qty")
        req = OrderRequest(
            symbol=body.symbol,
            side=body.side,
            qty=qty,
            price=price,
            type=body.type,
            tif=body.tif,
            post_only=body.post_only,
            client_id=body.client_id,
            owner=body.owner,
            venue=self.venue,
        )
        reason = self.router.check(req)  # the desk's pre-trade gate; publishes the refusal
        if reason is not None:
            ack = {
                "symbol": inst.symbol, "order_id": None, "client_id": body.client_id, "owner": body.owner,
                "status": OrderStatus.REJECTED.value, "reason": reason, "source": "risk",
                "filled_qty": "0", "leaves_qty": "0",
            }
            return 403, ack
        res = self.engine.submit(req)
        await self._durable(f"order {res.order_id}")
        if res.status is OrderStatus.REJECTED:
            return 400, self._ack(inst, res, body.client_id, body.owner, "venue")
        return 201, self._ack(inst, res, body.client_id, body.owner)

    async def h_open_orders(self, q: OpenOrdersQuery) -> tuple[int, Any]:
        if q.symbol is not None:
            self._inst(q.symbol, status=422)
        out = []
        for o in self.engine.open_orders(owner=q.owner, symbol=q.symbol):
            inst = self.instruments[o.symbol]
            out.append(
                {
                    "symbol": o.symbol, "order_id": o.order_id, "client_id": o.client_id, "owner": o.owner,
                    "side": o.side.value, "price": _px(inst, o.price), "leaves_qty": _qty(inst, o.qty),
                    "filled_qty": _qty(inst, o.filled_qty),
                }
            )
        return 200, {"orders": out}

    async def h_get_order(
        self, symbol: str, q: OptionalOwnerQuery, order_id: int | None = None, client_id: str | None = None
    ) -> tuple[int, Any]:
        inst, view = self._find(symbol, order_id, client_id, q.owner)
        return 200, self._order_json(inst, view)

    async def h_cancel(
        self, symbol: str, q: OwnerQuery, order_id: int | None = None, client_id: str | None = None
    ) -> tuple[int, Any]:
        inst, view = self._find(symbol, order_id, client_id, q.owner)
        ok = self.engine.cancel(
            symbol, owner=q.owner, order_id=view.order_id, reason="rest cancel"
        )
        await self._durable(f"cancel of order {view.order_id}")
        after = self.engine.order(symbol, owner=q.owner, order_id=view.order_id)
        if not ok:
            status = getattr(after or view, "status", "unknown")
            raise ApiError(409, "not_open", "order_id", f"order {view.order_id} is {status}, not open")
        if after is None:  # the engine no longer keeps it: report the cancel from what we saw
            out = self._order_json(inst, view)
            out.update(status=OrderStatus.CANCELED.value, leaves_qty="0")
            return 200, out
        return 200, self._order_json(inst, after)

    async def h_replace(
        self, symbol: str, body: ReplaceOrder, order_id: int | None = None, client_id: str | None = None
    ) -> tuple[int, Any]:
        inst, view = self._find(symbol, order_id, client_id, body.owner)
        if not OrderStatus(view.status).is_open:
            raise ApiError(409, "not_open", "order_id", f"order {view.order_id} is {view.status}, not open")
        price = None if body.price is None else self._ticks(inst, body.price, "price")
        qty = self._lots(inst, body.qty, "qty")
        old_price = getattr(view, "price", None)
        old_leaves = getattr(view, "leaves_qty", None)
        # Taking risk off (same price, less quantity) always passes; anything else asks the gate.
        if (price is not None and price != old_price) or old_leaves is None or qty > old_leaves:
            req = OrderRequest(
                symbol=symbol, side=view.side, qty=qty, price=price if price is not None else old_price,
                client_id=body.new_client_id, owner=body.owner, venue=self.venue,
            )
            reason = self.router.gate.check(req)
            if reason is not None:
                raise ApiError(403, "risk_refused", "order", reason)
        res = self.engine.replace(
            symbol, owner=body.owner, order_id=view.order_id, new_client_id=body.new_client_id,
            price=price, qty=qty,
        )
        await self._durable(f"replace of order {view.order_id}")
        if res.status is OrderStatus.REJECTED:
            return 400, self._ack(inst, res, body.new_client_id, body.owner, "venue")
        return 200, self._ack(inst, res, body.new_client_id, body.owner)

    async def h_depth(self, symbol: str, q: DepthQuery) -> tuple[int, Any]:
        inst = self._inst(symbol)
        bids, asks = self.engine.depth(symbol, q.levels)
        return 200, {
            "symbol": symbol,
            "bids": [[_px(inst, p), _qty(inst, n)] for p, n in bids],
            "asks": [[_px(inst, p), _qty(inst, n)] for p, n in asks],
        }

    async def h_trades(self, symbol: str, q: TradesQuery) -> tuple[int, Any]:
        inst = self._inst(symbol)
        trades = sorted(self.engine.recent_trades(symbol, q.limit), key=lambda t: t.trade_id)
        return 200, {
            "symbol": symbol,
            "trades": [
                {"trade_id": t.trade_id, "price": _px(inst, t.price), "qty": _qty(inst, t.qty),
                 "aggressor": t.aggressor.value, "ts": t.ts}
                for t in trades
            ],
        }

    def _stats(self, symbol: str) -> dict[str, Any]:
        inst = self.instruments[symbol]
        raw = dict(self.engine.stats(symbol))
        out: dict[str, Any] = {"symbol": symbol}
        # The engine reports ticks and lots; the edge speaks decimal strings.
        for key in ("last_price", "bid_px", "ask_px"):
            if key in raw:
                out[key] = _px(inst, raw.pop(key))
        for key in ("bid_qty", "ask_qty"):
            if key in raw:
                out[key] = _qty(inst, raw.pop(key))
        if "volume_lots" in raw:
            out["volume"] = _qty(inst, raw.pop("volume_lots"))
            raw.pop("volume", None)
        if "notional" in raw:
            out["notional"] = f"{Decimal(str(raw.pop('notional'))).normalize():f}"
        out.update(jsonable(raw))
        return out

    async def h_stats(self, symbol: str) -> tuple[int, Any]:
        self._inst(symbol)
        return 200, self._stats(symbol)

    async def h_all_stats(self) -> tuple[int, Any]:
        return 200, {"symbols": {s: self._stats(s) for s in self.engine.symbols}}

    async def h_health(self) -> tuple[int, Any]:
        status_fn = getattr(self.engine, "status", None)
        engine_status = jsonable(status_fn()) if callable(status_fn) else {}
        degraded = engine_status.get("state") in ("degraded", "failed", "stopped")
        body = {"status": "degraded" if degraded else "ok", "symbols": list(self.engine.symbols), "engine": engine_status}
        return (503 if degraded else 200), body


def order_view_json(inst: Instrument, view: Any) -> dict[str, Any]:
    """An engine ``OrderView`` as the API shows it (ticks/lots → decimal strings)."""
    g = getattr
    qty = g(view, "qty", None)
    lifecycle = []
    for step in g(view, "lifecycle", ()) or ():
        if isinstance(step, tuple | list) and len(step) == 2:  # the engine's (status, reason)
            lifecycle.append({"status": str(step[0]), "reason": str(step[1])})
        else:
            lifecycle.append(jsonable(step))
    return OrderInfo(
        symbol=inst.symbol,
        order_id=view.order_id,
        client_id=g(view, "client_id", ""),
        owner=g(view, "owner", ""),
        side=view.side,
        type=g(view, "type", None),
        tif=g(view, "tif", None),
        price=_px(inst, g(view, "price", None)),
        qty=None if qty is None else _qty(inst, qty),
        filled_qty=_qty(inst, g(view, "filled_qty", 0)),
        leaves_qty=_qty(inst, g(view, "leaves_qty", 0)),
        status=view.status,
        reason=g(view, "reason", "") or "",
        lifecycle=lifecycle,
    ).model_dump(mode="json")


# --- the server: uvicorn in the desk's loop -----------------------------------------------------------


class RestServer:
    """The REST API as a desk engine (name ``matching-rest``). ``port`` is the bound port once started."""

    name = "matching-rest"

    def __init__(self, api: RestApi, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        self.host = host
        self.port = port
        self._http = InLoopHttpServer(api.app, host=host, port=port, name="matching-rest")

    @property
    def url(self) -> str:
        return self._http.url

    async def start(self) -> None:
        await self._http.start()
        self.port = self._http.port
        log.info("matching REST API on %s", self.url)

    async def stop(self) -> None:
        await self._http.stop()

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "requests": self.api.requests, "unauthorized": self.api.rejected_auth}
