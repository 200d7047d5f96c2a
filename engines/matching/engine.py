"""The matching engine: one :class:`OrderBook` per instrument, bus events, fees, stats, journal.

Order entry is synchronous (no ``await`` on the hot path): ``submit``/``cancel``/``replace``/
``cancel_all`` run the book, then publish the outcome on the bus. Events per operation, in order:

* ``OrderRejected`` (source = the venue name) — nothing else happens;
* ``OrderAccepted`` for an accepted order (also for IOC/FOK/market orders that never rest);
* per execution: ``Trade``, then ``Fill`` for the maker, then ``Fill`` for the taker;
  a resting order canceled by self-trade prevention gets ``OrderCanceled`` where its execution
  would have been;
* ``OrderCanceled`` with status EXPIRED (IOC/FOK/market remainder) or CANCELED (self-trade
  prevention canceled the incoming remainder; explicit cancels);
* ``OrderReplaced`` for a successful replace (before any executions it causes), ``CancelRejected``
  for a refused cancel or replace.

Lifecycle events, fills and trades are lossless and published in this order. Re-entrancy is safe: a
bus subscriber may call back into the engine; events go through an outbox, so the nested call's
events follow the outer call's. ``BBO`` and ``Depth`` are conflated: a changed symbol is marked dirty
and its market data published once per event-loop turn (``loop.call_soon``), or at the end of the
call when no loop is running; only what actually changed is published.

Fees: maker/taker fee = notional * bps / 10,000 in the quote currency, notional = price * tick size *
qty * lot size, computed exactly (integers and a per-symbol fraction, no Decimal on the hot path),
rounded half away from zero to 1e-8 and handed out as the nearest float; a negative bps is a rebate.
Fees are reporting figures; positions and prices stay integers.

Durability: with a journal attached (``engines.matching.journal``), every state change is queued for
the journal synchronously and written in batches off the hot path. ``await engine.flush()`` returns
once everything done before the call is committed; the REST API, the FIX gateway (through
:class:`~engines.matching.venue.MatchingVenue`) call it before acknowledging. See journal.py for the
exact guarantee.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections import deque
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from engines.bus import Bus
from engines.events import Event
from engines.instruments import Instrument, OffGridError
from engines.marketdata import BBO, Depth, Trade
from engines.matching import book_impl
from engines.matching.book import (
    R_PRICE,
    R_QTY,
    R_STP,
    R_UNKNOWN,
    STATUS_NAMES,
    OrderBook,
)
from engines.matching.fastevents import (
    TWINS,
    fast_constructor,
    freeze,
    unfrozen_canceled,
    unfrozen_rejected,
    unfrozen_replaced,
)
from engines.orders import (
    CancelRejected,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from engines.venue import CancelResult, OpenOrder

if TYPE_CHECKING:
    from engines.matching.journal import Journal

log = logging.getLogger(__name__)

_STATUS = tuple(OrderStatus(n) for n in STATUS_NAMES)  # book status code -> OrderStatus
_SIDES = (Side.BUY, Side.SELL)
_GTC = TimeInForce.GTC
_IOC = TimeInForce.IOC
_BUY = Side.BUY
_SELL = Side.SELL
_MARKET_T = OrderType.MARKET
_LIMIT_T = OrderType.LIMIT
_TIFS = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)  # book tif code -> TimeInForce
# (enum members hash in Python code, so the hot path compares identities instead of dict lookups)
_MAKER = Liquidity.MAKER
_TAKER = Liquidity.TAKER
_CANCELED = OrderStatus.CANCELED
_EXPIRED = OrderStatus.EXPIRED
_REJECTED = OrderStatus.REJECTED

# Engine record kept in the book order's O_REF slot (shared by the old and new order list of a replace)
REC_REQ = 0  # the OrderRequest as submitted
REC_CLIENT_ID = 1  # current client id (a replace may change it)
REC_QTY = 2  # total order quantity (filled + leaves; a replace changes it)
REC_REASON = 3  # the last reason (cancel/expiry/replace)
REC_LIFE = 4  # lifecycle: tuple of (status, reason), grown by concatenation (no list per order for the GC)

# A closed order in the bounded history (``_closed``): one flat tuple of plain values (ints, strings,
# bools, None) followed by its lifecycle entries, which the cyclic GC stops tracking at its first
# collection, so the history (100,000 orders by default) costs collections nothing. (As a book order
# list plus its engine record it was two tracked containers, three with the request, walked by every
# full collection.) Flat, because the collector can only untrack a tuple whose items are untracked
# when it looks, and a young nested tuple is looked at after its container; for the same reason the
# lifecycle entries of the hot paths are shared tuples (``_life_entry``). Price, owner, filled and
# status sit where the book's order list has them. A bulk cancel (``cancel_all``, the kill switch's
# path) keeps the order lists instead: it is timed, and a tuple per order would add ~1 µs each to
# it; ``order()`` and ``_evict`` take both shapes.
CL_ID = 0
CL_SIDE = 1  # 0 buy, 1 sell
CL_PX = 2  # None: market order
CL_SYMBOL = 3
CL_OWNER = 4
CL_FILLED = 5
CL_STATUS = 6  # book status code
CL_QTY = 7  # total quantity
CL_REASON = 8
CL_CLIENT_ID = 9
CL_TIF = 10  # 0 GTC, 1 IOC, 2 FOK
CL_POST_ONLY = 11
CL_VENUE = 12
CL_LIFE = 13  # the lifecycle entries: tuple[CL_LIFE:]

_LIFE_ENTRIES: tuple[dict[str, tuple[str, str]], ...] = tuple({} for _ in STATUS_NAMES)  # by status code


def _life_entry(status: int, reason: str) -> tuple[str, str]:
    """The lifecycle entry ``(status name, reason)`` as one shared tuple per distinct entry (up to 1,024
    reasons per status; past that, a fresh tuple: the same value, only untracked by the GC later)."""
    cache = _LIFE_ENTRIES[status]
    entry = cache.get(reason)
    if entry is None:
        entry = (STATUS_NAMES[status], reason)
        if len(cache) < 1024:
            cache[reason] = entry
    return entry


_CANCELED_ENTRIES = _LIFE_ENTRIES[3]  # reason -> ("canceled", reason)
_STP_ENTRY = _life_entry(3, R_STP)

R_UNKNOWN_SYMBOL = "unknown symbol"
R_DUP_CLIENT_ID = "duplicate client_id for this owner"
R_MARKET_PRICE = "market order must not have a price"
R_LIMIT_NO_PRICE = "limit order needs a price"
R_NOT_OPEN = "order not open"


@dataclass(slots=True)
class SubmitResult:
    order_id: int | None
    status: OrderStatus
    reason: str
    filled_qty: int
    leaves_qty: int


_new_result = fast_constructor(SubmitResult)  # SubmitResult(...) without the dataclass __init__
_first = operator.itemgetter(0)
_LIFE_NEW = (("new", ""),)  # a fresh order's lifecycle (one shared tuple: see cancel_all)
assert OrderCanceled in TWINS and CancelResult in TWINS, "cancel_all inlines their fast construction"

# The hottest paths (submit's OrderAccepted, an execution's Trade and two Fills, cancel's OrderCanceled,
# submit's SubmitResult) build these inline, field by field, on the unfrozen twins (fastevents: the
# same as its unfrozen_* constructors, without a call per object: ~700 machine instructions less per
# event). A field added to one of these classes must be added there too; this check makes that a
# failure at import instead of an unset field.
_INLINED = {
    OrderAccepted: "seq ts symbol order_id client_id owner side type tif price qty venue",
    Fill: "seq ts symbol order_id client_id owner side price qty leaves_qty liquidity fee trade_id venue",
    Trade: "seq ts symbol trade_id price qty aggressor maker_order_id taker_order_id maker_owner taker_owner"
    " maker_fee taker_fee venue",
    OrderCanceled: "seq ts symbol order_id client_id owner side price canceled_qty filled_qty status reason venue",
    SubmitResult: "order_id status reason filled_qty leaves_qty",
}
for _cls, _names in _INLINED.items():
    if " ".join(f.name for f in fields(_cls)) != _names or (_cls is not SubmitResult and _cls not in TWINS):
        raise RuntimeError(f"engine.py builds {_cls.__name__} inline: update it for the class's fields")
_ACCEPTED_TW = TWINS[OrderAccepted]
_FILL_TW = TWINS[Fill]
_TRADE_TW = TWINS[Trade]
_CANCELED_TW = TWINS[OrderCanceled]
_new = object.__new__


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the engine knows it: live, or recently closed (bounded history)."""

    order_id: int
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: int | None
    qty: int  # total quantity (filled + leaves, or filled + canceled for a closed order)
    filled_qty: int
    leaves_qty: int
    status: OrderStatus
    reason: str
    owner: str
    client_id: str
    post_only: bool
    venue: str
    lifecycle: tuple[tuple[str, str], ...]


