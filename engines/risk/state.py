"""Trading state per scope (desk, bot:<name>, instrument:<symbol>) and the effective state of an order.

Only scopes that are not ACTIVE are stored, so the common case (everything active) costs one empty-dict
test. Every change is published as :class:`TradingStateChanged` before the call returns: the state is
the single source of truth the gate, the bots and the console read.
"""

from __future__ import annotations

from collections.abc import Callable

from engines.bus import Bus
from engines.risk.events import DESK, TradingState, TradingStateChanged

#: Higher is more restrictive.
SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
# Members as module constants: ``TradingState.ACTIVE`` is a lookup through the enum's metaclass (~0.1 us),
# and effective_state runs for every order (the gate) and every acknowledgement (the kill switch).
_ACTIVE = TradingState.ACTIVE
_HALTED = TradingState.HALTED


class ScopeError(ValueError):
    pass


def parse_scope(scope: str) -> tuple[str | None, str | None]:
    """``(owner, symbol)`` filter of a scope; raises :class:`ScopeError` for a malformed one."""
    if scope == DESK:
        return None, None
    kind, _, name = scope.partition(":")
    if not name:
        raise ScopeError(f"bad scope {scope!r}: expected 'desk', 'bot:NAME' or 'instrument:SYMBOL'")
    if kind == "bot":
        return name, None
    if kind == "instrument":
        return None, name
    raise ScopeError(f"bad scope {scope!r}: expected 'desk', 'bot:NAME' or 'instrument:SYMBOL'")


def in_scope(scope: str, owner: str, symbol: str) -> bool:
    if scope == DESK:
        return True
    if scope.startswith("bot:"):
        return owner == scope[4:]
    if scope.startswith("instrument:"):
        return symbol == scope[11:]
    return False


class TradingStates:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._states: dict[str, TradingState] = {}  # non-ACTIVE scopes only
        #: The same dict, read-only by convention: empty while every scope trades, so a per-order check
        #: (gate, kill switch) can skip ``effective_state`` with one truth test. Never rebound.
        self.restricted: dict[str, TradingState] = self._states
        self._listeners: list[Callable[[str, TradingState, TradingState, str, str], None]] = []

    def state(self, scope: str) -> TradingState:
        return self._states.get(scope, TradingState.ACTIVE)

    def effective_state(self, owner: str, symbol: str) -> TradingState:
        """The most restrictive of desk, bot:owner and instrument:symbol."""
        states = self._states
        if not states:
            return _ACTIVE
        best = states.get(DESK, _ACTIVE)
        if best is _HALTED:
            return best
        for scope in ("bot:" + owner, "instrument:" + symbol):
            s = states.get(scope)
            if s is not None and SEVERITY[s] > SEVERITY[best]:
                best = s
        return best

    def set(self, scope: str, state: TradingState, *, reason: str, source: str, publish: bool = True) -> bool:
        """Set ``scope`` to ``state``; returns False (and publishes nothing) if it already was."""
        parse_scope(scope)
        previous = self.state(scope)
        if previous is state:
            return False
        if state is TradingState.ACTIVE:
            self._states.pop(scope, None)
        else:
            self._states[scope] = state
        if publish:
            self.bus.publish(
                TradingStateChanged(scope=scope, state=state, previous=previous, reason=reason, source=source)
            )
        for listener in self._listeners:
            listener(scope, state, previous, reason, source)
        return True

    def on_change(self, listener: Callable[[str, TradingState, TradingState, str, str], None]) -> None:
        """``listener(scope, state, previous, reason, source)`` after every change."""
        self._listeners.append(listener)

    def scopes(self) -> dict[str, TradingState]:
        """Every scope that is not ACTIVE."""
        return dict(self._states)
