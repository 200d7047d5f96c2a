"""The console's desk model: plain Python, no Textual.

Bus events go in (:meth:`DeskModel.apply`, wired to an in-process :class:`engines.bus.Bus` with
:meth:`DeskModel.attach`, or fed decoded JSON events by a remote console with
:meth:`DeskModel.apply_json`); the panels read conflated latest state out of it. Every update marks
the panels it affects dirty; the app's refresh timer redraws only visible, dirty panels. Histories
(event log, FIX messages, trades, orders, P&L points) are bounded ring buffers.

Events are dispatched by class *name* and read with ``getattr`` defaults so the model does not import
the engine packages (the remote console decodes events it may not have classes for in the same
shape) and tolerates engines that add fields later.

A few low-rate, operator-critical events (trading state, kill progress, breaches, FIX session state,
rejects) are also handed to ``urgent`` listeners at once: the app turns them into Messages so they
are shown without waiting for the next refresh tick.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engines.events import Event, from_dict
from engines.instruments import Instrument

#: Panel keys used for dirty flags.
PANELS = ("status", "fix", "book", "bots", "grid", "log", "orders", "fixmsgs", "kill")

#: Events the app hears about immediately (besides the model update).
URGENT = frozenset(
    {
        "TradingStateChanged",
        "KillSwitchAction",
        "KillProgress",
        "RiskBreach",
        "FixSessionState",
        "OrderRejected",
        "CancelRejected",
        "QueueOverflow",
        "EngineStatusChanged",
    }
)

#: Modules whose event classes the model handles (imported by ``attach`` so they are registered).
EVENT_MODULES = (
    "engines.orders",
    "engines.marketdata",
    "engines.risk.events",
    "engines.mm.events",
    "engines.grid.events",
    "engines.fix.events",
)

FIX_STATE_SYMBOL = {
    "ACTIVE": "●",
    "DISCONNECTED": "○",
    "CONNECTING": "◌",
    "LOGON_IN_PROGRESS": "◐",
    "LOGOUT_IN_PROGRESS": "◑",
    "RECONNECTING": "↻",
}


def _val(x: Any) -> Any:
    """Enum → its value; anything else unchanged (JSON-decoded events carry plain strings)."""
    return getattr(x, "value", x)


@dataclass(slots=True)
class LogEntry:
    seq: int
    ts: int  # desk-clock ns
    level: str  # "info" | "warning" | "error" | "action"
    source: str
    text: str


@dataclass(slots=True)
class OrderInfo:
    symbol: str
    order_id: int
    client_id: str
    owner: str
    side: str
    price: int | None
    qty: int
    leaves: int
    filled: int = 0
    status: str = "new"
    venue: str = "sim"
    tif: str = ""
    type: str = "limit"
    lifecycle: list[tuple[int, str]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in ("new", "partially_filled", "pending_new")


@dataclass(slots=True)
class FixSessionView:
    session: str
    state: str = "DISCONNECTED"
    role: str = ""
    reason: str = ""
    next_sender_seq: int = 0
    next_target_seq: int = 0
    last_heartbeat_ts: int = 0
    msgs_in: int = 0
    msgs_out: int = 0
    rate_in: float = 0.0
    rate_out: float = 0.0
    errors: int = 0

    @property
    def sender_target(self) -> tuple[str, str]:
        # "FIX.4.4:SENDER->TARGET"
        tail = self.session.split(":", 1)[-1]
        sender, _, target = tail.partition("->")
        return sender, target


class DeskModel:
    def __init__(
        self,
        instruments: dict[str, Instrument],
        *,
        own_owners: Iterable[str] = (),
        log_size: int = 1000,
        fix_size: int = 2000,
        trade_size: int = 100,
        order_size: int = 5000,
        pnl_points: int = 120,
        desk_name: str = "desk",
    ) -> None:
        self.instruments = instruments
        self.symbols = list(instruments)
        self.desk_name = desk_name
        self.own_owners = set(own_owners)
        #: LogRecordEvent sources not shown (the console's own actions, which it logs itself).
        self.quiet_sources: set[str] = set()
        #: The link to a remote desk ("live", "connecting", "disconnected", "refused"); None in-process.
        self.link: Any = None
        self.dirty: set[str] = set(PANELS)
        self.urgent: list[Callable[[Event], None]] = []
        self.events = 0
        self.last_ts = 0
        # market data (conflated)
        self.prices: dict[str, float] = {}
        self.bbo: dict[str, Any] = {}
        self.depth: dict[str, Any] = {}
        self.trades: dict[str, deque[Any]] = {s: deque(maxlen=trade_size) for s in self.symbols}
        self._trade_size = trade_size
        # orders
        self.orders: OrderedDict[tuple[str, int], OrderInfo] = OrderedDict()
        self.open_orders: dict[str, dict[int, OrderInfo]] = {s: {} for s in self.symbols}
        self._order_size = order_size
        self.rejects = 0
        # bots
        self.bots: dict[str, Any] = {}  # name -> latest MMBotStatus
        self.pnl: dict[str, deque[float]] = {}  # name -> net P&L points (sparklines)
        self._pnl_last_ts: dict[str, int] = {}
        self._pnl_points = pnl_points
        self.grids: dict[str, Any] = {}  # name -> latest GridBotStatus
        # FIX
        self.fix: dict[str, FixSessionView] = {}
        self.fix_msgs: deque[Any] = deque(maxlen=fix_size)
        self.fix_msg_count = 0
        # risk
        self.states: dict[str, str] = {"desk": "active"}
        self.state_reason: dict[str, str] = {}
        self.kill_progress: dict[str, Any] = {}
        self.breaches = 0
        # engines
        self.engines: dict[str, str] = {}
        #: venue → the order book its matching engine runs ("compiled" / "python"), from the desk's status
        self.venue_books: dict[str, str] = {}
        # log
        self.log: deque[LogEntry] = deque(maxlen=log_size)
        self.log_seq = 0
        self._handlers: dict[str, Callable[[Any], None]] = {
            "PriceTick": self._price,
            "BBO": self._bbo,
            "Depth": self._depth,
            "Trade": self._trade,
            "OrderAccepted": self._accepted,
            "OrderRejected": self._rejected,
            "OrderCanceled": self._canceled,
            "OrderReplaced": self._replaced,
            "CancelRejected": self._cancel_rejected,
            "Fill": self._fill,
            "MMBotStatus": self._mm_status,
            "GridBotStatus": self._grid_status,
            "FixSessionState": self._fix_state,
            "FixSessionStats": self._fix_stats,
            "FixMessageLogged": self._fix_msg,
            "TradingStateChanged": self._trading_state,
            "KillSwitchAction": self._kill_action,
            "KillProgress": self._kill_progress,
            "RiskBreach": self._breach,
            "EngineStatusChanged": self._engine,
            "LogRecordEvent": self._logrec,
            "QueueOverflow": self._overflow,
        }
        self._entries: dict[str, Callable[[Any], None]] = {}

    # --- feeding -------------------------------------------------------------------------------------
    def attach(self, bus: Any) -> list[Any]:
        """Subscribe to the event types the model handles on an in-process bus; returns the subscriptions.

        One subscription per concrete type, so the bus calls the right handler directly and events the
        console does not show (most of the flood on a busy desk) cost it nothing.
        """
        import importlib

        from engines.events import event_types

        # Register the event classes the model shows even if no engine of that kind is built here.
        for module in EVENT_MODULES:
            try:
                importlib.import_module(module)
            except ImportError:
                pass
        subs = []
        for name, cls in event_types().items():
            if name in self._handlers:
                subs.append(bus.subscribe(cls, self._entry(name)))
        return subs

    def _entry(self, name: str) -> Callable[[Any], None]:
        handler = self._handlers[name]
        urgent = self.urgent

        if name in URGENT:

            def handle_urgent(ev: Any) -> None:
                self.events += 1
                self.last_ts = ev.ts
                handler(ev)
                for listener in urgent:
                    listener(ev)

            return handle_urgent

        def handle(ev: Any) -> None:
            self.events += 1
            self.last_ts = ev.ts
            handler(ev)

        return handle

    def apply_json(self, data: str | bytes | dict[str, Any]) -> None:
        """Apply one event in its JSON form (the remote console's path)."""
        if not isinstance(data, dict):
            data = json.loads(data)
        try:
            ev = from_dict(data)
        except (ValueError, KeyError, TypeError):
            return  # an event type (or shape) this console does not know: ignore, don't crash the UI
        self.apply(ev)

    def apply(self, ev: Any) -> None:
        """Apply one event (any type; those the model does not handle are ignored)."""
        entry = self._entries.get(type(ev).__name__)
        if entry is None:
            name = type(ev).__name__
            if name not in self._handlers:
                return
            entry = self._entries[name] = self._entry(name)
        entry(ev)

    # --- dirty flags ---------------------------------------------------------------------------------
    def take_dirty(self, panel: str) -> bool:
        if panel in self.dirty:
            self.dirty.discard(panel)
            return True
        return False

    def mark_all_dirty(self) -> None:
        self.dirty.update(PANELS)

    def set_desk_status(self, status: dict[str, Any]) -> None:
        """Take what only the engines' ``status()`` says (not their events) from ``Desk.status()`` or its
        JSON form (a remote snapshot): which order book each matching engine runs (``book_impl``)."""
        books: dict[str, str] = {}
        for name, st in (status.get("engines") or {}).items():
            if isinstance(st, dict) and st.get("book_impl"):
                books[str(st.get("venue") or name)] = str(st["book_impl"])
        if books != self.venue_books:
            self.venue_books = books
            self.dirty.add("book")

    # --- queries -------------------------------------------------------------------------------------
    def desk_state(self) -> str:
        return self.states.get("desk", "active")

    def halted_scopes(self) -> list[str]:
        return sorted(s for s, st in self.states.items() if st != "active")

    def is_own(self, owner: str) -> bool:
        return owner in self.own_owners or owner == "operator" or owner.startswith("fix:")

    def own_levels(self, symbol: str) -> dict[tuple[str, int], list[str]]:
        """(side, price) → owners of the desk's own resting orders at that level."""
        out: dict[tuple[str, int], list[str]] = {}
        for o in self.open_orders.get(symbol, {}).values():
            if o.price is not None and self.is_own(o.owner):
                owners = out.setdefault((o.side, o.price), [])
                if o.owner not in owners:
                    owners.append(o.owner)
        return out

    def open_count(self, *, owner: str | None = None, symbol: str | None = None) -> int:
        n = 0
        for sym, orders in self.open_orders.items():
            if symbol is not None and sym != symbol:
                continue
            n += sum(1 for o in orders.values() if owner is None or o.owner == owner)
        return n

    def order(self, symbol: str, order_id: int) -> OrderInfo | None:
        return self.orders.get((symbol, order_id))

    def add_log(self, level: str, source: str, text: str, ts: int | None = None) -> LogEntry:
        self.log_seq += 1
        entry = LogEntry(self.log_seq, self.last_ts if ts is None else ts, level, source, text)
        self.log.append(entry)
        self.dirty.add("log")
        return entry

    def fmt_price(self, symbol: str, ticks: int | None) -> str:
        inst = self.instruments.get(symbol)
        if ticks is None:
            return "—"
        return inst.fmt_price(ticks) if inst else str(ticks)

    def fmt_qty(self, symbol: str, lots: int) -> str:
        inst = self.instruments.get(symbol)
        return inst.fmt_qty(lots) if inst else str(lots)

    # --- handlers: market data -----------------------------------------------------------------------
    # Conflated: keep the latest per symbol and mark the panel; the hot path of a busy desk.
    def _price(self, ev: Any) -> None:
        self.prices[ev.symbol] = ev.price
        self.dirty.add("book")
        self.dirty.add("grid")

    def _bbo(self, ev: Any) -> None:
        self.bbo[ev.symbol] = ev
        self.dirty.add("book")

    def _depth(self, ev: Any) -> None:
        self.depth[ev.symbol] = ev
        self.dirty.add("book")

    def _trade(self, ev: Any) -> None:
        q = self.trades.get(ev.symbol)
        if q is None:
            q = self.trades[ev.symbol] = deque(maxlen=self._trade_size)
        q.append(ev)
        self.dirty.add("book")

    # --- handlers: orders ----------------------------------------------------------------------------
    def _remember(self, o: OrderInfo) -> None:
        key = (o.symbol, o.order_id)
        self.orders[key] = o
        if len(self.orders) > self._order_size:
            self.orders.popitem(last=False)
        if o.is_open:
            self.open_orders.setdefault(o.symbol, {})[o.order_id] = o

    def _close(self, o: OrderInfo) -> None:
        book = self.open_orders.get(o.symbol)
        if book is not None:
            book.pop(o.order_id, None)

    def _accepted(self, ev: Any) -> None:
        o = OrderInfo(
            symbol=ev.symbol,
            order_id=ev.order_id,
            client_id=ev.client_id,
            owner=ev.owner,
            side=_val(ev.side),
            price=ev.price,
            qty=ev.qty,
            leaves=ev.qty,
            venue=ev.venue,
            tif=_val(ev.tif),
            type=_val(ev.type),
        )
        o.lifecycle.append(
            (ev.ts, f"accepted {o.side} {self.fmt_qty(ev.symbol, ev.qty)} @ {self.fmt_price(ev.symbol, ev.price)}")
        )
        self._remember(o)
        self.dirty.add("orders")
        if self.is_own(ev.owner):
            self.dirty.add("book")

    def _rejected(self, ev: Any) -> None:
        self.rejects += 1
        self.add_log(
            "warning",
            ev.source,
            f"reject {ev.owner} {_val(ev.side)} {self.fmt_qty(ev.symbol, ev.qty)} {ev.symbol}"
            f" @ {self.fmt_price(ev.symbol, ev.price)}: {ev.reason}",
            ev.ts,
        )

    def _canceled(self, ev: Any) -> None:
        o = self.orders.get((ev.symbol, ev.order_id))
        if o is None:
            return
        o.status = _val(ev.status)
        o.leaves = 0
        o.lifecycle.append(
            (ev.ts, f"{o.status} {self.fmt_qty(ev.symbol, ev.canceled_qty)} ({ev.reason or 'no reason'})")
        )
        self._close(o)
        self.dirty.add("orders")
        self.dirty.add("book")

    def _replaced(self, ev: Any) -> None:
        o = self.orders.get((ev.symbol, ev.order_id))
        if o is None:
            return
        o.price = ev.price
        o.leaves = ev.qty
        o.client_id = ev.client_id
        prio = "kept priority" if ev.kept_priority else "lost priority"
        o.lifecycle.append(
            (ev.ts, f"replaced → {self.fmt_qty(ev.symbol, ev.qty)} @ {self.fmt_price(ev.symbol, ev.price)} ({prio})")
        )
        self.dirty.add("orders")
        self.dirty.add("book")

    def _cancel_rejected(self, ev: Any) -> None:
        self.add_log("warning", ev.venue, f"cancel reject {ev.owner} {ev.client_id}: {ev.reason}", ev.ts)

    def _fill(self, ev: Any) -> None:
        o = self.orders.get((ev.symbol, ev.order_id))
        if o is None:
            return
        o.filled += ev.qty
        o.leaves = ev.leaves_qty
        o.status = "filled" if ev.leaves_qty == 0 else "partially_filled"
        o.lifecycle.append(
            (
                ev.ts,
                f"fill {self.fmt_qty(ev.symbol, ev.qty)} @ {self.fmt_price(ev.symbol, ev.price)}"
                f" {_val(ev.liquidity)} fee {ev.fee:.4f}",
            )
        )
        if not o.is_open:
            self._close(o)
        self.dirty.add("orders")

    # --- handlers: bots ------------------------------------------------------------------------------
    def _mm_status(self, ev: Any) -> None:
        self.bots[ev.bot] = ev
        self.own_owners.add(ev.bot)
        # the net P&L (after fees), the figure the bots table shows beside the sparkline
        realised = float(getattr(ev, "realised", 0.0))
        unrealised = float(getattr(ev, "unrealised", 0.0))
        total = float(getattr(ev, "net_pnl", realised + unrealised - float(getattr(ev, "fees", 0.0))))
        points = self.pnl.get(ev.bot)
        if points is None:
            points = self.pnl[ev.bot] = deque(maxlen=self._pnl_points)
        # One point per half second of desk time; faster updates replace the latest point.
        last = self._pnl_last_ts.get(ev.bot)
        if points and last is not None and ev.ts - last < 500_000_000:
            points[-1] = total
        else:
            points.append(total)
            self._pnl_last_ts[ev.bot] = ev.ts
        self.dirty.add("bots")

    def _grid_status(self, ev: Any) -> None:
        self.grids[ev.bot] = ev
        self.own_owners.add(ev.bot)
        self.dirty.add("grid")

    # --- handlers: FIX -------------------------------------------------------------------------------
    def _fix_view(self, session: str) -> FixSessionView:
        view = self.fix.get(session)
        if view is None:
            view = self.fix[session] = FixSessionView(session)
        return view

    def _fix_state(self, ev: Any) -> None:
        view = self._fix_view(ev.session)
        previous = view.state
        view.state = str(_val(ev.state))
        view.role = str(_val(getattr(ev, "role", view.role)))
        view.reason = getattr(ev, "reason", "")
        self.dirty.add("fix")
        if view.state != previous:
            level = "warning" if previous == "ACTIVE" else "info"
            why = f" ({view.reason})" if view.reason else ""
            self.add_log(level, "fix", f"{ev.session}: {previous} → {view.state}{why}", ev.ts)

    def _fix_stats(self, ev: Any) -> None:
        view = self._fix_view(ev.session)
        for name in (
            "next_sender_seq",
            "next_target_seq",
            "last_heartbeat_ts",
            "msgs_in",
            "msgs_out",
            "rate_in",
            "rate_out",
            "errors",
        ):
            value = getattr(ev, name, None)
            if value is not None:
                setattr(view, name, value)
        state = getattr(ev, "state", None)
        if state is not None:
            view.state = str(_val(state))
        self.dirty.add("fix")

    def _fix_msg(self, ev: Any) -> None:
        self.fix_msgs.append(ev)
        self.fix_msg_count += 1
        self.dirty.add("fixmsgs")

    # --- handlers: risk ------------------------------------------------------------------------------
    def _trading_state(self, ev: Any) -> None:
        state = str(_val(ev.state))
        self.states[ev.scope] = state
        self.state_reason[ev.scope] = ev.reason
        level = "error" if state == "halted" else "warning" if state == "reducing" else "info"
        self.add_log(
            level, ev.source, f"{ev.scope}: {_val(ev.previous)} → {state.upper()} ({ev.reason})", ev.ts
        )
        self.dirty.update(("status", "bots", "grid", "book"))

    def _kill_action(self, ev: Any) -> None:
        who = f" by {ev.actor}" if getattr(ev, "actor", "") else ""
        self.add_log("action", ev.source, f"{ev.action} {ev.scope}{who}: {ev.reason}", ev.ts)

    def _kill_progress(self, ev: Any) -> None:
        self.kill_progress[ev.scope] = ev
        self.dirty.add("kill")
        if ev.done:
            self.add_log(
                "action",
                "killswitch",
                f"kill {ev.scope}: {ev.confirmed}/{ev.requested} cancels confirmed in {ev.elapsed_ms:.1f} ms",
                ev.ts,
            )

    def _breach(self, ev: Any) -> None:
        self.breaches += 1
        detail = f" — {ev.detail}" if ev.detail else ""
        self.add_log("error", f"rule:{ev.rule}", f"{ev.scope}: {ev.value} past limit {ev.limit}{detail}", ev.ts)

    # --- handlers: desk ------------------------------------------------------------------------------
    def _engine(self, ev: Any) -> None:
        state = str(_val(ev.state))
        self.engines[ev.engine] = state
        self.dirty.add("status")
        if state in ("failed", "degraded"):
            self.add_log("error", ev.engine, f"engine {state}: {ev.detail}", ev.ts)

    def _logrec(self, ev: Any) -> None:
        if ev.source in self.quiet_sources:
            return
        self.add_log(ev.level.lower(), ev.source, ev.message, ev.ts)

    def _overflow(self, ev: Any) -> None:
        what = "cut off" if ev.cut_off else "back-pressure"
        self.add_log("warning", "bus", f"queue {ev.consumer} {what} at {ev.depth} (capacity {ev.capacity})", ev.ts)
