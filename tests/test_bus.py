from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar

import pytest

from engines.bus import Bus, QueueCutOff
from engines.clock import ManualClock
from engines.events import Event, PriceTick, QueueOverflow
from engines.marketdata import BBO
from engines.orders import Fill, Liquidity, Side


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Event):
    n: int
    sym: str = "A"
    KEY_FIELD: ClassVar[str | None] = "sym"


def fill(n: int) -> Fill:
    return Fill(
        symbol="BTC-USD", order_id=n, client_id=f"c{n}", owner="o", side=Side.BUY, price=100, qty=1,
        leaves_qty=0, liquidity=Liquidity.MAKER, fee=0.01, trade_id=n,
    )


def test_publish_stamps_seq_and_clock_time_and_calls_in_order():
    clock = ManualClock(start_ns=5_000)
    bus = Bus(clock)
    seen: list[tuple[str, int, int, int]] = []
    bus.subscribe(Ping, lambda e: seen.append(("first", e.n, e.seq, e.ts)))
    bus.subscribe(Ping, lambda e: seen.append(("second", e.n, e.seq, e.ts)))
    bus.publish(Ping(n=1))
    clock.advance(1)
    bus.publish(Ping(n=2))
    assert seen == [
        ("first", 1, 1, 5_000),
        ("second", 1, 1, 5_000),
        ("first", 2, 2, 1_000_005_000),
        ("second", 2, 2, 1_000_005_000),
    ]


def test_keyed_and_base_class_subscriptions():
    bus = Bus(ManualClock())
    keyed: list[int] = []
    everything: list[str] = []
    bus.subscribe(Ping, lambda e: keyed.append(e.n), key="B")
    bus.subscribe(Event, lambda e: everything.append(type(e).__name__))
    bus.publish(Ping(n=1, sym="A"))
    bus.publish(Ping(n=2, sym="B"))
    bus.publish(PriceTick(symbol="X", price=1.0))
    assert keyed == [2]
    assert everything == ["Ping", "Ping", "PriceTick"]


def test_failing_subscriber_is_isolated(caplog):
    bus = Bus(ManualClock())
    got: list[int] = []

    def boom(e: Ping) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(Ping, boom)
    bus.subscribe(Ping, lambda e: got.append(e.n))
    with caplog.at_level(logging.ERROR, logger="engines.bus"):
        bus.publish(Ping(n=1))
        bus.publish(Ping(n=2))
    assert got == [1, 2]
    assert bus.errors == 2
    assert "subscriber" in caplog.text and "failed on Ping #1" in caplog.text


async def test_publish_many_is_publish_per_event_with_one_clock_reading():
    clock = ManualClock(start_ns=7_000)
    bus = Bus(clock)
    seen: list[tuple[str, int, int, int]] = []
    keyed: list[int] = []
    batch: list[Event] = [Ping(n=1), fill(2), Ping(n=3, sym="B"), Ping(n=4)]

    def on_ping(e: Ping) -> None:
        seen.append(("ping", e.n, e.seq, e.ts))
        if e.n == 1:  # a subscriber publishing in the middle takes the next seq
            bus.publish(PriceTick(symbol="X", price=1.0))
        if e.n == 3:  # ... or appends to the batch being published: published after the others
            batch.append(Ping(n=5))
            bus.subscribe(Ping, lambda e: seen.append(("late", e.n, e.seq, e.ts)))  # routes change mid-batch

    bus.subscribe(Ping, on_ping)
    bus.subscribe(Fill, lambda e: seen.append(("fill", e.order_id, e.seq, e.ts)))
    bus.subscribe(PriceTick, lambda e: seen.append(("tick", 0, e.seq, e.ts)))
    bus.subscribe(Ping, lambda e: keyed.append(e.n), key="B")
    q = bus.queue((Ping,), policy="lossless", name="q")
    bus.publish_many(batch)
    assert seen == [
        ("ping", 1, 1, 7_000),
        ("tick", 0, 2, 7_000),
        ("fill", 2, 3, 7_000),
        ("ping", 3, 4, 7_000),
        ("ping", 4, 5, 7_000),
        ("late", 4, 5, 7_000),
        ("ping", 5, 6, 7_000),
        ("late", 5, 6, 7_000),
    ]
    assert keyed == [3] and bus.seq == 6
    assert [e.n for e in q.drain()] == [1, 3, 4, 5]  # type: ignore[attr-defined]
    bus.publish_many([])
    assert bus.seq == 6


