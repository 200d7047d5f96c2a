"""Token bucket under an injected clock: burst, refill, cancels first, withdrawals, visible queue."""

from __future__ import annotations

from engines.clock import ManualClock
from engines.mm.ratelimit import Action, RateLimiter


def ids(actions):
    return [a.client_id for a in actions]


def test_burst_then_refill_with_cancels_first():
    clock = ManualClock()
    rl = RateLimiter(5.0, 5, clock=clock)
    assert rl.wait_time() is None
    for i in range(1, 9):
        rl.push(Action("new", f"n{i}"))
    assert ids(rl.take_ready()) == ["n1", "n2", "n3", "n4", "n5"]
    assert rl.take_ready() == []
    assert abs(rl.wait_time() - 0.2) < 1e-9
    rl.push(Action("cancel", "c1"))
    rl.push(Action("cancel", "c2"))
    assert rl.pending() == {"cancels": ["c1", "c2"], "news": ["n6", "n7", "n8"], "tokens": 0.0,
                            "oldest_wait": 0.0}
    clock.advance(0.2)
    assert ids(rl.take_ready()) == ["c1"]  # the cancel jumps the queue of new orders
    clock.advance(0.4)
    assert ids(rl.take_ready()) == ["c2", "n6"]
    assert rl.pending()["oldest_wait"] == 0.6
    assert rl.withdraw("n7").client_id == "n7"
    assert rl.withdraw("n7") is None
    clock.advance(10.0)  # the bucket never holds more than its burst
    assert ids(rl.take_ready()) == ["n8"]
    assert rl.bucket.tokens == 4.0
    assert (rl.released, rl.withdrawn, len(rl)) == (9, 1, 0)


def test_steady_rate_is_five_per_second():
    clock = ManualClock()
    rl = RateLimiter(5.0, 1, clock=clock)
    sent = 0
    for i in range(50):
        rl.push(Action("new", f"n{i}"))
    for _ in range(100):  # 10 s in 0.1 s steps
        sent += len(rl.take_ready())
        clock.advance(0.1)
    assert sent == 50
    rl2 = RateLimiter(5.0, 1, clock=ManualClock())
    for i in range(100):
        rl2.push(Action("new", f"n{i}"))
    total = 0
    for _ in range(20):  # 2 s
        total += len(rl2.take_ready())
        rl2.clock.advance(0.1)
    assert total == 10  # 1 at t=0, then one per 0.2 s: t=0.2 … 1.8
