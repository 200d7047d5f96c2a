"""A deliberately simple reference order book, the oracle for property tests and the bench.

Written for obviousness, not speed: one list of orders per side kept sorted by (price priority, time
priority); matching walks it from the front. Same semantics as :class:`engines.matching.book.OrderBook`
(see its docstring): GTC/IOC/FOK limits, market orders, post-only, self-trade prevention, cancel and
cancel/replace where only "same price, quantity not up" keeps time priority.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field


@dataclass(eq=False)
class RefOrder:
    oid: int
    side: int  # 0 buy, 1 sell
    price: int | None
    qty: int  # leaves
    owner: str
    filled: int = 0
    seq: int = 0
    status: str = "new"

    def key(self) -> tuple[int, int]:
        assert self.price is not None
        return (-self.price if self.side == 0 else self.price, self.seq)


@dataclass
class RefResult:
    status: str
    filled: int
    leaves: int  # resting lots, or the lots canceled/expired if it did not rest
    fills: list[tuple[int, int, int]] = field(default_factory=list)  # (maker oid, price, qty)
    stp_canceled: list[tuple[int, int]] = field(default_factory=list)  # (maker oid, qty)
    reason: str = ""


class ReferenceBook:
    def __init__(self, *, min_qty: int = 1, stp: str = "cancel_resting") -> None:
        self.min_qty = min_qty
        self.stp = stp
        self.sides: tuple[list[RefOrder], list[RefOrder]] = ([], [])
        self.orders: dict[int, RefOrder] = {}
        self.seq = 0

    def _rest(self, o: RefOrder) -> None:
        self.seq += 1
        o.seq = self.seq
        insort(self.sides[o.side], o, key=RefOrder.key)
        self.orders[o.oid] = o

    def _remove(self, o: RefOrder) -> None:
        self.sides[o.side].remove(o)
        del self.orders[o.oid]

    def _crosses(self, side: int, price: int | None, maker: RefOrder) -> bool:
        assert maker.price is not None
        return price is None or (maker.price <= price if side == 0 else maker.price >= price)

    def fillable(self, side: int, price: int | None, qty: int, owner: str) -> int:
        """Lots an incoming order could take right now, honouring self-trade prevention."""
        total = 0
        for m in self.sides[1 - side]:
            if not self._crosses(side, price, m):
                break
            if m.owner == owner and self.stp != "none":
                if self.stp == "cancel_incoming":
                    break
                continue
            total += m.qty
        return total

    def submit(
        self, oid: int, side: int, price: int | None, qty: int, owner: str, tif: str = "gtc", post_only: bool = False
    ) -> RefResult:
        if qty <= 0:
            return RefResult("rejected", 0, qty, reason="qty")
        if qty < self.min_qty:
            return RefResult("rejected", 0, qty, reason="min_qty")
        if post_only and (price is None or tif != "gtc"):
            return RefResult("rejected", 0, qty, reason="post_only_tif")
        if price is not None and price <= 0:
            return RefResult("rejected", 0, qty, reason="price")
        opp = self.sides[1 - side]
        if post_only and opp and self._crosses(side, price, opp[0]):
            return RefResult("rejected", 0, qty, reason="post_only_cross")
        if tif == "fok" and self.fillable(side, price, qty, owner) < qty:
            return RefResult("expired", 0, qty, reason="fok")
        res = RefResult("new", 0, qty)
        o = RefOrder(oid, side, price, qty, owner)
        while o.qty and opp and self._crosses(side, price, opp[0]):
            m = opp[0]
            if m.owner == owner and self.stp != "none":
                if self.stp == "cancel_incoming":
                    res.status = "canceled"
                    res.reason = "stp"
                    break
                self._remove(m)
                m.status = "canceled"
                res.stp_canceled.append((m.oid, m.qty))
                m.qty = 0
                continue
            assert m.price is not None
            q = min(m.qty, o.qty)
            m.qty -= q
            m.filled += q
            o.qty -= q
            o.filled += q
            res.fills.append((m.oid, m.price, q))
            if m.qty == 0:
                m.status = "filled"
                self._remove(m)
            else:
                m.status = "partially_filled"
        res.filled = o.filled
        res.leaves = o.qty
        if res.status == "canceled":
            return res
        if o.qty == 0:
            res.status = "filled"
            return res
        if price is None or tif != "gtc":
            res.status = "expired"
            return res
        o.status = "partially_filled" if o.filled else "new"
        res.status = o.status
        self._rest(o)
        return res

    def cancel(self, oid: int) -> int:
        o = self.orders.get(oid)
        if o is None:
            return 0
        self._remove(o)
        q, o.qty = o.qty, 0
        o.status = "canceled"
        return q

    def cancel_all(self, owner: str | None = None) -> list[tuple[int, int]]:
        """Cancel every resting order (of ``owner``; None: all), one by one: [(order id, lots)]."""
        return [(o.oid, self.cancel(o.oid)) for o in list(self.orders.values()) if owner is None or o.owner == owner]

    def replace(self, oid: int, price: int | None, qty: int) -> RefResult | None:
        """None if refused; otherwise the result of the amended order."""
        o = self.orders.get(oid)
        if o is None or qty <= 0 or qty < self.min_qty or (price is not None and price <= 0):
            return None
        price = o.price if price is None else price
        if price == o.price and qty <= o.qty:
            o.qty = qty
            return RefResult(o.status, o.filled, o.qty)
        self._remove(o)
        filled = o.filled
        res = self.submit(oid, o.side, price, qty, o.owner)
        # submit() starts a fresh order; carry over what the old one had filled
        n = self.orders.get(oid)
        if n is not None:
            n.filled += filled
            n.status = "partially_filled" if n.filled else "new"
            res.status = n.status
        res.filled += filled
        return res

    # views
    def bbo(self) -> tuple[int | None, int, int | None, int]:
        out: list[int | None] = []
        for side in (0, 1):
            orders = self.sides[side]
            if not orders:
                out += [None, 0]
                continue
            px = orders[0].price
            out += [px, sum(o.qty for o in orders if o.price == px)]
        return out[0], out[1] or 0, out[2], out[3] or 0  # type: ignore[return-value]

    def snapshot(self) -> tuple[list[tuple[int, int | None, int, str, int]], ...]:
        """Per side, in priority order: (oid, price, leaves, owner, filled)."""
        return tuple([(o.oid, o.price, o.qty, o.owner, o.filled) for o in s] for s in self.sides)
