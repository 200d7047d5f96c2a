"""The live grid bot: rests one order per level through the desk's router and flips cells as they fill.

Same cell model as the backtest (``engines.grid.backtest``): cell ``i`` buys ``q_i`` at level ``i``
and sells it at level ``i + 1``. When the grid is laid at price ``p0`` cells whose buy level is at or
above ``p0`` rest a sell at the level above, the others a buy at their level - buys below, sells
above. A cell flips when its order is completely filled (partial fills count in inventory and fees
at once; the opposite order waits for the rest): buy filled at ``L_i`` → sell at ``L_{i+1}``; sell
filled at ``L_{i+1}`` → buy at ``L_i``. An order cancelled after a partial fill (a kill, a pause)
leaves its cell holding that part: the cell re-places only the remainder at the same level, and it
flips when the remainder fills, the round trip counting every part at its own price. A *round trip* is a cell completing both legs (buy then sell,
or - when the grid laid sells without buying the base first - sell then buy); its exact gross is
``qty x (sell - buy)`` and its profit the gross less both fills' fees (``GridRoundTrip``).

The bot works by reconciliation: events (fills, cancels, prices, risk states, pause) only mark it
dirty; one task computes the orders the cells want, filtered by what is allowed now, and places the
missing ones / cancels the unwanted ones. So it never re-enters the venue from a bus callback.

Allowed now: nothing while paused, halted by risk (``effective_state`` HALTED; the kill switch does
the cancelling) or stopped out; with risk REDUCING only orders that shrink the inventory (nearest
first, summing to at most the position); while the
market is trending, ``trend_action`` "pause_buys" places no new buys and "widen" no new buys within
``widen_levels`` levels under the price. Orders already resting are left alone in those cases,
except pause, which cancels. A level whose order was rejected is not retried until the next fill or
price update.

Start (``on_start``): "cancel" the bot's orders at the venue, "keep" them (untracked), or "recover"
them (orders on grid levels are adopted and set their cells' states; others are cancelled).

Venue (re)connect: the bot does not rely on the venue to report what happened while it was away. When
its venue goes down it places nothing; when the venue is back (or was down when the bot started) it
asks the venue what is open (``engines.reconcile``, as the market maker does) before anything else:
its orders the venue does not list are closed (their part fills stay with the cell, like a cancel) and
their levels re-placed by the usual rules; fills the venue reports beyond what the bot has applied are
applied (a fill is applied once: fills count by the venue's cumulative quantity, so a fill learned on
reconciling and its report arriving later, or a duplicate report, add nothing); orders the venue lists
that the bot does not track are cancelled ("recover" before the grid is laid: adopted; with "keep"
they are left, like the orders kept at start).
When the venue cannot answer (not connected, or its open orders are unknown: a FIX counterparty that
did not answer in time) the bot closes nothing, places nothing, and asks again at its next step. Stop
(``on_stop``): "cancel" or "keep". Stop-loss / take-profit on the reference price: cancel everything
and (``liquidate_on_stop``) close the inventory with a market order.

Persistence: the P&L and inventory (position, average price, realised, fees, grid profit, gross, round
trips) live in ``<data_dir>/grid-<name>.sqlite``, the market maker's store (``engines.mm.store``). Each
applied fill is queued with the snapshot it produced (one transaction, after the matching journal's
barrier) and committed before the worker's next step acts on it. Start restores the snapshot, then
applies this bot's fills in the venue's trade history that the store lacks (killed between the venue's
commit and ours). Fills on record are keyed (order id, trade id) -> client id, so a fill reported again
after a restart is not applied again; client ids are reserved on disk in blocks so none is reused.
The cells' open legs are not persisted: a restart lays the grid afresh (or from adopted orders).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engines.events import PriceTick
from engines.fix.events import FixSessionState
from engines.grid.config import GridBotConfig
from engines.grid.events import GridBotStatus, GridMarketState, GridRoundTrip
from engines.grid.levels import GridPlan, make_levels, quantities, realised_vol
from engines.grid.market_state import MarketReading, MarketStateDetector
from engines.grid.strategy import load_strategy
from engines.marketdata import Trade
from engines.mm.store import INSERT_FILL, UPSERT_POSITION, MMStore
from engines.orders import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from engines.reconcile import OpenOrdersUnknown, ask_open_orders, compare, summary
from engines.risk.events import TradingState, TradingStateChanged

if TYPE_CHECKING:
    from engines.runtime import Desk

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Cell:
    holding: str  # "cash" (wants a buy at its level) or "base" (wants a sell at the level above)
    leg_side: Side | None = None  # the open leg of a round trip, if any
    leg_price: int = 0  # the leg's order price (ticks)
    leg_notional: int = 0  # ticks x lots actually paid / received
    leg_fees: float = 0.0
    fill_fees: float = 0.0  # fees of the current leg's partial fills
    part_lots: int = 0  # filled by earlier orders of the current leg that were cancelled part-filled
    part_notional: int = 0  # their ticks x lots
    initial: bool = False  # base bought when the grid was laid: its first sell closes no round trip


@dataclass(slots=True)
class LevelOrder:
    client_id: str
    level: int
    cell: int
    side: Side
    qty: int
    order_id: int | None = None
    filled: int = 0
    notional: int = 0  # sum of fill price (ticks) x qty (lots)
    cancel_sent: bool = False


class GridBot:
    def __init__(self, desk: Desk, cfg: GridBotConfig) -> None:
        self.desk = desk
        self.cfg = cfg
        self.name = cfg.name
        self.symbol = cfg.symbol
        self.bus = desk.bus
        self.router = desk.router
        self.services = desk.services
        self.inst = desk.instruments[cfg.symbol]
        # A volatility grid without a configured step measures it from the first reference prices.
        self.measuring = cfg.strategy is None and cfg.kind == "volatility" and cfg.vol_step is None
        self._vol_prices: deque[float] = deque(maxlen=cfg.vol_window + 1)
        self.plan: GridPlan | None = None
        self.level_ticks: list[int] = []
        self.cell_lots: list[int] = []
        if not self.measuring:
            self._set_plan(self._make_plan())
        self.cells: list[Cell] = []
        self.orders: dict[str, LevelOrder] = {}
        self.by_level: dict[int, str] = {}
        self.blocked: set[int] = set()
        self._ids = itertools.count(1)
        self.state = "starting"
        self.reason = ""
        self.paused = False
        self.stopped_out = False
        self.laid = False
        self.last_price: float | None = None
        self.detector = MarketStateDetector(
            cfg.market_window, er_threshold=cfg.er_threshold, adx_threshold=cfg.adx_threshold
        )
        self.reading: MarketReading = self.detector.reading
        # P&L
        self.round_trips = 0
        self.grid_profit = 0.0
        self.gross = Decimal(0)
        self.fees = 0.0
        self.position = 0  # lots, signed
        self.avg_price = Decimal(0)  # average cost of the open position
        self.realised = Decimal(0)  # average-cost realised P&L (before fees)
        self.last_fill = ""
        self.last_reject = ""
        # Durability (see "Persistence" in the module doc): the mm's store, one file per grid bot.
        matching = desk.services.get("matching")
        self.trade_source = matching if matching is not None and cfg.venue == desk.config.matching.venue else None
        self.store = MMStore(desk.data_dir / f"grid-{cfg.name}.sqlite",
                             barrier=None if self.trade_source is None else self.trade_source.flush)
        # (order_id, trade_id) -> client id ("" when recovered from the venue's trade history) of every fill
        # applied, in this life or before a restart: a fill reported again is not applied again.
        self._seen: dict[tuple[int, int], str] = {}
        self._id_hi = 0  # client ids below this are reserved on disk (a restart starts above: never reused)
        self._unsaved = False  # fills applied but not yet known committed
        self.restored_fills = 0
        self.recovered_fills = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._status_task: asyncio.Task[None] | None = None
        self._subs: list[Any] = []
        self._last_status: GridBotStatus | None = None
        self._recover: list[Any] = []  # venue orders to adopt when the grid is laid (on_start="recover")
        self._recover_cancel: list[Any] = []  # recovered orders that are not on a grid level
        self._initial_lots = 0  # initial_buy: base to buy at market when the grid is laid
        self._liquidate = False  # stop-loss / take-profit hit: close the inventory at market
        # Venue reconciliation (see the module doc)
        self._venue_up: bool | None = None  # the venue's connection when last looked at (None: not yet)
        self._need_reconcile = False
        self._start_pending = False  # the start's open-orders question is still unanswered
        self.venue_unknown: str | None = None  # why the venue's open orders could not be listed (last try)
        self.reconciles = 0
        self.last_reconcile: dict[str, int] = {}
        # Subscribe at build time: the reference price published when sim prices start (before the
        # bot starts) is the price the grid is laid around.
        self._subs.append(self.bus.subscribe(PriceTick, self._ev_price, key=self.symbol))

    # --- plan -------------------------------------------------------------------------------------
    def _set_plan(self, plan: GridPlan) -> None:
        self.plan = plan
        self.level_ticks = [self.inst.to_ticks(p) for p in plan.levels]
        self.cell_lots = [self.inst.to_lots(q) for q in plan.qty]

    def _measured_plan(self) -> GridPlan:
        """The volatility grid centred on the last price, its gap measured over ``vol_window`` updates."""
        prices = list(self._vol_prices)
        sigma = realised_vol(prices)
        step = self.cfg.vol_multiplier * Decimal(repr(sigma)) * Decimal(repr(prices[-1]))
        step = max(step, self.inst.tick_size)  # a flat window still spaces the levels a tick apart
        log.info("grid %s: measured volatility %.6g per update over %d prices: level gap %s",
                 self.name, sigma, len(prices) - 1, step)
        return self._make_plan(center=Decimal(repr(prices[-1])), step=step)

    def _make_plan(self, *, center: Decimal | None = None, step: Decimal | None = None) -> GridPlan:
        """The configured grid (or the strategy file's); ``center``/``step`` for a measured volatility grid."""
        cfg = self.cfg
        tick, lot = self.inst.tick_size, self.inst.lot_size
        if cfg.strategy is not None:
            strat = load_strategy(cfg.strategy)
            if strat.symbol and strat.symbol != cfg.symbol:
                raise ValueError(f"grid {cfg.name}: strategy {cfg.strategy} is for {strat.symbol}, not {cfg.symbol}")
            return strat.plan(tick, lot)
        assert cfg.lower is not None and cfg.upper is not None
        levels = make_levels(cfg.kind, cfg.lower, cfg.upper, cfg.levels, tick, center=center,
                             step=cfg.vol_step if step is None else step)
        qty = quantities(levels, lot, qty=cfg.order_qty if cfg.quote_per_level is None else None,
                         quote_per_level=cfg.quote_per_level)
        return GridPlan(levels, qty, cfg.stop_loss, cfg.take_profit)

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        await self._restore()
        self._subs += [
            self.bus.subscribe(Fill, self._ev_fill, key=self.symbol),
            self.bus.subscribe(OrderAccepted, self._ev_accepted, key=self.symbol),
            self.bus.subscribe(OrderRejected, self._ev_rejected, key=self.symbol),
            self.bus.subscribe(OrderCanceled, self._ev_canceled, key=self.symbol),
            self.bus.subscribe(Trade, self._ev_trade, key=self.symbol),
            self.bus.subscribe(TradingStateChanged, self._ev_trading_state),
            self.bus.subscribe(FixSessionState, self._ev_session),
        ]
        venue = self.router.venues.get(self.cfg.venue)
        adopted: list[Any] = []
        if venue is not None:
            if self.cfg.on_start == "cancel":
                await venue.cancel_all(owner=self.name, symbol=self.symbol)
            elif self.cfg.on_start == "recover":
                try:
                    adopted = await ask_open_orders(venue, self.name, self.symbol)
                except OpenOrdersUnknown as exc:
                    # Recovered once the venue can answer: until then the grid is not laid.
                    self._need_reconcile = self._start_pending = True
                    self.venue_unknown = str(exc)
                    log.warning("grid %s: recover deferred: venue open orders unknown: %s", self.name, exc)
            self._venue_up = venue.connected
            if not self._venue_up:
                # Whatever the venue holds for us (a previous life's orders) is learned once it is up.
                self._need_reconcile = self._start_pending = True
        self._recover = adopted
        self._recover_cancel = []
        self.state = "waiting"
        self._task = asyncio.create_task(self._run(), name=f"grid-{self.name}")
        self._status_task = asyncio.create_task(self._status_loop(), name=f"grid-{self.name}-status")
        self._wake.set()

    async def stop(self) -> None:
        for t in (self._task, self._status_task):
            if t is not None:
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
        self._task = self._status_task = None
        venue = self.router.venues.get(self.cfg.venue)
        if self.cfg.on_stop == "cancel" and venue is not None and self.orders:
            await venue.cancel_all(owner=self.name, symbol=self.symbol)
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()
        self.state = "stopped"
        self._publish_status()
        await self.store.close()

    def pause(self) -> None:
        self.paused = True
        if self.state in ("running", "waiting"):  # say so at once; the worker cancels the orders
            self.state, self.reason = "paused", "paused by operator"
            self._publish_status()
        self._wake.set()

    def resume(self) -> None:
        self.paused = False
        self.blocked.clear()
        self._wake.set()

    async def idle(self, timeout: float = 5.0) -> None:
        """Wait until the bot has acted on everything it has seen (for tests and tools)."""
        await asyncio.wait_for(self._wait_idle(), timeout)

    async def _wait_idle(self) -> None:
        await asyncio.sleep(0)
        while self._wake.is_set() or not self._idle.is_set():
            self._idle.clear()
            await self._idle.wait()

    # --- laying the grid ---------------------------------------------------------------------------
    def _lay(self, price: float) -> None:
        assert self.plan is not None
        p0 = Decimal(repr(price))
        self.cells = [Cell("base" if lv >= p0 else "cash") for lv in self.plan.levels[:-1]]
        for o in self._recover:
            if o.price in self.level_ticks:
                lvl = self.level_ticks.index(o.price)
                cell = lvl if o.side is Side.BUY else lvl - 1
                if 0 <= cell < len(self.cells) and lvl not in self.by_level:
                    self.cells[cell].holding = "cash" if o.side is Side.BUY else "base"
                    lo = LevelOrder(o.client_id, lvl, cell, o.side, o.qty + o.filled_qty, o.order_id, o.filled_qty)
                    self.orders[o.client_id] = lo
                    self.by_level[lvl] = o.client_id
                    continue
            self._recover_cancel.append(o)
        self._recover = []
        self.laid = True
        if self.cfg.initial_buy:
            self._initial_lots = sum(self.cell_lots[i] for i, c in enumerate(self.cells) if c.holding == "base")
            for c in self.cells:
                c.initial = c.holding == "base"

    # --- the worker ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._idle.clear()  # busy: a step may await (the store's commit) before it places anything
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("grid %s: step failed", self.name)
            self._publish_status()
            if not self._wake.is_set():
                self._idle.set()

    def _risk_state(self) -> TradingState:
        risk = self.services.get("risk")
        if risk is None:  # no risk engine on this desk (yet): nothing restricts the bot
            return TradingState.ACTIVE
        return risk.effective_state(self.name, self.symbol)

    async def _step(self) -> None:
        if self._unsaved:  # every fill applied is committed before the bot acts on it
            self._unsaved = False
            await self.store.flush()
        venue = self.router.venues.get(self.cfg.venue)
        up = self._poll_venue()
        if up and self._need_reconcile:
            await self._reconcile(venue)
        if self._need_reconcile:  # down, or could not answer: touch nothing, place nothing
            self.state = "waiting"
            self.reason = (f"venue {self.cfg.venue} disconnected" if not self._venue_up
                           else f"waiting for the venue's open orders ({self.venue_unknown})")
            return
        if not self.laid:
            if self.last_price is None:
                self.state, self.reason = "waiting", "waiting for a reference price"
                return
            if self.plan is None:
                have, need = len(self._vol_prices), self.cfg.vol_window + 1
                if have < need:
                    self.state, self.reason = "waiting", f"measuring volatility: {have}/{need} prices"
                    return
                self._set_plan(self._measured_plan())
            self._lay(self.last_price)
        if venue is None:
            self.state, self.reason = "waiting", f"no venue {self.cfg.venue!r}"
            return
        for o in self._recover_cancel:
            await venue.cancel(self.symbol, o.client_id, self.name)
        self._recover_cancel = []
        if self._initial_lots:
            lots, self._initial_lots = self._initial_lots, 0
            await self._submit_market(Side.BUY, lots, "initial")
        risk = self._risk_state()
        if self.stopped_out:
            self.state = "stopped_out"
        elif risk == TradingState.HALTED:
            self.state, self.reason = "halted", "halted by risk"
        elif self.paused:
            self.state, self.reason = "paused", "paused by operator"
        else:
            self.state = "running"
            self.reason = "reducing only" if risk == TradingState.REDUCING else ""
        want = self._wanted(risk)
        # cancel what is not wanted: only when paused or stopped out (other restrictions leave resting orders)
        if self.paused or self.stopped_out:
            for cid, o in list(self.orders.items()):
                if not o.cancel_sent:
                    o.cancel_sent = True
                    await venue.cancel(self.symbol, cid, self.name)
            if self._liquidate and self.position:
                self._liquidate = False
                side = Side.SELL if self.position > 0 else Side.BUY
                await self._submit_market(side, abs(self.position), "stop")
            return
        for level, (side, cell) in want.items():
            if level in self.by_level or level in self.blocked:
                continue
            await self._submit(level, cell, side)

    # --- venue reconciliation ------------------------------------------------------------------------
    def _poll_venue(self) -> bool:
        """Look at the venue's connection; a venue seen going down owes a reconcile when it is back."""
        venue = self.router.venues.get(self.cfg.venue)
        up = venue is not None and venue.connected
        if venue is not None and not up and self._venue_up is not False:
            self._need_reconcile = True
        if up != self._venue_up:
            self._venue_up = up
            self._wake.set()
        return up

    async def _reconcile(self, venue: Any) -> dict[str, int]:
        why = "start" if self._start_pending else "reconnect"
        before = set(self.orders)
        try:
            listed = await ask_open_orders(venue, self.name, self.symbol)
        except OpenOrdersUnknown as exc:
            if self.venue_unknown is None:
                log.warning("grid %s: reconcile (%s) deferred: venue open orders unknown: %s", self.name, why, exc)
            self.venue_unknown = str(exc)
            return {}
        self.venue_unknown = None
        self._need_reconcile = self._start_pending = False
        # A FIX venue learns what it missed while answering and publishes it (fills, cancels): the
        # handlers have applied that already. What is still live here is compared with the list; orders
        # placed after the question are not (only this worker places, so there are none today).
        cmp = compare((cid for cid in self.orders if cid in before), listed)
        counts = {"kept": len(cmp.kept), "closed": 0, "fills": 0, "canceled": 0, "adopted": 0}
        for cid, v in cmp.kept.items():
            o = self.orders[cid]
            o.order_id = v.order_id
            lots = cmp.learned(cid, o.filled)
            if lots:  # filled there without a report reaching us: at the order's price, fee unknown
                self._apply_fill(o, o.side, lots, self.level_ticks[o.level], 0.0)
                self._save()
                counts["fills"] += 1
        for cid in cmp.missing:
            o = self._forget(cid)
            if o is not None:  # no longer at the venue: closed like a cancel; its level is re-placed
                self._keep_part(o)
                counts["closed"] += 1
        for v in cmp.unknown:
            if why == "start" and self.cfg.on_start == "recover" and not self.laid:
                self._recover.append(v)  # adopted when the grid is laid
                counts["adopted"] += 1
            elif self.cfg.on_start == "keep":
                continue  # kept untracked at start: left alone on every reconcile
            else:
                res = await venue.cancel(self.symbol, v.client_id, self.name)
                counts["canceled"] += 1
                log.info("grid %s: reconcile canceled unknown venue order %s (%s)", self.name, v.client_id,
                         "confirmed" if res.confirmed else res.reason)
        self.reconciles += 1
        self.last_reconcile = counts
        if any(counts[k] for k in ("closed", "fills", "canceled", "adopted")):
            log.info("grid %s: %s", self.name, summary(why, counts))
        return counts

    def _wanted(self, risk: TradingState) -> dict[int, tuple[Side, int]]:
        if self.stopped_out or self.paused or risk == TradingState.HALTED:
            return {}
        want: dict[int, tuple[Side, int]] = {}
        trending = self.reading.regime == "trending"
        action = self.cfg.trend_action if trending else "none"
        price_ticks = self.inst.ticks_near(self.last_price) if self.last_price is not None else None
        below = sum(1 for t in self.level_ticks if price_ticks is not None and t < price_ticks)
        for i, c in enumerate(self.cells):
            if c.holding == "cash":
                if action == "pause_buys":
                    continue
                if action == "widen" and i >= below - self.cfg.widen_levels:
                    continue
                side, level = Side.BUY, i
            else:
                side, level = Side.SELL, i + 1
            want[level] = (side, i)
        if risk == TradingState.REDUCING:
            want = self._reducing_only(want)
        return want

    def _reducing_only(self, want: dict[int, tuple[Side, int]]) -> dict[int, tuple[Side, int]]:
        """The orders that shrink the position, nearest the price first, summing to at most the
        position (more would flip it, and the risk gate would refuse them anyway)."""
        if self.position == 0:
            return {}
        side = Side.SELL if self.position > 0 else Side.BUY
        nearest_first = sorted((lv for lv, (s, _) in want.items() if s is side), reverse=side is Side.BUY)
        room = abs(self.position)
        out: dict[int, tuple[Side, int]] = {}
        for lv in nearest_first:
            lots = self._lots_left(want[lv][1])
            if lots > room:
                break
            room -= lots
            out[lv] = want[lv]
        return out

    def _lots_left(self, cell: int) -> int:
        """What the cell's current leg still has to trade (less when an earlier order part-filled)."""
        return self.cell_lots[cell] - self.cells[cell].part_lots

    async def _submit(self, level: int, cell: int, side: Side) -> None:
        cid = f"{self.name}-{await self._next_id()}"
        o = LevelOrder(cid, level, cell, side, self._lots_left(cell))
        self.orders[cid] = o
        self.by_level[level] = cid
        req = OrderRequest(symbol=self.symbol, side=side, qty=o.qty, price=self.level_ticks[level],
                           client_id=cid, owner=self.name, venue=self.cfg.venue)
        await self.router.submit(req)

    async def _submit_market(self, side: Side, lots: int, tag: str) -> None:
        if lots <= 0:
            return
        cid = f"{self.name}-{tag}-{await self._next_id()}"
        req = OrderRequest(symbol=self.symbol, side=side, qty=lots, type=OrderType.MARKET, tif=TimeInForce.IOC,
                           client_id=cid, owner=self.name, venue=self.cfg.venue)
        await self.router.submit(req)

    # --- bus events (synchronous: record, mark dirty) ------------------------------------------
    def _forget(self, cid: str) -> LevelOrder | None:
        o = self.orders.pop(cid, None)
        if o is not None and self.by_level.get(o.level) == cid:
            del self.by_level[o.level]
        return o

    def _ev_accepted(self, ev: OrderAccepted) -> None:
        o = self.orders.get(ev.client_id) if ev.owner == self.name else None
        if o is not None:
            o.order_id = ev.order_id

    def _ev_rejected(self, ev: OrderRejected) -> None:
        if ev.owner != self.name:
            return
        o = self._forget(ev.client_id)
        self.last_reject = f"{ev.side} {self.inst.fmt_price(ev.price)}: {ev.reason} ({ev.source})"
        if o is not None:
            self.blocked.add(o.level)
        self._wake.set()

    def _ev_canceled(self, ev: OrderCanceled) -> None:
        if ev.owner != self.name:
            return
        o = self._forget(ev.client_id)
        if o is None:
            return
        self._keep_part(o)
        self._wake.set()

    def _keep_part(self, o: LevelOrder) -> None:
        if o.filled:  # the leg keeps what this order filled; its next order trades the rest
            cell = self.cells[o.cell]
            cell.part_lots += o.filled
            cell.part_notional += o.notional

    def _ev_fill(self, ev: Fill) -> None:
        if ev.owner != self.name:
            return
        o = self.orders.get(ev.client_id)
        lots, fee = ev.qty, ev.fee
        key = (ev.order_id, ev.trade_id)
        if self._seen.get(key) in (ev.client_id, ""):  # applied already, in this life or before a restart
            lots = 0
        elif o is not None:
            # Counted by the venue's cumulative quantity: what a reconcile already learned, or a
            # duplicate report, adds nothing.
            lots = min(ev.qty, o.qty - ev.leaves_qty - o.filled)
            fee = ev.fee if lots == ev.qty else ev.fee * max(lots, 0) / ev.qty
        if lots > 0:
            self._apply_fill(o, ev.side, lots, ev.price, fee)
        if o is not None and ev.leaves_qty == 0 and self.orders.get(ev.client_id) is o:
            self._forget(ev.client_id)
            self._flip(o, self.cells[o.cell])
        if lots > 0:
            self._seen[key] = ev.client_id
            # The fill and the P&L it produced (a round trip it closed included) in one transaction.
            self._save((INSERT_FILL, (ev.client_id, ev.order_id, ev.trade_id, ev.symbol, ev.side.value, ev.price,
                                      lots, repr(fee), ev.liquidity.value, ev.ts)))
        self._wake.set()

    # --- persistence ------------------------------------------------------------------------------------
    def _pnl_record(self) -> dict[str, Any]:
        return {"position": self.position, "avg_price": str(self.avg_price), "realised": str(self.realised),
                "fees": repr(self.fees), "grid_profit": repr(self.grid_profit), "gross": str(self.gross),
                "round_trips": self.round_trips, "last_fill": self.last_fill}

    def _save(self, *ops: Any) -> None:
        """Queue ``ops`` with the P&L snapshot (one transaction); committed before the worker's next step."""
        rec = self._pnl_record()
        self.store.write(
            *ops,
            ("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", ("grid_pnl", json.dumps(rec))),
            (UPSERT_POSITION, (self.symbol, str(self.inst.qty(self.position)), rec["avg_price"], rec["realised"],
                               rec["fees"], len(self._seen), self.desk.clock.time_ns())),
        )
        self._unsaved = True
        self._wake.set()

    async def _next_id(self) -> int:
        """The next client-id number; blocks of ids are reserved on disk first, so a restarted bot
        never reuses one (its fills are told apart from a previous life's by client id)."""
        n = next(self._ids)
        if n >= self._id_hi:
            self._id_hi = n + 1000
            await self.store.write_now(("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                        ("grid_id_hi", str(self._id_hi))))
        return n

    async def _restore(self) -> None:
        raw = await self.store.meta("grid_pnl")
        if raw is not None:
            rec = json.loads(raw)
            self.position = int(rec["position"])
            self.avg_price = Decimal(rec["avg_price"])
            self.realised = Decimal(rec["realised"])
            self.fees = float(rec["fees"])
            self.grid_profit = float(rec["grid_profit"])
            self.gross = Decimal(rec["gross"])
            self.round_trips = int(rec["round_trips"])
            self.last_fill = rec["last_fill"]
        fills = await self.store.fills()
        self._seen = {(f["order_id"], f["trade_id"]): f["client_id"] for f in fills}
        self._id_hi = int(await self.store.meta("grid_id_hi") or 0)
        self._ids = itertools.count(max(self._id_hi, 1))
        self.restored_fills = len(fills)
        self._recover_fills()
        if raw is not None or self.recovered_fills:
            log.info("grid %s: restored %d fill(s), position %s, %d round trip(s)", self.name, len(self._seen),
                     self.inst.fmt_qty(self.position), self.round_trips)

    def _recover_fills(self) -> None:
        """Fills of this bot in the venue's trade history that the store lacks (the process died between
        the venue journaling them and the store committing them): applied to the position and fees now."""
        if self.trade_source is None:
            return
        for t in self.trade_source.recent_trades(self.symbol, 1 << 30):
            for owner, oid, side, fee, liq in (
                (t.maker_owner, t.maker_order_id, t.aggressor.opposite, t.maker_fee, "maker"),
                (t.taker_owner, t.taker_order_id, t.aggressor, t.taker_fee, "taker"),
            ):
                if owner != self.name or (oid, t.trade_id) in self._seen:
                    continue
                self._apply_fill(None, side, t.qty, t.price, fee)
                self._seen[(oid, t.trade_id)] = ""
                self._save((INSERT_FILL, ("", oid, t.trade_id, t.symbol, side.value, t.price, t.qty, repr(fee), liq,
                                          t.ts)))
                self.recovered_fills += 1
        if self.recovered_fills:
            log.warning("grid %s: recovered %d fill(s) from the venue's trade history after restart",
                        self.name, self.recovered_fills)

    def _apply_fill(self, o: LevelOrder | None, side: Side, lots: int, price_ticks: int, fee: float) -> None:
        price = self.inst.price(price_ticks)
        self.fees += fee
        self._position_fill(side, lots, price)
        self.last_fill = f"{side.value} {self.inst.fmt_qty(lots)} @ {price:f}"
        self.blocked.clear()
        if o is not None:
            self.cells[o.cell].fill_fees += fee
            o.filled += lots
            o.notional += price_ticks * lots

    def _flip(self, o: LevelOrder, cell: Cell) -> None:
        fees = cell.fill_fees
        qty = o.filled + cell.part_lots
        notional = o.notional + cell.part_notional
        cell.fill_fees, cell.part_lots, cell.part_notional = 0.0, 0, 0
        price = self.level_ticks[o.level]
        if cell.initial:
            cell.initial = False
        elif cell.leg_side is not None and cell.leg_side is not o.side:
            buy, sell = (cell.leg_price, price) if o.side is Side.SELL else (price, cell.leg_price)
            sold, bought = (notional, cell.leg_notional) if o.side is Side.SELL else (cell.leg_notional, notional)
            gross = (sold - bought) * self.inst.tick_size * self.inst.lot_size
            all_fees = cell.leg_fees + fees
            profit = float(gross) - all_fees
            self.round_trips += 1
            self.gross += gross
            self.grid_profit += profit
            self.bus.publish(GridRoundTrip(bot=self.name, symbol=self.symbol, cell=o.cell, buy_price=buy,
                                           sell_price=sell, qty=qty, gross=gross, fees=all_fees, profit=profit))
            cell.leg_side = None
        else:
            cell.leg_side, cell.leg_price, cell.leg_notional, cell.leg_fees = o.side, price, notional, fees
        cell.holding = "base" if o.side is Side.BUY else "cash"

    def _position_fill(self, side: Side, lots: int, price: Decimal) -> None:
        signed = lots if side is Side.BUY else -lots
        pos = self.position
        if pos == 0 or (pos > 0) == (signed > 0):
            total = abs(pos) + lots
            self.avg_price = (self.avg_price * abs(pos) + price * lots) / total
        else:
            closed = min(abs(pos), lots)
            sign = 1 if pos > 0 else -1
            self.realised += (price - self.avg_price) * self.inst.qty(closed) * sign
            if lots > abs(pos):
                self.avg_price = price
        self.position = pos + signed
        if self.position == 0:
            self.avg_price = Decimal(0)

    def _ev_price(self, ev: PriceTick) -> None:
        if self.plan is None:
            self._vol_prices.append(ev.price)
        self._on_price(ev.price)
        prev = self.reading.regime
        self.reading = self.detector.update(ev.price)
        if self.reading.regime != prev:
            self._publish_market()

    def _ev_trade(self, ev: Trade) -> None:
        self._on_price(float(self.inst.price(ev.price)))

    def _on_price(self, price: float) -> None:
        self.last_price = price
        self.blocked.clear()
        if self.plan is None:  # still measuring volatility: nothing laid to stop out
            self._wake.set()
            return
        sl, tp = self.plan.stop_loss, self.plan.take_profit
        if self.laid and not self.stopped_out and (
            (sl is not None and price <= sl) or (tp is not None and price >= tp)
        ):
            self.stopped_out = True
            self.reason = f"{'stop-loss' if sl is not None and price <= sl else 'take-profit'} at {price:g}"
            log.warning("grid %s: %s", self.name, self.reason)
            self._liquidate = self.cfg.liquidate_on_stop
        self._wake.set()

    def _ev_trading_state(self, ev: TradingStateChanged) -> None:
        self._wake.set()

    def _ev_session(self, ev: FixSessionState) -> None:
        self._poll_venue()  # a FIX venue's session went down or came back: wakes the worker on a change

    # --- status -------------------------------------------------------------------------------------
    @property
    def unrealised(self) -> float:
        if self.last_price is None or self.position == 0:
            return 0.0
        return float((Decimal(repr(self.last_price)) - self.avg_price) * self.inst.qty(self.position))

    def level_states(self) -> tuple[tuple[float, str], ...]:
        out = []
        for i, t in enumerate(self.level_ticks):
            cid = self.by_level.get(i)
            st = "empty" if cid is None else self.orders[cid].side.value
            out.append((float(self.inst.price(t)), st))
        return tuple(out)

    def _publish_market(self) -> None:
        r = self.reading
        action = self.cfg.trend_action if r.regime == "trending" and self.cfg.trend_action != "none" else ""
        self.bus.publish(GridMarketState(bot=self.name, symbol=self.symbol, regime=r.regime,
                                         efficiency_ratio=r.efficiency_ratio, adx=r.adx, p_trend=r.p_trend,
                                         direction=r.direction, action=action))

    def _publish_status(self) -> None:
        ev = GridBotStatus(
            bot=self.name, symbol=self.symbol, venue=self.cfg.venue, state=self.state, reason=self.reason,
            levels=self.level_states(), last_price=self.last_price, round_trips=self.round_trips,
            grid_profit=self.grid_profit, fees=self.fees, inventory=float(self.inst.qty(self.position)),
            avg_price=float(self.avg_price) if self.position else None, unrealised=self.unrealised,
            market_state=self.reading.regime, last_fill=self.last_fill, open_orders=len(self.orders),
        )
        self._last_status = ev
        self.bus.publish(ev)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.status_interval)
            self._poll_venue()  # venues without session events (a restarted in-process venue)
            self._publish_status()
            self._publish_market()

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "symbol": self.symbol,
            "levels": len(self.level_ticks),
            "open_orders": len(self.orders),
            "round_trips": self.round_trips,
            "grid_profit": round(self.grid_profit, 8),
            "fees": round(self.fees, 8),
            "inventory": float(self.inst.qty(self.position)),
            "unrealised": round(self.unrealised, 8),
            "market_state": self.reading.regime,
            "last_reject": self.last_reject,
            "reconciles": self.reconciles,
            "last_reconcile": self.last_reconcile,
            "venue_unknown": self.venue_unknown,
        }
