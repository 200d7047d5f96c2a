"""One symbol's limit order book: integer ticks and lots, price-time priority, no I/O.

Speed is the point of this module (issue 3: ≥ 1.5M ops/s from Python), so its shapes are chosen for
CPython rather than for looks:

* An order is a plain ``list`` (cheaper to make and index than any object); the slot layout is the
  ``O_*`` constants below. The hot functions index with literal integers, commented where it matters.
* A price level is one ``list`` ``[total_lots, live_count, head, order, order, …]`` in a ``dict``
  keyed by price: orders in time priority from index ``head`` (3 when fresh); matching advances
  ``head`` instead of deleting, and drops the consumed prefix once it is more than half the list.
  One allocation per new level, O(1) per fill however deep the level.
* Each side keeps its level prices in one sorted ``list``: bids ascending (best = ``[-1]``), asks as
  *negated* prices ascending (best ask = ``-keys[-1]``), so the touch is always at the end and
  adding/removing near the touch moves only a few elements.
* Cancels are lazy: the order's leaves become 0 (the "dead" marker), the level's totals drop, and the
  dead entry stays in the level until matching reaches it or the level empties. A level holding
  more than twice as many entries as live orders (+16) is compacted, so memory stays bounded.
* Time priority is the order id (the caller's increasing ids); a replace that loses priority takes
  a fresh number from the caller. The journal stores it to rebuild each level's queue.
* Results go to :attr:`OrderBook.fills` (cleared when ``submit``/``replace`` start): ``(maker, price, qty)``
  for each execution in order, and ``(maker, None, qty)`` for a resting order canceled by self-trade
  prevention. No events, no callbacks: the engine turns these into bus events after the call.

Order types: GTC limit, market (``price=None``; never rests), IOC, FOK (all-or-nothing checked before
any matching), post-only (rejected if it would cross). Self-trade prevention by owner:
``"cancel_resting"`` (the resting order is canceled, matching continues), ``"cancel_incoming"`` (the
rest of the incoming order is canceled, the resting order stays) or ``"none"``.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

# --- order slots --------------------------------------------------------------------------------------
O_ID = 0  # order id (int, assigned by the caller)
O_SIDE = 1  # BUY (0) or SELL (1)
O_PX = 2  # limit price in ticks; None for market orders
O_QTY = 3  # leaves (open) lots; 0 marks a dead order inside a level. For an order that did not rest
#           (expired/canceled/rejected incoming) it holds the quantity that was canceled.
O_OWNER = 4  # owner string (self-trade prevention compares these)
O_FILLED = 5  # cumulative filled lots
O_STATUS = 6  # ST_* code
O_PRIO = 7  # time priority: the order id, or a fresh number from the caller when a replace loses it
O_REF = 8  # the caller's data (the engine keeps its order record here)

BUY = 0
SELL = 1

TIF_GTC = 0
TIF_IOC = 1
TIF_FOK = 2

ST_NEW = 0
ST_PARTIAL = 1
ST_FILLED = 2
ST_CANCELED = 3
ST_REJECTED = 4
ST_EXPIRED = 5
STATUS_NAMES = ("new", "partially_filled", "filled", "canceled", "rejected", "expired")

STP_NONE = 0
STP_CANCEL_RESTING = 1
STP_CANCEL_INCOMING = 2
STP_MODES = {"none": STP_NONE, "cancel_resting": STP_CANCEL_RESTING, "cancel_incoming": STP_CANCEL_INCOMING}

# Reasons (exact strings: tests and API clients see them)
R_MIN_QTY = "quantity below minimum of {} lots"
R_QTY = "quantity must be a positive integer number of lots"
R_PRICE = "price must be a positive integer number of ticks"
R_POST_ONLY_CROSS = "post-only order would cross"
R_POST_ONLY_TIF = "post-only needs a GTC limit order"
R_IOC = "IOC: unfilled quantity expired"
R_FOK = "FOK: not fully fillable"
R_MARKET = "market: unfilled quantity expired (no more liquidity)"
R_STP = "self-trade prevention"
R_UNKNOWN = "unknown order"

_INF = 1 << 62  # a market buy's limit


class OrderBook:
    """Price-time priority book for one symbol. Not thread-safe; never awaits.

    The caller passes integers (order ids, prices in ticks > 0, lots > 0); the engine validates types
    and the tick/lot grid before calling. The book checks the minimum quantity, post-only, FOK.
    """

    __slots__ = (
        "_ask_keys",
        "_asks",
        "_bid_keys",
        "_bids",
        "fills",
        "min_qty",
        "orders",
        "reason",
        "stp",
        "symbol",
    )

    def __init__(self, symbol: str = "", *, min_qty: int = 1, stp: str = "cancel_resting") -> None:
        self.symbol = symbol
        self.min_qty = min_qty
        self.stp = STP_MODES[stp]
        self.orders: dict[int, list[Any]] = {}  # live resting orders by id
        # price -> level list [total lots, live orders, order, order, ...] (orders in time priority)
        self._bids: dict[int, list[Any]] = {}
        self._asks: dict[int, list[Any]] = {}
        self._bid_keys: list[int] = []  # ascending prices
        self._ask_keys: list[int] = []  # ascending negated prices
        self.fills: list[tuple[list[Any], int | None, int]] = []
        self.reason = ""  # why the last order was rejected/expired/canceled on entry

    # --- order entry --------------------------------------------------------------------------------
    def submit(
        self,
        oid: int,
        side: int,
        price: int | None,
        qty: int,
        owner: str,
        tif: int = TIF_GTC,
        post_only: bool = False,
        ref: Any = None,
    ) -> list[Any]:
        """Match and/or rest one order; returns the order list (see the ``O_*`` slots).

        Afterwards ``O_STATUS`` is NEW/PARTIAL (resting), FILLED, EXPIRED (IOC/FOK/market remainder),
        CANCELED (self-trade prevention canceled the incoming remainder) or REJECTED, and
        :attr:`reason` says why for the last three; :attr:`fills` holds the executions.
        """
        fills = self.fills
        if fills:
            fills.clear()
        o = [oid, side, price, qty, owner, 0, 0, oid, ref]  # a fresh order's priority is its id
        if qty < self.min_qty:
            return self._reject(o, R_MIN_QTY.format(self.min_qty) if qty > 0 else R_QTY)
        if post_only or tif == 2:  # the rarer kinds take the general path
            if price is None:
                return self._market(o, tif, post_only)
            if self.would_cross(side, price):
                return self._cross(o, tif, post_only)
            if tif:
                return self._no_cross(o, tif, post_only)
            self._rest(o)
            return o
        if price is None:  # market (IOC semantics)
            if side == 0:
                self._take_buy(o, _INF)
            else:
                self._take_sell(o, 0)
            if o[3] and o[6] != 3:  # a remainder not already canceled by self-trade prevention
                o[6] = 5
                self.reason = R_MARKET
            return o
        if side == 0:
            keys = self._ask_keys
            if keys and -keys[-1] <= price:
                self._take_buy(o, price)
                if not o[3] or o[6] == 3:  # filled, or the rest canceled by self-trade prevention
                    return o
                if tif:
                    o[6] = 5
                    self.reason = R_IOC
                    return o
            elif tif:
                o[6] = 5
                self.reason = R_IOC
                return o
            # rest a bid (inlined: this is the most common operation)
            levels = self._bids
            lvl = levels.get(price)
            if lvl is None:
                levels[price] = [o[3], 1, 3, o]
                insort(self._bid_keys, price)
            else:
                lvl[0] += o[3]
                lvl[1] += 1
                lvl.append(o)
        else:
            keys = self._bid_keys
            if keys and keys[-1] >= price:
                self._take_sell(o, price)
                if not o[3] or o[6] == 3:
                    return o
                if tif:
                    o[6] = 5
                    self.reason = R_IOC
                    return o
            elif tif:
                o[6] = 5
                self.reason = R_IOC
                return o
            levels = self._asks
            lvl = levels.get(price)
            if lvl is None:
                levels[price] = [o[3], 1, 3, o]
                insort(self._ask_keys, -price)
            else:
                lvl[0] += o[3]
                lvl[1] += 1
                lvl.append(o)
        self.orders[oid] = o
        return o

    def _reject(self, o: list[Any], reason: str) -> list[Any]:
        o[6] = 4
        self.reason = reason
        return o

    def _expire(self, o: list[Any], reason: str) -> list[Any]:
        o[6] = 5
        self.reason = reason
        return o

    def _no_cross(self, o: list[Any], tif: int, post_only: bool) -> list[Any]:
        """An IOC/FOK limit that does not reach the other side: nothing to do but expire."""
        if post_only:
            return self._reject(o, R_POST_ONLY_TIF)
        return self._expire(o, R_FOK if tif == 2 else R_IOC)

    def _market(self, o: list[Any], tif: int, post_only: bool) -> list[Any]:
        if post_only:
            return self._reject(o, R_POST_ONLY_TIF)
        side = o[1]
        if tif == 2 and not self._fillable(side, _INF if side == 0 else 0, o[3], o[4]):
            return self._expire(o, R_FOK)
        if side == 0:
            self._take_buy(o, _INF)
        else:
            self._take_sell(o, 0)
        if o[3] and o[6] != 3:  # a remainder not already canceled by self-trade prevention
            return self._expire(o, R_FOK if tif == 2 else R_MARKET)
        return o

    def _cross(self, o: list[Any], tif: int, post_only: bool) -> list[Any]:
        """A limit order that reaches the other side."""
        if post_only:
            return self._reject(o, R_POST_ONLY_TIF if tif else R_POST_ONLY_CROSS)
        price = o[2]
        if tif == 2 and not self._fillable(o[1], price, o[3], o[4]):
            return self._expire(o, R_FOK)
        if o[1] == 0:
            self._take_buy(o, price)
        else:
            self._take_sell(o, price)
        if o[3] == 0 or o[6] == 3:  # filled, or the rest canceled by self-trade prevention
            return o
        if tif:
            return self._expire(o, R_FOK if tif == 2 else R_IOC)
        self._rest(o)
        return o

    def _rest(self, o: list[Any]) -> None:
        """Append ``o`` (its priority ``o[7]`` already set) to the back of its level."""
        px = o[2]
        if o[1] == 0:
            levels = self._bids
            lvl = levels.get(px)
            if lvl is None:
                levels[px] = [o[3], 1, 3, o]
                insort(self._bid_keys, px)
            else:
                lvl[0] += o[3]
                lvl[1] += 1
                lvl.append(o)
        else:
            levels = self._asks
            lvl = levels.get(px)
            if lvl is None:
                levels[px] = [o[3], 1, 3, o]
                insort(self._ask_keys, -px)
            else:
                lvl[0] += o[3]
                lvl[1] += 1
                lvl.append(o)
        self.orders[o[0]] = o

    def _take_buy(self, o: list[Any], limit: int) -> None:
        """Match an incoming buy against the asks up to ``limit``; updates ``o`` in place.

        ``_take_sell`` is its mirror image, written out rather than parameterised on purpose: a
        side flag or comparison callback would add work to every iteration of the hottest loop.
        """
        qty = start = o[3]
        owner = o[4]
        stp = self.stp
        keys = self._ask_keys
        levels = self._asks
        orders = self.orders
        fills = self.fills
        while keys:
            px = -keys[-1]
            if px > limit:
                break
            lvl = levels[px]
            h = lvl[2]
            live = lvl[1]
            took = 0  # the level's totals are written back once, not per fill
            while True:
                m = lvl[h]
                mq = m[3]
                if not mq:  # dead (canceled) entry
                    h += 1
                    continue
                if stp and m[4] == owner:
                    if stp == 2:  # cancel incoming: the rest of o is canceled, m stays
                        qty = -qty  # signal: stop everything (sign restored below)
                        break
                    h += 1
                    m[3] = 0
                    m[6] = 3
                    del orders[m[0]]
                    fills.append((m, None, mq))
                    took += mq
                    live -= 1
                    if not live:
                        break
                    continue
                if mq <= qty:
                    h += 1
                    m[3] = 0
                    m[5] += mq
                    m[6] = 2
                    del orders[m[0]]
                    fills.append((m, px, mq))
                    qty -= mq
                    took += mq
                    live -= 1
                    if not live or not qty:
                        break
                else:
                    m[3] = mq - qty
                    m[5] += qty
                    m[6] = 1
                    fills.append((m, px, qty))
                    took += qty
                    qty = 0
                    break
            if not live:
                del levels[px]
                keys.pop()
            else:
                lvl[0] -= took
                lvl[1] = live
                if h > 32 and h + h > len(lvl):  # drop the consumed prefix now and then
                    del lvl[3:h]
                    lvl[2] = 3
                else:
                    lvl[2] = h
            if qty <= 0:
                break
        if qty < 0:
            qty = -qty
            o[6] = 3
            self.reason = R_STP
        elif qty == 0:
            o[6] = 2
        elif qty != start:
            o[6] = 1
        o[5] += start - qty
        o[3] = qty

    def _take_sell(self, o: list[Any], limit: int) -> None:
        """Mirror of :meth:`_take_buy` against the bids down to ``limit``."""
        qty = start = o[3]
        owner = o[4]
        stp = self.stp
        keys = self._bid_keys
        levels = self._bids
        orders = self.orders
        fills = self.fills
        while keys:
            px = keys[-1]
            if px < limit:
                break
            lvl = levels[px]
            h = lvl[2]
            live = lvl[1]
            took = 0  # the level's totals are written back once, not per fill
            while True:
                m = lvl[h]
                mq = m[3]
                if not mq:  # dead (canceled) entry
                    h += 1
                    continue
                if stp and m[4] == owner:
                    if stp == 2:  # cancel incoming: the rest of o is canceled, m stays
                        qty = -qty  # signal: stop everything (sign restored below)
                        break
                    h += 1
                    m[3] = 0
                    m[6] = 3
                    del orders[m[0]]
                    fills.append((m, None, mq))
                    took += mq
                    live -= 1
                    if not live:
                        break
                    continue
                if mq <= qty:
                    h += 1
                    m[3] = 0
                    m[5] += mq
                    m[6] = 2
                    del orders[m[0]]
                    fills.append((m, px, mq))
                    qty -= mq
                    took += mq
                    live -= 1
                    if not live or not qty:
                        break
                else:
                    m[3] = mq - qty
                    m[5] += qty
                    m[6] = 1
                    fills.append((m, px, qty))
                    took += qty
                    qty = 0
                    break
            if not live:
                del levels[px]
                keys.pop()
            else:
                lvl[0] -= took
                lvl[1] = live
                if h > 32 and h + h > len(lvl):  # drop the consumed prefix now and then
                    del lvl[3:h]
                    lvl[2] = 3
                else:
                    lvl[2] = h
            if qty <= 0:
                break
        if qty < 0:
            qty = -qty
            o[6] = 3
            self.reason = R_STP
        elif qty == 0:
            o[6] = 2
        elif qty != start:
            o[6] = 1
        o[5] += start - qty
        o[3] = qty

    def _fillable(self, side: int, limit: int, qty: int, owner: str) -> bool:
        """Could ``qty`` fill completely right now (FOK)? Counts what matching would really take:
        with self-trade prevention, own orders never fill (cancel_resting) or stop the order
        (cancel_incoming)."""
        stp = self.stp
        if side == 0:
            levels = self._asks
            keys = self._ask_keys
            sign = -1  # ask keys are negated prices
        else:
            levels = self._bids
            keys = self._bid_keys
            sign = 1
        need = qty
        i = len(keys) - 1
        while i >= 0:
            px = sign * keys[i]
            i -= 1
            if (px > limit) if side == 0 else (px < limit):
                return False
            lvl = levels[px]
            if not stp:
                need -= lvl[0]
                if need <= 0:
                    return True
                continue
            for j in range(lvl[2], len(lvl)):
                m = lvl[j]
                mq = m[3]
                if not mq:
                    continue
                if m[4] == owner:
                    if stp == 2:
                        return False
                    continue
                need -= mq
                if need <= 0:
                    return True
        return False

    # --- cancel / replace ----------------------------------------------------------------------------
    def cancel(self, oid: int) -> int:
        """Cancel a resting order; returns the canceled (leaves) lots, 0 if it is not live."""
        o = self.orders.pop(oid, None)
        if o is None:
            return 0
        q = o[3]
        o[3] = 0
        o[6] = 3
        # take it out of its level (inlined _unlink: cancels are a quarter of all operations)
        px = o[2]
        if o[1] == 0:
            levels = self._bids
            lvl = levels[px]
            lvl[1] -= 1
            if not lvl[1]:
                del levels[px]
                keys = self._bid_keys
                if keys[-1] == px:
                    keys.pop()
                else:
                    del keys[bisect_left(keys, px)]
                return q
        else:
            levels = self._asks
            lvl = levels[px]
            lvl[1] -= 1
            if not lvl[1]:
                del levels[px]
                keys = self._ask_keys
                if keys[-1] == -px:
                    keys.pop()
                else:
                    del keys[bisect_left(keys, -px)]
                return q
        lvl[0] -= q
        if len(lvl) - lvl[2] > 2 * lvl[1] + 16:  # too many dead entries: compact (keeps priority order)
            lvl[3:] = [m for m in lvl[lvl[2] :] if m[3]]
            lvl[2] = 3
        return q

    def cancel_all(self, owner: str | None = None) -> tuple[list[list[Any]], list[int]]:
        """Cancel every resting order (of ``owner``; None: all) in one pass over the book.

        Returns the canceled orders, in the order they entered the book (as :attr:`orders` holds them),
        and their canceled (leaves) lots; each order is marked CANCELED with leaves 0, as :meth:`cancel`
        leaves it. Without an owner the levels are simply dropped; with one, each level holding its
        orders is rebuilt once (live orders of others keep their time priority), not edited per order.
        """
        orders = self.orders
        if owner is None:
            victims = list(orders.values())
            orders.clear()
            self._bids.clear()
            self._asks.clear()
            self._bid_keys.clear()
            self._ask_keys.clear()
        else:
            victims = [o for o in orders.values() if o[4] == owner]
            if not victims:
                return victims, []
            touched: dict[tuple[int, int], None] = {}
            for o in victims:
                del orders[o[0]]
                touched[(o[1], o[2])] = None
        qtys = [o[3] for o in victims]
        for o in victims:
            o[3] = 0
            o[6] = 3
        if owner is not None:
            emptied = [set(), set()]  # level keys (bids: price, asks: -price) to drop, per side
            for side, px in touched:
                levels = self._bids if side == 0 else self._asks
                lvl = levels[px]
                live = [m for m in lvl[lvl[2] :] if m[3]]  # others' live orders, in time priority
                if live:
                    lvl[3:] = live
                    lvl[0] = sum(m[3] for m in live)
                    lvl[1] = len(live)
                    lvl[2] = 3
                else:
                    del levels[px]
                    emptied[side].add(px if side == 0 else -px)
            for keys, gone in ((self._bid_keys, emptied[0]), (self._ask_keys, emptied[1])):
                if gone:
                    keys[:] = [k for k in keys if k not in gone]  # stays sorted
        return victims, qtys

    def would_cross(self, side: int, price: int) -> bool:
        if side == 0:
            keys = self._ask_keys
            return bool(keys) and -keys[-1] <= price
        keys = self._bid_keys
        return bool(keys) and keys[-1] >= price

    def replace(self, oid: int, price: int | None, qty: int, prio: int) -> list[Any] | str:
        """Amend a resting order to ``price`` (None keeps it) and ``qty`` new *open* lots.

        ``prio`` is the time priority the order takes if it loses its own: it must be above every
        priority in the book (the engine draws it from its order-id counter, so it also stays below
        every later order's id).

        Same price and qty not above the current leaves: amended in place, time priority kept (the
        same order list is returned). Otherwise the order loses priority: a new order list with the
        same id, filled quantity and ref is matched (it may trade if the new price crosses; post-only
        is the caller's check, see :meth:`would_cross`) and/or rests at the back of its level.
        Returns the (new) order list, or the reason for refusing (the order is then untouched).
        """
        fills = self.fills
        if fills:
            fills.clear()
        o = self.orders.get(oid)
        if o is None:
            return R_UNKNOWN
        if qty <= 0:
            return R_QTY
        if qty < self.min_qty:
            return R_MIN_QTY.format(self.min_qty)
        if price is None:
            price = o[2]
        elif price <= 0:
            return R_PRICE
        leaves = o[3]
        if price == o[2] and qty <= leaves:
            if qty != leaves:
                lvl = (self._bids if o[1] == 0 else self._asks)[price]
                lvl[0] -= leaves - qty
                o[3] = qty
            return o
        self.cancel(oid)
        n = [oid, o[1], price, qty, o[4], o[5], ST_PARTIAL if o[5] else ST_NEW, prio, o[8]]
        if self.would_cross(n[1], price):
            if n[1] == 0:
                self._take_buy(n, price)
            else:
                self._take_sell(n, price)
            if n[3] == 0 or n[6] == 3:
                return n
        self._rest(n)
        return n

    # --- restore (journal) ---------------------------------------------------------------------------
    def restore(
        self, oid: int, side: int, price: int, qty: int, owner: str, filled: int, prio: int, ref: Any = None
    ) -> list[Any]:
        """Put a resting order back without matching. Call in ascending ``prio`` order."""
        o = [oid, side, price, qty, owner, filled, ST_PARTIAL if filled else ST_NEW, prio, ref]
        self._rest(o)
        return o

    # --- views ---------------------------------------------------------------------------------------
    @property
    def best_bid(self) -> int | None:
        keys = self._bid_keys
        return keys[-1] if keys else None

    @property
    def best_ask(self) -> int | None:
        keys = self._ask_keys
        return -keys[-1] if keys else None

    def bbo(self) -> tuple[int | None, int, int | None, int]:
        """(bid price, bid lots, ask price, ask lots); a missing side is (None, 0)."""
        bk = self._bid_keys
        ak = self._ask_keys
        if bk:
            bp = bk[-1]
            bq = self._bids[bp][0]
        else:
            bp, bq = None, 0
        if ak:
            ap = -ak[-1]
            aq = self._asks[ap][0]
        else:
            ap, aq = None, 0
        return bp, bq, ap, aq

    def depth(self, levels: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Best ``levels`` price levels per side as (price, lots), best first."""
        bids = self._bids
        asks = self._asks
        bk = self._bid_keys
        ak = self._ask_keys
        b = [(p, bids[p][0]) for p in bk[: -levels - 1 : -1]] if levels > 0 else []
        a = [(-k, asks[-k][0]) for k in ak[: -levels - 1 : -1]] if levels > 0 else []
        return b, a

    def level_orders(self, side: int, price: int) -> list[list[Any]]:
        """Live orders at one level in time priority."""
        lvl = (self._bids if side == 0 else self._asks).get(price)
        return [] if lvl is None else [m for m in lvl[lvl[2] :] if m[3]]

    def iter_orders(self, side: int) -> list[list[Any]]:
        """Live orders of one side, best price first, each level in time priority."""
        out: list[list[Any]] = []
        if side == 0:
            for p in reversed(self._bid_keys):
                lvl = self._bids[p]
                out.extend(m for m in lvl[lvl[2] :] if m[3])
        else:
            for k in reversed(self._ask_keys):
                lvl = self._asks[-k]
                out.extend(m for m in lvl[lvl[2] :] if m[3])
        return out

    def __len__(self) -> int:
        return len(self.orders)

    def check(self) -> None:
        """Assert the internal invariants (tests): totals, counts, sorted keys, never crossed."""
        for side, levels, keys in ((0, self._bids, self._bid_keys), (1, self._asks, self._ask_keys)):
            assert keys == sorted(keys), "level keys unsorted"
            assert len(keys) == len(set(keys)) == len(levels), "level keys and levels disagree"
            for k in keys:
                px = k if side == 0 else -k
                lvl = levels[px]
                qty, live = lvl[0], lvl[1]
                alive = [m for m in lvl[lvl[2] :] if m[3]]
                assert live == len(alive) > 0, f"level {px}: live count {live} != {len(alive)}"
                assert qty == sum(m[3] for m in alive), f"level {px}: total {qty} wrong"
                prios = [m[7] for m in alive]
                assert prios == sorted(prios), f"level {px}: time priority broken"
                for m in alive:
                    assert m[1] == side and m[2] == px and self.orders.get(m[0]) is m
        assert sum(lvl[1] for lvl in self._bids.values()) + sum(lvl[1] for lvl in self._asks.values()) == len(
            self.orders
        )
        bb, ba = self.best_bid, self.best_ask
        assert bb is None or ba is None or bb < ba, f"book crossed at rest: {bb} >= {ba}"
