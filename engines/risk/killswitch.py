"""The kill switch: one action that stops trading in a scope, everywhere, at once.

``kill(scope)``:

1. sets the scope HALTED synchronously, before any await (the gate refuses new orders from the next
   order on; bots read the state before quoting), records the audit row and publishes
   ``KillSwitchAction``;
2. cancels every open order in scope on every venue (``venue.cancel_all(owner=…, symbol=…)``);
3. confirms each cancel from the venue's result or from the bus (``OrderCanceled``, or a ``Fill``
   that leaves nothing open). What cannot be confirmed — a disconnected venue, an ack that has not
   arrived — stays in :meth:`pending_cancels` (reported per order in ``KillProgress.pending``) and is
   retried when the venue is connected again (on ``EngineStatusChanged`` for the venue and on a timer);
4. optionally flattens each position in scope with a reduce-only market order, which the gate lets
   through while HALTED because the kill switch registered its client id.

While a scope is HALTED, any order a venue still accepts in it (one that was in flight to a remote
venue when the kill landed) is cancelled as soon as its ``OrderAccepted`` is seen.

Latched: every state change is written to SQLite (``RiskStore``); the desk comes back HALTED after a
restart until an explicit, audited :meth:`rearm` with the scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from engines.bus import Bus
from engines.clock import Clock
from engines.events import EngineState, EngineStatusChanged, LogRecordEvent
from engines.orders import Fill, OrderAccepted, OrderCanceled, OrderRequest, OrderType, Side, TimeInForce
from engines.risk.events import DESK, KillProgress, KillSwitchAction, TradingState
from engines.risk.gate import RiskGate
from engines.risk.positions import OrderTracker, PositionBook
from engines.risk.state import TradingStates, in_scope, parse_scope
from engines.risk.store import RiskStore
from engines.venue import OpenOrder, OrderRouter, Venue
from engines.waits import wait_event

log = logging.getLogger(__name__)

_Key = tuple[str, str, str, str]  # venue, symbol, owner, client_id
_HALTED = TradingState.HALTED  # a module constant: checked on every acknowledgement (_on_accepted)


@dataclass(slots=True)
class PendingCancel:
    scope: str
    venue: str
    symbol: str
    owner: str
    client_id: str
    order_id: int | None
    since_ns: int
    attempts: int = 0
    reason: str = ""
    in_flight: bool = False
    t0: float = field(default_factory=time.perf_counter)

    @property
    def label(self) -> str:
        return f"{self.venue}:{self.symbol}:{self.client_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": self.label,
            "scope": self.scope,
            "venue": self.venue,
            "symbol": self.symbol,
            "owner": self.owner,
            "client_id": self.client_id,
            "order_id": self.order_id,
            "since_ns": self.since_ns,
            "attempts": self.attempts,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class KillReport:
    scope: str
    reason: str
    source: str
    requested: int  # cancels sent (orders in scope found open)
    confirmed: int
    pending: tuple[str, ...]  # "venue:symbol:client_id" not confirmed when the report was made
    halted_ms: float  # kill call → state HALTED
    elapsed_ms: float  # kill call → last cancel confirmed (or given up waiting)
    flatten: tuple[str, ...] = ()  # one line per flatten order sent or skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "reason": self.reason,
            "source": self.source,
            "requested": self.requested,
            "confirmed": self.confirmed,
            "pending": list(self.pending),
            "halted_ms": round(self.halted_ms, 3),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "flatten": list(self.flatten),
        }


@dataclass(slots=True)
class _Run:
    scope: str
    t0: float
    requested: int = 0
    confirmed: int = 0
    keys: set[_Key] = field(default_factory=set)
    settled: asyncio.Event = field(default_factory=asyncio.Event)


class KillSwitch:
    name = "killswitch"

    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        router: OrderRouter,
        states: TradingStates,
        orders: OrderTracker,
        positions: PositionBook,
        gate: RiskGate,
        store: RiskStore | None,
        retry_interval: float = 1.0,
        confirm_timeout: float = 2.0,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.router = router
        self.states = states
        self.orders = orders
        self.positions = positions
        self.gate = gate
        self.store = store
        self.retry_interval = retry_interval
        self.confirm_timeout = confirm_timeout
        self.pending: dict[_Key, PendingCancel] = {}
        self._runs: list[_Run] = []
        self._gone: set[_Key] = set()  # cancels/fills seen while a kill is collecting results
        #: Venues that have answered a cancel "unconfirmed" (acks come later, e.g. FIX); a venue
        #: that is not connected counts too.
        self._async_venues: set[str] = set()
        self._totals: dict[str, list[int]] = {}  # scope -> [requested, confirmed] of its last kill
        self._flatten_ids: set[str] = set()
        self._flatten_seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retry_task: asyncio.Task[None] | None = None
        self._retry_wake: asyncio.Event | None = None
        self.kills = 0
        self.last_report: KillReport | None = None
        bus.subscribe(OrderCanceled, self._on_canceled)
        bus.subscribe(Fill, self._on_fill)
        bus.subscribe(OrderAccepted, self._on_accepted)
        bus.subscribe(EngineStatusChanged, self._on_engine)
        try:  # a FIX session logging on again is the moment to re-send its venue's cancels
            from engines.fix.events import FixSessionState

            bus.subscribe(FixSessionState, self._on_fix_session)
        except ImportError:
            pass

    # --- the synchronous part ------------------------------------------------------------------------------
    def halt(self, scope: str = DESK, *, reason: str, source: str, actor: str = "", detail: str = "") -> None:
        """HALTED now, audited and published. Raises ScopeError for a malformed scope."""
        parse_scope(scope)
        self.kills += 1
        self.states.set(scope, TradingState.HALTED, reason=reason, source=source)
        if self.store is not None:
            self.store.audit(self.clock.time_ns(), "kill", scope, source, reason, actor, detail)
        self.bus.publish(
            KillSwitchAction(action="kill", scope=scope, reason=reason, source=source, actor=actor)
        )
        self.bus.publish(
            LogRecordEvent(level="WARNING", source="killswitch", message=f"KILL {scope}: {reason} ({source})")
        )
        log.warning("kill %s: %s", scope, reason, extra={"scope": scope, "source": source, "actor": actor})

    def kill_now(
        self,
        scope: str = DESK,
        *,
        reason: str,
        source: str,
        actor: str = "",
        flatten: bool = False,
        detail: str = "",
    ) -> asyncio.Task[KillReport]:
        """For synchronous callers (rules, signal handlers): HALTED before returning, cancels in a task."""
        loop = asyncio.get_running_loop()  # no loop: RuntimeError before anything changed
        t0 = time.perf_counter()
        self.halt(scope, reason=reason, source=source, actor=actor, detail=detail)
        halted = time.perf_counter()
        task = loop.create_task(
            self._after_halt(scope, reason, source, actor, flatten, t0, halted), name=f"kill {scope}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def kill(
        self,
        scope: str = DESK,
        *,
        reason: str,
        source: str,
        actor: str = "",
        flatten: bool = False,
        detail: str = "",
    ) -> KillReport:
        t0 = time.perf_counter()
        self.halt(scope, reason=reason, source=source, actor=actor, detail=detail)
        halted = time.perf_counter()
        return await self._after_halt(scope, reason, source, actor, flatten, t0, halted)

    # --- cancel, confirm, flatten ----------------------------------------------------------------------------
    async def _after_halt(
        self, scope: str, reason: str, source: str, actor: str, flatten: bool, t0: float, halted: float
    ) -> KillReport:
        owner, symbol = parse_scope(scope)
        run, pending, done_at = await self._cancel_scope(scope, t0)
        flat: tuple[str, ...] = ()
        if flatten:
            flat = await self._flatten(scope, owner, symbol, reason, source, actor)
        report = KillReport(
            scope=scope,
            reason=reason,
            source=source,
            requested=run.requested,
            confirmed=run.confirmed,
            pending=pending,
            halted_ms=(halted - t0) * 1000,
            elapsed_ms=(done_at - t0) * 1000,
            flatten=flat,
        )
        self.last_report = report
        if self.store is not None:
            await self.store.flush()
        return report

    async def _cancel_scope(self, scope: str, t0: float) -> tuple[_Run, tuple[str, ...], float]:
        """Cancel everything open in ``scope`` on every venue and collect confirmations."""
        owner, symbol = parse_scope(scope)
        run = _Run(scope, t0)
        self._runs.append(run)
        try:
            # Every venue at once: a slow remote venue must not hold back the others' cancels. The cyclic
            # GC is paused meanwhile: a full collection over a big heap in the middle of 10,000 cancels
            # costs more than the cancels themselves (reference counting still frees everything).
            gc_was_on = gc.isenabled()
            gc.disable()
            try:
                await asyncio.gather(
                    *(self._cancel_on(v, run, owner, symbol) for v in list(self.router.venues.values()))
                )
            finally:
                if gc_was_on:
                    gc.enable()
            # Acks on their way from connected venues: wait for them, boundedly. Orders on disconnected
            # venues are not waited for: they are reported pending and retried on reconnect.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.confirm_timeout
            while any(k in self.pending and self._connected(k[0]) for k in run.keys):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                run.settled.clear()
                await wait_event(run.settled, remaining)
            done_at = time.perf_counter()
        finally:
            self._runs.remove(run)
            if not self._runs:
                self._gone.clear()
        pending = tuple(sorted(self.pending[k].label for k in run.keys if k in self.pending))
        self._totals[scope] = [run.requested, run.confirmed]
        self.bus.publish(
            KillProgress(
                scope=scope,
                requested=run.requested,
                confirmed=run.confirmed,
                pending=pending,
                done=not pending,
                elapsed_ms=(done_at - t0) * 1000,
            )
        )
        if pending:
            log.warning(
                "kill %s: %d cancels unconfirmed", scope, len(pending), extra={"pending": list(pending)}
            )
            self._wake_retry()
        return run, pending, done_at

    async def sweep_latched(self) -> dict[str, int]:
        """At start: cancel whatever a venue restored (e.g. the matching journal) in a latched HALTED scope."""
        out: dict[str, int] = {}
        for scope, state in self.states.scopes().items():
            if state is TradingState.HALTED:
                run, _, _ = await self._cancel_scope(scope, time.perf_counter())
                out[scope] = run.requested
                if run.requested:
                    log.warning("latched %s: cancelled %d orders restored at start", scope, run.requested)
        return out

    def _connected(self, venue_name: str) -> bool:
        venue = self.router.venues.get(venue_name)
        return venue is not None and bool(venue.connected)

    async def _cancel_on(self, venue: Venue, run: _Run, owner: str | None, symbol: str | None) -> None:
        if not venue.connected:
            self._async_venues.add(venue.name)
            for o in await self._known_open(venue, owner, symbol):
                run.requested += 1
                self._add_pending(
                    run, venue.name, o.symbol, o.owner, o.client_id, o.order_id, "venue disconnected"
                )
            return
        try:
            results = await venue.cancel_all(owner=owner, symbol=symbol)
        except Exception as exc:  # a venue failing mid-kill must not stop the others being cancelled
            log.exception("kill: cancel_all failed on venue %s", venue.name)
            for o in await self._known_open(venue, owner, symbol):
                run.requested += 1
                self._add_pending(
                    run, venue.name, o.symbol, o.owner, o.client_id, o.order_id, f"cancel_all failed: {exc}"
                )
            return
        run.requested += len(results)
        unconfirmed = [r for r in results if not r.confirmed]
        if unconfirmed:
            self._async_venues.add(venue.name)
        run.confirmed += len(results) - len(unconfirmed)
        for r in unconfirmed:
            self._add_pending(
                run, venue.name, r.symbol, r.owner, r.client_id, r.order_id, r.reason or "awaiting ack"
            )

    async def _known_open(self, venue: Venue, owner: str | None, symbol: str | None) -> list[OpenOrder]:
        """What the venue records as open without asking its counterparty (a FIX venue's own record,
        including orders restored from its store after a restart), else its answer, else the desk's
        own tracker."""
        known = getattr(venue, "known_orders", None)
        if known is not None:
            return list(known(owner=owner, symbol=symbol))
        try:
            return list(await venue.open_orders(owner=owner, symbol=symbol))
        except Exception:
            tracked = self.orders.open_orders(owner=owner, symbol=symbol, venue=venue.name)
            return [
                OpenOrder(
                    venue=v,
                    symbol=o.symbol,
                    order_id=oid,
                    client_id=o.client_id,
                    owner=o.owner,
                    side=o.side,
                    price=None,
                    qty=o.leaves,
                )
                for v, oid, o in tracked
            ]

    def _add_pending(
        self,
        run: _Run | None,
        venue: str,
        symbol: str,
        owner: str,
        client_id: str,
        order_id: int | None,
        why: str,
    ) -> None:
        key = (venue, symbol, owner, client_id)
        if key in self._gone:  # its cancel or last fill already came through the bus
            self._gone.discard(key)
            if run is not None:
                run.confirmed += 1
            return
        if run is not None:
            run.keys.add(key)
        if key not in self.pending:
            scope = run.scope if run is not None else self._halting_scope(owner, symbol)
            self.pending[key] = PendingCancel(
                scope, venue, symbol, owner, client_id, order_id, self.clock.time_ns(), reason=why
            )

    def _halting_scope(self, owner: str, symbol: str) -> str:
        for scope in (DESK, "bot:" + owner, "instrument:" + symbol):
            if self.states.state(scope) is TradingState.HALTED:
                return scope
        return DESK

    # --- confirmations from the bus ----------------------------------------------------------------------------
    def _resolve(self, key: _Key) -> None:
        p = self.pending.pop(key, None)
        if p is None:
            # An order leaving a venue that answers cancels asynchronously, while a kill is collecting
            # results: its result may come back "unconfirmed" after this event; remember it is gone.
            # (In-process venues confirm synchronously: skipping them keeps a 10,000-order kill cheap.)
            if self._runs and key[0] in self._async_venues:
                self._gone.add(key)
            return
        for run in self._runs:
            if key in run.keys:
                run.confirmed += 1
                run.keys.discard(key)
                run.settled.set()
        if not self._runs:  # a late confirmation (after a retry): say so, with the scope's running totals
            totals = self._totals.setdefault(p.scope, [0, 0])
            totals[1] += 1
            left = tuple(sorted(q.label for q in self.pending.values() if q.scope == p.scope))
            self.bus.publish(
                KillProgress(
                    scope=p.scope,
                    requested=totals[0],
                    confirmed=totals[1],
                    pending=left,
                    done=not left,
                    elapsed_ms=(time.perf_counter() - p.t0) * 1000,
                )
            )

    def _on_canceled(self, ev: OrderCanceled) -> None:
        if self.pending or (self._runs and ev.venue in self._async_venues):
            self._resolve((ev.venue, ev.symbol, ev.owner, ev.client_id))

    def _on_fill(self, ev: Fill) -> None:
        if ev.leaves_qty <= 0 and (self.pending or (self._runs and ev.venue in self._async_venues)):
            self._resolve((ev.venue, ev.symbol, ev.owner, ev.client_id))

    def _on_accepted(self, ev: OrderAccepted) -> None:
        # An order that reached a venue after its scope was halted (in flight to a remote venue): cancel it.
        if not self.states.restricted or self.states.effective_state(ev.owner, ev.symbol) is not _HALTED:
            return
        if ev.client_id in self._flatten_ids:
            return
        self._add_pending(
            None, ev.venue, ev.symbol, ev.owner, ev.client_id, ev.order_id, "accepted while halted"
        )
        self._totals.setdefault(self._halting_scope(ev.owner, ev.symbol), [0, 0])[0] += 1
        with contextlib.suppress(RuntimeError):  # no running loop: the retry timer will pick it up
            task = asyncio.get_running_loop().create_task(self._retry_venue(ev.venue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_engine(self, ev: EngineStatusChanged) -> None:
        if ev.state is EngineState.RUNNING and any(p.venue == ev.engine for p in self.pending.values()):
            self._wake_retry()

    def _on_fix_session(self, ev: Any) -> None:
        if str(getattr(ev.state, "value", ev.state)).upper() == "ACTIVE" and self.pending:
            self._wake_retry()

    # --- retries ------------------------------------------------------------------------------------------------
    def _wake_retry(self) -> None:
        if self._retry_wake is not None:
            self._retry_wake.set()

    async def retry_pending(self) -> int:
        """Send the cancel again for every pending order on a connected venue; returns how many were sent."""
        sent = 0
        for venue_name in sorted({p.venue for p in self.pending.values()}):
            sent += await self._retry_venue(venue_name)
        return sent

    async def _retry_venue(self, venue_name: str) -> int:
        venue = self.router.venues.get(venue_name)
        if venue is None or not venue.connected:
            return 0
        items = [p for p in self.pending.values() if p.venue == venue_name and not p.in_flight]
        for p in items:
            p.attempts += 1
            p.in_flight = True
        # All at once: a FIX venue's cancel waits for its ack, one round trip for the lot.
        results = await asyncio.gather(
            *(venue.cancel(p.symbol, p.client_id, p.owner) for p in items), return_exceptions=True
        )
        for p, r in zip(items, results, strict=True):
            p.in_flight = False
            key = (p.venue, p.symbol, p.owner, p.client_id)
            if isinstance(r, BaseException):
                p.reason = f"cancel failed: {r}"
            elif r.confirmed:
                self._resolve(key)
            else:
                p.reason = r.reason or "awaiting ack"
        sent = len(items)
        # Whatever the venue no longer lists as open is gone (filled or cancelled while we were away).
        left = [p for p in self.pending.values() if p.venue == venue_name]
        if left:
            try:
                still = {(o.symbol, o.owner, o.client_id) for o in await venue.open_orders()}
            except Exception:
                return sent
            for p in left:
                if (p.symbol, p.owner, p.client_id) not in still:
                    self._resolve((p.venue, p.symbol, p.owner, p.client_id))
        return sent

    async def _retry_loop(self) -> None:
        assert self._retry_wake is not None
        while True:
            await wait_event(self._retry_wake, self.retry_interval)
            self._retry_wake.clear()
            if self.pending:
                try:
                    await self.retry_pending()
                except Exception:
                    log.exception("kill switch: retrying pending cancels failed")

    # --- flatten --------------------------------------------------------------------------------------------------
    async def _flatten(
        self, scope: str, owner: str | None, symbol: str | None, reason: str, source: str, actor: str
    ) -> tuple[str, ...]:
        lines: list[str] = []
        for p in list(self.positions.positions.values()):
            if p.qty == 0 or not in_scope(scope, p.owner, p.symbol):
                continue
            venue = p.venue or "sim"
            side = Side.SELL if p.qty > 0 else Side.BUY
            if not self._connected(venue):
                lines.append(f"{p.owner} {p.symbol} {p.qty:+d}: not sent, venue {venue} disconnected")
                continue
            self._flatten_seq += 1
            cid = f"kill-flatten-{self._flatten_seq}"
            self._flatten_ids.add(cid)
            self.gate.allow_flatten(cid)
            req = OrderRequest(
                symbol=p.symbol,
                side=side,
                qty=abs(p.qty),
                type=OrderType.MARKET,
                tif=TimeInForce.IOC,
                reduce_only=True,
                client_id=cid,
                owner=p.owner,
                venue=venue,
            )
            try:
                ok = await self.router.submit(req)
            except Exception as exc:
                ok = False
                log.exception("flatten order %s failed", cid)
                lines.append(f"{p.owner} {p.symbol} {p.qty:+d}: {cid} failed: {exc}")
                continue
            lines.append(
                f"{p.owner} {p.symbol} {p.qty:+d}: {side.value} {abs(p.qty)} {cid} {'sent' if ok else 'refused'}"
            )
        if self.store is not None:
            self.store.audit(self.clock.time_ns(), "flatten", scope, source, reason, actor, "; ".join(lines))
        self.bus.publish(
            KillSwitchAction(action="flatten", scope=scope, reason=reason, source=source, actor=actor)
        )
        return tuple(lines)

    # --- re-arm ---------------------------------------------------------------------------------------------------
    async def rearm(
        self,
        scope: str = DESK,
        *,
        reason: str,
        source: str,
        actor: str = "",
        state: TradingState = TradingState.ACTIVE,
    ) -> dict[str, Any]:
        """Explicitly lift a kill for ``scope`` (to ACTIVE, or to REDUCING). Audited and latched."""
        parse_scope(scope)
        if state is TradingState.HALTED:
            raise ValueError("re-arm to HALTED is a kill: use kill()")
        previous = self.states.state(scope)
        self.states.set(scope, state, reason=reason, source=source)
        if self.store is not None:
            self.store.audit(
                self.clock.time_ns(),
                "rearm",
                scope,
                source,
                reason,
                actor,
                f"{previous.value}->{state.value}",
            )
        self.bus.publish(
            KillSwitchAction(action="rearm", scope=scope, reason=reason, source=source, actor=actor)
        )
        log.warning(
            "re-arm %s -> %s: %s", scope, state.value, reason, extra={"source": source, "actor": actor}
        )
        if self.store is not None:
            await self.store.flush()
        pending = [p.label for p in self.pending.values() if p.scope == scope]
        return {"scope": scope, "state": state.value, "previous": previous.value, "pending": pending}

    async def idle(self) -> None:
        """Wait for every kill started with :meth:`kill_now` (rules, signals) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def pending_cancels(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.pending.values()]

    # --- engine ------------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.store is not None:
            await self.store.open()
        self._retry_wake = asyncio.Event()
        self._retry_task = asyncio.create_task(self._retry_loop(), name="killswitch-retry")
        # Venues built before risk (the matching engine) have restored their books by now; venues built
        # after it (FIX) are not connected yet, so their orders go pending and are retried on logon.
        await self.sweep_latched()

    async def stop(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task
            self._retry_task = None
        for task in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
        if self.store is not None:
            await self.store.close()

    def status(self) -> dict[str, Any]:
        return {
            "kills": self.kills,
            "pending_cancels": len(self.pending),
            "last_kill": None if self.last_report is None else self.last_report.to_dict(),
        }
