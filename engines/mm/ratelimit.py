"""Token-bucket rate limiter with a visible, prioritised queue of order actions.

Every action (new order or cancel) costs one token; the bucket holds ``burst`` tokens and refills at
``rate`` per second on the injected clock. Waiting cancels always go before waiting new orders — taking
risk off must never queue behind adding it. A new order still waiting can be withdrawn (its quote was
superseded before it was sent), so stale quotes never reach the venue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from engines.clock import Clock

ActionKind = Literal["cancel", "new"]
EPS = 1e-9  # float refill arithmetic must not leave a token at 0.9999999 forever


@dataclass(slots=True)
class Action:
    kind: ActionKind
    client_id: str
    payload: Any = None
    queued_at: float = 0.0


class TokenBucket:
    def __init__(self, rate: float = 5.0, burst: int = 5, *, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self._last = clock.monotonic()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if now > self._last:
            self.tokens = min(float(self.burst), self.tokens + (now - self._last) * self.rate)
        self._last = now

    def try_take(self) -> bool:
        self._refill()
        if self.tokens >= 1.0 - EPS:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if one is)."""
        self._refill()
        return 0.0 if self.tokens >= 1.0 - EPS else (1.0 - self.tokens) / self.rate


class RateLimiter:
    """Queues actions and releases them as tokens allow, cancels first."""

    def __init__(self, rate: float = 5.0, burst: int = 5, *, clock: Clock) -> None:
        self.bucket = TokenBucket(rate, burst, clock=clock)
        self.clock = clock
        self.cancels: deque[Action] = deque()
        self.news: deque[Action] = deque()
        self.released = 0
        self.withdrawn = 0

    def push(self, action: Action) -> None:
        action.queued_at = self.clock.monotonic()
        (self.cancels if action.kind == "cancel" else self.news).append(action)

    def withdraw(self, client_id: str) -> Action | None:
        """Remove a waiting new order (superseded before it was sent)."""
        for a in self.news:
            if a.client_id == client_id:
                self.news.remove(a)
                self.withdrawn += 1
                return a
        return None

    def has_cancel(self, client_id: str) -> bool:
        return any(a.client_id == client_id for a in self.cancels)

    def take_ready(self) -> list[Action]:
        """All actions the bucket allows now, cancels first, each in arrival order."""
        out: list[Action] = []
        while self.cancels or self.news:
            if not self.bucket.try_take():
                break
            out.append(self.cancels.popleft() if self.cancels else self.news.popleft())
        self.released += len(out)
        return out

    def wait_time(self) -> float | None:
        """Seconds until the next waiting action may go; None if nothing waits."""
        if not (self.cancels or self.news):
            return None
        return self.bucket.wait_time()

    def __len__(self) -> int:
        return len(self.cancels) + len(self.news)

    def pending(self) -> dict[str, Any]:
        """What waits, for the console and status: counts, the ids in order, and the oldest wait."""
        now = self.clock.monotonic()
        oldest = min((a.queued_at for a in (*self.cancels, *self.news)), default=None)
        return {
            "cancels": [a.client_id for a in self.cancels],
            "news": [a.client_id for a in self.news],
            "tokens": round(self.bucket.tokens, 3),
            "oldest_wait": None if oldest is None else round(now - oldest, 3),
        }