def _fee_factor(inst: Instrument, bps: Decimal) -> tuple[int, int, int, int]:
    """Fee per (price ticks * lots) in units of 1e-8 quote, as an exact fraction num/den, so that
    fee = sign * round_half_up(ticks * lots * num / den) / 1e8 is the decimal fee rounded to 1e-8 with
    integer arithmetic only: (numerator, denominator, denominator // 2, sign)."""
    k = Fraction(inst.tick_size) * Fraction(inst.lot_size) * Fraction(bps) / 10_000 * 10**8
    sign = -1 if k < 0 else 1
    k = abs(k)
    return k.numerator, k.denominator, k.denominator // 2, sign


class _SymbolState:
    __slots__ = (
        "bbo",
        "book",
        "book_seq",
        "depth",
        "inst",
        "last_price",
        "maker_k",
        "notional",
        "orders",
        "rate",
        "rate_at",
        "rate_orders",
        "taker_k",
        "trade_count",
        "trades",
        "unit",
        "volume",
    )

    def __init__(
        self, inst: Instrument, book: OrderBook, maker_bps: Decimal, taker_bps: Decimal, history: int
    ) -> None:
        self.inst = inst
        self.book = book
        self.unit = float(inst.tick_size) * float(inst.lot_size)
        self.maker_k = _fee_factor(inst, maker_bps)
        self.taker_k = _fee_factor(inst, taker_bps)
        self.trades: deque[Trade] = deque(maxlen=history)
        self.bbo: tuple[Any, ...] | None = None  # last published
        self.depth: tuple[Any, ...] | None = None
        self.book_seq = 0
        self.volume = 0  # lots
        self.notional = 0.0  # quote currency
        self.trade_count = 0
        self.orders = 0  # accepted orders
        self.last_price: int | None = None
        self.rate = 0.0
        self.rate_at: float | None = None
        self.rate_orders = 0


