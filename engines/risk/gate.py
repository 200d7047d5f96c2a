"""The pre-trade gate: every order from every source passes :meth:`RiskGate.check` before a venue.

Checks, in order (the first failure is the reason the router publishes as ``OrderRejected``):

1. trading state (the most restrictive of desk / bot:owner / instrument:symbol): HALTED refuses
   everything except the kill switch's own reduce-only flatten orders; REDUCING refuses orders
   that do not reduce the owner's position;
2. max order quantity and notional;
3. reduce-only orders must reduce; max position per (owner, instrument), counting the owner's open
   orders on the same side as if they filled (worst case);
4. daily loss / drawdown: while a scope is beyond its limit only reducing orders pass;
5. order rate: a token bucket per owner over the injected clock (only passed orders take a token).

Orders of an owner registered with :meth:`RiskGate.trust_upstream` pass without a check and without
being counted: they are mirrors of orders this gate already checked under their real owner (a bot's
order on the desk's own loopback FIX venue arrives at the FIX gateway again as ``fix:<CompID>``).

Synchronous and allocation-light: it sits on every order. Limits are converted to integer lots and
tick-lots once per (owner, symbol) and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from engines.clock import Clock
from engines.instruments import Instrument
from engines.orders import OrderRequest, OrderType, Side
from engines.risk.config import RiskConfig, RiskLimits
from engines.risk.events import DESK, TradingState
from engines.risk.positions import OrderTracker, PositionBook
from engines.risk.state import TradingStates

HALTED = TradingState.HALTED
REDUCING = TradingState.REDUCING
_ACTIVE = TradingState.ACTIVE
# Enum members as module constants (a metaclass lookup each otherwise, on every order).
_BUY = Side.BUY
_MARKET = OrderType.MARKET


@dataclass(slots=True)
class _Limits:
    max_qty: int | None  # lots
    max_notional: int | None  # tick-lots
    max_position: int | None  # lots
    rate: float | None  # orders per second


class _Bucket:
    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)  # one second of burst
        self.tokens = self.capacity
        self.last = now

    def take(self, now: float) -> bool:
        tokens = self.tokens + (now - self.last) * self.rate
        if tokens > self.capacity:
            tokens = self.capacity
        self.last = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False


def _min(*values: Decimal | float | None) -> Decimal | float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


class RiskGate:
    def __init__(
        self,
        config: RiskConfig,
        states: TradingStates,
        positions: PositionBook,
        orders: OrderTracker,
        instruments: dict[str, Instrument],
        clock: Clock,
    ) -> None:
        self.config = config
        self.states = states
        self.positions = positions
        self.orders = orders
        self.instruments = instruments
        self.clock = clock
        self._limits: dict[tuple[str, str], _Limits] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._flatten_ids: set[str] = set()
        #: Scopes currently beyond their daily-loss or drawdown limit (maintained by the rules).
        self.loss_blocked: set[str] = set()
        #: Called with the owner on every order attempt (the order-storm rule counts them).
        self.observer: Callable[[str], None] | None = None
        #: Owners whose orders were gated upstream on this desk (see trust_upstream).
        self.upstream: frozenset[str] = frozenset()
        self.checked = 0
        self.refused = 0

    # --- the kill switch's flatten orders --------------------------------------------------------------
    def allow_flatten(self, client_id: str) -> None:
        """Let one reduce-only order with this client id through while HALTED (kill switch only)."""
        self._flatten_ids.add(client_id)

    def trust_upstream(self, owner: str) -> None:
        """Count ``owner``'s orders once: they mirror orders this desk's gate already passed under the
        owner that sent them (the FIX gateway's side of the desk's own loopback session). They pass here
        unchecked, take no rate token, and the position and order trackers ignore their events, so
        position, order-rate and P&L usage are those of the one real order. Only for the desk's own
        loopback: an external client's orders are never trusted (engines.fix.service decides)."""
        self.upstream = self.upstream | {owner}
        self.orders.ignored.add(owner)
        self.positions.ignored.add(owner)

    # --- limits ----------------------------------------------------------------------------------------
    def limits(self, owner: str, symbol: str) -> _Limits | None:
        lim = self._limits.get((owner, symbol))
        if lim is None:
            inst = self.instruments.get(symbol)
            if inst is None:
                return None
            cfg = self.config
            levels: list[RiskLimits] = [cfg.limits]
            if symbol in cfg.per_instrument:
                levels.append(cfg.per_instrument[symbol])
            if owner in cfg.per_owner:
                levels.append(cfg.per_owner[owner])
            qty = _min(*(lv.max_order_qty for lv in levels))
            notional = _min(*(lv.max_order_notional for lv in levels))
            pos = _min(*(lv.max_position for lv in levels))
            rate = _min(
                cfg.limits.max_orders_per_second, cfg.per_owner.get(owner, RiskLimits()).max_orders_per_second
            )
            lim = _Limits(
                max_qty=None if qty is None else int(Decimal(qty) / inst.lot_size),
                max_notional=None
                if notional is None
                else int(Decimal(notional) / (inst.tick_size * inst.lot_size)),
                max_position=None if pos is None else int(Decimal(pos) / inst.lot_size),
                rate=None if rate is None else float(rate),
            )
            self._limits[(owner, symbol)] = lim
        return lim

    def reduces(self, order: OrderRequest) -> bool:
        """True if the order (with the owner's open orders on its side) cannot more than close the position."""
        pos = self.positions.qty(order.owner, order.symbol)
        if pos == 0 or (pos > 0) == (order.side is _BUY):
            return False
        pending = self.orders.open_side_qty(order.owner, order.symbol, order.side)
        return order.qty + pending <= abs(pos)

    # --- the check ---------------------------------------------------------------------------------------
    def check(self, order: OrderRequest) -> str | None:
        if order.owner in self.upstream:
            return None  # already checked (and counted) as its real owner's order
        self.checked += 1
        reason = self._check(order)
        if reason is not None:
            self.refused += 1
        return reason

    def _check(self, order: OrderRequest) -> str | None:
        owner = order.owner
        symbol = order.symbol
        if self.observer is not None:
            self.observer(owner)
        state = self.states.effective_state(owner, symbol) if self.states.restricted else _ACTIVE
        if state is HALTED:
            if order.reduce_only and order.client_id in self._flatten_ids:
                self._flatten_ids.discard(order.client_id)
                return None
            return f"trading halted ({self._restricting_scope(owner, symbol, HALTED)}): no new orders"
        lim = self._limits.get((owner, symbol)) or self.limits(owner, symbol)
        if lim is None:
            return f"unknown instrument {symbol!r}: risk cannot evaluate the order"
        qty = order.qty
        if lim.max_qty is not None and qty > lim.max_qty:
            return f"order quantity {qty} lots exceeds max_order_qty {lim.max_qty} lots"
        if lim.max_notional is not None:
            price: float | None = order.price
            if order.type is _MARKET or price is None:
                price = self.positions.mark_price(symbol)
                if price is None:
                    return "market order with no reference price: notional limit cannot be checked"
            if price * qty > lim.max_notional:
                return f"order notional {price * qty:.0f} tick-lots exceeds max_order_notional {lim.max_notional}"
        # Whether the order reduces the position matters only to these four checks: asked only then.
        if state is REDUCING or order.reduce_only or lim.max_position is not None or self.loss_blocked:
            reduces = self.reduces(order)
            if state is REDUCING and not reduces:
                scope = self._restricting_scope(owner, symbol, REDUCING)
                return f"trading reducing ({scope}): only orders that reduce the position are allowed"
            if order.reduce_only and not reduces:
                return "reduce-only order would not reduce the position"
            if lim.max_position is not None and not reduces:
                pos = self.positions.qty(owner, symbol)
                pending = self.orders.open_side_qty(owner, symbol, order.side)
                worst = pos + (qty + pending if order.side is _BUY else -(qty + pending))
                if abs(worst) > lim.max_position:
                    return (
                        f"position limit: {worst:+d} lots (position {pos:+d}, open {pending} on this side) "
                        f"would exceed max_position {lim.max_position} lots"
                    )
            if self.loss_blocked and not reduces:
                for scope in (DESK, "bot:" + owner, "instrument:" + symbol):
                    if scope in self.loss_blocked:
                        return (
                            f"loss limit reached ({scope}): only orders that reduce the position are allowed"
                        )
        if lim.rate is not None:
            bucket = self._buckets.get(owner)
            now = self.clock.monotonic()
            if bucket is None:
                bucket = self._buckets[owner] = _Bucket(lim.rate, now)
            if not bucket.take(now):
                return f"order rate limit {lim.rate:g}/s exceeded for {owner}"
        return None

    def _restricting_scope(self, owner: str, symbol: str, state: TradingState) -> str:
        for scope in (DESK, "bot:" + owner, "instrument:" + symbol):
            if self.states.state(scope) is state:
                return scope
        return DESK
