"""Automatic kill triggers. Each publishes ``RiskBreach`` and kills its scope when its threshold is
reached, and not before:

===================  ==========================================================  ==================
rule                 fires when                                                  kills
===================  ==========================================================  ==================
daily_loss           day P&L of a scope <= -daily_loss                           that scope
drawdown             day peak P&L - day P&L of a scope >= max_drawdown           that scope
position_breach      |position| of (owner, symbol) > max_position                bot:OWNER
order_storm          ``order_storm`` order attempts by one owner within          bot:OWNER
                     ``storm_window`` seconds (the N-th attempt fires)
stale_market_data    an instrument with open orders has had no PriceTick/BBO     instrument:SYMBOL
                     for >= ``stale_market_data`` seconds
fix_session_loss     a FIX session with open orders on it leaves ACTIVE          see below
===================  ==========================================================  ==================

Loss, drawdown and position rules are edge-triggered: they fire once on crossing and again only after
the value has come back within its limit (a re-arm does not re-fire them; while a scope stays beyond
its loss limit the gate lets only reducing orders through). Storm, stale-data and FIX rules fire
once per episode and again after the scope has been re-armed.

FIX contract (``engines.fix.events.FixSessionState``, subscribed by name if that module exists):
``session`` is ``"BEGIN:SENDER->TARGET"`` from the desk's side and ``state`` a string/enum whose value
is one of DISCONNECTED, CONNECTING, LOGON_IN_PROGRESS, ACTIVE, LOGOUT_IN_PROGRESS, RECONNECTING.
Leaving ACTIVE (to DISCONNECTED or RECONNECTING) with open orders on the session fires: for orders
owned by ``fix:<TARGET>`` or ``fix:<SENDER>`` (gateway clients) it kills ``bot:fix:<CompID>``; for orders
routed to a venue named after the session (the venue's ``name`` equals ``session``, or its
``session_id`` attribute does, or the event has a ``venue`` field naming it) it kills
``instrument:SYMBOL`` for each symbol with open orders there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections import deque
from typing import Any

from engines.bus import Bus
from engines.clock import Clock
from engines.events import EngineState, EngineStatusChanged, PriceTick
from engines.marketdata import BBO
from engines.risk.config import RiskConfig, RiskLimits
from engines.risk.events import DESK, RiskBreach, TradingState
from engines.risk.gate import RiskGate
from engines.risk.killswitch import KillSwitch
from engines.risk.positions import OrderTracker, Position, PositionBook
from engines.risk.state import TradingStates
from engines.venue import OrderRouter

log = logging.getLogger(__name__)

_LOST = {"disconnected", "reconnecting"}
_UNSET: Any = object()


def _fmt(x: float) -> str:
    return f"{x:.2f}"


class RiskRules:
    name = "risk-rules"

    def __init__(
        self,
        config: RiskConfig,
        *,
        bus: Bus,
        clock: Clock,
        states: TradingStates,
        positions: PositionBook,
        orders: OrderTracker,
        gate: RiskGate,
        killswitch: KillSwitch,
        router: OrderRouter,
        symbols: list[str],
    ) -> None:
        self.config = config
        self.rules = config.rules
        self.bus = bus
        self.clock = clock
        self.states = states
        self.positions = positions
        self.orders = orders
        self.gate = gate
        self.killswitch = killswitch
        self.router = router
        self.fired: set[tuple[str, str]] = set()  # (rule, scope or key) currently beyond/handled
        self.breaches = 0
        now = clock.monotonic()
        self.last_md: dict[str, float] = dict.fromkeys(symbols, now)
        self._storm: dict[str, deque[float]] = {}
        # scope -> its limits if they set daily_loss or max_drawdown, else None: looked up for three
        # scopes on every fill (the config is read once per scope, as the gate reads its limits once)
        self._loss_limits: dict[str, RiskLimits | None] = {}
        self._fix_active: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None
        positions.on_update(self._on_pnl)
        states.on_change(self._on_state)
        bus.subscribe(PriceTick, self._on_md)
        bus.subscribe(BBO, self._on_md)
        if self.rules.order_storm is not None:
            gate.observer = self.note_order
        self.fix_events = self._subscribe_fix()
        self.desk_stopping = False
        self.bus.subscribe(EngineStatusChanged, self._on_engine_status, key="desk")

    # --- firing -----------------------------------------------------------------------------------------
    def fire(self, rule: str, scope: str, value: str, limit: str, detail: str) -> None:
        self.breaches += 1
        self.bus.publish(RiskBreach(rule=rule, scope=scope, value=value, limit=limit, detail=detail))
        log.warning("risk rule %s fired on %s: %s (limit %s)", rule, scope, value, limit)
        reason = f"{rule}: {detail}"
        try:
            self.killswitch.kill_now(
                scope, reason=reason, source=f"rule:{rule}", actor="risk", detail=f"{value} / {limit}"
            )
        except RuntimeError:  # no running loop (a synchronous test): halt at least
            self.killswitch.halt(
                scope, reason=reason, source=f"rule:{rule}", actor="risk", detail=f"{value} / {limit}"
            )

    def _edge(self, rule: str, key: str, beyond: bool) -> bool:
        """True once when ``beyond`` becomes true; re-armed when it becomes false again."""
        k = (rule, key)
        if beyond:
            if k in self.fired:
                return False
            self.fired.add(k)
            return True
        self.fired.discard(k)
        return False

    def _on_state(
        self, scope: str, state: TradingState, previous: TradingState, reason: str, source: str
    ) -> None:
        if previous is TradingState.HALTED and state is not TradingState.HALTED:
            # Re-armed: episode rules may fire again for this scope.
            for rule in ("order_storm", "stale_market_data", "fix_session_loss"):
                self.fired.discard((rule, scope))

    # --- P&L and position rules (on every fill and mark) -----------------------------------------------------
    def _scope_limits(self, scope: str) -> RiskLimits | None:
        if scope == DESK:
            return self.config.limits
        if scope.startswith("bot:"):
            return self.config.per_owner.get(scope[4:])
        return self.config.per_instrument.get(scope.removeprefix("instrument:"))

    def _loss_limits_of(self, scope: str) -> RiskLimits | None:
        lim = self._scope_limits(scope)
        if lim is not None and lim.daily_loss is None and lim.max_drawdown is None:
            lim = None
        self._loss_limits[scope] = lim
        return lim

    def _on_pnl(self, scopes: tuple[str, ...], position: Position | None) -> None:
        rules = self.rules
        loss_limits = self._loss_limits
        for scope in scopes:
            lim = loss_limits.get(scope, _UNSET)
            if lim is _UNSET:
                lim = self._loss_limits_of(scope)
            if lim is None:
                continue
            s = self.positions.scope_pnl(scope)
            blocked = False
            if lim.daily_loss is not None:
                limit = float(lim.daily_loss)
                beyond = s.day_pnl <= -limit
                blocked |= beyond
                if self._edge("daily_loss", scope, beyond) and rules.daily_loss:
                    self.fire(
                        "daily_loss",
                        scope,
                        _fmt(s.day_pnl),
                        _fmt(-limit),
                        f"day P&L {_fmt(s.day_pnl)} reached the daily loss limit {_fmt(-limit)}",
                    )
            if lim.max_drawdown is not None:
                limit = float(lim.max_drawdown)
                beyond = s.drawdown >= limit
                blocked |= beyond
                if self._edge("drawdown", scope, beyond) and rules.drawdown:
                    self.fire(
                        "drawdown",
                        scope,
                        _fmt(s.drawdown),
                        _fmt(limit),
                        f"drawdown {_fmt(s.drawdown)} from the day's peak {_fmt(s.peak)} reached {_fmt(limit)}",
                    )
            if blocked:
                self.gate.loss_blocked.add(scope)
            else:
                self.gate.loss_blocked.discard(scope)
        if position is not None and rules.position_breach:
            lim_lots = self.gate.limits(position.owner, position.symbol)
            if lim_lots is not None and lim_lots.max_position is not None:
                key = f"{position.owner}|{position.symbol}"
                beyond = abs(position.qty) > lim_lots.max_position
                if self._edge("position_breach", key, beyond):
                    self.fire(
                        "position_breach",
                        "bot:" + position.owner,
                        f"{position.qty:+d}",
                        str(lim_lots.max_position),
                        f"{position.owner} position {position.qty:+d} lots on {position.symbol} "
                        f"exceeds max_position {lim_lots.max_position} lots",
                    )

    # --- order storm (called by the gate on every order attempt) -------------------------------------------------
    def note_order(self, owner: str) -> None:
        n = self.rules.order_storm
        if n is None:
            return
        times = self._storm.get(owner)
        if times is None:
            times = self._storm[owner] = deque(maxlen=n)
        now = self.clock.monotonic()
        times.append(now)
        if len(times) == n and now - times[0] < self.rules.storm_window:
            scope = "bot:" + owner
            if ("order_storm", scope) in self.fired:
                return
            self.fired.add(("order_storm", scope))
            self.fire(
                "order_storm",
                scope,
                str(n),
                f"{n - 1}/{self.rules.storm_window:g}s",
                f"{owner} sent {n} orders within {now - times[0]:.3f}s (limit {n - 1} per {self.rules.storm_window:g}s)",
            )

    # --- stale market data (timed) -------------------------------------------------------------------------------
    def _on_md(self, ev: PriceTick | BBO) -> None:
        self.last_md[ev.symbol] = self.clock.monotonic()

    def check_timed(self) -> None:
        """The timed rules; the running engine calls this every ``check_interval`` seconds."""
        threshold = self.rules.stale_market_data
        if threshold is None:
            return
        now = self.clock.monotonic()
        for symbol in list(self.orders.per_symbol):
            last = self.last_md.get(symbol)
            if last is None:  # first seen now: start its clock
                self.last_md[symbol] = now
                continue
            age = now - last
            scope = "instrument:" + symbol
            if age >= threshold and ("stale_market_data", scope) not in self.fired:
                self.fired.add(("stale_market_data", scope))
                n = self.orders.per_symbol.get(symbol, 0)
                self.fire(
                    "stale_market_data",
                    scope,
                    f"{age:.1f}s",
                    f"{threshold:g}s",
                    f"no market data on {symbol} for {age:.1f}s with {n} open orders",
                )

    # --- FIX session loss -----------------------------------------------------------------------------------------
    def _subscribe_fix(self) -> type | None:
        if not self.rules.fix_session_loss:
            return None
        try:
            module = importlib.import_module("engines.fix.events")
        except ImportError:
            return None
        cls = getattr(module, "FixSessionState", None)
        if cls is None:
            return None
        self.bus.subscribe(cls, self.on_fix_session)
        return cls

    def _on_engine_status(self, ev: EngineStatusChanged) -> None:
        if ev.state is EngineState.STOPPING:
            self.desk_stopping = True

    def on_fix_session(self, ev: Any) -> None:
        session = str(ev.session)
        state = str(getattr(ev.state, "value", ev.state)).lower()
        if self.desk_stopping and state != "active":
            return  # the desk is shutting its sessions down on purpose: not a loss to latch a halt on
        if state == "active":
            self._fix_active[session] = True
            for key in [
                k for k in self.fired if k[0] == "fix_session_loss" and k[1].startswith(session + "|")
            ]:
                self.fired.discard(key)
            return
        if state not in _LOST:
            return
        _, _, pair = session.partition(":")
        sender, _, target = pair.partition("->")
        scopes: dict[str, int] = {}
        for owner in {f"fix:{target}", f"fix:{sender}"}:
            n = len(self.orders.open_orders(owner=owner))
            if n:
                scopes["bot:" + owner] = n
        venues = {
            name
            for name, v in self.router.venues.items()
            if name == session or getattr(v, "session_id", None) == session
        }
        extra = getattr(ev, "venue", None)
        if extra:
            venues.add(str(extra))
        for venue in venues:
            for _, _, o in self.orders.open_orders(venue=venue):
                scopes["instrument:" + o.symbol] = scopes.get("instrument:" + o.symbol, 0) + 1
        for scope, n in scopes.items():
            key = ("fix_session_loss", f"{session}|{scope}")
            if key in self.fired:
                continue
            self.fired.add(key)
            self.fire(
                "fix_session_loss",
                scope,
                state.upper(),
                "ACTIVE",
                f"FIX session {session} is {state.upper()} with {n} open orders on it",
            )

    # --- engine ------------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.rules.check_interval)
            try:
                self.check_timed()
            except Exception:
                log.exception("timed risk rules failed")

    async def start(self) -> None:
        now = self.clock.monotonic()
        for symbol in self.last_md:  # the stale clock starts when the desk does
            self.last_md[symbol] = now
        self._task = asyncio.create_task(self._run(), name="risk-rules")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def status(self) -> dict[str, Any]:
        return {"breaches": self.breaches, "active": sorted(f"{r}:{k}" for r, k in self.fired)}
