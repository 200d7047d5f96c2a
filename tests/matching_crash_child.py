"""A seeded order stream for the matching journal tests, and the crash-test child process.

``python -m tests.matching_crash_child DB SEED`` runs a journaled engine and applies the stream
forever, in bursts: a few operations, then ``await engine.flush()``, then one line on stdout,
``ACK <ops> <max trade id> <resting order ids…>``, meaning: these operations — and so every order
resting and every trade printed at that moment — are acknowledged. The test SIGKILLs it mid-stream.
"""

from __future__ import annotations

import asyncio
import random
import sys
from decimal import Decimal

from engines.bus import Bus
from engines.clock import ManualClock
from engines.instruments import Instrument
from engines.matching.engine import MatchingEngine
from engines.matching.journal import Journal
from engines.orders import OrderRequest, OrderType, Side, TimeInForce

SYMBOL = "BTC-USD"
INSTRUMENTS = {SYMBOL: Instrument(SYMBOL, Decimal("0.5"), Decimal("0.001"), 1, "BTC", "USD")}
OWNERS = ("alice", "bob", "carol", "dave")


def make_engine(bus: Bus, journal: Journal | None) -> MatchingEngine:
    return MatchingEngine(bus, INSTRUMENTS, journal=journal, trade_history=1_000_000)


def step(engine: MatchingEngine, rng: random.Random, n: int) -> None:
    """Apply operation number ``n`` (deterministic given the engine's state and the rng)."""
    r = rng.random()
    owner = OWNERS[rng.randrange(len(OWNERS))]
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    if r < 0.55:
        px = 1000 - rng.randint(-2, 12) if side is Side.BUY else 1000 + rng.randint(-2, 12)
        tif = TimeInForce.IOC if rng.random() < 0.1 else TimeInForce.GTC
        engine.submit(OrderRequest(symbol=SYMBOL, side=side, price=px, qty=rng.randint(1, 9), tif=tif,
                                   owner=owner, client_id=f"c{n}"))
    elif r < 0.65:
        engine.submit(OrderRequest(symbol=SYMBOL, side=side, price=None, type=OrderType.MARKET,
                                   qty=rng.randint(1, 12), owner=owner, client_id=f"c{n}"))
    elif r > 0.98:  # now and then one owner's bulk cancel (the kill switch's path, journaled in bulk)
        engine.cancel_all(owner=owner, symbol=SYMBOL, reason="bulk")
    else:
        live = engine.open_orders(symbol=SYMBOL)
        if not live:
            engine.cancel(SYMBOL, owner=owner, order_id=10**9)
            return
        o = live[rng.randrange(len(live))]
        if r < 0.85:
            engine.cancel(SYMBOL, owner=o.owner, order_id=o.order_id)
        else:
            price = None if rng.random() < 0.5 else (o.price or 1000) + rng.randint(-3, 3)
            engine.replace(SYMBOL, owner=o.owner, order_id=o.order_id, new_client_id=f"r{n}", price=price,
                           qty=rng.randint(1, 9))


async def child(db: str, seed: int) -> None:
    bus = Bus(ManualClock())
    engine = make_engine(bus, Journal(db, trade_history=1_000_000))
    await engine.start()
    rng = random.Random(seed)
    bursts = random.Random(seed + 1)  # separate stream: the replay draws only the operations
    n = engine.ops
    out = sys.stdout
    while True:
        for _ in range(bursts.randint(1, 8)):
            step(engine, rng, n)
            n += 1
        await engine.flush()
        resting = " ".join(str(o.order_id) for o in engine.open_orders())
        last = engine.last_trade(SYMBOL)
        out.write(f"ACK {engine.ops} {0 if last is None else last.trade_id} {resting}\n")
        out.flush()


if __name__ == "__main__":
    asyncio.run(child(sys.argv[1], int(sys.argv[2])))
