"""Injectable clocks: engines ask a clock for the time so tests can drive it by hand."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall-clock time in nanoseconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; for intervals and timeouts."""
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when a test tells it to."""

    __slots__ = ("_mono", "_ns")

    def __init__(self, start_ns: int = 1_767_225_600_000_000_000, monotonic: float = 1000.0) -> None:
        # Default start: 2026-01-01T00:00:00Z, so snapshots and logs are reproducible.
        self._ns = start_ns
        self._mono = monotonic

    def time_ns(self) -> int:
        return self._ns

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._ns += int(seconds * 1_000_000_000)
        self._mono += seconds
