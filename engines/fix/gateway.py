"""The FIX gateway: acceptor sessions trade on the desk's matching engine.

Every order goes the desk's one way: :meth:`engines.venue.OrderRouter.submit` (the pre-trade risk gate,
then the venue), with ``owner="fix:<SenderCompID>"`` of the client. Outcomes come back as the desk's
bus events — the gateway subscribes to the order-lifecycle events of its owners and answers each with
the FIX message a client expects:

==============================  ===========================================================================
bus event                       FIX
==============================  ===========================================================================
``OrderAccepted``               ExecutionReport 150=0 39=0 (New)
``Fill``                        ExecutionReport 150=F (4.4) or 150=1/2 (4.2), 39=1/2, LastPx/LastQty
``OrderCanceled``               ExecutionReport 150=4 39=4 (Canceled) or 150=C 39=C (Expired: IOC/FOK/market)
``OrderReplaced``               ExecutionReport 150=5, 39 = the order's status
``OrderRejected``               ExecutionReport 150=8 39=8 with OrdRejReason (103) and the reason in 58
``CancelRejected``              OrderCancelReject (35=9), 434 = what was refused
==============================  ===========================================================================

The kill switch's cancels reach clients the same way (unsolicited ExecutionReports 150=4). Quantities
and prices travel as decimal strings and are converted with the instrument; a price or quantity off the
instrument's grid is rejected with the reason. MarketDataRequest (35=V) gets a snapshot (W) from the
matching engine and, when subscribed, incremental refreshes (X) from the bus's Depth and Trade events,
coalesced per event-loop turn. Unsupported application messages get a BusinessMessageReject (380=3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from engines.bus import Bus, Subscription
from engines.clock import Clock, SystemClock
from engines.fix.application import Application
from engines.fix.errors import (
    BusinessReject,
    FieldNotFound,
    IncorrectTagValue,
    SessionNotActive,
    UnsupportedMessageType,
)
from engines.fix.events import SessionState
from engines.fix.message import FixMessage, Message, utc_timestamp
from engines.instruments import Instrument, OffGridError
from engines.marketdata import Depth, Trade
from engines.orders import (
    CancelRejected,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from engines.venue import OrderRouter, UnknownVenue

if TYPE_CHECKING:
    from engines.fix.session import Session

log = logging.getLogger(__name__)

FIX42 = "FIX.4.2"

# OrdRejReason (103) values the gateway uses; 4.2 defines 0-6 only, so its "other" is 0 (broker option).
REJ_BROKER = "0"
REJ_UNKNOWN_SYMBOL = "1"
REJ_EXCEEDS_LIMIT = "3"
REJ_DUPLICATE = "6"
REJ_UNSUPPORTED = "11"  # 4.4
REJ_QTY = "13"  # 4.4
REJ_OTHER = "99"  # 4.4

_SIDES = {b"1": Side.BUY, b"2": Side.SELL}
_SIDE_CODE = {Side.BUY: "1", Side.SELL: "2"}
_TIF = {b"0": TimeInForce.GTC, b"1": TimeInForce.GTC, b"3": TimeInForce.IOC, b"4": TimeInForce.FOK}
_TIF_CODE = {TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
_STATUS_CODE = {
    OrderStatus.PENDING_NEW: "A",
    OrderStatus.NEW: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.FILLED: "2",
    OrderStatus.CANCELED: "4",
    OrderStatus.REJECTED: "8",
    OrderStatus.EXPIRED: "C",
}
_AVG_PLACES = Decimal("0.00000001")
#: OrderMassCancelReport: affected orders listed in its NoAffectedOrders group at most (533 has the total).
MASS_CANCEL_LISTED = 1_000
_STATUS_BYTES = {k: v.encode() for k, v in _STATUS_CODE.items()}
_SIDE_BYTES = {k: v.encode() for k, v in _SIDE_CODE.items()}
_TIF_BYTES = {k: v.encode() for k, v in _TIF_CODE.items()}
# A set lookup: ``OrderStatus.is_open`` costs a tuple of enum attribute lookups per call (per report here).
_OPEN_STATUSES = frozenset({OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
_EXEC_TYPE_BYTES = {c: c.encode() for c in ("0", "1", "2", "4", "5", "8", "C", "F", "I")}
# Enum members as module constants for the per-order paths (``OrderType.MARKET`` is a metaclass lookup,
# ~0.1 us each on the sandbox).
_LIMIT, _MARKET = OrderType.LIMIT, OrderType.MARKET
_GTC, _IOC = TimeInForce.GTC, TimeInForce.IOC
_NEW, _FILLED, _PARTIALLY_FILLED = OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED
_MAKER = Liquidity.MAKER
_ACTIVE = SessionState.ACTIVE  # checked after every report sent


class _OrderRequestDraft(OrderRequest):
    """OrderRequest's twin: no new slots (same layout) and plain attribute stores. The frozen dataclass's
    ``__init__`` writes each field through ``object.__setattr__`` (~2 µs per order here); a draft is
    filled with slot stores and then becomes an OrderRequest (``__class__`` assignment), the same
    immutable instance the dataclass would make. Never escapes :func:`_order_request`."""

    __slots__ = ()
    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__  # type: ignore[assignment]


def _order_request_fast(
    symbol: str,
    side: Side,
    qty: int,
    price: int | None,
    type: OrderType,
    tif: TimeInForce,
    post_only: bool,
    client_id: str,
    owner: str,
    venue: str,
) -> OrderRequest:
    r = object.__new__(_OrderRequestDraft)
    r.symbol = symbol
    r.side = side
    r.qty = qty
    r.price = price
    r.type = type
    r.tif = tif
    r.post_only = post_only
    r.reduce_only = False
    r.client_id = client_id
    r.owner = owner
    r.venue = venue
    r.__class__ = OrderRequest
    return r


def _order_request_slow(
    symbol: str,
    side: Side,
    qty: int,
    price: int | None,
    type: OrderType,
    tif: TimeInForce,
    post_only: bool,
    client_id: str,
    owner: str,
    venue: str,
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        type=type,
        tif=tif,
        post_only=post_only,
        client_id=client_id,
        owner=owner,
        venue=venue,
    )


def _pick_order_request() -> Callable[..., OrderRequest]:
    """The draft constructor if OrderRequest still has exactly the fields it sets and allows the class
    switch (checked once, against the dataclass's own result); else the dataclass constructor."""
    from dataclasses import fields

    names = ("symbol", "side", "qty", "price", "type", "tif", "post_only", "reduce_only", "client_id", "owner",
             "venue")  # fmt: skip
    if tuple(f.name for f in fields(OrderRequest)) != names:
        return _order_request_slow
    args = ("X", Side.SELL, 3, 7, OrderType.LIMIT, TimeInForce.IOC, True, "c", "o", "v")
    try:
        fast = _order_request_fast(*args)
    except TypeError:
        return _order_request_slow
    same = (
        type(fast) is OrderRequest
        and fast == _order_request_slow(*args)
        and hash(fast) == hash(_order_request_slow(*args))
    )
    return _order_request_fast if same else _order_request_slow


_order_request = _pick_order_request()


class Prebuilt(Message):
    """An outbound message whose body is already encoded (``tag=value<SOH>`` runs)."""

    __slots__ = ("_body",)

    def __init__(self, msg_type: str, body: bytes) -> None:
        # Message.__init__'s work done directly (one per report): no fields, the body is ready.
        self.msg_type = msg_type
        self.fields = []
        self._body = body

    def body(self) -> bytes:
        return self._body


_CACHE_CAP = 50_000  # distinct prices/quantities per instrument before a cache starts over


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """Store a computed text/number in a bounded cache and return it (a miss; hits never get here)."""
    if len(cache) > _CACHE_CAP:
        cache.clear()
    cache[key] = value
    return value


class _Formats:
    """Per-instrument texts of prices and quantities, cached (a book has few distinct ones)."""

    __slots__ = ("_lots_in", "_prices", "_qtys", "_ticks_in", "inst", "symbol")

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.symbol = inst.symbol.encode("latin-1")
        self._prices: dict[int, bytes] = {}
        self._qtys: dict[int, bytes] = {}
        self._lots_in: dict[bytes, int] = {}
        self._ticks_in: dict[bytes, int] = {}

    def price(self, ticks: int) -> bytes:
        b = self._prices.get(ticks)
        return b if b is not None else _remember(self._prices, ticks, _px(self.inst, ticks).encode())

    def qty(self, lots: int) -> bytes:
        b = self._qtys.get(lots)
        return b if b is not None else _remember(self._qtys, lots, _qty(self.inst, lots).encode())

    def lots(self, raw: bytes) -> int:
        """OrderQty text to lots; OrderProblem if not a positive whole number of lots."""
        lots = self._lots_in.get(raw)
        if lots is not None:
            return lots
        return _remember(
            self._lots_in, raw, _to_units(raw, 38, self.inst.to_lots, "quantity", REJ_QTY, self.inst)
        )

    def ticks(self, raw: bytes) -> int:
        """Price text to ticks; OrderProblem if not a positive whole number of ticks."""
        ticks = self._ticks_in.get(raw)
        if ticks is not None:
            return ticks
        return _remember(
            self._ticks_in, raw, _to_units(raw, 44, self.inst.to_ticks, "price", REJ_OTHER, self.inst)
        )

    def avg(self, notional: int, cum: int) -> bytes:
        if cum == 0:
            return b"0"
        if notional % cum == 0:
            return self.price(notional // cum)
        avg = (Decimal(notional) * self.inst.tick_size / cum).quantize(_AVG_PLACES)
        return f"{avg.normalize():f}".encode()


def _to_units(
    raw: bytes, tag: int, convert: Callable[[Decimal], int], what: str, code: str, inst: Instrument
) -> int:
    text = raw.decode("latin-1")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise IncorrectTagValue(tag, f"{tag}={text} is not a number") from None
    if not d.is_finite():
        raise IncorrectTagValue(tag, f"{tag}={text} is not a number")
    try:
        units = convert(d)
    except OffGridError as exc:
        raise OrderProblem(str(exc), code) from None
    if units <= 0:
        raise OrderProblem(f"{inst.symbol}: {what} {text} must be positive", code)
    return units


def _qty(inst: Instrument, lots: int) -> str:
    return f"{(lots * inst.lot_size).normalize():f}"


def _px(inst: Instrument, ticks: int) -> str:
    """A price in ticks as FIX decimal text without trailing zeros ("65001", "65000.5")."""
    return f"{(ticks * inst.tick_size).normalize():f}"


def _amount(value: float) -> bytes:
    """A float as a FIX AMT: fixed point, never exponent notation."""
    b = _AMOUNTS.get(value)
    if b is None:
        text = f"{value:.8f}".rstrip("0").rstrip(".")
        b = (text if text not in ("", "-0") else "0").encode()
        if len(_AMOUNTS) > 10_000:
            _AMOUNTS.clear()
        _AMOUNTS[value] = b
    return b


_AMOUNTS: dict[float, bytes] = {}  # fees repeat (same price and size): their texts, cached


class OrderProblem(Exception):
    """A NewOrderSingle the gateway refuses itself: answered with ExecutionReport 150=8."""

    def __init__(self, reason: str, code44: str, code42: str = REJ_BROKER) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code44 = code44
        self.code42 = code42


@dataclass(slots=True)
class GatewayOrder:
    """What the gateway knows of one client order (ticks and lots)."""

    owner: str
    cl_ord_id: str  # the current ClOrdID (changes on replace)
    symbol: str
    side: Side
    ord_type: OrderType
    tif: TimeInForce
    price: int | None
    qty: int  # total order quantity (OrderQty)
    order_id: int | None = None
    orig_cl_ord_id: str = ""  # the ClOrdID before the last replace
    cum: int = 0
    notional: int = 0  # sum of fill price (ticks) x fill qty (lots), for AvgPx
    status: OrderStatus = OrderStatus.PENDING_NEW
    # A cancel/replace request the venue has not answered yet: (msg type "F"/"G", ClOrdID, qty, price)
    pending: tuple[str, str, int, int | None] | None = None
    account: str = ""
    fixed: bytes | None = None  # encoded 1/55/54/38/40/44/59 for its reports (reset on replace)
    fixed_qty: int = 0

    @property
    def leaves(self) -> int:
        return max(0, self.qty - self.cum) if self.status in _OPEN_STATUSES else 0


@dataclass(slots=True)
class MDSubscription:
    req_id: str
    session: Session
    symbols: tuple[str, ...]
    depth: int  # levels per side; 0 = everything the engine keeps
    entry_types: frozenset[str]
    incremental: bool
    sent: dict[str, tuple[dict[int, int], dict[int, int]]] = field(default_factory=dict)


class Gateway(Application):
    """The acceptor-side application: orders and market data for FIX clients."""

    def __init__(
        self,
        *,
        bus: Bus,
        router: OrderRouter,
        instruments: dict[str, Instrument],
        venue: str = "sim",
        matching: Any = None,
        clock: Clock | None = None,
        depth_levels: int = 20,
    ) -> None:
        self.bus = bus
        self.router = router
        self.instruments = instruments
        self.venue = venue
        self.matching = matching  # the MatchingEngine (snapshots); optional
        self.clock: Clock = clock or SystemClock()
        self.depth_levels = depth_levels
        self.sessions: dict[str, Session] = {}  # owner -> session
        self.orders: dict[tuple[str, str], GatewayOrder] = {}  # (owner, ClOrdID) -> open order
        self.by_id: dict[int, GatewayOrder] = {}
        self.md_subs: dict[tuple[str, str], MDSubscription] = {}  # (owner, MDReqID) -> subscription
        self._md_by_symbol: dict[str, list[MDSubscription]] = {}
        self._md_dirty: set[str] = set()
        self._md_trades: dict[str, list[Trade]] = {}
        self._md_last: dict[str, Depth] = {}
        self._md_scheduled = False
        self._exec_seq = 0
        # ExecIDs must not repeat across restarts: a client dedupes on them, and a restarted desk's
        # gateway may replay the previous life's reports (ResendRequest). Microseconds, not seconds: a
        # desk killed and restarted within a second reused its predecessor's ExecIDs.
        self._exec_prefix = f"{self.clock.time_ns() // 1_000:x}-"
        self._exec_prefix_b = self._exec_prefix.encode()
        self._formats: dict[str, _Formats] = {}
        self.counts = {
            "orders": 0, "rejects": 0, "fills": 0, "cancels": 0, "replaces": 0, "dropped": 0, "errors": 0,
            "adopted": 0, "possdup_ignored": 0, "stored": 0, "mass_cancels": 0,
        }  # fmt: skip
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: list[tuple[Session | None, Message]] = []
        # Per session (its SessionID never changes): (owner, FIX 4.2?) — the owner's f-string and the
        # BeginString compare through the session_id property were per order and per report.
        self._clients: dict[Session, tuple[str, bool]] = {}
        self._releaser: asyncio.Task[None] | None = None
        self._subs: list[Subscription] = []
        handlers: list[tuple[type, Callable[[Any], None]]] = [
            (OrderAccepted, self._on_accepted),
            (OrderRejected, self._on_rejected),
            (Fill, self._on_fill),
            (OrderCanceled, self._on_canceled),
            (OrderReplaced, self._on_replaced),
            (CancelRejected, self._on_cancel_rejected),
            (Depth, self._on_depth),
            (Trade, self._on_trade),
        ]
        for etype, handler in handlers:
            self._subs.append(bus.subscribe(etype, handler))

    def close(self) -> None:
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()
        for task in [*self._tasks, *([self._releaser] if self._releaser is not None else [])]:
            task.cancel()

    # --- sessions -----------------------------------------------------------------------------------
    @staticmethod
    def owner_of(session: Session) -> str:
        return f"fix:{session.session_id.target_comp_id}"

    def _client(self, session: Session) -> tuple[str, bool]:
        """``(owner, v42)`` of a session, remembered (a handful of sessions; bounded all the same)."""
        c = self._clients.get(session)
        if c is None:
            if len(self._clients) >= 1024:
                self._clients.clear()
            c = self._clients[session] = (self.owner_of(session), session.session_id.begin_string == FIX42)
        return c

    def on_create(self, session: Session) -> None:
        self.sessions[self.owner_of(session)] = session

    def on_logon(self, session: Session) -> None:
        self.sessions[self.owner_of(session)] = session

    def on_logout(self, session: Session) -> None:
        owner = self.owner_of(session)
        for key in [k for k, s in self.md_subs.items() if k[0] == owner]:
            self._drop_md(self.md_subs[key])

    def from_app(self, msg: FixMessage, session: Session) -> Any:
        # Parsing happens here, so a malformed message is answered by the session (Reject 35=3); the
        # routing runs in a task per operation. Why tasks: the matching venue acknowledges only journaled
        # orders (it awaits the journal's commit), and awaiting that here would hold the session's
        # reader for a commit per order. Tasks start in creation order and do their synchronous part
        # (gate, book) before their first await, so a client's operations still apply in order.
        t = msg.msg_type
        op: Coroutine[Any, Any, None] | None
        if t == "D":
            op = self._new_order(msg, session)
        elif t == "F":
            cl, orig = self._required(msg, 11).decode("latin-1"), self._required(msg, 41).decode("latin-1")
            op = self._cancel(msg, session, cl, orig)
        elif t == "G":
            cl, orig = self._required(msg, 11).decode("latin-1"), self._required(msg, 41).decode("latin-1")
            self._required(msg, 38)
            op = self._replace(msg, session, cl, orig)
        elif t == "V":
            self._md_request(msg, session)
            return None
        elif t == "H":
            # Status requests queue behind the orders before them (their reports are held the same way).
            op = self._order_status(msg, session, self._required(msg, 11).decode("latin-1"))
        elif t == "AF" and session.session_id.begin_string != FIX42:
            op = self._mass_status(msg, session, self._mass_status_query(msg))
        elif t == "q" and session.session_id.begin_string != FIX42:
            op = self._mass_cancel(session, self._mass_cancel_query(msg))
        else:
            raise UnsupportedMessageType(t)
        if op is None:
            return None
        if getattr(self.matching, "journal", None) is None and not self._tasks:
            return op  # nothing to wait for: the session awaits it in line (cheaper than a task)
        self._spawn(op)
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.counts["errors"] += 1
            log.error("fix gateway: order operation failed", exc_info=task.exception())

    def _send(self, session: Session | None, msg: Message) -> None:
        """Send an order answer; with a journaled engine, only once what it reports is committed."""
        if getattr(self.matching, "journal", None) is None:
            self._send_now(session, msg)
            return
        self._held.append((session, msg))
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.get_running_loop().create_task(self._release())

    async def _release(self) -> None:
        # One journal flush covers every report held before it started (group commit).
        held = self._held
        while held:
            mark = len(held)
            try:
                await self.matching.flush()
            except Exception:
                # The journal cannot commit (the engine reports itself degraded): what it would confirm
                # is not durable, so it is not confirmed. Clients see no report; operators see this.
                self.counts["errors"] += 1
                log.exception("fix gateway: matching journal flush failed, %d reports withheld", mark)
                del held[:mark]
                continue
            batch = held[:mark]
            del held[:mark]
            for session, msg in batch:
                self._send_now(session, msg)

    def _send_now(self, session: Session | None, msg: Message) -> None:
        if session is None:
            self.counts["dropped"] += 1
            return
        try:
            session.send_nowait(msg)
        except SessionNotActive:
            # Only a session without store-and-forward (SessionSettings.store_offline off) refuses.
            self.counts["dropped"] += 1
            log.warning("fix gateway: %s not logged on, %s dropped", session.session_id, msg.msg_type)
            return
        if session.state is not _ACTIVE:
            # The client is away: as with QuickFIX the report took the session's next MsgSeqNum and is in
            # its store; the client's ResendRequest after its next Logon replays it (PossDup).
            self.counts["stored"] += 1

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for running order operations and held reports (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._tasks or self._held:
                waits = [*self._tasks, *([self._releaser] if self._releaser is not None else [])]
                await asyncio.gather(*waits, return_exceptions=True)

    # --- conversions --------------------------------------------------------------------------------
    def _instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise OrderProblem(f"unknown symbol {symbol}", REJ_UNKNOWN_SYMBOL, REJ_UNKNOWN_SYMBOL)
        return inst

    @staticmethod
    def _required(msg: FixMessage, tag: int) -> bytes:
        v = msg.get(tag)
        if v is None or v == b"":
            raise FieldNotFound(tag)
        return v

    # --- orders -------------------------------------------------------------------------------------
    def _new_order(self, msg: FixMessage, session: Session) -> Coroutine[Any, Any, None] | None:
        client = self._clients.get(session) or self._client(session)
        owner = client[0]
        self.sessions[owner] = session
        self.counts["orders"] += 1
        f = dict(msg.pairs())  # parsed once (the validator already did it); later duplicates lose
        get = f.get
        cl_b, symbol_b, side_b, ord_type_code, qty_raw = get(11), get(55), get(54), get(40), get(38)
        if not (cl_b and symbol_b and side_b and ord_type_code and qty_raw):
            for tag, v in ((11, cl_b), (55, symbol_b), (54, side_b), (40, ord_type_code), (38, qty_raw)):
                if not v:
                    raise FieldNotFound(tag)
        assert cl_b and symbol_b and side_b and ord_type_code and qty_raw
        cl = cl_b.decode("latin-1")
        symbol = symbol_b.decode("latin-1")
        side = _SIDES.get(side_b)
        if side is None:
            raise IncorrectTagValue(54)
        if get(43) == b"Y" and self._known(owner, symbol_b.decode("latin-1"), cl_b.decode("latin-1")):
            # A resent NewOrderSingle (PossDup) for an order we already have: not a new order.
            self.counts["possdup_ignored"] += 1
            return None
        tif_code = get(59) or b"0"
        account_b = get(1)
        # The order's fields as far as they were read when a problem stops it: its reject reports them.
        qty = 0
        price: int | None = None
        ord_type = _LIMIT
        tif = _GTC
        key = (owner, cl)
        try:
            # The caches' hits in line (a miss converts, checks and remembers; lots and ticks are > 0)
            fmt = self._formats.get(symbol) or self._formats_for(symbol)
            qty = fmt._lots_in.get(qty_raw) or fmt.lots(qty_raw)
            if ord_type_code == b"2":
                price_raw = get(44)
                if not price_raw:
                    raise FieldNotFound(44)
                price = fmt._ticks_in.get(price_raw) or fmt.ticks(price_raw)
            elif ord_type_code == b"1":
                ord_type = _MARKET
            else:
                raise OrderProblem(f"OrdType {ord_type_code.decode()} is not supported", REJ_UNSUPPORTED)
            tif_in = _TIF.get(tif_code)
            if tif_in is None:
                raise OrderProblem(f"TimeInForce {tif_code.decode()} is not supported", REJ_UNSUPPORTED)
            tif = _IOC if ord_type is _MARKET and tif_in is _GTC else tif_in
            if key in self.orders:
                raise OrderProblem(f"duplicate ClOrdID {cl}", REJ_DUPLICATE, REJ_DUPLICATE)
        except OrderProblem as p:
            order = GatewayOrder(owner, cl, symbol, side, ord_type, tif, price, qty)
            if account_b:
                order.account = account_b.decode("latin-1")
            self._reject_new(session, order, p)
            return None
        order = GatewayOrder(owner, cl, symbol, side, ord_type, tif, price, qty)
        if account_b:
            order.account = account_b.decode("latin-1")
        exec_inst = get(18)
        req = _order_request(
            symbol, side, qty, price, ord_type, tif,
            exec_inst is not None and b"6" in exec_inst.split(b" "),  # ParticipantDontInitiate = post-only
            cl, owner, self.venue,
        )  # fmt: skip
        # Registered before submitting: the outcome events arrive during the call.
        self.orders[key] = order
        if not self._tasks and self.matching is not None:
            venue = self.router.venues.get(self.venue)
            if venue is not None and getattr(venue, "engine", None) is self.matching:
                # The matching venue's submit is the router's gate then the engine's synchronous submit,
                # then a wait for the journal — and the reports are held for that commit anyway
                # (``_send``): so no task (nor coroutine) per order. Only with no operation task pending,
                # so a client's operations still apply in the order they arrived.
                if self.router.check(req) is None:
                    try:
                        self.matching.submit(req)
                    except Exception:
                        self.counts["errors"] += 1
                        log.exception("fix gateway: order operation failed")
                return None
        return self._submit(req, order, session)

    async def _submit(self, req: OrderRequest, order: GatewayOrder, session: Session) -> None:
        try:
            await self.router.submit(req)
        except UnknownVenue as exc:
            self.orders.pop((order.owner, order.cl_ord_id), None)
            self._reject_new(session, order, OrderProblem(str(exc), REJ_OTHER))

    def _known(self, owner: str, symbol: str, cl: str) -> bool:
        if (owner, cl) in self.orders:
            return True
        return (
            self.matching is not None and self.matching.order(symbol, owner=owner, client_id=cl) is not None
        )

    def _reject_new(self, session: Session, order: GatewayOrder, p: OrderProblem) -> None:
        self.counts["rejects"] += 1
        order.status = OrderStatus.REJECTED
        v42 = session.session_id.begin_string == FIX42
        self._send(
            session, self._exec_report(session, order, "8", text=p.reason, rej=p.code42 if v42 else p.code44)
        )

    def _find(self, owner: str, cl: str | None, msg: FixMessage) -> GatewayOrder | None:
        """The owner's order by ClOrdID ``cl``, else by the OrderID (37) the message carries."""
        order = self.orders.get((owner, cl)) if cl is not None else None
        if order is None:
            oid = msg.get(37)
            if oid is not None and oid.isdigit():
                o = self.by_id.get(int(oid))
                if o is not None and o.owner == owner:
                    order = o
        return order

    def _lookup(self, owner: str, msg: FixMessage) -> GatewayOrder | None:
        orig = msg.get(41)
        order = self._find(owner, orig.decode("latin-1") if orig is not None else None, msg)
        if order is None and orig is not None:
            order = self._adopt(owner, (msg.get(55) or b"").decode("latin-1"), orig.decode("latin-1"), None)
        return order

    def _adopt(
        self,
        owner: str,
        symbol: str,
        client_id: str,
        order_id: int | None,
        fill: int = 0,
        closing: bool = False,
    ) -> GatewayOrder | None:
        """A live order of a FIX client the gateway does not track — restored by the matching journal after
        a restart: take it over from the engine's view (``fill``: lots of a fill already counted there).

        Its AvgPx restarts from the fills seen from here on (earlier fill prices are in the journal only).
        """
        if self.matching is None or not symbol:
            return None
        view = self.matching.order(symbol, owner=owner, client_id=client_id or None, order_id=order_id)
        if view is None or (not view.status.is_open and not closing):
            return None
        order = GatewayOrder(
            owner, view.client_id, symbol, view.side, view.type, view.tif, view.price, view.qty,
            order_id=view.order_id, cum=view.filled_qty - fill, status=view.status,
        )  # fmt: skip
        order.notional = (view.price or 0) * order.cum  # unknown: the limit price stands in
        self.orders[(owner, order.cl_ord_id)] = order
        self.by_id[view.order_id] = order
        self.counts["adopted"] += 1
        return order

    async def _cancel(self, msg: FixMessage, session: Session, cl: str, orig: str) -> None:
        owner = self.owner_of(session)
        order = self._lookup(owner, msg)
        if order is None or order.order_id is None:
            self._cancel_reject(session, cl, orig, None, "1", "1", "unknown order")
            return
        if order.pending is not None:
            self._cancel_reject(session, cl, orig, order, "1", "3", "a cancel or replace is already pending")
            return
        self.counts["cancels"] += 1
        order.pending = ("F", cl, order.qty, order.price)
        result = await self.router.cancel(self.venue, order.symbol, order.cl_ord_id, owner)
        if order.pending is not None and order.pending[1] == cl and not result.confirmed:
            order.pending = None
            self._cancel_reject(session, cl, orig, order, "1", "0", result.reason or "cancel not confirmed")

    async def _replace(self, msg: FixMessage, session: Session, cl: str, orig: str) -> None:
        owner = self.owner_of(session)
        order = self._lookup(owner, msg)
        if order is None or order.order_id is None:
            self._cancel_reject(session, cl, orig, None, "2", "1", "unknown order")
            return
        if order.pending is not None:
            self._cancel_reject(session, cl, orig, order, "2", "3", "a cancel or replace is already pending")
            return
        inst = self.instruments[order.symbol]
        try:
            fmt = self._formats_for(order.symbol)
            qty = fmt.lots(self._required(msg, 38))
            price = order.price
            if msg.get(44) is not None:
                price = fmt.ticks(msg.get(44) or b"")
            side = _SIDES.get(msg.get(54) or b"")
            if side is not None and side is not order.side:
                raise OrderProblem("the side of an order cannot be changed", REJ_OTHER)
            if qty <= order.cum:
                raise OrderProblem(
                    f"new quantity {inst.fmt_qty(qty)} is not above the filled {inst.fmt_qty(order.cum)}",
                    REJ_QTY,
                )
            if (owner, cl) in self.orders:
                raise OrderProblem(f"duplicate ClOrdID {cl}", REJ_DUPLICATE)
            # The new quantity passes the same pre-trade gate as a new order (without a second rejection
            # event: a refused replace is answered with OrderCancelReject, the order itself stays).
            check = OrderRequest(
                symbol=order.symbol, side=order.side, qty=qty - order.cum, price=price, type=order.ord_type,
                tif=order.tif, client_id=cl, owner=owner, venue=self.venue,
            )  # fmt: skip
            refused = self.router.gate.check(check)
            if refused is not None:
                raise OrderProblem(f"risk: {refused}", REJ_EXCEEDS_LIMIT)
        except OrderProblem as p:
            self._cancel_reject(session, cl, orig, order, "2", "2", p.reason)
            return
        except (IncorrectTagValue, FieldNotFound) as exc:  # validation off and a malformed field
            self._cancel_reject(session, cl, orig, order, "2", "2", str(exc))
            return
        self.counts["replaces"] += 1
        order.pending = ("G", cl, qty, price)
        venue = self.router.venue(self.venue)
        await venue.replace(order.symbol, order.cl_ord_id, owner, cl, price, qty - order.cum)
        if order.pending is not None and order.pending[1] == cl:
            order.pending = None
            self._cancel_reject(session, cl, orig, order, "2", "0", "replace not confirmed by the venue")

    def _cancel_reject(
        self,
        session: Session,
        cl: str,
        orig: str,
        order: GatewayOrder | None,
        response_to: str,
        reason: str,
        text: str,
    ) -> None:
        v42 = session.session_id.begin_string == FIX42
        if v42 and reason not in ("0", "1", "2", "3"):
            reason = "2"
        status = _STATUS_CODE[order.status] if order is not None else "8"
        oid = str(order.order_id) if order is not None and order.order_id is not None else "NONE"
        m = Message("9", [(37, oid), (11, cl), (41, orig), (39, status)])
        if order is not None and order.account:
            m.append(1, order.account)
        m.append(60, utc_timestamp(self.clock.time_ns()))
        m.append(434, response_to)
        m.append(102, reason)
        m.append(58, text)
        self._send(session, m)

    # --- mass cancel: OrderMassCancelRequest (q, 4.4) ---------------------------------------------------
    def _mass_cancel_query(self, msg: FixMessage) -> tuple[bytes, bytes, str | None, Side | None]:
        """(ClOrdID, MassCancelRequestType, symbol, side) of a q; a missing tag is a session Reject."""
        cl = self._required(msg, 11)
        req_type = self._required(msg, 530)
        symbol = self._required(msg, 55).decode("latin-1") if req_type == b"1" else None
        side_b = msg.get(54)
        side = _SIDES.get(side_b) if side_b else None
        if side_b and side is None:
            raise IncorrectTagValue(54)
        return cl, req_type, symbol, side

    async def _mass_cancel(
        self, session: Session, query: tuple[bytes, bytes, str | None, Side | None]
    ) -> None:
        """Cancel the client's own orders (owner ``fix:<CompID>``) — all (530=7) or one security's (530=1) —
        in one bulk call of the venue (the matching engine's ``cancel_all``). Each canceled order gets its
        ExecutionReport 150=4 as any cancel does; then the OrderMassCancelReport (r) says how many (533)
        and which (534 group, up to MASS_CANCEL_LISTED). Other request types: r with 531=0 (rejected)."""
        cl, req_type, symbol, side = query
        owner = self.owner_of(session)
        self.counts["mass_cancels"] += 1
        if req_type not in (b"1", b"7"):
            self._send(session, self._mass_cancel_report(
                cl, req_type, b"0", [], symbol, side,
                reject=(b"0", f"MassCancelRequestType {req_type.decode('latin-1')} is not supported (1 and 7 are)"),
            ))  # fmt: skip
            return
        if symbol is not None and symbol not in self.instruments:
            self._send(session, self._mass_cancel_report(cl, req_type, b"0", [], symbol, side,
                                                         reject=(b"1", f"unknown symbol {symbol}")))  # fmt: skip
            return
        if side is None:
            results = await self.router.venue(self.venue).cancel_all(owner=owner, symbol=symbol)
        else:  # the bulk path has no side filter: the side's orders one by one
            orders = self._status_orders(owner, symbol, side)
            results = list(await asyncio.gather(
                *(self.router.cancel(self.venue, g.symbol, g.cl_ord_id, owner) for g in orders)
            ))  # fmt: skip
        done = [r for r in results if r.confirmed and r.owner == owner]
        self._send(session, self._mass_cancel_report(cl, req_type, req_type, done, symbol, side))

    def _mass_cancel_report(
        self,
        cl: bytes,
        req_type: bytes,
        response: bytes,
        done: list[Any],
        symbol: str | None,
        side: Side | None,
        reject: tuple[bytes, str] | None = None,
    ) -> Message:
        """OrderMassCancelReport (r): 11, 37 (our id for the request), 530, 531, 532 when rejected, 533,
        the NoAffectedOrders group (41, 535) and 55/54 echoed."""
        self._exec_seq += 1
        parts = [b"11=%s\x0137=%smc%d\x01530=%s\x01531=%s\x01" % (cl, self._exec_prefix_b, self._exec_seq,
                                                                    req_type, response)]  # fmt: skip
        if reject is not None:
            parts.append(b"532=%s\x01" % reject[0])
        parts.append(b"533=%d\x01" % len(done))
        listed = done[:MASS_CANCEL_LISTED]
        if listed:
            parts.append(b"534=%d\x01" % len(listed))
            for r in listed:
                parts.append(
                    b"41=%s\x01535=%s\x01"
                    % (r.client_id.encode("latin-1"), b"NONE" if r.order_id is None else b"%d" % r.order_id)
                )
        if symbol is not None:
            parts.append(b"55=%s\x01" % symbol.encode("latin-1"))
        if side is not None:
            parts.append(b"54=%s\x01" % _SIDE_BYTES[side])
        parts.append(b"60=%s\x01" % utc_timestamp(self.clock.time_ns()))
        if reject is not None:
            parts.append(b"58=%s\x01" % reject[1].encode("latin-1", "replace"))
        return Prebuilt("r", b"".join(parts))

    # --- order status: OrderStatusRequest (H), OrderMassStatusRequest (AF, 4.4) --------------------------
    def _mass_status_query(self, msg: FixMessage) -> tuple[str, str | None, Side | None]:
        """(MassStatusReqID, symbol filter, side filter) of an AF; 7 (all orders) and 1 (one security)."""
        req_id = self._required(msg, 584).decode("latin-1")
        req_type = self._required(msg, 585)
        symbol: str | None = None
        if req_type == b"1":
            symbol = self._required(msg, 55).decode("latin-1")
        elif req_type != b"7":
            raise BusinessReject(
                0, f"MassStatusReqType {req_type.decode('latin-1')} is not supported (1 and 7 are)", req_id
            )
        side_b = msg.get(54)
        side = _SIDES.get(side_b) if side_b else None
        if side_b and side is None:
            raise IncorrectTagValue(54)
        return req_id, symbol, side

    def _status_orders(self, owner: str, symbol: str | None, side: Side | None) -> list[GatewayOrder]:
        """The owner's open orders — also those of earlier connections and of before a restart (the
        matching engine keeps them under ``fix:<CompID>``), taken over like any restored order."""
        out: list[GatewayOrder] = []
        if self.matching is not None:
            for o in self.matching.open_orders(owner=owner, symbol=symbol):
                g = self.by_id.get(o.order_id) or self.orders.get((owner, o.client_id))
                if g is None:
                    g = self._adopt(owner, o.symbol, o.client_id, o.order_id)
                if g is not None and (side is None or g.side is side):
                    out.append(g)
        else:
            out = [
                g for (own, _), g in self.orders.items()
                if own == owner and g.order_id is not None and g.status.is_open
                and (symbol is None or g.symbol == symbol) and (side is None or g.side is side)
            ]  # fmt: skip
        out.sort(key=lambda g: g.order_id or 0)
        return out

    async def _mass_status(
        self, msg: FixMessage, session: Session, query: tuple[str, str | None, Side | None]
    ) -> None:
        req_id, symbol, side = query
        owner = self.owner_of(session)
        orders = self._status_orders(owner, symbol, side)
        mass = req_id.encode("latin-1")
        if not orders:
            # Nothing matches: one report saying so (TotNumReports 0, last), so the client stops waiting.
            none = GatewayOrder(
                owner, "", symbol or "", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, None, 0,
                status=OrderStatus.REJECTED,
            )  # fmt: skip
            self._send(session, self._status_report(session, none, mass=(mass, 0, True), text="no orders"))
            return
        n = len(orders)
        for i, g in enumerate(orders, 1):
            self._send(session, self._status_report(session, g, mass=(mass, n, i == n)))

    async def _order_status(self, msg: FixMessage, session: Session, cl: str) -> None:
        owner = self.owner_of(session)
        symbol = (msg.get(55) or b"").decode("latin-1")
        order = self._find(owner, cl, msg)
        if order is None and self.matching is not None and symbol:
            view = self.matching.order(symbol, owner=owner, client_id=cl)
            if view is not None and view.status.is_open:
                order = self._adopt(owner, symbol, cl, view.order_id)
            elif view is not None:  # closed: reported as the engine remembers it, not taken over
                order = GatewayOrder(
                    owner, view.client_id, symbol, view.side, view.type, view.tif, view.price, view.qty,
                    order_id=view.order_id, cum=view.filled_qty, status=view.status,
                )  # fmt: skip
                order.notional = (view.price or 0) * view.filled_qty
        req_id = msg.get(790)
        if order is None:
            side = _SIDES.get(msg.get(54) or b"", Side.BUY)
            unknown = GatewayOrder(
                owner,
                cl,
                symbol,
                side,
                OrderType.LIMIT,
                TimeInForce.GTC,
                None,
                0,
                status=OrderStatus.REJECTED,
            )
            self._send(
                session, self._status_report(session, unknown, req_id=req_id, rej="5", text="unknown order")
            )
            return
        self._send(session, self._status_report(session, order, req_id=req_id))

    def _status_report(
        self,
        session: Session,
        order: GatewayOrder,
        *,
        mass: tuple[bytes, int, bool] | None = None,
        req_id: bytes | None = None,
        rej: str = "",
        text: str = "",
    ) -> Message:
        """An order-status ExecutionReport: 4.4 ExecType I; 4.2 ExecTransType 3 (Status) with ExecType
        equal to OrdStatus. ExecID is 0, as the spec has it for status reports. A report that stands for
        no order (unknown ClOrdID, or an AF that matched nothing) has OrdStatus 8, no OrderID (NONE)
        and, for the AF, Side 7 (undisclosed): it describes no order."""
        v42 = session.session_id.begin_string == FIX42
        inst = self.instruments.get(order.symbol)
        fmt = (
            self._formats_for(order.symbol)
            if inst is not None
            else _Formats(Instrument(order.symbol or "NONE", Decimal(1), Decimal(1)))
        )
        status = _STATUS_CODE[order.status]
        parts = [b"37=%s\x01" % (b"NONE" if order.order_id is None else b"%d" % order.order_id)]
        if order.cl_ord_id:
            parts.append(b"11=%s\x01" % order.cl_ord_id.encode("latin-1"))
        if req_id:
            parts.append(b"790=%s\x01" % req_id)
        if mass is not None:
            parts.append(b"584=%s\x01911=%d\x01" % (mass[0], mass[1]))
            if mass[2]:
                parts.append(b"912=Y\x01")
        parts.append(
            b"17=0\x01%s150=%s\x0139=%s\x01"
            % (b"20=3\x01" if v42 else b"", status.encode() if v42 else b"I", status.encode())
        )
        if rej:
            parts.append(b"103=%s\x01" % rej.encode())
        if order.account:
            parts.append(b"1=%s\x01" % order.account.encode("latin-1"))
        parts.append(b"55=%s\x01" % (order.symbol or "NONE").encode("latin-1"))
        no_order = mass is not None and mass[1] == 0
        parts.append(b"54=%s\x01" % (b"7" if no_order else _SIDE_BYTES[order.side]))
        if order.qty:
            parts.append(
                b"38=%s\x0140=%s\x01%s59=%s\x01"
                % (fmt.qty(order.qty), b"1" if order.ord_type is OrderType.MARKET else b"2",
                   b"44=%s\x01" % fmt.price(order.price) if order.price is not None else b"",
                   _TIF_BYTES[order.tif])
            )  # fmt: skip
        parts.append(
            b"151=%s\x0114=%s\x016=%s\x0160=%s\x01"
            % (fmt.qty(order.leaves), fmt.qty(order.cum), fmt.avg(order.notional, order.cum),
               utc_timestamp(self.clock.time_ns()))
        )  # fmt: skip
        if text:
            parts.append(b"58=%s\x01" % text.encode("latin-1", "replace"))
        return Prebuilt("8", b"".join(parts))

    # --- execution reports --------------------------------------------------------------------------
    def _formats_for(self, symbol: str) -> _Formats:
        fmt = self._formats.get(symbol)
        if fmt is None:
            fmt = self._formats[symbol] = _Formats(self._instrument(symbol))
        return fmt

    @staticmethod
    def _fixed(order: GatewayOrder, fmt: _Formats) -> bytes:
        """The order's own fields (1, 55, 54, 38, 40, 44, 59), encoded once: they change only on a replace."""
        fixed = b"%s55=%s\x0154=%s\x0138=%s\x0140=%s\x01%s59=%s\x01" % (
            b"1=%s\x01" % order.account.encode("latin-1") if order.account else b"",
            fmt.symbol, _SIDE_BYTES[order.side], fmt.qty(order.qty),
            b"1" if order.ord_type is _MARKET else b"2",
            b"44=%s\x01" % fmt.price(order.price) if order.price is not None else b"",
            _TIF_BYTES[order.tif],
        )  # fmt: skip
        order.fixed, order.fixed_qty = fixed, order.qty
        return fixed

    def _ack_report(self, session: Session, order: GatewayOrder) -> Message:
        """``_exec_report(session, order, "0")`` for a FIX 4.4 session: the same bytes from a format with
        only the fields an acknowledgement has (37 11 17 150 39 1/55/54/38/40/44/59 151 14 6 60)."""
        fmt = self._formats.get(order.symbol)
        order_id = order.order_id
        if fmt is None or order_id is None or (self._clients.get(session) or self._client(session))[1]:
            return self._exec_report(session, order, "0")
        self._exec_seq = seq = self._exec_seq + 1
        fixed = order.fixed
        if fixed is None or order.fixed_qty != order.qty:
            fixed = self._fixed(order, fmt)
        cum = order.cum
        status = order.status
        qtys = fmt._qtys
        leaves = max(0, order.qty - cum) if status in _OPEN_STATUSES else 0
        return Prebuilt(
            "8",
            b"37=%d\x0111=%s\x0117=%s%d\x01150=0\x0139=%s\x01%s151=%s\x0114=%s\x016=%s\x0160=%s\x01"
            % (
                order_id, order.cl_ord_id.encode("latin-1"), self._exec_prefix_b, seq, _STATUS_BYTES[status], fixed,
                qtys.get(leaves) or fmt.qty(leaves), qtys.get(cum) or fmt.qty(cum),
                fmt.avg(order.notional, cum) if cum else b"0", utc_timestamp(self.clock.time_ns()),
            ),
        )  # fmt: skip

    def _fill_report(self, session: Session, order: GatewayOrder, ev: Fill) -> Message:
        """The fill's ExecutionReport: for FIX 4.4 from a format with only a fill's fields (37 11 17 150=F 39
        1/55/54/38/40/44/59 32 31 151 14 6 60 12 13 851), else through ``_exec_report``; the same bytes."""
        fmt = self._formats.get(order.symbol)
        order_id = order.order_id
        v42 = (self._clients.get(session) or self._client(session))[1]
        if fmt is None or order_id is None or v42 or ev.liquidity is None or ev.fee is None:
            # 4.2 reports executions as ExecType 1/2 (partial fill / fill), 4.4 as F (trade).
            exec_type = ("2" if ev.leaves_qty == 0 else "1") if v42 else "F"
            return self._exec_report(
                session, order, exec_type, last=(ev.price, ev.qty), liquidity=ev.liquidity, fee=ev.fee
            )
        self._exec_seq = seq = self._exec_seq + 1
        fixed = order.fixed
        if fixed is None or order.fixed_qty != order.qty:
            fixed = self._fixed(order, fmt)
        cum = order.cum
        status = order.status
        qtys = fmt._qtys
        leaves = max(0, order.qty - cum) if status in _OPEN_STATUSES else 0
        last_qty = ev.qty
        prices = fmt._prices
        px = ev.price
        notional = order.notional
        # fmt.avg's usual case in line: a whole number of ticks (every fill at one price), a cached text
        avg = (prices.get(notional // cum) if notional % cum == 0 else None) if cum else b"0"
        return Prebuilt(
            "8",
            b"37=%d\x0111=%s\x0117=%s%d\x01150=F\x0139=%s\x01%s32=%s\x0131=%s\x01151=%s\x0114=%s\x016=%s\x01"
            b"60=%s\x0112=%s\x0113=3\x01851=%s\x01"
            % (
                order_id, order.cl_ord_id.encode("latin-1"), self._exec_prefix_b, seq, _STATUS_BYTES[status], fixed,
                qtys.get(last_qty) or fmt.qty(last_qty), prices.get(px) or fmt.price(px),
                qtys.get(leaves) or fmt.qty(leaves), qtys.get(cum) or fmt.qty(cum),
                avg or fmt.avg(notional, cum), utc_timestamp(self.clock.time_ns()),
                _AMOUNTS.get(ev.fee) or _amount(ev.fee), b"1" if ev.liquidity is _MAKER else b"2",
            ),
        )  # fmt: skip

    def _exec_report(
        self,
        session: Session,
        order: GatewayOrder,
        exec_type: str,
        *,
        cl: str | None = None,
        orig: str = "",
        last: tuple[int, int] | None = None,
        text: str = "",
        rej: str = "",
        liquidity: Liquidity | None = None,
        fee: float | None = None,
    ) -> Message:
        # Built as bytes in one go (this runs for every acknowledgement and fill): cached price and
        # quantity texts, one %-format for the fixed part.
        fmt = self._formats.get(order.symbol)
        if fmt is None:
            inst = self.instruments.get(order.symbol)
            # The rejected order of an unknown symbol has nothing to convert: a unit grid, not cached.
            fmt = _Formats(inst or Instrument(order.symbol, Decimal(1), Decimal(1)))
            if inst is not None:
                self._formats[order.symbol] = fmt
        v42 = (self._clients.get(session) or self._client(session))[1]
        self._exec_seq += 1
        fixed = order.fixed
        if fixed is None or order.fixed_qty != order.qty:
            fixed = self._fixed(order, fmt)
        # One %-format for the whole body (absent optional fields are b""), fields in the same order as
        # always: 37 11 [41] 17 [20] 150 39 [103] 1/55/54/38/40/44/59 [32 31] 151 14 6 60 [12 13] [851] [58].
        cum = order.cum
        status = order.status
        qtys = fmt._qtys  # the texts' cache read directly (fmt.qty on a miss): three per report
        leaves = max(0, order.qty - cum) if status in _OPEN_STATUSES else 0
        return Prebuilt(
            "8",
            b"37=%s\x0111=%s\x01%s17=%s%d\x01%s150=%s\x0139=%s\x01%s%s%s151=%s\x0114=%s\x016=%s\x0160=%s\x01%s%s%s"
            % (
                b"NONE" if order.order_id is None else b"%d" % order.order_id,
                (cl if cl is not None else order.cl_ord_id).encode("latin-1"),
                b"41=%s\x01" % orig.encode("latin-1") if orig else b"",
                self._exec_prefix_b, self._exec_seq,
                b"20=0\x01" if v42 else b"",
                _EXEC_TYPE_BYTES.get(exec_type) or exec_type.encode(),
                _STATUS_BYTES[status],
                b"103=%s\x01" % rej.encode() if rej else b"",
                fixed,
                b"32=%s\x0131=%s\x01" % (qtys.get(last[1]) or fmt.qty(last[1]), fmt.price(last[0]))
                if last is not None
                else b"",
                qtys.get(leaves) or fmt.qty(leaves),
                qtys.get(cum) or fmt.qty(cum),
                fmt.avg(order.notional, cum) if cum else b"0",
                utc_timestamp(self.clock.time_ns()),
                b"12=%s\x0113=3\x01" % _amount(fee) if fee is not None else b"",
                (b"851=1\x01" if liquidity is _MAKER else b"851=2\x01")
                if liquidity is not None and not v42
                else b"",
                b"58=%s\x01" % text.encode("latin-1", "replace") if text else b"",
            ),
        )  # fmt: skip

    def _mine(
        self,
        owner: str,
        client_id: str,
        order_id: int | None,
        symbol: str = "",
        fill: int = 0,
        closing: bool = False,
    ) -> GatewayOrder | None:
        if not owner.startswith("fix:"):
            return None
        order = self.orders.get((owner, client_id))
        if order is None and order_id is not None:
            order = self.by_id.get(order_id)
        if order is None and symbol and owner in self.sessions:
            order = self._adopt(owner, symbol, client_id, order_id, fill, closing)
        return order

    def _done(self, order: GatewayOrder) -> None:
        self.orders.pop((order.owner, order.cl_ord_id), None)
        if order.order_id is not None:
            self.by_id.pop(order.order_id, None)

    def _on_accepted(self, ev: OrderAccepted) -> None:
        # ``_mine`` without an order id or symbol is this lookup (every key's owner is "fix:...").
        order = self.orders.get((ev.owner, ev.client_id))
        if order is None:
            return
        order.order_id = ev.order_id
        order.status = _NEW
        self.by_id[ev.order_id] = order
        session = self.sessions.get(order.owner)
        if session is not None:
            self._send(session, self._ack_report(session, order))

    def _on_rejected(self, ev: OrderRejected) -> None:
        order = self._mine(ev.owner, ev.client_id, None)
        if order is None or order.status is not OrderStatus.PENDING_NEW:
            return
        self._done(order)
        session = self.sessions.get(order.owner)
        if session is None:
            return
        if ev.source == "risk":
            p = OrderProblem(f"risk: {ev.reason}", REJ_EXCEEDS_LIMIT, REJ_EXCEEDS_LIMIT)
        else:
            p = OrderProblem(ev.reason, REJ_OTHER)
        self._reject_new(session, order, p)

    def _on_fill(self, ev: Fill) -> None:
        order = self.orders.get((ev.owner, ev.client_id))  # the common case of _mine, in line
        if order is None:
            order = self._mine(ev.owner, ev.client_id, ev.order_id, ev.symbol, ev.qty, closing=True)
            if order is None:
                return
        self.counts["fills"] += 1
        if order.order_id is None:
            order.order_id = ev.order_id
            self.by_id[ev.order_id] = order
        order.cum += ev.qty
        order.notional += ev.price * ev.qty
        # The venue's leaves are the truth (a replace may have changed the total).
        order.qty = order.cum + ev.leaves_qty
        order.status = _FILLED if ev.leaves_qty == 0 else _PARTIALLY_FILLED
        if ev.leaves_qty == 0:
            self._done(order)
        session = self.sessions.get(order.owner)
        if session is None:
            return
        self._send(session, self._fill_report(session, order, ev))

    def _on_canceled(self, ev: OrderCanceled) -> None:
        order = self._mine(ev.owner, ev.client_id, ev.order_id, ev.symbol, closing=True)
        if order is None:
            return
        self._done(order)
        expired = ev.status is OrderStatus.EXPIRED
        order.status = OrderStatus.EXPIRED if expired else OrderStatus.CANCELED
        cl, orig = None, ""
        if order.pending is not None and order.pending[0] == "F":
            cl, orig = order.pending[1], order.cl_ord_id
        order.pending = None
        session = self.sessions.get(order.owner)
        if session is not None:
            exec_type = "C" if expired else "4"
            self._send(
                session, self._exec_report(session, order, exec_type, cl=cl, orig=orig, text=ev.reason)
            )

    def _on_replaced(self, ev: OrderReplaced) -> None:
        order = self._mine(ev.owner, ev.orig_client_id, ev.order_id)
        if order is None:
            return
        order.pending = None
        self.orders.pop((order.owner, order.cl_ord_id), None)
        order.orig_cl_ord_id = order.cl_ord_id
        order.cl_ord_id = ev.client_id
        order.price = ev.price
        order.fixed = None
        order.qty = order.cum + ev.qty
        if ev.order_id != order.order_id:
            if order.order_id is not None:
                self.by_id.pop(order.order_id, None)
            order.order_id = ev.order_id
        self.by_id[ev.order_id] = order
        self.orders[(order.owner, order.cl_ord_id)] = order
        session = self.sessions.get(order.owner)
        if session is not None:
            self._send(session, self._exec_report(session, order, "5", orig=order.orig_cl_ord_id))

    def _on_cancel_rejected(self, ev: CancelRejected) -> None:
        order = self._mine(ev.owner, ev.client_id, ev.order_id)
        if order is None or order.pending is None:
            return
        kind, cl, _, _ = order.pending
        order.pending = None
        session = self.sessions.get(order.owner)
        if session is not None:
            reason = "1" if "unknown" in ev.reason else "0"
            self._cancel_reject(
                session, cl, order.cl_ord_id, order, "1" if kind == "F" else "2", reason, ev.reason
            )

    # --- market data --------------------------------------------------------------------------------
    def _md_request(self, msg: FixMessage, session: Session) -> None:
        owner = self.owner_of(session)
        req_id = self._required(msg, 262).decode("latin-1")
        sub_type = self._required(msg, 263)
        if sub_type == b"2":
            sub = self.md_subs.get((owner, req_id))
            if sub is None:
                self._md_reject(session, req_id, "0", f"no subscription {req_id}")
            else:
                self._drop_md(sub)
            return
        if sub_type not in (b"0", b"1"):
            self._md_reject(
                session, req_id, "4", f"SubscriptionRequestType {sub_type.decode()} is not supported"
            )
            return
        depth_raw = self._required(msg, 264)
        if not depth_raw.isdigit():
            raise IncorrectTagValue(264)
        depth = int(depth_raw)
        pairs = msg.pairs()
        entry_types = frozenset(v.decode() for t, v in pairs if t == 269)
        symbols = tuple(v.decode("latin-1") for t, v in pairs if t == 55)
        if not entry_types:
            raise FieldNotFound(269)
        if not symbols:
            raise FieldNotFound(55)
        bad = entry_types - {"0", "1", "2"}
        if bad:
            self._md_reject(session, req_id, "8", f"MDEntryType {','.join(sorted(bad))} is not supported")
            return
        for sym in symbols:
            if sym not in self.instruments or (self.matching is not None and not self._has_symbol(sym)):
                self._md_reject(session, req_id, "0", f"unknown symbol {sym}")
                return
        if sub_type == b"1" and (owner, req_id) in self.md_subs:
            self._md_reject(session, req_id, "1", f"duplicate MDReqID {req_id}")
            return
        incremental = (msg.get(265) or b"1") == b"1"
        sub = MDSubscription(req_id, session, symbols, depth, entry_types, incremental)
        for sym in symbols:
            bids, asks = self._book(sym, depth)
            sub.sent[sym] = (dict(bids), dict(asks))
            self._send_now(session, self._snapshot(sub, sym, bids, asks))
        if sub_type == b"1":
            self.md_subs[(owner, req_id)] = sub
            for sym in symbols:
                self._md_by_symbol.setdefault(sym, []).append(sub)

    def _has_symbol(self, symbol: str) -> bool:
        symbols = getattr(self.matching, "symbols", None)
        if symbols is None:
            return True
        return symbol in (symbols() if callable(symbols) else symbols)

    def _drop_md(self, sub: MDSubscription) -> None:
        self.md_subs.pop((self.owner_of(sub.session), sub.req_id), None)
        for sym in sub.symbols:
            subs = self._md_by_symbol.get(sym)
            if subs and sub in subs:
                subs.remove(sub)

    def _md_reject(self, session: Session, req_id: str, reason: str, text: str) -> None:
        self._send_now(session, Message("Y", [(262, req_id), (281, reason), (58, text)]))

    def _book(self, symbol: str, depth: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        levels = depth or self.depth_levels
        last = self._md_last.get(symbol)
        if self.matching is not None:
            bids, asks = self.matching.depth(symbol, levels)
        elif last is not None:
            bids, asks = last.bids, last.asks
        else:
            bids, asks = (), ()
        return list(bids[:levels]), list(asks[:levels])

    def _snapshot(
        self, sub: MDSubscription, symbol: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]]
    ) -> Message:
        inst = self.instruments[symbol]
        entries: list[tuple[int, Any]] = []
        n = 0
        for etype, levels in (("0", bids), ("1", asks)):
            if etype not in sub.entry_types:
                continue
            for pos, (px, qty) in enumerate(levels, 1):
                entries += [(269, etype), (270, _px(inst, px)), (271, inst.fmt_qty(qty)), (290, pos)]
                n += 1
        if "2" in sub.entry_types and self.matching is not None:
            for tr in self.matching.recent_trades(symbol, 1):
                entries += [(269, "2"), (270, _px(inst, tr.price)), (271, inst.fmt_qty(tr.qty))]
                n += 1
        return Message("W", [(262, sub.req_id), (55, symbol), (268, n), *entries])

    def _on_depth(self, ev: Depth) -> None:
        self._md_last[ev.symbol] = ev
        if self._md_by_symbol.get(ev.symbol):
            self._md_dirty.add(ev.symbol)
            self._schedule_md()

    def _on_trade(self, ev: Trade) -> None:
        if self._md_by_symbol.get(ev.symbol):
            self._md_trades.setdefault(ev.symbol, []).append(ev)
            # The engine publishes the book after the trade, on its own next-turn callback: wait one
            # more turn so the trade and the book change it caused go out in one refresh.
            self._schedule_md(hops=2)

    def _schedule_md(self, hops: int = 1) -> None:
        if self._md_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush_market_data()
            return
        self._md_scheduled = True
        if hops == 1:
            loop.call_soon(self.flush_market_data)
        else:
            loop.call_soon(loop.call_soon, self.flush_market_data)

    def flush_market_data(self) -> None:
        """Send the refreshes for everything that changed since the last flush (one X per subscription)."""
        self._md_scheduled = False
        dirty, self._md_dirty = self._md_dirty, set()
        trades, self._md_trades = self._md_trades, {}
        for sym in dirty | set(trades):
            inst = self.instruments.get(sym)
            if inst is None:
                continue
            for sub in list(self._md_by_symbol.get(sym, ())):
                if sub.session.state != "ACTIVE":
                    continue
                if sub.incremental:
                    msg = self._incremental(sub, sym, inst, trades.get(sym, ()), sym in dirty)
                    if msg is not None:
                        self._send_now(sub.session, msg)
                elif sym in dirty or "2" in sub.entry_types:
                    bids, asks = self._book(sym, sub.depth)
                    sub.sent[sym] = (dict(bids), dict(asks))
                    self._send_now(sub.session, self._snapshot(sub, sym, bids, asks))

    def _incremental(
        self, sub: MDSubscription, sym: str, inst: Instrument, trades: Any, book_changed: bool
    ) -> Message | None:
        entries: list[tuple[int, Any]] = []
        n = 0
        if "2" in sub.entry_types:
            for tr in trades:
                entries += [
                    (279, "0"),
                    (269, "2"),
                    (55, sym),
                    (270, _px(inst, tr.price)),
                    (271, inst.fmt_qty(tr.qty)),
                ]
                n += 1
        if book_changed:
            bids, asks = self._book(sym, sub.depth)
            old_bids, old_asks = sub.sent.get(sym, ({}, {}))
            new_bids, new_asks = dict(bids), dict(asks)
            for etype, old, new in (("0", old_bids, new_bids), ("1", old_asks, new_asks)):
                if etype not in sub.entry_types:
                    continue
                for px in old:
                    if px not in new:
                        entries += [(279, "2"), (269, etype), (55, sym), (270, _px(inst, px))]
                        n += 1
                for px, qty in new.items():
                    was = old.get(px)
                    if was == qty:
                        continue
                    action = "0" if was is None else "1"
                    entries += [
                        (279, action),
                        (269, etype),
                        (55, sym),
                        (270, _px(inst, px)),
                        (271, inst.fmt_qty(qty)),
                    ]
                    n += 1
            sub.sent[sym] = (new_bids, new_asks)
        if n == 0:
            return None
        return Message("X", [(262, sub.req_id), (268, n), *entries])

    # --- status -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            **self.counts,
            "open_orders": len(self.orders),
            "clients": sorted(self.sessions),
            "md_subscriptions": len(self.md_subs),
            "in_flight": len(self._tasks),
            "held_reports": len(self._held),
        }
