"""Order management for one bot: a state machine per order, every transition on the bus and on disk.

States: idle → pending_new → working → partially_filled → filled; any live state → pending_cancel →
canceled; pending_new → rejected. An idle order (intent on disk, waiting in the rate limiter) that is
superseded before it is sent goes straight to canceled. Transitions not in :data:`ALLOWED` are
ignored and counted (late or duplicated venue events), which makes every handler idempotent.

Client order ids are ``<bot>-<seq>`` with ``seq`` strictly increasing across restarts (the highest
seq on disk, or seen at the venue, plus one), so an id is never reused and a resent intent is
recognisable.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from engines.bus import Bus
from engines.clock import Clock
from engines.mm.events import MMOrderState
from engines.mm.store import INSERT_ORDER, INSERT_OUTBOX, UPDATE_ORDER, UPDATE_OUTBOX, MMStore, Op
from engines.orders import Fill, OrderAccepted, OrderCanceled, OrderRejected, OrderStatus, Side

log = logging.getLogger(__name__)


class OrderState(enum.StrEnum):
    IDLE = "idle"
    PENDING_NEW = "pending_new"
    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED)


S = OrderState
ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    S.IDLE: frozenset({S.PENDING_NEW, S.CANCELED, S.REJECTED, S.WORKING, S.PARTIALLY_FILLED, S.FILLED}),
    S.PENDING_NEW: frozenset({S.WORKING, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.PENDING_CANCEL, S.CANCELED}),
    S.WORKING: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED}),
    S.PENDING_CANCEL: frozenset({S.PENDING_CANCEL, S.CANCELED, S.FILLED, S.WORKING, S.PARTIALLY_FILLED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
}


@dataclass(slots=True)
class ManagedOrder:
    client_id: str
    seq: int
    symbol: str
    side: Side
    level: int
    price: int
    qty: int
    filled: int = 0
    state: OrderState = OrderState.IDLE
    order_id: int | None = None
    reason: str = ""
    created: float = 0.0  # clock.monotonic() at creation
    live_since: float | None = None  # monotonic time the venue accepted it
    fill_keys: set[tuple[int, int]] = field(default_factory=set)

    @property
    def leaves(self) -> int:
        return self.qty - self.filled

    @property
    def live(self) -> bool:
        return not self.state.terminal


class OMS:
    def __init__(
        self,
        *,
        bot: str,
        symbol: str,
        venue: str,
        bus: Bus,
        clock: Clock,
        store: MMStore | None = None,
        on_fill: Callable[[ManagedOrder | None, Fill], None] | None = None,
        on_unknown: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self.bot = bot
        self.symbol = symbol
        self.venue = venue
        self.bus = bus
        self.clock = clock
        self.store = store
        self.on_fill = on_fill
        self.on_unknown = on_unknown
        self.orders: dict[str, ManagedOrder] = {}
        self.seq = 0
        self.ignored = 0
        self.transitions = 0
        self._closed_ids: set[str] = set()  # terminal orders dropped from memory (ids never reused)

    # --- ids and creation -----------------------------------------------------------------------------
    def client_id(self, seq: int) -> str:
        return f"{self.bot}-{seq}"

    def seq_of(self, client_id: str) -> int | None:
        prefix = f"{self.bot}-"
        if client_id.startswith(prefix) and client_id[len(prefix):].isdigit():
            return int(client_id[len(prefix):])
        return None

    def bump_seq(self, seq: int) -> None:
        self.seq = max(self.seq, seq)

    def create(self, side: Side, level: int, price: int, qty: int) -> tuple[ManagedOrder, list[Op]]:
        """A new idle order and the ops that record its intent (order row + outbox row)."""
        self.seq += 1
        o = ManagedOrder(self.client_id(self.seq), self.seq, self.symbol, side, level, price, qty,
                         created=self.clock.monotonic())
        self.orders[o.client_id] = o
        now = self.clock.time_ns()
        payload = json.dumps({"side": side.value, "level": level, "price": price, "qty": qty})
        ops: list[Op] = [
            (INSERT_ORDER, (o.client_id, o.seq, self.symbol, side.value, level, price, qty, 0, o.state.value,
                            None, "", now, now)),
            (INSERT_OUTBOX, ("new", o.client_id, payload, "pending", now, now)),
        ]
        self._publish(o, OrderState.IDLE, "")
        return o, ops

    def restore(self, row: dict) -> ManagedOrder:
        """An order from the store (startup), state as recorded."""
        o = ManagedOrder(row["client_id"], row["seq"], row["symbol"], Side(row["side"]), row["level"],
                         row["price"], row["qty"], row["filled"], OrderState(row["state"]), row["order_id"],
                         row["reason"], created=self.clock.monotonic())
        self.orders[o.client_id] = o
        self.bump_seq(o.seq)
        return o

    def adopt(self, client_id: str, side: Side, price: int, qty: int, filled: int, order_id: int | None) -> ManagedOrder:
        """A venue order this bot did not know about, taken under management (reconcile policy "adopt")."""
        seq = self.seq_of(client_id) or 0
        self.bump_seq(seq)
        o = ManagedOrder(client_id, seq, self.symbol, side, -1, price, qty + filled, filled,
                         OrderState.IDLE, order_id, created=self.clock.monotonic())
        self.orders[client_id] = o
        now = self.clock.time_ns()
        self._write((INSERT_ORDER, (client_id, seq, self.symbol, side.value, -1, price, o.qty, filled,
                                    o.state.value, order_id, "adopted", now, now)))
        self.transition(o, OrderState.WORKING if filled == 0 else OrderState.PARTIALLY_FILLED, "adopted")
        o.live_since = self.clock.monotonic()
        return o

    # --- transitions ------------------------------------------------------------------------------------
    def transition(self, o: ManagedOrder, new: OrderState, reason: str = "") -> bool:
        old = o.state
        if new not in ALLOWED[old]:
            self.ignored += 1
            log.debug("%s: ignored %s → %s for %s", self.bot, old, new, o.client_id)
            return False
        o.state = new
        if reason:
            o.reason = reason
        self.transitions += 1
        self._write((UPDATE_ORDER, (new.value, o.filled, o.order_id, o.reason, self.clock.time_ns(), o.client_id)))
        if new.terminal:
            self._write((UPDATE_OUTBOX, ("done", self.clock.time_ns(), "new", o.client_id)))
            self._write((UPDATE_OUTBOX, ("done", self.clock.time_ns(), "cancel", o.client_id)))
            # Finished orders leave memory at once (the store keeps them): live() stays O(live orders).
            self.orders.pop(o.client_id, None)
            self._closed_ids.add(o.client_id)
            if len(self._closed_ids) > 100_000:
                self._closed_ids.clear()
        self._publish(o, old, reason)
        return True

    def _publish(self, o: ManagedOrder, previous: OrderState, reason: str) -> None:
        self.bus.publish(MMOrderState(
            bot=self.bot, symbol=o.symbol, client_id=o.client_id, side=o.side, level=o.level, price=o.price,
            qty=o.qty, filled=o.filled, state=o.state.value, previous=previous.value, order_id=o.order_id,
            reason=reason, venue=self.venue,
        ))

    def _write(self, *ops: Op) -> None:
        if self.store is not None:
            self.store.write(*ops)

    def mark_sent(self, o: ManagedOrder) -> None:
        self._write((UPDATE_OUTBOX, ("sent", self.clock.time_ns(), "new", o.client_id)))

    def cancel_intent(self, o: ManagedOrder) -> list[Op]:
        now = self.clock.time_ns()
        return [(INSERT_OUTBOX, ("cancel", o.client_id, "{}", "pending", now, now))]

    def forget_terminal(self) -> None:
        """Drop finished orders from memory (the store keeps them); bounded memory for long runs."""
        done = [cid for cid, o in self.orders.items() if o.state.terminal]
        for cid in done:
            del self.orders[cid]
            self._closed_ids.add(cid)
        if len(self._closed_ids) > 100_000:
            self._closed_ids.clear()

    def mark_closed(self, client_id: str) -> None:
        self._closed_ids.add(client_id)

    def live(self) -> list[ManagedOrder]:
        return [o for o in self.orders.values() if o.live]

    def known(self, client_id: str) -> bool:
        return client_id in self.orders or client_id in self._closed_ids

    # --- venue events (subscribed by the bot, already filtered to this bot's owner and symbol) ----------
    def _lookup(self, client_id: str, order_id: int | None) -> ManagedOrder | None:
        o = self.orders.get(client_id)
        if o is None and client_id not in self._closed_ids and self.on_unknown is not None:
            self.on_unknown(client_id, order_id)
        return o

    def on_accepted(self, ev: OrderAccepted) -> None:
        o = self._lookup(ev.client_id, ev.order_id)
        if o is None:
            return
        o.order_id = ev.order_id
        if o.state in (OrderState.IDLE, OrderState.PENDING_NEW):
            o.live_since = self.clock.monotonic()
            self.transition(o, OrderState.WORKING, "accepted")

    def on_rejected(self, ev: OrderRejected) -> None:
        o = self.orders.get(ev.client_id)
        if o is None:
            return
        self.transition(o, OrderState.REJECTED, f"{ev.source}: {ev.reason}")

    def on_canceled(self, ev: OrderCanceled) -> None:
        o = self._lookup(ev.client_id, ev.order_id)
        if o is None:
            return
        reason = ev.reason or ("expired" if ev.status is OrderStatus.EXPIRED else "canceled")
        self.transition(o, OrderState.CANCELED, reason)

    def on_cancel_rejected(self, client_id: str, reason: str) -> None:
        o = self.orders.get(client_id)
        if o is None or o.state is not OrderState.PENDING_CANCEL:
            return
        back = OrderState.WORKING if o.filled == 0 else OrderState.PARTIALLY_FILLED
        self.transition(o, back, f"cancel rejected: {reason}")

    def on_venue_fill(self, ev: Fill) -> None:
        o = self._lookup(ev.client_id, ev.order_id)
        if o is None:
            # A fill of an order this bot does not manage (a stray under its name): the position is
            # real, so it still counts; reconciliation deals with the order itself.
            log.warning("%s: fill of unmanaged order %s (%d lots)", self.bot, ev.client_id, ev.qty)
            if self.on_fill is not None:
                self.on_fill(None, ev)
            return
        key = (ev.order_id, ev.trade_id)
        if key in o.fill_keys:
            self.ignored += 1
            return
        o.fill_keys.add(key)
        o.order_id = ev.order_id
        o.filled = min(o.qty, o.filled + ev.qty)
        if o.live_since is None:
            o.live_since = self.clock.monotonic()
        if self.on_fill is not None:
            self.on_fill(o, ev)
        if ev.leaves_qty == 0 or o.filled >= o.qty:
            self.transition(o, OrderState.FILLED, "filled")
        elif o.state is OrderState.PENDING_CANCEL:
            self.transition(o, OrderState.PENDING_CANCEL, "partially filled while canceling")
        else:
            self.transition(o, OrderState.PARTIALLY_FILLED, "")