def test_publish_many_isolates_a_failing_subscriber():
    bus = Bus(ManualClock())
    got: list[int] = []

    def boom(e: Ping) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(Ping, boom)
    bus.subscribe(Ping, lambda e: got.append(e.n))
    bus.publish_many([Ping(n=1), Ping(n=2)])
    assert got == [1, 2] and bus.errors == 2


def test_unsubscribe_stops_delivery():
    bus = Bus(ManualClock())
    got: list[int] = []
    sub = bus.subscribe(Ping, lambda e: got.append(e.n))
    bus.publish(Ping(n=1))
    sub.cancel()
    bus.publish(Ping(n=2))
    assert got == [1]


async def test_conflating_queue_keeps_latest_per_key():
    bus = Bus(ManualClock())
    q = bus.queue((BBO,), policy="conflate", name="ui")
    for px in (100, 101, 102):
        bus.publish(BBO(symbol="BTC-USD", bid_px=px, bid_qty=1, ask_px=px + 1, ask_qty=1))
    bus.publish(BBO(symbol="ETH-USD", bid_px=7, bid_qty=1, ask_px=8, ask_qty=1))
    batch = await q.get_batch()
    assert [(e.symbol, e.bid_px) for e in batch] == [("BTC-USD", 102), ("ETH-USD", 7)]
    assert q.conflated == 2


async def test_auto_policy_conflates_market_data_and_keeps_every_fill():
    bus = Bus(ManualClock())
    q = bus.queue((Event,), policy="auto", name="console")
    bus.publish(PriceTick(symbol="A", price=1.0))
    bus.publish(fill(1))
    bus.publish(PriceTick(symbol="A", price=2.0))
    bus.publish(fill(2))
    batch = q.drain()
    assert [type(e).__name__ for e in batch] == ["Fill", "Fill", "PriceTick"]
    assert [e.order_id for e in batch[:2]] == [1, 2]
    assert batch[2].price == 2.0


async def test_lossless_queue_applies_backpressure_and_never_drops():
    bus = Bus(ManualClock())
    overflow: list[QueueOverflow] = []
    bus.subscribe(QueueOverflow, overflow.append)
    q = bus.queue((Fill,), policy="lossless", name="writer", capacity=4, hard_limit=100)
    for i in range(10):
        bus.publish(fill(i))
    assert q.backpressured and bus.backpressured
    assert [(o.consumer, o.depth, o.capacity, o.cut_off) for o in overflow] == [("writer", 5, 4, False)]

    producer_resumed = asyncio.Event()

    async def producer() -> None:
        await bus.writable()
        producer_resumed.set()

    task = asyncio.create_task(producer())
    await asyncio.sleep(0)
    assert not producer_resumed.is_set()  # blocked while the queue is over capacity
    got = [e.order_id for e in q.drain(limit=8)]
    await asyncio.wait_for(producer_resumed.wait(), 1)
    got += [e.order_id for e in q.drain()]
    assert got == list(range(10))
    assert not bus.backpressured
    await task


async def test_lossless_queue_past_hard_limit_is_cut_off_and_told():
    bus = Bus(ManualClock())
    overflow: list[QueueOverflow] = []
    bus.subscribe(QueueOverflow, overflow.append)
    q = bus.queue((Fill,), policy="lossless", name="stalled", capacity=2, hard_limit=5)
    for i in range(6):
        bus.publish(fill(i))
    assert [o.cut_off for o in overflow] == [False, True]
    with pytest.raises(QueueCutOff):
        await q.get()
    bus.publish(fill(99))  # the desk goes on; the cut-off queue takes nothing more
    assert len(q) == 0
