"""The desk runtime: builds every enabled engine from config, starts them in dependency order and
stops them in reverse.

An engine is anything with ``name``, ``async start()``, ``async stop()`` and ``status() -> dict``.
Builders are listed in :data:`BUILDERS` in dependency order; each takes the :class:`Desk` and returns
the engines it made (none if its section is disabled). Engines reach each other only through the
desk's bus, router and registries here, never by importing one another's internals.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from engines.bus import Bus
from engines.clock import Clock, SystemClock
from engines.config import DeskConfig
from engines.events import EngineState, EngineStatusChanged
from engines.instruments import Instrument
from engines.venue import OrderRouter

log = logging.getLogger(__name__)


class Engine(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


Builder = Callable[["Desk"], list[Engine]]

#: "module:function" builders in dependency order (a builder may rely on the ones before it).
BUILDERS: list[str] = [
    "engines.sim.prices:build",
    "engines.matching.service:build",  # the matching engine + its venue "sim" (before its APIs)
    "engines.matching.api:build",  # REST + WS of the matching engine: keep right after matching's service
    "engines.risk.service:build",  # after matching, before bots and FIX: the gate must exist first
    "engines.fix.service:build",  # after matching and risk (the gateway routes through them)
    # grid bots: after risk (their orders pass its gate) and after FIX, like the market makers: a grid on
    # a FIX venue starts (cancels or recovers its orders) with the session up, and stops before it closes
    "engines.grid.service:build",
    "engines.mm.service:build",  # market makers (+ feeds): after risk, and after FIX so a bot quoting on a
    # FIX venue stops (and cancels its quotes) before the FIX sessions close
    "engines.sim.takers:build",  # simulated taker flow on the matching engine: after the bots
    "engines.control.service:build",  # control API (kill/rearm/status); last but the remote channel
    "engines.remote.service:build",  # keep last: serves the state of everything built before it
]


#: The process's GC settings before the first running desk tuned them, and how many desks run tuned.
_GC_TUNING: dict[str, Any] = {}


class Desk:
    """One desk: the bus, the instruments, the order router and the engines."""

    def __init__(self, config: DeskConfig, *, clock: Clock | None = None, data_dir: Path | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.bus = Bus(self.clock)
        self.instruments: dict[str, Instrument] = config.instrument_map()
        self.router = OrderRouter(self.bus)
        self.data_dir = (data_dir or config.desk.path).resolve()
        self.engines: list[Engine] = []
        self.services: dict[str, Any] = {}  # named engines other engines may look up (e.g. "matching")
        self._started: list[Engine] = []
        self.stopped = asyncio.Event()
        self._gc_tuned = False

    def build(self, builders: list[str] | None = None) -> Desk:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for spec in builders if builders is not None else BUILDERS:
            module_name, func_name = spec.split(":")
            builder: Builder = getattr(importlib.import_module(module_name), func_name)
            for engine in builder(self):
                self.engines.append(engine)
        return self

    def engine(self, name: str) -> Engine:
        for e in self.engines:
            if e.name == name:
                return e
        raise KeyError(name)

    async def start(self) -> None:
        for engine in self.engines:
            self.bus.publish(EngineStatusChanged(engine=engine.name, state=EngineState.STARTING))
            try:
                await engine.start()
            except Exception as exc:
                log.exception("engine %s failed to start", engine.name)
                self.bus.publish(
                    EngineStatusChanged(engine=engine.name, state=EngineState.FAILED, detail=str(exc))
                )
                await self.stop()
                raise
            self._started.append(engine)
            self.bus.publish(EngineStatusChanged(engine=engine.name, state=EngineState.RUNNING))
        log.info("desk %s started: %s", self.config.desk.name, ", ".join(e.name for e in self.engines))
        self._tune_gc()

    def _tune_gc(self) -> None:
        """Make the cyclic GC cheaper for the running desk (``[desk] gc_freeze`` / ``gc_threshold``).

        Every full collection walks every tracked object: the start-up objects (modules, classes,
        functions, config) never become garbage, so ``gc.freeze()`` moves them out of the collector's
        generations; a larger generation-0 threshold means fewer collections for the order path's
        short-lived allocations. Both are process-wide: undone in :meth:`stop`.
        """
        cfg = self.config.desk
        if self._gc_tuned or (cfg.gc_threshold is None and not cfg.gc_freeze):
            return
        self._gc_tuned = True
        if not _GC_TUNING:  # the first running desk of the process keeps what to restore
            _GC_TUNING["threshold"] = gc.get_threshold()
        _GC_TUNING["desks"] = _GC_TUNING.get("desks", 0) + 1
        if cfg.gc_threshold is not None:
            gc.set_threshold(*cfg.gc_threshold)
        if cfg.gc_freeze:
            gc.freeze()

    def _untune_gc(self) -> None:
        if not self._gc_tuned:
            return
        self._gc_tuned = False
        _GC_TUNING["desks"] -= 1
        if _GC_TUNING["desks"] == 0:  # the last running desk (tests run several): as before the first
            gc.unfreeze()  # back into the oldest generation: stopped desks' cycles can be collected
            gc.set_threshold(*_GC_TUNING["threshold"])
            _GC_TUNING.clear()

    async def stop(self) -> None:
        if self._started:
            # Said first, so engines that react to others going away (risk rules watching FIX sessions)
            # can tell an orderly shutdown from a failure.
            self.bus.publish(EngineStatusChanged(engine="desk", state=EngineState.STOPPING, detail="orderly shutdown"))
        while self._started:
            engine = self._started.pop()
            self.bus.publish(EngineStatusChanged(engine=engine.name, state=EngineState.STOPPING))
            try:
                await engine.stop()
            except Exception:
                log.exception("engine %s failed to stop cleanly", engine.name)
            self.bus.publish(EngineStatusChanged(engine=engine.name, state=EngineState.STOPPED))
        self._untune_gc()
        self.stopped.set()

    def status(self) -> dict[str, Any]:
        return {
            "desk": self.config.desk.name,
            "bus_seq": self.bus.seq,
            "engines": {e.name: e.status() for e in self.engines},
        }
