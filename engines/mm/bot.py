"""The market maker: reference → quotes → OMS → rate limiter → router → venue, and fills back.

One bot quotes one instrument on one venue (any ``engines.venue.Venue`` registered with the router;
by default the in-process matching engine, venue "sim"). Every order goes through
``desk.router.submit`` and so through the desk's pre-trade gate; cancels through ``router.cancel``.
Outcomes come back as bus events (``OrderAccepted``/``OrderRejected``/``OrderCanceled``/``Fill``/
``CancelRejected``) filtered to ``owner == bot name``.

The quoting loop (:meth:`MarketMaker.step`) runs on every reference update, fill or state change and
at least every ``1/status_hz`` s. It quotes nothing — and cancels what rests — when the bot is paused,
halted by one of its limits, the desk's risk engine says HALTED for the bot or the instrument
(REDUCING: only the side that reduces the position), the venue is disconnected, or the reference is
stale; the reason is in ``MMBotStatus.reason`` and logged on the bus.

Start and reconnect reconcile with the venue: orders the venue has for this bot that the bot does not
know are cancelled or adopted (``reconcile`` in config); orders the bot believes live that the venue
lacks are closed. The outbox is replayed: cancel intents are re-sent (idempotent); a new-order intent
is adopted if the venue has it and otherwise closed, never re-sent — its quote is stale, and without
a venue-side lookup by id, absence could mean "already filled", so re-sending could duplicate it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from engines.bus import Bus, Subscription
from engines.clock import Clock
from engines.events import LogRecordEvent
from engines.feeds.reference import ReferenceTracker
from engines.instruments import Instrument
from engines.marketdata import BBO, Trade
from engines.mm.config import MMBotConfig
from engines.mm.events import MMBotStatus
from engines.mm.oms import OMS, ManagedOrder, OrderState
from engines.mm.pnl import PnL
from engines.mm.quote import QuoteLevel, QuoteParams, compute_quotes, needs_refresh
from engines.mm.ratelimit import Action, RateLimiter
from engines.mm.risk import BotLimits, Breach
from engines.mm.store import INSERT_FILL, UPDATE_OUTBOX, UPSERT_POSITION, MMStore, OutboxRow
from engines.orders import (
    CancelRejected,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderRequest,
    Side,
)
from engines.reconcile import OpenOrdersUnknown, ask_open_orders, compare, summary
from engines.risk.events import RiskBreach, TradingState, TradingStateChanged, bot_scope
from engines.venue import OrderRouter
from engines.waits import wait_event

log = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 1_000_000_000


def _q(x: Decimal) -> str:
    """Money for display: 8 decimals (average-cost arithmetic carries repeating decimals)."""
    return str(x.quantize(Decimal("1e-8")))


class TradeSource(Protocol):
    """A venue's trade history (the matching engine restores it from its journal): lets a restarted
    bot recover fills the venue recorded but the bot's own store missed in the crash. ``flush``
    returns once everything the venue did so far is journaled: the bot's store waits for it before
    committing what it learned from the venue, so the store never holds a fill the venue could lose."""

    def recent_trades(self, symbol: str, n: int = 100) -> list[Trade]: ...

    async def flush(self) -> None: ...


class MarketMaker:
    def __init__(
        self,
        cfg: MMBotConfig,
        *,
        bus: Bus,
        clock: Clock,
        router: OrderRouter,
        instrument: Instrument,
        services: dict[str, Any] | None = None,
        store_path: Path | None = None,
        autorun: bool = True,
        trade_source: TradeSource | None = None,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.bus = bus
        self.clock = clock
        self.router = router
        self.inst = instrument
        self.services = services if services is not None else {}
        self.params = QuoteParams.from_config(cfg, instrument)
        self.limits = BotLimits(cfg.limits, instrument)
        self.store = (
            MMStore(store_path, barrier=None if trade_source is None else trade_source.flush)
            if store_path is not None else None
        )
        self.autorun = autorun  # False in tests that drive step()/pump() by hand
        self.trade_source = trade_source
        self.recovered_fills = 0
        self.oms = OMS(bot=cfg.name, symbol=cfg.symbol, venue=cfg.venue, bus=bus, clock=clock, store=self.store,
                       on_fill=self._on_fill, on_unknown=self._on_unknown)
        self.limiter = RateLimiter(cfg.max_orders_per_second, cfg.burst, clock=clock)
        self.pnl = PnL(capital=cfg.capital, starting_inventory=cfg.starting_inventory)
        # Subscribed from construction: a feed started before the bot may deliver its first price early.
        self.reference: ReferenceTracker | None = ReferenceTracker(
            bus, clock, cfg.symbol, cfg.reference_source, on_update=self._on_reference)
        self.state = "stopped"
        self.reason = ""
        self.quoting = False
        self.paused = False
        self.halted: Breach | None = None  # self-latched halt (no kill switch on the desk)
        self.breach: Breach | None = None  # the last breach (latched until the scope is ACTIVE again)
        self.mid: Decimal | None = None
        self.reconciles = 0
        self.last_reconcile: dict[str, int] = {}
        self._need_reconcile = False
        self._start_pending = False
        self.venue_unknown: str | None = None  # why the venue's open orders could not be listed (last try)
        self._reconciled_at = clock.monotonic()
        self._was_connected: bool | None = None
        self._subs: list[Subscription] = []
        self._wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_status = 0.0
        self._lock = asyncio.Lock()  # step() and reconcile() never interleave
        self._starting_price_set = False
        self._persisted_marks: tuple[int, Decimal, Decimal] | None = None
        self._outbox: list[OutboxRow] = []  # unfinished outbox rows found at start, settled by reconcile

    # --- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.state = "starting"
        if self.store is not None:
            await self.store.open()
            await self._restore()
        sym = self.cfg.symbol
        for etype, handler in (
            (OrderAccepted, self._ev_accepted),
            (OrderRejected, self._ev_rejected),
            (OrderCanceled, self._ev_canceled),
            (CancelRejected, self._ev_cancel_rejected),
            (Fill, self._ev_fill),
            (BBO, self._ev_bbo),
        ):
            self._subs.append(self.bus.subscribe(etype, handler, key=sym))
        self._subs.append(self.bus.subscribe(TradingStateChanged, self._ev_trading_state))
        await self.reconcile("start")
        self.state = "idle"
        if self.autorun:
            self._tasks.append(asyncio.create_task(self._run(), name=f"mm:{self.name}"))
            self._tasks.append(asyncio.create_task(self._sender(), name=f"mm-send:{self.name}"))
        self.publish_status()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        # A stopping market maker takes its quotes down.
        with contextlib.suppress(Exception):
            await self._cancel_everything("bot stopped", direct=True)
        for s in self._subs:
            s.cancel()
        self._subs.clear()
        if self.reference is not None:
            self.reference.close()
        self.state = "stopped"
        self.quoting = False
        self.publish_status()
        if self.store is not None:
            await self.store.close()

    def pause(self) -> None:
        self.paused = True
        self._wake.set()

    def resume(self) -> None:
        self.paused = False
        self.halted = None
        self.breach = None
        self._wake.set()

    def status(self) -> dict[str, Any]:
        return {
            "bot": self.name, "symbol": self.cfg.symbol, "venue": self.cfg.venue, "state": self.state,
            "quoting": self.quoting, "reason": self.reason, "position": str(self.pnl.position),
            "realised": _q(self.pnl.realised), "unrealised": _q(self.pnl.unrealised), "fees": _q(self.pnl.fees),
            "net": _q(self.pnl.net), "fills": self.pnl.fills,
            "open_orders": len(self.oms.live()), "queue": self.limiter.pending(),
            "reconciles": self.reconciles, "last_reconcile": self.last_reconcile,
        }

    # --- restore after a restart --------------------------------------------------------------------
    async def _restore(self) -> None:
        assert self.store is not None
        sp = await self.store.meta("starting_price")
        if sp is not None:
            self.pnl = PnL(capital=self.cfg.capital, starting_inventory=self.cfg.starting_inventory,
                           starting_price=Decimal(sp))
            self._starting_price_set = True
        # P&L is replayed from the fills on record, so positions always equal the fills.
        for f in await self.store.fills():
            self.pnl.on_fill(Side(f["side"]), self.inst.qty(f["qty"]), self.inst.price(f["price"]),
                             Decimal(f["fee"]), key=(f["order_id"], f["trade_id"]))
        # The day's starting net and the peak net are marks, not fills: kept in meta so a restart
        # does not reset the daily-loss and drawdown limits.
        day = await self.store.meta("pnl_day")
        if day is not None:
            self.pnl.day = int(day)
            self.pnl.day_start_net = Decimal(await self.store.meta("pnl_day_start_net") or "0")
        peak = await self.store.meta("pnl_peak_net")
        if peak is not None and Decimal(peak) > self.pnl.peak_net:
            self.pnl.peak_net = Decimal(peak)
        self._persisted_marks = (self.pnl.day, self.pnl.day_start_net, self.pnl.peak_net)
        row = await self.store.position(self.cfg.symbol)
        if row is not None and Decimal(row["position"]) != self.pnl.position:
            log.warning("%s: stored position %s differs from fills on record %s; using the fills",
                        self.name, row["position"], self.pnl.position)
        self.oms.bump_seq(await self.store.max_seq())
        for r in await self.store.open_orders():
            self.oms.restore(r)
        self._outbox = await self.store.pending_outbox()

    # --- reconciliation -------------------------------------------------------------------------------
    async def reconcile(self, why: str) -> dict[str, int]:
        async with self._lock:
            return await self._reconcile(why)

    async def _reconcile(self, why: str) -> dict[str, int]:
        venue = self.router.venues.get(self.cfg.venue)
        if why == "start":
            self._start_pending = True  # until it succeeds: a deferred start reconcile keeps its rules
        if venue is None or not venue.connected:
            self._need_reconcile = True
            return {}
        if self._start_pending:
            why = "start"
        # Orders not sent yet: if the sender sends one while we wait for an asynchronous venue's answer,
        # it went out after the question, so its absence from the answer says nothing.
        before = {o.client_id for o in self.oms.live()}
        unsent = {o.client_id for o in self.oms.live() if o.state is OrderState.IDLE}
        try:
            listed = await ask_open_orders(venue, self.name, self.cfg.symbol)
        except OpenOrdersUnknown as exc:
            # What rests at the venue is unknown: close nothing, quote nothing, try again next step.
            self._need_reconcile = True
            if self.venue_unknown is None:
                self._log("warning", f"{self.name}: reconcile ({why}) deferred: venue open orders unknown: {exc}")
            self.venue_unknown = str(exc)
            return {}
        self.venue_unknown = None
        self._start_pending = False
        self._need_reconcile = False
        self._reconciled_at = self.clock.monotonic()
        if why == "start":
            self._recover_fills()
        live = self.oms.live()
        cmp = compare((o.client_id for o in live), listed)
        queued = {a.client_id for a in self.limiter.news}
        counts = {"kept": 0, "closed": 0, "adopted": 0, "canceled": 0}
        for o in live:
            v = cmp.kept.get(o.client_id)
            if v is not None:
                o.order_id = v.order_id
                o.filled = max(o.filled, v.filled_qty)
                if o.state in (OrderState.IDLE, OrderState.PENDING_NEW):
                    o.live_since = self.clock.monotonic()
                    self.oms.transition(o, OrderState.WORKING if o.filled == 0 else OrderState.PARTIALLY_FILLED,
                                        f"reconciled ({why}): live at venue")
                elif o.live_since is None:
                    o.live_since = self.clock.monotonic()
                counts["kept"] += 1
            elif o.state is OrderState.IDLE and o.client_id in queued:
                continue  # not sent yet: the limiter will send it
            elif (o.client_id in unsent and o.state is not OrderState.IDLE) or o.client_id not in before:
                continue  # sent (or created) while the venue was answering: the answer predates it
            elif why != "start" and o.state is OrderState.PENDING_NEW and self.clock.monotonic() - o.created < 10.0:
                continue  # in flight to an asynchronous venue: its answer is still due
            else:
                self.limiter.withdraw(o.client_id)
                if o.filled >= o.qty:
                    self.oms.transition(o, OrderState.FILLED, f"reconciled ({why}): filled at venue")
                else:
                    self.oms.transition(o, OrderState.CANCELED, f"reconciled ({why}): not live at venue")
                counts["closed"] += 1
        for v in cmp.unknown:
            cid = v.client_id
            known = self.oms.orders.get(cid)
            if known is not None and known.live:
                continue
            seq = self.oms.seq_of(cid)
            if seq is not None:
                self.oms.bump_seq(seq)  # never reuse an id the venue has seen
            if self.cfg.reconcile == "adopt" and known is None:
                self.oms.adopt(cid, v.side, v.price or 0, v.qty, v.filled_qty, v.order_id)
                counts["adopted"] += 1
            else:
                self.oms.mark_closed(cid)  # its cancel event is expected, not "unknown" again
                res = await self.router.cancel(self.cfg.venue, self.cfg.symbol, cid, self.name)
                counts["canceled"] += 1
                log.info("%s: reconcile canceled unknown venue order %s (%s)", self.name, cid,
                         "confirmed" if res.confirmed else res.reason)
        # Outbox replay: cancels are re-sent for orders still live; new intents are settled above.
        for row in self._outbox:
            o = self.oms.orders.get(row.client_id)
            if row.kind == "cancel" and o is not None and o.live and o.state is not OrderState.IDLE:
                self.limiter.push(Action("cancel", o.client_id))
            elif self.store is not None and (o is None or not o.live):
                self.store.write((UPDATE_OUTBOX, ("done", self.clock.time_ns(), row.kind, row.client_id)))
        self._outbox = []
        self.reconciles += 1
        self.last_reconcile = counts
        if any(counts[k] for k in ("closed", "adopted", "canceled")):
            self._log("info", f"{self.name}: {summary(why, counts)}")
        self._send_wake.set()
        return counts

    def _recover_fills(self) -> int:
        """Fills of this bot in the venue's trade history that are not in the store (the process died
        between the venue recording them and the bot's store committing them) are applied now."""
        src = self.trade_source
        if src is None:
            return 0
        n = 0
        for t in src.recent_trades(self.cfg.symbol, 1 << 30):
            for owner, oid, side, fee, liq in (
                (t.maker_owner, t.maker_order_id, t.aggressor.opposite, t.maker_fee, Liquidity.MAKER),
                (t.taker_owner, t.taker_order_id, t.aggressor, t.taker_fee, Liquidity.TAKER),
            ):
                if owner != self.name or (oid, t.trade_id) in self.pnl.seen:
                    continue
                o = next((m for m in self.oms.orders.values() if m.order_id == oid), None)
                cid = o.client_id if o is not None else ""
                ev = Fill(symbol=t.symbol, order_id=oid, client_id=cid, owner=owner, side=side, price=t.price,
                          qty=t.qty, leaves_qty=0 if o is None else max(0, o.leaves - t.qty), liquidity=liq,
                          fee=fee, trade_id=t.trade_id, venue=self.cfg.venue, ts=t.ts)
                if o is not None:
                    o.filled = min(o.qty, o.filled + t.qty)
                self._on_fill(o, ev)
                n += 1
        if n:
            self.recovered_fills += n
            self._log("warning", f"{self.name}: recovered {n} fill(s) from the venue's trade history after restart")
        return n

    # --- the quoting loop -------------------------------------------------------------------------------
    async def _run(self) -> None:
        interval = 1.0 / self.cfg.status_hz
        while True:
            await wait_event(self._wake, interval)
            self._wake.clear()
            try:
                await self.step()
            except Exception:
                log.exception("%s: quoting step failed", self.name)

    def _blocked(self) -> tuple[str | None, tuple[Side, ...]]:
        """Why the bot must not quote now (None if it may), and which sides it may quote."""
        both = (Side.BUY, Side.SELL)
        if self.paused:
            return "paused by operator", ()
        if self.halted is not None:
            return f"halted: {self.halted.detail}", ()
        risk = self.services.get("risk")
        if risk is not None:
            st = risk.effective_state(self.name, self.cfg.symbol)
            if st == TradingState.HALTED:
                why = f" ({self.breach.detail})" if self.breach is not None else ""
                return f"halted by risk{why}", ()
            if st == TradingState.REDUCING:
                pos = self.pnl.position
                return None, (Side.SELL,) if pos > 0 else (Side.BUY,) if pos < 0 else ()
        venue = self.router.venues.get(self.cfg.venue)
        if venue is None:
            return f"no venue {self.cfg.venue!r}", ()
        if not venue.connected:
            return f"venue {self.cfg.venue} disconnected", ()
        if self.venue_unknown is not None:
            return f"waiting for the venue's open orders ({self.venue_unknown})", ()
        ref = self.reference
        if ref is None or ref.price is None:
            return f"waiting for a {self.cfg.reference_source} reference price", ()
        if ref.stale(self.cfg.stale_after):
            return f"stale reference: no {self.cfg.reference_source} update for {ref.age():.1f}s", ()
        return None, both

    async def step(self) -> None:
        async with self._lock:
            await self._step()

    async def _step(self) -> None:
        venue = self.router.venues.get(self.cfg.venue)
        connected = venue is not None and venue.connected
        now = self.clock.monotonic()
        if connected and (self._was_connected is False or self._need_reconcile):
            await self._reconcile("reconnect" if self._was_connected is False else "venue mismatch")
        elif connected and self.cfg.reconcile_interval and now - self._reconciled_at >= self.cfg.reconcile_interval:
            await self._reconcile("periodic")  # a safety net: nothing rests at the venue unknown for long
        self._was_connected = connected
        self._mark()
        breach = self.limits.check_pnl(self.pnl)
        if breach is not None:
            await self._on_breach(breach)
        blocked, sides = self._blocked()
        if blocked is not None:
            await self._stand_down(blocked)
            return
        assert self.reference is not None and self.reference.price is not None
        if not self._starting_price_set:
            await self._set_starting_price(Decimal(repr(self.reference.price)))
        inv_lots = int(self.pnl.position / self.inst.lot_size)
        quotes = compute_quotes(self.reference.price, inv_lots, self.params, self.inst)
        targets = {(q.side, q.level): q for q in quotes.all() if q.side in sides}
        for q in targets.values():
            breach = self.limits.check_order(q.price, q.qty)
            if breach is not None:
                await self._on_breach(breach)
                blocked, _ = self._blocked()
                await self._stand_down(blocked or f"halted: {breach.detail}")
                return
        self.quoting = bool(targets)
        self.state = "quoting" if sides == (Side.BUY, Side.SELL) else "reducing"
        self.reason = "" if self.state == "quoting" else "risk: reducing only"
        await self._apply(targets)
        self._maybe_status()

    async def _stand_down(self, blocked: str) -> None:
        if self.quoting or self.reason != blocked:
            self._log("warning", f"{self.name}: not quoting: {blocked}")
        self.quoting = False
        self.reason = blocked
        self.state = self._state_for(blocked)
        await self._cancel_everything(blocked, direct=False)
        self._maybe_status()

    def _state_for(self, reason: str) -> str:
        if reason.startswith("paused"):
            return "paused"
        if reason.startswith("halted"):
            return "halted"
        if reason.startswith("stale"):
            return "stale"
        if reason.startswith("waiting"):
            return "waiting"
        if reason.endswith("disconnected"):
            return "disconnected"
        return "blocked"

    async def _apply(self, targets: dict[tuple[Side, int], QuoteLevel]) -> None:
        now = self.clock.monotonic()
        covered: set[tuple[Side, int]] = set()
        cancels: list[ManagedOrder] = []
        for o in self.oms.live():
            if o.state is OrderState.PENDING_CANCEL or self.limiter.has_cancel(o.client_id):
                continue  # on its way out (a cancel may wait in the limiter): it covers no level
            age = 0.0 if o.live_since is None else now - o.live_since
            if o.level < 0:  # adopted: it takes the first free level it already quotes well enough
                for (side, level), t in sorted(targets.items(), key=lambda kv: kv[0][1]):
                    if side is o.side and (side, level) not in covered and not needs_refresh(
                        o.price, o.qty, t, tolerance_bps=self.cfg.tolerance_bps, age=age,
                        max_age=self.cfg.max_order_age,
                    ):
                        o.level = level
                        break
            key = (o.side, o.level)
            target = targets.get(key)
            if target is None or key in covered or needs_refresh(
                o.price, o.qty, target, tolerance_bps=self.cfg.tolerance_bps, age=age, max_age=self.cfg.max_order_age
            ):
                cancels.append(o)
            else:
                covered.add(key)
        news = [q for k, q in targets.items() if k not in covered]
        await self._send(cancels, news, "requote")

    async def _send(self, cancels: list[ManagedOrder], news: list[QuoteLevel], reason: str) -> None:
        ops = []
        to_cancel: list[ManagedOrder] = []
        for o in cancels:
            if o.state is OrderState.IDLE:  # never sent: withdraw it from the limiter
                self.limiter.withdraw(o.client_id)
                self.oms.transition(o, OrderState.CANCELED, f"superseded before send ({reason})")
            elif not self.limiter.has_cancel(o.client_id):
                to_cancel.append(o)
                ops.extend(self.oms.cancel_intent(o))
        created: list[ManagedOrder] = []
        for q in news:
            o, o_ops = self.oms.create(q.side, q.level, q.price, q.qty)
            created.append(o)
            ops.extend(o_ops)
        if not ops:
            return
        if self.store is not None:
            await self.store.write_now(*ops)  # intents are on disk before anything is sent
        for o in to_cancel:
            self.limiter.push(Action("cancel", o.client_id, reason))
        for o in created:
            if o.state is OrderState.IDLE:
                self.limiter.push(Action("new", o.client_id))
        self._send_wake.set()

    async def _cancel_everything(self, reason: str, *, direct: bool) -> None:
        live = [o for o in self.oms.live() if o.state is not OrderState.PENDING_CANCEL]
        if direct:
            for o in live:
                if o.state is OrderState.IDLE:
                    self.limiter.withdraw(o.client_id)
                    self.oms.transition(o, OrderState.CANCELED, reason)
                else:
                    await self._do_cancel(o, reason)
            return
        await self._send(live, [], reason)
        if not self.autorun:
            return
        self._send_wake.set()

    # --- sending (rate limited) ------------------------------------------------------------------------
    async def _sender(self) -> None:
        while True:
            await self.pump()
            wait = self.limiter.wait_time()
            self._send_wake.clear()
            if wait is None:
                await self._send_wake.wait()
            else:
                await wait_event(self._send_wake, max(wait, 0.001))

    async def pump(self) -> int:
        """Send what the token bucket allows now (cancels first). Returns how many actions went out."""
        actions = self.limiter.take_ready()
        for a in actions:
            try:
                if a.kind == "cancel":
                    o = self.oms.orders.get(a.client_id)
                    if o is not None and o.live and o.state is not OrderState.IDLE:
                        await self._do_cancel(o, str(a.payload or "cancel"))
                else:
                    await self._do_new(a.client_id)
            except Exception:
                log.exception("%s: sending %s %s failed", self.name, a.kind, a.client_id)
        return len(actions)

    async def _do_new(self, client_id: str) -> None:
        o = self.oms.orders.get(client_id)
        if o is None or o.state is not OrderState.IDLE:
            return
        blocked, sides = self._blocked()
        if blocked is not None or o.side not in sides:
            self.oms.transition(o, OrderState.CANCELED, f"not sent: {blocked or 'side not allowed'}")
            return
        req = OrderRequest(symbol=o.symbol, side=o.side, qty=o.qty, price=o.price, post_only=True,
                           client_id=o.client_id, owner=self.name, venue=self.cfg.venue)
        self.oms.transition(o, OrderState.PENDING_NEW, "sent")
        try:
            ok = await self.router.submit(req)
        except Exception as exc:
            self.oms.transition(o, OrderState.REJECTED, f"send failed: {exc}")
            return
        self.oms.mark_sent(o)
        if not ok and o.state is OrderState.PENDING_NEW:  # the gate refused; its event normally did this
            self.oms.transition(o, OrderState.REJECTED, "refused by the pre-trade gate")

    async def _do_cancel(self, o: ManagedOrder, reason: str) -> None:
        self.oms.transition(o, OrderState.PENDING_CANCEL, reason)
        res = await self.router.cancel(self.cfg.venue, o.symbol, o.client_id, self.name)
        if not res.confirmed and o.state is OrderState.PENDING_CANCEL and res.reason:
            # The venue does not have it (filled meanwhile, or never arrived): check with the venue.
            self._need_reconcile = True
            self._wake.set()

    # --- bus handlers (synchronous) -----------------------------------------------------------------
    def _mine(self, owner: str, venue: str) -> bool:
        return owner == self.name and venue == self.cfg.venue

    def _ev_accepted(self, ev: OrderAccepted) -> None:
        if self._mine(ev.owner, ev.venue):
            self.oms.on_accepted(ev)

    def _ev_rejected(self, ev: OrderRejected) -> None:
        if self._mine(ev.owner, ev.venue):
            self.oms.on_rejected(ev)

    def _ev_canceled(self, ev: OrderCanceled) -> None:
        if self._mine(ev.owner, ev.venue):
            self.oms.on_canceled(ev)
            self._wake.set()

    def _ev_cancel_rejected(self, ev: CancelRejected) -> None:
        if self._mine(ev.owner, ev.venue):
            self.oms.on_cancel_rejected(ev.client_id, ev.reason)

    def _ev_fill(self, ev: Fill) -> None:
        if self._mine(ev.owner, ev.venue):
            self.oms.on_venue_fill(ev)

    def _ev_bbo(self, ev: BBO) -> None:
        if ev.venue == self.cfg.venue and ev.bid_px is not None and ev.ask_px is not None:
            self.mid = self.inst.tick_size * Decimal(ev.bid_px + ev.ask_px) / 2

    def _ev_trading_state(self, ev: TradingStateChanged) -> None:
        if ev.scope == bot_scope(self.name) and ev.state == TradingState.ACTIVE:
            self.breach = None  # re-armed: a breach may fire again
        self._wake.set()

    def _on_reference(self, price: float) -> None:
        self._wake.set()

    def _on_unknown(self, client_id: str, order_id: int | None) -> None:
        self._need_reconcile = True
        self._wake.set()

    def _on_fill(self, o: ManagedOrder | None, ev: Fill) -> None:
        qty = self.inst.qty(ev.qty)
        price = self.inst.price(ev.price)
        fee = Decimal(repr(ev.fee))
        if not self.pnl.on_fill(ev.side, qty, price, fee, key=(ev.order_id, ev.trade_id)):
            return
        self._mark()
        if self.store is not None:
            p = self.pnl
            self.store.write(
                (INSERT_FILL, (ev.client_id, ev.order_id, ev.trade_id, ev.symbol, ev.side.value, ev.price, ev.qty,
                               str(fee), ev.liquidity.value, ev.ts)),
                (UPSERT_POSITION, (self.cfg.symbol, str(p.position), str(p.avg_price), str(p.realised), str(p.fees),
                                   p.fills, self.clock.time_ns())),
            )
        breach = self.limits.check_pnl(self.pnl)
        if breach is not None and (self.breach is None or self.breach.rule != breach.rule):
            self._tasks.append(asyncio.get_running_loop().create_task(self._on_breach(breach)))
        self.publish_status()
        self._wake.set()

    # --- risk --------------------------------------------------------------------------------------------
    async def _on_breach(self, breach: Breach) -> None:
        if self.breach is not None and self.breach.rule == breach.rule:
            return  # already acted on; latched until re-armed / resumed
        self.breach = breach
        scope = bot_scope(self.name)
        self.bus.publish(RiskBreach(rule=breach.rule, scope=scope, value=str(breach.value), limit=str(breach.limit),
                                    detail=breach.detail))
        self._log("error", f"{self.name}: {breach.rule} breached: {breach.detail}")
        ks = self.services.get("killswitch")
        if ks is not None:
            try:
                await ks.kill(scope, reason=f"{breach.rule}: {breach.detail}", source=f"rule:{breach.rule}")
            except Exception:
                log.exception("%s: kill switch failed; halting the bot itself", self.name)
                self.halted = breach
        else:
            self.halted = breach
        self._wake.set()

    # --- P&L marking and status ---------------------------------------------------------------------
    def _mark(self) -> None:
        mark = self.mid
        if mark is None and self.reference is not None and self.reference.price is not None:
            mark = Decimal(repr(self.reference.price))
        if mark is not None:
            self.pnl.mark_to(mark, day=self.clock.time_ns() // NS_PER_DAY)

    async def _set_starting_price(self, price: Decimal) -> None:
        self._starting_price_set = True
        self.pnl.starting_price = price
        if self.pnl.position == self.pnl.starting_inventory and self.pnl.fills == 0:
            self.pnl.avg_price = price if self.pnl.starting_inventory else Decimal(0)
        if self.store is not None:
            await self.store.set_meta("starting_price", str(price))

    def _maybe_status(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_status >= 1.0 / self.cfg.status_hz:
            self.publish_status()

    def _persist_marks(self) -> None:
        p = self.pnl
        marks = (p.day, p.day_start_net, p.peak_net)
        if self.store is None or marks == self._persisted_marks:
            return
        self._persisted_marks = marks
        sql = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
        self.store.write((sql, ("pnl_day", str(p.day))), (sql, ("pnl_day_start_net", str(p.day_start_net))),
                         (sql, ("pnl_peak_net", str(p.peak_net))))

    def publish_status(self) -> None:
        self._last_status = self.clock.monotonic()
        self._persist_marks()
        p = self.pnl
        live = self.oms.live()
        bids = [o.price for o in live if o.side is Side.BUY and o.state is not OrderState.PENDING_CANCEL]
        asks = [o.price for o in live if o.side is Side.SELL and o.state is not OrderState.PENDING_CANCEL]
        ref = self.reference
        self.bus.publish(MMBotStatus(
            bot=self.name, symbol=self.cfg.symbol, venue=self.cfg.venue, state=self.state, quoting=self.quoting,
            reason=self.reason, reference=None if ref is None else ref.price,
            reference_age=None if ref is None else ref.age(),
            position=float(p.position), avg_price=float(p.avg_price), realised=float(p.realised),
            unrealised=float(p.unrealised), fees=float(p.fees), net_pnl=float(p.net), return_pct=float(p.return_pct),
            inventory_value=float(p.inventory_value), starting_value=float(p.starting_value),
            bid=float(self.inst.price(max(bids))) if bids else None,
            ask=float(self.inst.price(min(asks))) if asks else None,
            open_orders=len(live), queued=len(self.limiter), fills=p.fills, limits=self.limits.usage(p),
        ))
        self.oms.forget_terminal()

    def _log(self, level: str, message: str) -> None:
        getattr(log, level)(message)
        self.bus.publish(LogRecordEvent(level=level.upper(), source=f"mm:{self.name}", message=message))