class _Batch:
    """Context manager of :meth:`MatchingEngine.batch`: holds the outbox while the block runs."""

    __slots__ = ("_engine", "_outer")

    def __init__(self, engine: MatchingEngine) -> None:
        self._engine = engine
        self._outer = False

    def __enter__(self) -> MatchingEngine:
        e = self._engine
        if not e._publishing:  # the outermost batch: every call's _drain returns at once until __exit__
            e._publishing = True
            self._outer = True
        return e

    def __exit__(self, *exc: object) -> None:
        if self._outer:
            self._outer = False
            e = self._engine
            e._publishing = False
            e._drain()


class MatchingEngine:
    """The desk's own venue. Synchronous order entry; see the module docstring for the events."""

    name = "matching"

    def __init__(
        self,
        bus: Bus,
        instruments: dict[str, Instrument],
        *,
        venue: str = "sim",
        maker_fee_bps: Decimal | float | str = Decimal("1.0"),
        taker_fee_bps: Decimal | float | str = Decimal("2.5"),
        self_trade: str = "cancel_resting",
        depth_levels: int = 20,
        trade_history: int = 10_000,
        closed_history: int = 100_000,
        journal: Journal | None = None,
        book_class: type[OrderBook] | None = None,
    ) -> None:
        # the compiled build of book.py when usable, else book.py's class (engines/matching/book_impl.py)
        book_cls = book_impl.select("auto") if book_class is None else book_class
        self.book_impl = book_impl.impl_name(book_cls)
        self.bus = bus
        self.venue = venue
        self.depth_levels = depth_levels
        self.self_trade = self_trade
        self.journal = journal
        self._s: dict[str, _SymbolState] = {
            sym: _SymbolState(
                inst,
                book_cls(sym, min_qty=inst.min_qty_lots, stp=self_trade),
                Decimal(str(maker_fee_bps)),
                Decimal(str(taker_fee_bps)),
                trade_history,
            )
            for sym, inst in instruments.items()
        }
        self._next_id = 1
        self._next_trade = 1
        self._by_client: dict[tuple[str, str], list[Any]] = {}  # (owner, client id) -> live book order
        self._closed: dict[int, Any] = {}  # recently closed orders by id (bounded): CL_* tuples (or lists)
        self._closed_ids: deque[int] = deque()
        self._closed_cid: dict[tuple[str, str], int] = {}
        self.closed_history = closed_history
        self._closed_cap = closed_history + max(64, closed_history // 8)
        self._out: list[Event] = []
        self._publishing = False
        self._dirty: set[str] = set()
        self._md_scheduled = False
        self.state = "stopped"
        self.ops = 0
        if journal is not None:
            journal.id_source = self  # the writer reads the id counters at snapshot time

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return list(self._s)

    def book(self, symbol: str) -> OrderBook:
        return self._s[symbol].book

    async def start(self) -> None:
        if self.journal is not None:
            restored = await self.journal.open()
            self._restore(restored)
            self.journal.start()
        self.state = "running"
        for sym in self._s:
            self._dirty.add(sym)
        self.publish_market_data()

    async def stop(self) -> None:
        self.publish_market_data()
        if self.journal is not None:
            await self.journal.close()
        self.state = "stopped"

    async def flush(self) -> None:
        """Wait until every change made before this call is committed to the journal (no-op without)."""
        if self.journal is not None:
            await self.journal.flush()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "venue": self.venue,
            "book_impl": self.book_impl,
            "ops": self.ops,
            "open_orders": sum(len(s.book.orders) for s in self._s.values()),
            "symbols": list(self._s),
        }
        if self.journal is not None:
            out["journal"] = self.journal.status()
            if self.journal.failed:
                out["state"] = "degraded"
        return out

    # --- publishing -------------------------------------------------------------------------------------
    def batch(self) -> _Batch:
        """``with engine.batch(): ...`` — order entry calls made inside (``submit``, ``cancel``,
        ``replace``, ``cancel_all``) return as usual, but their events are published together when
        the block ends: in the same order, with the same content, as one bus batch. For a gateway
        handling a chunk of requests at once (the FIX gateway after one socket read, a REST batch):
        it saves the per-call publishing overhead (see ``bench/matching.py``, "engine, batched").

        Subscribers see the batch's events after its last call, not between calls. Nested batches
        (and a batch opened by a subscriber while the engine is publishing) join the outer one.
        Meant for a synchronous burst: a block that awaits holds the journal's next snapshot (and so
        every flush) until it ends, since operations are journaled only after their events are out."""
        return _Batch(self)

    def _drain(self) -> None:
        """Publish the outbox; only the outermost call does it (subscribers may call back in)."""
        if self._publishing:
            return
        self._publishing = True
        out = self._out
        try:
            # publish_many also publishes events appended to ``out`` while it runs (nested calls)
            self.bus.publish_many(out)
        finally:
            if len(out) > 1000 and self._loop_running():
                # a bulk (a kill's cancels): its events are freed on the next loop turn, not on the
                # caller's path (freeing 10,000 events is a few ms)
                self._out = []
                asyncio.get_running_loop().call_soon(out.clear)
            else:
                out.clear()
            self._publishing = False
        jr = self.journal
        if jr is not None and jr.idle:
            jr.poke()
        if not self._md_scheduled and self._dirty:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.publish_market_data()
            else:
                self._md_scheduled = True
                loop.call_soon(self.publish_market_data)

    @staticmethod
    def _loop_running() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def publish_market_data(self) -> None:
        """Publish BBO/Depth for every symbol touched since the last call, if they changed."""
        self._md_scheduled = False
        dirty = self._dirty
        if not dirty:
            return
        publish = self.bus.publish
        for sym in sorted(dirty):
            s = self._s[sym]
            book = s.book
            bbo = book.bbo()
            if bbo != s.bbo:
                s.bbo = bbo
                publish(
                    BBO(symbol=sym, bid_px=bbo[0], bid_qty=bbo[1], ask_px=bbo[2], ask_qty=bbo[3], venue=self.venue)
                )
            bids, asks = book.depth(self.depth_levels)
            depth = (tuple(bids), tuple(asks))
            if depth != s.depth:
                s.depth = depth
                s.book_seq += 1
                publish(Depth(symbol=sym, bids=depth[0], asks=depth[1], book_seq=s.book_seq, venue=self.venue))
        dirty.clear()

    def _reject(self, req: OrderRequest, reason: str) -> SubmitResult:
        venue = self.venue
        ev = unfrozen_rejected(req.symbol, req.client_id, req.owner, req.side, req.price, req.qty, reason, venue, venue)
        self._out.append(ev)
        if self.journal is not None:
            self.journal.events.append(ev)
        self._drain()
        return _new_result(None, _REJECTED, reason, 0, 0)

    # --- order entry ------------------------------------------------------------------------------------
    def to_grid(self, symbol: str, price: Decimal | str | None, qty: Decimal | str) -> tuple[int | None, int]:
        """Decimal price/quantity (API, FIX) -> (ticks, lots) on the symbol's grid.

        Raises ``KeyError`` for an unknown symbol and :class:`~engines.instruments.OffGridError` (a
        ``ValueError``) naming the price or quantity that is not a whole number of ticks or lots, or
        not positive. The minimum quantity is the book's check (``submit`` rejects with the reason).
        """
        inst = self._s[symbol].inst
        ticks = None if price is None else inst.to_ticks(price)
        lots = inst.to_lots(qty)
        if ticks is not None and ticks <= 0:
            raise OffGridError(f"{symbol}: price {price} must be positive")
        if lots <= 0:
            raise OffGridError(f"{symbol}: quantity {qty} must be positive")
        return ticks, lots

    def submit(self, req: OrderRequest) -> SubmitResult:
        self.ops += 1
        sym = req.symbol
        s = self._s.get(sym)
        if s is None:
            return self._reject(req, R_UNKNOWN_SYMBOL)
        qty = req.qty
        if type(qty) is not int or qty <= 0:
            return self._reject(req, R_QTY)
        price = req.price
        otype = req.type
        if otype is _MARKET_T:
            if price is not None:
                return self._reject(req, R_MARKET_PRICE)
        elif price is None:
            return self._reject(req, R_LIMIT_NO_PRICE)
        elif type(price) is not int or price <= 0:
            return self._reject(req, R_PRICE)
        cid = req.client_id
        owner = req.owner
        if cid and (owner, cid) in self._by_client:
            return self._reject(req, R_DUP_CLIENT_ID)
        book = s.book
        oid = self._next_id
        rec = [req, cid, qty, "", _LIFE_NEW]
        side = req.side
        t = req.tif
        tif = 0 if t is _GTC else 1 if t is _IOC else 2
        o = book.submit(oid, 0 if side is _BUY else 1, price, qty, owner, tif, req.post_only, rec)
        status = o[6]
        if status == 4:
            return self._reject(req, book.reason)
        self._next_id = oid + 1
        s.orders += 1
        out = self._out
        jr = self.journal
        venue = self.venue
        ev = _new(_ACCEPTED_TW)  # unfrozen_accepted(sym, oid, cid, owner, side, otype, t, price, qty, venue)
        ev.seq = 0
        ev.ts = 0
        ev.symbol = sym
        ev.order_id = oid
        ev.client_id = cid
        ev.owner = owner
        ev.side = side
        ev.type = otype
        ev.tif = t
        ev.price = price
        ev.qty = qty
        ev.venue = venue
        out.append(ev)
        if jr is not None:
            jr.events.append(ev)
        if book.fills:
            self._executions(s, o, qty)
        reason = ""
        if status <= 1:  # resting
            if cid:
                self._by_client[(owner, cid)] = o
        else:
            if status != 2:  # expired / canceled remainder
                reason = rec[3] = book.reason
                rec[4] += (_life_entry(status, reason),)
                ev = unfrozen_canceled(sym, oid, cid, owner, side, price, o[3], o[5], _STATUS[status], reason, venue)
                out.append(ev)
                if jr is not None:
                    jr.events.append(ev)
            # _close(o), inlined (the CL_* layout)
            self._closed[oid] = (
                oid, o[1], price, sym, owner, o[5], status, qty, reason, cid, tif, req.post_only, req.venue
            ) + rec[4]
            ids = self._closed_ids
            ids.append(oid)
            if cid:
                self._close_cid(o, cid)
            if len(ids) > self._closed_cap:
                self._evict()
        if jr is not None:
            jr.orders[oid] = o
        self._dirty.add(sym)
        self._drain()
        r = _new(SubmitResult)  # _new_result(oid, _STATUS[status], reason, o[5], o[3] if status <= 1 else 0)
        r.order_id = oid
        r.status = _STATUS[status]
        r.reason = reason
        r.filled_qty = o[5]
        r.leaves_qty = o[3] if status <= 1 else 0
        return r

    def _executions(self, s: _SymbolState, taker: list[Any], start_qty: int) -> None:
        """Turn the book's fills into Trade/Fill events (and STP cancels of resting orders)."""
        book = s.book
        fills = book.fills
        book.fills = []  # the list is ours now: a nested call may reuse the book
        treq: OrderRequest = taker[8][0]
        tcid = taker[8][1]
        sym = s.inst.symbol
        venue = self.venue
        out = self._out
        jr = self.journal
        jorders = None if jr is None else jr.orders
        jtrades = None if jr is None else jr.trades
        jevents = None if jr is None else jr.events
        tside = treq.side
        mside = _SELL if tside is _BUY else _BUY
        towner = treq.owner
        toid = taker[0]
        mnum, mden, mhalf, msign = s.maker_k
        tnum, tden, thalf, tsign = s.taker_k
        history = s.trades
        unit = s.unit
        closed = self._closed
        closed_ids = self._closed_ids
        tleaves = start_qty
        vol = pq = 0
        last_px = None
        trade_id = self._next_trade
        new = _new
        trade_tw = _TRADE_TW
        fill_tw = _FILL_TW
        for m, px, q in fills:
            mrec = m[8]
            if jorders is not None:
                jorders[m[0]] = m
            if px is None:  # resting order canceled by self-trade prevention
                mrec[3] = R_STP
                mrec[4] += (_STP_ENTRY,)
                ev = unfrozen_canceled(sym, m[0], mrec[1], m[4], mside, m[2], q, m[5], _CANCELED, R_STP, venue)
                out.append(ev)
                if jevents is not None:
                    jevents.append(ev)
                self._close(m)
                continue
            tleaves -= q
            n = px * q
            mfee = msign * ((n * mnum + mhalf) // mden) / 1e8  # exact, half away from zero (_fee_factor)
            tfee = tsign * ((n * tnum + thalf) // tden) / 1e8
            moid = m[0]
            mowner = m[4]
            # Trade, then the maker's and the taker's Fill, built inline (see _INLINED): as
            # unfrozen_trade(sym, trade_id, px, q, tside, moid, toid, mowner, towner, mfee, tfee, venue),
            # unfrozen_fill(sym, moid, mrec[1], mowner, mside, px, q, m[3], _MAKER, mfee, trade_id, venue),
            # unfrozen_fill(sym, toid, tcid, towner, tside, px, q, tleaves, _TAKER, tfee, trade_id, venue)
            trade = new(trade_tw)
            trade.seq = 0
            trade.ts = 0
            trade.symbol = sym
            trade.trade_id = trade_id
            trade.price = px
            trade.qty = q
            trade.aggressor = tside
            trade.maker_order_id = moid
            trade.taker_order_id = toid
            trade.maker_owner = mowner
            trade.taker_owner = towner
            trade.maker_fee = mfee
            trade.taker_fee = tfee
            trade.venue = venue
            mf = new(fill_tw)
            mf.seq = 0
            mf.ts = 0
            mf.symbol = sym
            mf.order_id = moid
            mf.client_id = mrec[1]
            mf.owner = mowner
            mf.side = mside
            mf.price = px
            mf.qty = q
            mf.leaves_qty = m[3]
            mf.liquidity = _MAKER
            mf.fee = mfee
            mf.trade_id = trade_id
            mf.venue = venue
            tf = new(fill_tw)
            tf.seq = 0
            tf.ts = 0
            tf.symbol = sym
            tf.order_id = toid
            tf.client_id = tcid
            tf.owner = towner
            tf.side = tside
            tf.price = px
            tf.qty = q
            tf.leaves_qty = tleaves
            tf.liquidity = _TAKER
            tf.fee = tfee
            tf.trade_id = trade_id
            tf.venue = venue
            out += (trade, mf, tf)
            history.append(trade)
            if jtrades is not None:
                jtrades.append(trade)
            trade_id += 1
            vol += q
            pq += n
            last_px = px
            if m[3]:
                if len(mrec[4]) == 1:
                    mrec[4] += (("partially_filled", ""),)
            else:
                life = mrec[4] = mrec[4] + (("filled", ""),)
                mreq = mrec[0]
                # _close(m), inlined (the CL_* layout; a resting order is GTC)
                closed[moid] = (  # noqa: RUF005 - a concatenation is cheaper than unpacking here
                    moid, m[1], px, sym, mowner, m[5], 2, mrec[2], mrec[3], mrec[1], 0, mreq.post_only, mreq.venue
                ) + life
                closed_ids.append(moid)
                if mrec[1]:
                    self._close_cid(m, mrec[1])
        if trade_id != self._next_trade:  # per-symbol stats, written once per call
            s.trade_count += trade_id - self._next_trade
            s.volume += vol
            s.notional += pq * unit
            s.last_price = last_px
        self._next_trade = trade_id
        if len(closed_ids) > self._closed_cap:
            self._evict()
        trec = taker[8]
        if taker[6] == 2:
            trec[4] += (("filled", ""),)
        elif trec[4][-1][0] != "partially_filled":
            trec[4] += (("partially_filled", ""),)

    def _close(self, o: list[Any]) -> None:
        """A book order left the book (filled/canceled/expired/replaced away): keep it for queries,
        as a CL_* tuple. (Inlined in ``submit``, ``_executions`` and ``cancel``: keep those in step.)"""
        oid = o[0]
        rec = o[8]
        req = rec[0]
        cid = rec[1]
        t = req.tif
        self._closed[oid] = (
            oid, o[1], o[2], req.symbol, o[4], o[5], o[6], rec[2], rec[3], cid,
            0 if t is _GTC else 1 if t is _IOC else 2, req.post_only, req.venue,
        ) + rec[4]
        ids = self._closed_ids
        ids.append(oid)
        if cid:
            self._close_cid(o, cid)
        if len(ids) > self._closed_cap:
            self._evict()

    def _close_cid(self, o: list[Any], cid: str) -> None:
        key = (o[4], cid)
        if self._by_client.get(key) is o:
            del self._by_client[key]
        self._closed_cid[key] = o[0]

    def _evict(self) -> None:
        """Forget the oldest closed orders, down to ``closed_history`` (in batches: amortised O(1))."""
        ids = self._closed_ids
        closed = self._closed
        ccid = self._closed_cid
        while len(ids) > self.closed_history:
            old = ids.popleft()
            gone = closed.pop(old, None)
            if gone is not None:
                k = (gone[4], gone[9] if type(gone) is tuple else gone[8][1])  # CL_CLIENT_ID, or a bulk cancel's list
                if ccid.get(k) == old:
                    del ccid[k]

    # --- cancel / replace -------------------------------------------------------------------------------
    def _find_live(self, s: _SymbolState, owner: str | None, client_id: str | None, order_id: int | None) -> Any:
        if order_id is not None:
            o = s.book.orders.get(order_id)
            if o is not None and (owner is None or o[4] == owner):
                return o
            return None
        if client_id and owner is not None:
            o = self._by_client.get((owner, client_id))
            if o is not None and o[8][0].symbol == s.inst.symbol:
                return o
        return None

    def _cancel_rejected(self, symbol: str, owner: str | None, client_id: str | None, order_id: int | None,
                         reason: str) -> None:
        ev = CancelRejected(
            symbol=symbol, order_id=order_id, client_id=client_id or "", owner=owner or "", reason=reason, venue=self.venue
        )
        self._out.append(ev)
        if self.journal is not None:
            self.journal.events.append(ev)
        self._drain()

    def cancel(
        self,
        symbol: str,
        *,
        owner: str | None,
        client_id: str | None = None,
        order_id: int | None = None,
        reason: str = "",
    ) -> bool:
        """Cancel a live order by id or by (owner, client id). ``owner=None`` matches any owner (the
        operator and the kill switch). False (and a ``CancelRejected``) if it is not live."""
        self.ops += 1
        s = self._s.get(symbol)
        if s is None:
            o = None
        elif order_id is not None:  # _find_live, inlined for the common case
            o = s.book.orders.get(order_id)
            if o is not None and owner is not None and o[4] != owner:
                o = None
        else:
            o = self._find_live(s, owner, client_id, order_id)
        if o is None:
            self._cancel_rejected(symbol, owner, client_id, order_id, R_UNKNOWN_SYMBOL if s is None else R_NOT_OPEN)
            return False
        reason = reason or "canceled"
        oid = o[0]
        q = s.book.cancel(oid)
        rec = o[8]
        rec[3] = reason
        life = rec[4] = rec[4] + (_CANCELED_ENTRIES.get(reason) or _life_entry(3, reason),)
        cid = rec[1]
        owner = o[4]
        ev = _new(_CANCELED_TW)  # unfrozen_canceled(symbol, oid, cid, owner, _SIDES[o[1]], o[2], q, o[5], ...)
        ev.seq = 0
        ev.ts = 0
        ev.symbol = symbol
        ev.order_id = oid
        ev.client_id = cid
        ev.owner = owner
        ev.side = _SIDES[o[1]]
        ev.price = o[2]
        ev.canceled_qty = q
        ev.filled_qty = o[5]
        ev.status = _CANCELED
        ev.reason = reason
        ev.venue = self.venue
        self._out.append(ev)
        jr = self.journal
        if jr is not None:
            jr.events.append(ev)
            jr.orders[oid] = o
        req = rec[0]
        # _close(o), inlined (the CL_* layout; a resting order is GTC)
        self._closed[oid] = (  # noqa: RUF005 - a concatenation is cheaper than unpacking here
            oid, o[1], o[2], symbol, owner, o[5], 3, rec[2], reason, cid, 0, req.post_only, req.venue
        ) + life
        ids = self._closed_ids
        ids.append(oid)
        if cid:
            self._close_cid(o, cid)
        if len(ids) > self._closed_cap:
            self._evict()
        self._dirty.add(symbol)
        self._drain()
        return True

    def cancel_all(self, *, owner: str | None = None, symbol: str | None = None, reason: str = "") -> list[CancelResult]:
        """Cancel every live order of ``owner`` (None: everyone's) on ``symbol`` (None: every symbol).

        The bulk path (the kill switch's): each book drops the orders in one pass
        (:meth:`OrderBook.cancel_all`), then one ``OrderCanceled`` per order is published — in the
        order the orders entered the book, as one batch on the bus — and the journal records the
        whole cancel as one entry (see ``Journal.record_bulk_cancel``) instead of a row per order.
        """
        results: list[CancelResult] = []
        why = reason or "cancel all"
        life = (("canceled", why),)
        new_then_canceled = _LIFE_NEW + life  # the common lifecycle, shared by every untouched order
        venue = self.venue
        out = self._out
        jr = self.journal
        closed = self._closed
        closed_ids = self._closed_ids
        by_client = self._by_client
        closed_cid = self._closed_cid
        add = results.append
        new = object.__new__
        canceled_twin = TWINS[OrderCanceled]
        result_twin = TWINS[CancelResult]
        sides = _SIDES
        status = _CANCELED
        everything = owner is None and symbol is None
        for sym, s in self._s.items():
            if symbol is not None and sym != symbol:
                continue
            victims, qtys = s.book.cancel_all(owner)
            if not victims:
                continue
            first = len(out)
            ids = [o[0] for o in victims]
            with_cid = []
            # new_canceled(...) and new_cancel_result(...) inlined (fastevents' twin construction, the
            # fields in declaration order): two calls fewer per order on the kill switch's path
            for o, q in zip(victims, qtys):
                rec = o[8]
                cid = rec[1]
                oowner = o[4]
                rec[3] = why
                lc = rec[4]
                rec[4] = new_then_canceled if lc is _LIFE_NEW else lc + life
                oid = o[0]
                ev = new(canceled_twin)
                ev.seq = 0
                ev.ts = 0
                ev.symbol = sym
                ev.order_id = oid
                ev.client_id = cid
                ev.owner = oowner
                ev.side = sides[o[1]]
                ev.price = o[2]
                ev.canceled_qty = q
                ev.filled_qty = o[5]
                ev.status = status
                ev.reason = why
                ev.venue = venue
                ev.__class__ = OrderCanceled
                out.append(ev)
                r = new(result_twin)
                r.venue = venue
                r.symbol = sym
                r.order_id = oid
                r.client_id = cid
                r.owner = oowner
                r.confirmed = True
                r.reason = why
                r.__class__ = CancelResult
                add(r)
                if cid and not everything:
                    with_cid.append(o)
            # _close(o) for each, in bulk: a live order's (owner, client id) maps to it
            closed.update(zip(ids, victims))
            closed_ids.extend(ids)
            for o in with_cid:  # (everything: all at once below)
                key = (o[4], o[8][1])
                if by_client.get(key) is o:
                    del by_client[key]
                closed_cid[key] = o[0]
            if jr is not None:
                jr.record_bulk_cancel(sym, owner, why, ids, qtys, out[first:])
            self._dirty.add(sym)
        if everything:  # every live order is gone, and the client-id map holds only live ones
            closed_cid.update(zip(by_client, map(_first, by_client.values())))
            by_client.clear()
        if len(closed_ids) > self._closed_cap:
            self._evict()
        self.ops += 1
        self._drain()
        return results

    def replace(
        self,
        symbol: str,
        *,
        owner: str | None,
        client_id: str | None = None,
        order_id: int | None = None,
        new_client_id: str = "",
        price: int | None,
        qty: int,
    ) -> SubmitResult:
        """Amend a live order: ``price`` (None keeps it) and ``qty``, the new *open* (leaves) quantity.

        Same price and a quantity not above the current leaves keeps time priority; anything else
        loses it (the order goes to the back of its new level, and may trade if the new price
        crosses; a post-only order whose new price would cross is refused instead). ``new_client_id``
        ("" keeps the old one) becomes the order's client id. A refusal publishes ``CancelRejected``
        and returns status REJECTED with the reason; the order is untouched.
        """
        self.ops += 1
        s = self._s.get(symbol)
        o = None if s is None else self._find_live(s, owner, client_id, order_id)
        oid = order_id if o is None else o[0]

        def refuse(reason: str) -> SubmitResult:
            self._cancel_rejected(symbol, owner, client_id, order_id, reason)
            if o is None:
                return SubmitResult(oid, _REJECTED, reason, 0, 0)
            return SubmitResult(oid, _REJECTED, reason, o[5], o[3])

        if s is None:
            return refuse(R_UNKNOWN_SYMBOL)
        if o is None:
            return refuse(R_UNKNOWN)
        if type(qty) is not int or qty <= 0:
            return refuse(R_QTY)
        if price is not None and (type(price) is not int or price <= 0):
            return refuse(R_PRICE)
        rec = o[8]
        req: OrderRequest = rec[0]
        old_cid = rec[1]
        new_cid = new_client_id or old_cid
        if new_cid != old_cid and (o[4], new_cid) in self._by_client:
            return refuse(R_DUP_CLIENT_ID)
        book = s.book
        if req.post_only and price is not None and price != o[2] and book.would_cross(o[1], price):
            return refuse("post-only order would cross")
        r = book.replace(o[0], price, qty, self._next_id)  # priority if it loses its own
        if r is not o and not isinstance(r, str):
            self._next_id += 1  # that number is used up (order ids and priorities share the counter)
        if isinstance(r, str):
            return refuse(r)
        kept = r is o
        # re-key the client id (the order list may be a new one)
        if old_cid and self._by_client.get((o[4], old_cid)) is o:
            del self._by_client[(o[4], old_cid)]
        rec[1] = new_cid
        rec[2] = o[5] + qty  # total = what was filled before + the new open quantity
        rec[4] += (("replaced", "" if kept else "lost priority"),)
        ev = unfrozen_replaced(symbol, o[0], new_cid, old_cid, o[4], _SIDES[o[1]], r[2], qty, kept, self.venue)
        self._out.append(ev)
        jr = self.journal
        if jr is not None:
            jr.events.append(ev)
        if book.fills:
            self._executions(s, r, qty)
        status = r[6]
        reason = ""
        if status <= 1:
            if new_cid:
                self._by_client[(o[4], new_cid)] = r
        else:
            if status == 3:  # STP canceled the rest of the amended order
                reason = rec[3] = book.reason
                rec[4] += (("canceled", reason),)
                ev2 = unfrozen_canceled(
                    symbol, o[0], new_cid, o[4], _SIDES[o[1]], r[2], r[3], r[5], _CANCELED, reason, self.venue
                )
                self._out.append(ev2)
                if jr is not None:
                    jr.events.append(ev2)
            self._close(r)
        if jr is not None:
            jr.orders[o[0]] = r
        self._dirty.add(symbol)
        self._drain()
        return _new_result(o[0], _STATUS[status], reason, r[5], r[3] if status <= 1 else 0)

    # --- queries ------------------------------------------------------------------------------------------
    def open_orders(self, *, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]:
        out: list[OpenOrder] = []
        for sym, s in self._s.items():
            if symbol is not None and sym != symbol:
                continue
            for o in s.book.orders.values():
                if owner is None or o[4] == owner:
                    out.append(OpenOrder(self.venue, sym, o[0], o[8][1], o[4], _SIDES[o[1]], o[2], o[3], o[5]))
        return out

    def order(
        self, symbol: str, *, owner: str | None = None, client_id: str | None = None, order_id: int | None = None
    ) -> OrderView | None:
        s = self._s.get(symbol)
        if s is None:
            return None
        o = self._find_live(s, owner, client_id, order_id)
        if o is None:
            if order_id is None and client_id and owner is not None:
                order_id = self._closed_cid.get((owner, client_id))
            c = None if order_id is None else self._closed.get(order_id)
            if c is None or (owner is not None and c[4] != owner):
                return None
            if type(c) is tuple:  # the CL_* layout
                if c[3] != symbol:
                    return None
                return OrderView(
                    order_id=c[0],
                    symbol=symbol,
                    side=_SIDES[c[1]],
                    type=_MARKET_T if c[2] is None else _LIMIT_T,
                    tif=_TIFS[c[10]],
                    price=c[2],
                    qty=c[7],
                    filled_qty=c[5],
                    leaves_qty=0,
                    status=_STATUS[c[6]],
                    reason=c[8],
                    owner=c[4],
                    client_id=c[9],
                    post_only=c[11],
                    venue=c[12],
                    lifecycle=c[13:],
                )
            if c[8][0].symbol != symbol:  # a bulk cancel's order list
                return None
            o = c
        rec = o[8]
        req: OrderRequest = rec[0]
        status = o[6]
        live = status <= 1
        return OrderView(
            order_id=o[0],
            symbol=symbol,
            side=req.side,
            type=req.type,
            tif=req.tif,
            price=o[2],
            qty=rec[2],
            filled_qty=o[5],
            leaves_qty=o[3] if live else 0,
            status=_STATUS[status],
            reason=rec[3],
            owner=o[4],
            client_id=rec[1],
            post_only=req.post_only,
            venue=req.venue,
            lifecycle=rec[4],
        )

    def bbo(self, symbol: str) -> BBO:
        bp, bq, ap, aq = self._s[symbol].book.bbo()
        return BBO(symbol=symbol, bid_px=bp, bid_qty=bq, ask_px=ap, ask_qty=aq, venue=self.venue)

    def depth(self, symbol: str, levels: int = 20) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
        bids, asks = self._s[symbol].book.depth(levels)
        return tuple(bids), tuple(asks)

    def recent_trades(self, symbol: str, n: int = 100) -> list[Trade]:
        """The last ``n`` trades (oldest first), from the in-memory ring buffer."""
        trades = self._s[symbol].trades
        # freeze(): inside engine.batch() the latest trades may not be published (and frozen) yet
        if n >= len(trades):
            return list(map(freeze, trades))
        return list(map(freeze, list(trades)[len(trades) - n :])) if n > 0 else []

    def last_trade(self, symbol: str) -> Trade | None:
        trades = self._s[symbol].trades
        return freeze(trades[-1]) if trades else None

    def stats(self, symbol: str) -> dict[str, Any]:
        """Volume (lots and base units), notional, trade count, accepted orders, orders/s (measured
        between calls at least a second apart on the bus clock), last price, open orders."""
        s = self._s[symbol]
        inst = s.inst
        now = self.bus.clock.monotonic()
        if s.rate_at is None:
            s.rate_at = now
            s.rate_orders = s.orders
        elif now - s.rate_at >= 1.0:
            s.rate = (s.orders - s.rate_orders) / (now - s.rate_at)
            s.rate_at = now
            s.rate_orders = s.orders
        bp, bq, ap, aq = s.book.bbo()
        return {
            "volume_lots": s.volume,
            "volume": inst.qty(s.volume),
            "notional": round(s.notional, 8),
            "trade_count": s.trade_count,
            "orders": s.orders,
            "orders_per_s": round(s.rate, 3),
            "open_orders": len(s.book.orders),
            "last_price": s.last_price,
            "bid_px": bp,
            "bid_qty": bq,
            "ask_px": ap,
            "ask_qty": aq,
        }

    # --- restore ------------------------------------------------------------------------------------------
    def _restore(self, restored: Any) -> None:
        """Put the journal's resting orders back (in priority order) and its trade history."""
        for row in restored.orders:
            s = self._s.get(row.symbol)
            if s is None:
                log.warning("journal: order %d on unknown symbol %s dropped", row.order_id, row.symbol)
                continue
            req = OrderRequest(
                symbol=row.symbol,
                side=Side(row.side),
                qty=row.qty,
                price=row.price,
                type=OrderType(row.type),
                tif=TimeInForce(row.tif),
                post_only=row.post_only,
                client_id=row.client_id,
                owner=row.owner,
                venue=row.venue,
            )
            rec = [req, row.client_id, row.qty, row.reason, (("restored", row.status),)]
            o = s.book.restore(
                row.order_id, 0 if row.side == "buy" else 1, row.price, row.leaves, row.owner, row.filled, row.prio, rec
            )
            if row.client_id:
                self._by_client[(row.owner, row.client_id)] = o
        for t in restored.trades:
            s = self._s.get(t.symbol)
            if s is not None:
                s.trades.append(t)
                s.last_price = t.price
        for sym, (volume, count, notional) in restored.totals.items():
            s = self._s.get(sym)
            if s is not None:
                s.volume, s.trade_count, s.notional = volume, count, notional
        self._next_id = max(self._next_id, restored.next_order_id)
        self._next_trade = max(self._next_trade, restored.next_trade_id)
        self.ops = max(self.ops, restored.ops)
