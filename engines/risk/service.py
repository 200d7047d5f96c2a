"""Builds the risk engine and the kill switch, installs the gate on the router, binds SIGUSR1.

``desk.services["risk"]`` is the :class:`RiskEngine` (states, positions, gate, rules);
``desk.services["killswitch"]`` the :class:`KillSwitch`. Latched states are read from
``desk.data_dir/"risk.sqlite"`` here, while the desk is being built, so a restarted desk is HALTED
before any engine (a bot, the FIX gateway) starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Any

from engines import headless
from engines.risk.events import DESK, TradingState, TradingStateChanged
from engines.risk.gate import RiskGate
from engines.risk.killswitch import KillSwitch
from engines.risk.positions import OrderTracker, PositionBook
from engines.risk.rules import RiskRules
from engines.risk.state import TradingStates
from engines.risk.store import RiskStore, read_latch

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine

STORE_NAME = "risk.sqlite"


class RiskEngine:
    """The desk's risk service: trading states, positions/P&L, the pre-trade gate and the rules."""

    name = "risk"

    def __init__(self, desk: Desk) -> None:
        cfg = desk.config.risk
        self.bus = desk.bus
        self.states = TradingStates(desk.bus)
        self.orders = OrderTracker()
        self.orders.attach(desk.bus)
        self.positions = PositionBook(desk.bus, desk.clock, desk.instruments)
        self.positions.attach(desk.bus)
        self.gate = RiskGate(cfg, self.states, self.positions, self.orders, desk.instruments, desk.clock)
        self.store = RiskStore(desk.data_dir / STORE_NAME)
        self.restored = read_latch(self.store.path)
        for row in self.restored:
            self.states.set(
                row.scope, TradingState(row.state), reason=row.reason, source="startup", publish=False
            )
        # From here on every state change is latched on disk.
        self.states.on_change(
            lambda scope, state, _prev, reason, source: self.store.latch(
                scope, state.value, reason, source, desk.clock.time_ns()
            )
        )
        self.killswitch = KillSwitch(
            bus=desk.bus,
            clock=desk.clock,
            router=desk.router,
            states=self.states,
            orders=self.orders,
            positions=self.positions,
            gate=self.gate,
            store=self.store,
            retry_interval=cfg.retry_interval,
        )
        self.rules = RiskRules(
            cfg,
            bus=desk.bus,
            clock=desk.clock,
            states=self.states,
            positions=self.positions,
            orders=self.orders,
            gate=self.gate,
            killswitch=self.killswitch,
            router=desk.router,
            symbols=list(desk.instruments),
        )

    # --- the API bots and the console use ---------------------------------------------------------------------
    def state(self, scope: str = DESK) -> TradingState:
        return self.states.state(scope)

    def effective_state(self, owner: str, symbol: str) -> TradingState:
        return self.states.effective_state(owner, symbol)

    def set_state(self, scope: str, state: TradingState, *, reason: str, source: str) -> bool:
        """Set a scope's state directly (e.g. REDUCING). A kill goes through the kill switch instead."""
        return self.states.set(scope, state, reason=reason, source=source)

    # --- engine ---------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        for row in self.restored:  # tell everyone (console, bots, recorders) the desk came up latched
            self.bus.publish(
                TradingStateChanged(
                    scope=row.scope,
                    state=TradingState(row.state),
                    previous=TradingState.ACTIVE,
                    reason=f"latched at restart: {row.reason}",
                    source="startup",
                )
            )
        await self.rules.start()

    async def stop(self) -> None:
        await self.rules.stop()

    def status(self) -> dict[str, Any]:
        return {
            "states": {scope: s.value for scope, s in self.states.scopes().items()},
            "checked": self.gate.checked,
            "refused": self.gate.refused,
            "loss_blocked": sorted(self.gate.loss_blocked),
            "rules": self.rules.status(),
        }


def _bind_sigusr1(desk: Desk, loop: asyncio.AbstractEventLoop) -> None:
    """SIGUSR1 to a headless desk = kill the whole desk (source "signal")."""

    def on_sigusr1() -> None:
        ks = desk.services.get("killswitch")
        if ks is not None:
            ks.kill_now(DESK, reason="SIGUSR1 received", source="signal", actor=f"pid {os.getpid()}")

    loop.add_signal_handler(signal.SIGUSR1, on_sigusr1)


if _bind_sigusr1 not in headless.SIGNAL_HOOKS:
    headless.SIGNAL_HOOKS.append(_bind_sigusr1)


def build(desk: Desk) -> list[Engine]:
    risk = RiskEngine(desk)
    desk.services["risk"] = risk
    desk.services["killswitch"] = risk.killswitch
    desk.router.gate = risk.gate
    # The kill switch starts first (it opens the store), risk after; stopping reverses that.
    return [risk.killswitch, risk]
