"""One symbol's limit order book on a dense price ladder — an experiment, NOT used by the engine.

Built as a candidate replacement for ``book.py`` (issue 3 speed) and measured against it with
``bench/matching_ladder.py``: no real gain. Cachegrind on the bench workload (100k ops, the bench's
loop included): 8,126 vs 8,141 instructions per op (basic), 8,081 vs 8,099 (IOC/FOK); CPU-time ops/s
within ±5% either way run to run on the shared machine, slower on the IOC/FOK workload. Finding the
next level is not where the time goes in CPython: the per-call work shared by both books (the call,
the order list, ``orders`` dict updates, fill tuples) is. Kept, with its tests, as the evidence.

Same interface, order lists (``O_*`` slots), level lists and semantics as
:class:`engines.matching.book.OrderBook`; only the index of price levels differs:

* Each side keeps a ``list`` of level lists indexed by ``price - base`` (one window ``[base, base+n)``
  shared by both sides). A level is ``[total_lots, live_count, head, order, order, …]`` as in
  ``book.py``; an empty level is reset to ``[0, 0, 3]`` and stays in its slot for reuse.
* The best bid/ask are plain ints (``0`` / ``_NO_ASK`` when the side is empty); when the best level
  empties, the next one is found by scanning the ladder from there (bounded: the scan stops after the
  side's count of non-empty ladder levels is exhausted, and the window is at most ``MAX_SPAN`` ticks).
* The window starts at ``INIT_SPAN`` ticks around the first price and is re-based (doubling up to
  ``MAX_SPAN``) when a price near the touch falls outside it. Prices farther than ``MAX_SPAN // 2``
  from the touch (or that do not fit) rest in a small sparse structure per side ("far" levels: a dict
  and a sorted key list, the old ``book.py`` layout), so a pathological price never allocates a huge
  array. Far levels always lie outside the window.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Any

from engines.matching.book import (
    R_FOK,
    R_IOC,
    R_MARKET,
    R_MIN_QTY,
    R_POST_ONLY_CROSS,
    R_POST_ONLY_TIF,
    R_PRICE,
    R_QTY,
    R_STP,
    R_UNKNOWN,
    ST_NEW,
    ST_PARTIAL,
    STP_MODES,
    TIF_GTC,
)

_NO_ASK = 1 << 62  # best ask of an empty ask side (above any price)
_MKT_BUY = _NO_ASK - 1  # a market buy's limit: below _NO_ASK so an empty side stops the walk
INIT_SPAN = 256
MAX_SPAN = 8192


class LadderBook:
    """Price-time priority book for one symbol on a price ladder. Not thread-safe; never awaits."""

    __slots__ = (
        "_ac",
        "_afar",
        "_afk",
        "_al",
        "_ba",
        "_base",
        "_bb",
        "_bc",
        "_bfar",
        "_bfk",
        "_bl",
        "_n",
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
        self._base = 0  # price of ladder slot 0
        self._n = 0  # window size (0 until the first order rests)
        self._bl: list[list[Any]] = []  # bid levels by price - base
        self._al: list[list[Any]] = []  # ask levels by price - base
        self._bc = 0  # non-empty bid levels in the ladder
        self._ac = 0  # non-empty ask levels in the ladder
        self._bb = 0  # best bid price (0: no bids)
        self._ba = _NO_ASK  # best ask price (_NO_ASK: no asks)
        self._bfar: dict[int, list[Any]] = {}  # bid levels outside the window
        self._afar: dict[int, list[Any]] = {}
        self._bfk: list[int] = []  # their prices, ascending
        self._afk: list[int] = []
        self.fills: list[tuple[list[Any], int | None, int]] = []
        self.reason = ""

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
        """Match and/or rest one order; returns the order list (see ``book.py``)."""
        fills = self.fills
        if fills:
            fills.clear()
        o = [oid, side, price, qty, owner, 0, 0, oid, ref]
        if qty < self.min_qty:
            return self._reject(o, R_MIN_QTY.format(self.min_qty) if qty > 0 else R_QTY)
        if post_only or tif == 2:
            if price is None:
                return self._market(o, tif, post_only)
            if self.would_cross(side, price):
                return self._cross(o, tif, post_only)
            if tif:
                return self._no_cross(o, tif, post_only)
            self._rest(o)
            return o
        if price is None:
            if side == 0:
                self._take_buy(o, _MKT_BUY)
            else:
                self._take_sell(o, 1)
            if o[3] and o[6] != 3:
                o[6] = 5
                self.reason = R_MARKET
            return o
        if side == 0:
            if self._ba <= price:
                self._take_buy(o, price)
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
            i = price - self._base
            if 0 <= i < self._n:  # rest a bid in the ladder (inlined: the most common operation)
                lvl = self._bl[i]
                q = o[3]
                if lvl[1]:
                    lvl[0] += q
                    lvl[1] += 1
                    lvl.append(o)
                else:
                    lvl[0] = q
                    lvl[1] = 1
                    lvl.append(o)
                    self._bc += 1
                    if price > self._bb:
                        self._bb = price
                self.orders[oid] = o
                return o
        else:
            if self._bb >= price:
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
            i = price - self._base
            if 0 <= i < self._n:
                lvl = self._al[i]
                q = o[3]
                if lvl[1]:
                    lvl[0] += q
                    lvl[1] += 1
                    lvl.append(o)
                else:
                    lvl[0] = q
                    lvl[1] = 1
                    lvl.append(o)
                    self._ac += 1
                    if price < self._ba:
                        self._ba = price
                self.orders[oid] = o
                return o
        self._rest(o)  # outside the window (o[3] is the remaining qty after any partial fill)
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
        if post_only:
            return self._reject(o, R_POST_ONLY_TIF)
        return self._expire(o, R_FOK if tif == 2 else R_IOC)

    def _market(self, o: list[Any], tif: int, post_only: bool) -> list[Any]:
        if post_only:
            return self._reject(o, R_POST_ONLY_TIF)
        side = o[1]
        if tif == 2 and not self._fillable(side, _MKT_BUY if side == 0 else 1, o[3], o[4]):
            return self._expire(o, R_FOK)
        if side == 0:
            self._take_buy(o, _MKT_BUY)
        else:
            self._take_sell(o, 1)
        if o[3] and o[6] != 3:
            return self._expire(o, R_FOK if tif == 2 else R_MARKET)
        return o

    def _cross(self, o: list[Any], tif: int, post_only: bool) -> list[Any]:
        if post_only:
            return self._reject(o, R_POST_ONLY_TIF if tif else R_POST_ONLY_CROSS)
        price = o[2]
        if tif == 2 and not self._fillable(o[1], price, o[3], o[4]):
            return self._expire(o, R_FOK)
        if o[1] == 0:
            self._take_buy(o, price)
        else:
            self._take_sell(o, price)
        if o[3] == 0 or o[6] == 3:
            return o
        if tif:
            return self._expire(o, R_FOK if tif == 2 else R_IOC)
        self._rest(o)
        return o

    def _rest(self, o: list[Any]) -> None:
        """Append ``o`` (its priority ``o[7]`` already set) to the back of its level."""
        px = o[2]
        q = o[3]
        i = px - self._base
        if not 0 <= i < self._n and self._rebase(px):
            i = px - self._base
        if 0 <= i < self._n:
            if o[1] == 0:
                lvl = self._bl[i]
                if not lvl[1]:
                    self._bc += 1
                    if px > self._bb:
                        self._bb = px
            else:
                lvl = self._al[i]
                if not lvl[1]:
                    self._ac += 1
                    if px < self._ba:
                        self._ba = px
        else:  # a far level
            if o[1] == 0:
                far, fk = self._bfar, self._bfk
                if px > self._bb:
                    self._bb = px
            else:
                far, fk = self._afar, self._afk
                if px < self._ba:
                    self._ba = px
            lvl = far.get(px)
            if lvl is None:
                lvl = far[px] = [0, 0, 3]
                insort(fk, px)
        lvl[0] += q
        lvl[1] += 1
        lvl.append(o)
        self.orders[o[0]] = o

    # --- the window ----------------------------------------------------------------------------------
    def _rebase(self, px: int) -> bool:
        """``px`` lies outside the window: move the window to cover it if it is near the touch
        (growing it up to MAX_SPAN); returns False for an outlier, which then goes to a far level."""
        bb, ba = self._bb, self._ba
        if bb and ba != _NO_ASK:
            ref = (bb + ba) // 2
        elif bb:
            ref = bb
        elif ba != _NO_ASK:
            ref = ba
        else:
            ref = px
        if abs(px - ref) >= MAX_SPAN // 2:
            return False
        levels = [(0, p, lvl) for p, lvl in self._walk(0)] + [(1, p, lvl) for p, lvl in self._walk(1)]
        lo = min(px, ref)
        hi = max(px, ref)
        for _, p, _lvl in levels:
            if p < lo:
                lo = p
            elif p > hi:
                hi = p
        n = max(self._n, INIT_SPAN)
        while n < MAX_SPAN and n < 2 * (hi - lo + 1):  # room to drift before the next re-base
            n *= 2
        # everything fits: centre on it; otherwise centre on the touch (levels left outside go far)
        base = (lo + hi) // 2 - n // 2 if hi - lo + 1 <= n else ref - n // 2
        bl = [[0, 0, 3] for _ in range(n)]
        al = [[0, 0, 3] for _ in range(n)]
        bfar: dict[int, list[Any]] = {}
        afar: dict[int, list[Any]] = {}
        bc = ac = 0
        for side, p, lvl in levels:
            i = p - base
            if 0 <= i < n:
                if side == 0:
                    bl[i] = lvl
                    bc += 1
                else:
                    al[i] = lvl
                    ac += 1
            elif side == 0:
                bfar[p] = lvl
            else:
                afar[p] = lvl
        self._base, self._n = base, n
        self._bl, self._al, self._bc, self._ac = bl, al, bc, ac
        self._bfar, self._afar = bfar, afar
        self._bfk, self._afk = sorted(bfar), sorted(afar)
        return True

    def _next_ask(self, px: int) -> int:
        """The lowest ask level above ``px`` (``_NO_ASK`` if none)."""
        best = _NO_ASK
        fk = self._afk
        if fk:
            j = bisect_left(fk, px + 1)
            if j < len(fk):
                best = fk[j]
        if self._ac:
            base = self._base
            lad = self._al
            n = self._n
            i = px - base + 1
            if i < 0:
                i = 0
            while i < n:
                if lad[i][1]:
                    p = base + i
                    return p if p < best else best
                i += 1
        return best

    def _next_bid(self, px: int) -> int:
        """The highest bid level below ``px`` (0 if none)."""
        best = 0
        fk = self._bfk
        if fk:
            j = bisect_left(fk, px) - 1
            if j >= 0:
                best = fk[j]
        if self._bc:
            base = self._base
            lad = self._bl
            i = px - base - 1
            if i >= self._n:
                i = self._n - 1
            while i >= 0:
                if lad[i][1]:
                    p = base + i
                    return p if p > best else best
                i -= 1
        return best

    def _level(self, side: int, px: int) -> list[Any] | None:
        """The non-empty level at ``px``, or None."""
        i = px - self._base
        if 0 <= i < self._n:
            lvl = (self._bl if side == 0 else self._al)[i]
            return lvl if lvl[1] else None
        return (self._bfar if side == 0 else self._afar).get(px)

    def _drop_level(self, side: int, px: int, lvl: list[Any]) -> None:
        """``lvl`` (at ``px``) has no live order left: reset/remove it and move the best if needed."""
        i = px - self._base
        if 0 <= i < self._n:
            del lvl[3:]
            lvl[0] = 0
            lvl[2] = 3
            if side == 0:
                self._bc -= 1
            else:
                self._ac -= 1
        elif side == 0:
            del self._bfar[px]
            fk = self._bfk
            del fk[bisect_left(fk, px)]
        else:
            del self._afar[px]
            fk = self._afk
            del fk[bisect_left(fk, px)]
        if side == 0:
            if px == self._bb:
                self._bb = self._next_bid(px)
        elif px == self._ba:
            self._ba = self._next_ask(px)

    def _walk(self, side: int) -> Iterator[tuple[int, list[Any]]]:
        """Non-empty levels of one side, best price first."""
        base, n = self._base, self._n
        if side == 1:
            far, fk, lad, left = self._afar, self._afk, self._al, self._ac
            for p in fk:
                if p >= base:
                    break
                yield p, far[p]
            i = self._ba - base
            if i < 0:
                i = 0
            while left and i < n:
                lvl = lad[i]
                if lvl[1]:
                    left -= 1
                    yield base + i, lvl
                i += 1
            for p in fk:
                if p >= base + n:
                    yield p, far[p]
        else:
            far, fk, lad, left = self._bfar, self._bfk, self._bl, self._bc
            for p in reversed(fk):
                if p < base + n:
                    break
                yield p, far[p]
            i = self._bb - base
            if i >= n:
                i = n - 1
            while left and i >= 0:
                lvl = lad[i]
                if lvl[1]:
                    left -= 1
                    yield base + i, lvl
                i -= 1
            for p in reversed(fk):
                if p < base:
                    yield p, far[p]

    # --- matching ------------------------------------------------------------------------------------
    def _take_buy(self, o: list[Any], limit: int) -> None:
        """Match an incoming buy against the asks up to ``limit``; updates ``o`` in place."""
        qty = start = o[3]
        owner = o[4]
        stp = self.stp
        orders = self.orders
        fills = self.fills
        base = self._base
        n = self._n
        lad = self._al
        px = self._ba
        while px <= limit:
            i = px - base
            lvl = lad[i] if 0 <= i < n else self._afar[px]
            h = lvl[2]
            live = lvl[1]
            took = 0
            while True:
                m = lvl[h]
                mq = m[3]
                if not mq:
                    h += 1
                    continue
                if stp and m[4] == owner:
                    if stp == 2:
                        qty = -qty
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
            if live:
                lvl[0] -= took
                lvl[1] = live
                if h > 32 and h + h > len(lvl):
                    del lvl[3:h]
                    lvl[2] = 3
                else:
                    lvl[2] = h
                break
            # the level is empty: reset it and step to the next ask
            if 0 <= i < n:
                del lvl[3:]
                lvl[0] = 0
                lvl[1] = 0
                lvl[2] = 3
                self._ac -= 1
                if self._afk:
                    px = self._next_ask(px)
                else:
                    px = _NO_ASK
                    if self._ac:
                        i += 1
                        while not lad[i][1]:
                            i += 1
                        px = base + i
            else:
                del self._afar[px]
                fk = self._afk
                del fk[bisect_left(fk, px)]
                px = self._next_ask(px)
            if qty <= 0:
                break
        self._ba = px
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
        orders = self.orders
        fills = self.fills
        base = self._base
        n = self._n
        lad = self._bl
        px = self._bb
        while px >= limit:
            i = px - base
            lvl = lad[i] if 0 <= i < n else self._bfar[px]
            h = lvl[2]
            live = lvl[1]
            took = 0
            while True:
                m = lvl[h]
                mq = m[3]
                if not mq:
                    h += 1
                    continue
                if stp and m[4] == owner:
                    if stp == 2:
                        qty = -qty
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
            if live:
                lvl[0] -= took
                lvl[1] = live
                if h > 32 and h + h > len(lvl):
                    del lvl[3:h]
                    lvl[2] = 3
                else:
                    lvl[2] = h
                break
            if 0 <= i < n:
                del lvl[3:]
                lvl[0] = 0
                lvl[1] = 0
                lvl[2] = 3
                self._bc -= 1
                if self._bfk:
                    px = self._next_bid(px)
                else:
                    px = 0
                    if self._bc:
                        i -= 1
                        while not lad[i][1]:
                            i -= 1
                        px = base + i
            else:
                del self._bfar[px]
                fk = self._bfk
                del fk[bisect_left(fk, px)]
                px = self._next_bid(px)
            if qty <= 0:
                break
        self._bb = px
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
        need = qty
        if not (self._afk if side == 0 else self._bfk):  # ladder only: scan it directly
            base = self._base
            if side == 0:
                lad, left, i, step, stop = self._al, self._ac, self._ba - base, 1, limit - base + 1
            else:
                lad, left, i, step, stop = self._bl, self._bc, self._bb - base, -1, base - limit + 1
            while left:
                if i * step >= stop:  # past the limit price
                    return False
                lvl = lad[i]
                i += step
                if not lvl[1]:
                    continue
                left -= 1
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
        levels = self._walk(1 - side)
        for px, lvl in levels:
            if (px > limit) if side == 0 else (px < limit):
                return False
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
        px = o[2]
        i = px - self._base
        if 0 <= i < self._n:
            if o[1] == 0:
                lvl = self._bl[i]
                live = lvl[1] - 1
                if not live:
                    del lvl[3:]
                    lvl[0] = 0
                    lvl[1] = 0
                    lvl[2] = 3
                    if px == self._bb:
                        if self._bfk:
                            self._bc -= 1
                            self._bb = self._next_bid(px)
                        else:  # scan down the ladder (inlined _next_bid)
                            bc = self._bc = self._bc - 1
                            if bc:
                                lad = self._bl
                                i -= 1
                                while not lad[i][1]:
                                    i -= 1
                                self._bb = self._base + i
                            else:
                                self._bb = 0
                    else:
                        self._bc -= 1
                    return q
            else:
                lvl = self._al[i]
                live = lvl[1] - 1
                if not live:
                    del lvl[3:]
                    lvl[0] = 0
                    lvl[1] = 0
                    lvl[2] = 3
                    if px == self._ba:
                        if self._afk:
                            self._ac -= 1
                            self._ba = self._next_ask(px)
                        else:  # scan up the ladder (inlined _next_ask)
                            ac = self._ac = self._ac - 1
                            if ac:
                                lad = self._al
                                i += 1
                                while not lad[i][1]:
                                    i += 1
                                self._ba = self._base + i
                            else:
                                self._ba = _NO_ASK
                    else:
                        self._ac -= 1
                    return q
        else:
            lvl = (self._bfar if o[1] == 0 else self._afar)[px]
            live = lvl[1] - 1
            if not live:
                lvl[1] = 0
                self._drop_level(o[1], px, lvl)
                return q
        lvl[1] = live
        lvl[0] -= q
        if len(lvl) - lvl[2] > 2 * live + 16:  # too many dead entries: compact (keeps priority order)
            lvl[3:] = [m for m in lvl[lvl[2] :] if m[3]]
            lvl[2] = 3
        return q

    def cancel_all(self, owner: str | None = None) -> tuple[list[list[Any]], list[int]]:
        """Cancel every resting order (of ``owner``; None: all); see ``book.py``."""
        orders = self.orders
        if owner is None:
            victims = list(orders.values())
            orders.clear()
            for lad in (self._bl, self._al):
                for lvl in lad:
                    if len(lvl) > 3 or lvl[1]:
                        del lvl[3:]
                        lvl[0] = lvl[1] = 0
                        lvl[2] = 3
            self._bc = self._ac = 0
            self._bb, self._ba = 0, _NO_ASK
            self._bfar.clear()
            self._afar.clear()
            self._bfk.clear()
            self._afk.clear()
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
            for side, px in touched:
                lvl = self._level(side, px)
                assert lvl is not None
                live = [m for m in lvl[lvl[2] :] if m[3]]
                if live:
                    lvl[3:] = live
                    lvl[0] = sum(m[3] for m in live)
                    lvl[1] = len(live)
                    lvl[2] = 3
                else:
                    lvl[1] = 0
                    self._drop_level(side, px, lvl)
        return victims, qtys

    def would_cross(self, side: int, price: int) -> bool:
        if side == 0:
            return self._ba <= price
        return self._bb >= price

    def replace(self, oid: int, price: int | None, qty: int, prio: int) -> list[Any] | str:
        """Amend a resting order (see ``book.py``)."""
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
                lvl = self._level(o[1], price)
                assert lvl is not None
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
        return self._bb or None

    @property
    def best_ask(self) -> int | None:
        ba = self._ba
        return None if ba == _NO_ASK else ba

    def bbo(self) -> tuple[int | None, int, int | None, int]:
        """(bid price, bid lots, ask price, ask lots); a missing side is (None, 0)."""
        bb, ba = self._bb, self._ba
        if bb:
            lvl = self._level(0, bb)
            bp, bq = bb, lvl[0] if lvl else 0
        else:
            bp, bq = None, 0
        if ba != _NO_ASK:
            lvl = self._level(1, ba)
            ap, aq = ba, lvl[0] if lvl else 0
        else:
            ap, aq = None, 0
        return bp, bq, ap, aq

    def depth(self, levels: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Best ``levels`` price levels per side as (price, lots), best first."""
        out: list[list[tuple[int, int]]] = [[], []]
        if levels > 0:
            for side in (0, 1):
                d = out[side]
                for p, lvl in self._walk(side):
                    d.append((p, lvl[0]))
                    if len(d) >= levels:
                        break
        return out[0], out[1]

    def level_orders(self, side: int, price: int) -> list[list[Any]]:
        """Live orders at one level in time priority."""
        lvl = self._level(side, price)
        return [] if lvl is None else [m for m in lvl[lvl[2] :] if m[3]]

    def iter_orders(self, side: int) -> list[list[Any]]:
        """Live orders of one side, best price first, each level in time priority."""
        out: list[list[Any]] = []
        for _p, lvl in self._walk(side):
            out.extend(m for m in lvl[lvl[2] :] if m[3])
        return out

    def __len__(self) -> int:
        return len(self.orders)

    def check(self) -> None:
        """Assert the internal invariants (tests): totals, counts, best prices, window, never crossed."""
        base, n = self._base, self._n
        total = 0
        for side, lad, far, fk, count in (
            (0, self._bl, self._bfar, self._bfk, self._bc),
            (1, self._al, self._afar, self._afk, self._ac),
        ):
            assert len(lad) == n
            assert fk == sorted(far) and len(set(fk)) == len(fk), "far keys wrong"
            assert all(not base <= p < base + n for p in fk), "far level inside the window"
            nonempty = [lvl for lvl in lad if lvl[1]]
            assert len(nonempty) == count, "ladder level count wrong"
            for lvl in lad:
                if not lvl[1]:
                    assert lvl == [0, 0, 3], "empty ladder level not reset"
            walked = list(self._walk(side))
            assert len(walked) == count + len(far)
            prices = [p for p, _ in walked]
            assert prices == sorted(prices, reverse=side == 0), "levels out of order"
            best = prices[0] if prices else (0 if side == 0 else _NO_ASK)
            assert best == (self._bb if side == 0 else self._ba), f"best price wrong: {best}"
            for px, lvl in walked:
                qty, live = lvl[0], lvl[1]
                alive = [m for m in lvl[lvl[2] :] if m[3]]
                assert live == len(alive) > 0, f"level {px}: live count {live} != {len(alive)}"
                assert qty == sum(m[3] for m in alive), f"level {px}: total {qty} wrong"
                prios = [m[7] for m in alive]
                assert prios == sorted(prios), f"level {px}: time priority broken"
                for m in alive:
                    assert m[1] == side and m[2] == px and self.orders.get(m[0]) is m
                total += live
        assert total == len(self.orders)
        bb, ba = self.best_bid, self.best_ask
        assert bb is None or ba is None or bb < ba, f"book crossed at rest: {bb} >= {ba}"
