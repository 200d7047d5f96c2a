"""Bus.publish_many / publish: stand-ins, keyed subscribers, queues and re-entrancy in the middle of a batch.

Pins the behaviour the bus had before its per-event loop was rewritten for speed (these tests pass on
both): every event its own seq in list order, one ts per batch, routes (subscribers and queues) taken
per event when it is delivered, a change made by a subscriber applying from the next event on.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from engines.bus import Bus, register_unfrozen
from engines.clock import ManualClock
from engines.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPing(Event):
    n: int
    sym: str = "A"
    KEY_FIELD: ClassVar[str | None] = "sym"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchTock(Event):
    n: int


class _BatchPingStandIn(BatchPing, register=False):
    """Same layout as BatchPing, plain attribute stores (like engines/matching/fastevents.py's twins)."""

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__


register_unfrozen(_BatchPingStandIn, BatchPing)


def unfrozen(n: int, sym: str = "A") -> BatchPing:
    ev = object.__new__(_BatchPingStandIn)
    ev.seq = 0
    ev.ts = 0
    ev.n = n
    ev.sym = sym
    return ev


def frozen(n: int, sym: str = "A") -> BatchPing:
    return BatchPing(n=n, sym=sym)


@pytest.fixture(params=["frozen", "unfrozen"])
def ping(request: pytest.FixtureRequest) -> Any:
    return frozen if request.param == "frozen" else unfrozen


def test_mixed_batch_is_stamped_frozen_and_delivered_to_handlers_keyed_and_queues(ping: Any) -> None:
    clock = ManualClock(start_ns=3_000)
    bus = Bus(clock)
    seen: list[tuple[str, int, int, int, int]] = []
    keyed: list[int] = []

    def on_any(e: Event) -> None:
        assert type(e) in (BatchPing, BatchTock)  # never a stand-in
        seen.append((type(e).__name__, e.n, e.seq, e.ts, bus.seq))  # type: ignore[attr-defined]

    bus.subscribe(Event, on_any)
    bus.subscribe(BatchPing, lambda e: keyed.append(e.n), key="B")
    q = bus.queue((BatchPing,), policy="lossless", name="pings")
    bus.publish_many([ping(1), BatchTock(n=2), ping(3, "B"), unfrozen(4, "B"), frozen(5), ping(6)])
    assert seen == [
        ("BatchPing", 1, 1, 3_000, 1),
        ("BatchTock", 2, 2, 3_000, 2),
        ("BatchPing", 3, 3, 3_000, 3),
        ("BatchPing", 4, 4, 3_000, 4),
        ("BatchPing", 5, 5, 3_000, 5),
        ("BatchPing", 6, 6, 3_000, 6),
    ]
    assert keyed == [3, 4] and bus.seq == 6
    got = q.drain()
    assert [(type(e), e.n, e.seq) for e in got] == [(BatchPing, n, n) for n in (1, 3, 4, 5, 6)]  # type: ignore[attr-defined]
    assert got[0] == BatchPing(n=1, seq=1, ts=3_000) and hash(got[0]) == hash(BatchPing(n=1, seq=1, ts=3_000))
    with pytest.raises(dataclasses.FrozenInstanceError):
        got[2].n = 9  # type: ignore[misc]
    clock.advance(1)
    bus.publish_many([ping(7)])
    assert seen[-1] == ("BatchPing", 7, 7, 1_000_003_000, 7)


def test_events_without_subscribers_still_take_their_seq() -> None:
    bus = Bus(ManualClock())
    bus.publish_many([BatchTock(n=1), unfrozen(2), BatchTock(n=3)])
    assert bus.seq == 3
    got: list[tuple[int, int]] = []
    bus.subscribe(BatchPing, lambda e: got.append((e.n, e.seq)))
    batch = [BatchTock(n=4), unfrozen(5)]
    bus.publish_many(batch)
    assert got == [(5, 5)] and bus.seq == 5 and [e.seq for e in batch] == [4, 5]
    assert type(batch[1]) is BatchPing


def test_unsubscribe_mid_batch_applies_from_the_next_event(ping: Any) -> None:
    bus = Bus(ManualClock())
    log: list[tuple[str, int]] = []
    subs: dict[str, Any] = {}

    def first(e: BatchPing) -> None:
        log.append(("first", e.n))
        if e.n == 2:
            subs["second"].cancel()  # comes after this one: still called for this event
            subs["first"].cancel()

    subs["first"] = bus.subscribe(BatchPing, first)
    subs["second"] = bus.subscribe(BatchPing, lambda e: log.append(("second", e.n)))
    bus.subscribe(Event, lambda e: log.append(("all", e.n)))  # type: ignore[attr-defined]
    bus.publish_many([ping(1), ping(2), ping(3), BatchTock(n=4), ping(5)])
    assert log == [
        ("first", 1), ("second", 1), ("all", 1),
        ("first", 2), ("second", 2), ("all", 2),
        ("all", 3), ("all", 4), ("all", 5),
    ]
    assert bus.seq == 5


def test_subscribe_mid_batch_for_another_type_applies_from_the_next_event(ping: Any) -> None:
    bus = Bus(ManualClock())
    log: list[tuple[str, int, int]] = []

    def on_tock(e: BatchTock) -> None:
        log.append(("tock", e.n, e.seq))
        if e.n == 2:
            bus.subscribe(BatchPing, lambda p: log.append(("late", p.n, p.seq)))

    bus.subscribe(BatchTock, on_tock)
    bus.subscribe(BatchPing, lambda p: log.append(("ping", p.n, p.seq)))
    bus.publish_many([ping(1), BatchTock(n=2), ping(3), ping(4)])
    assert log == [
        ("ping", 1, 1), ("tock", 2, 2), ("ping", 3, 3), ("late", 3, 3), ("ping", 4, 4), ("late", 4, 4)
    ]


def test_subscriber_that_subscribes_then_publishes_the_same_type(ping: Any) -> None:
    """The nested publish builds the new route before the batch goes on: the batch must use it too."""
    bus = Bus(ManualClock())
    log: list[tuple[str, int, int]] = []

    def on_ping(e: BatchPing) -> None:
        log.append(("ping", e.n, e.seq))
        if e.n == 1:
            bus.subscribe(BatchPing, lambda p: log.append(("late", p.n, p.seq)))
            bus.publish(unfrozen(10))
            bus.publish_many([ping(20), BatchTock(n=21)])

    bus.subscribe(BatchPing, on_ping)
    bus.publish_many([ping(1), ping(2)])
    assert log == [
        ("ping", 1, 1),
        ("ping", 10, 2), ("late", 10, 2),
        ("ping", 20, 3), ("late", 20, 3),
        ("ping", 2, 5), ("late", 2, 5),
    ]
    assert bus.seq == 5


def test_events_appended_while_publishing_are_published_in_order(ping: Any) -> None:
    clock = ManualClock(start_ns=1)
    bus = Bus(clock)
    log: list[tuple[str, int, int, int]] = []
    batch: list[Event] = [ping(1), BatchTock(n=2)]

    def on_ping(e: BatchPing) -> None:
        log.append((type(e).__name__, e.n, e.seq, e.ts))
        if e.n == 1:
            clock.advance(5)  # the batch keeps its one clock reading
            batch.append(unfrozen(3))
            bus.publish(BatchTock(n=99))  # takes the next seq at once; appended ones come after the list
            batch.append(ping(4))

    bus.subscribe(BatchPing, on_ping)
    bus.subscribe(BatchTock, lambda e: log.append(("BatchTock", e.n, e.seq, e.ts)))
    bus.publish_many(batch)
    later = 5_000_000_001
    assert log == [
        ("BatchPing", 1, 1, 1),
        ("BatchTock", 99, 2, later),
        ("BatchTock", 2, 3, 1),
        ("BatchPing", 3, 4, 1),
        ("BatchPing", 4, 5, 1),
    ]
    assert all(type(e) in (BatchPing, BatchTock) for e in batch)


def test_queues_added_and_closed_mid_batch(ping: Any) -> None:
    bus = Bus(ManualClock())
    early = bus.queue((BatchPing,), policy="lossless", name="early")
    queues: dict[str, Any] = {}

    def on_ping(e: BatchPing) -> None:
        if e.n == 2:
            early.close()  # this event is still offered to it: refused, it is cut off
            queues["late"] = bus.queue((Event,), policy="lossless", name="late")

    bus.subscribe(BatchPing, on_ping)
    bus.publish_many([ping(1), ping(2), BatchTock(n=3), ping(4)])
    assert [e.n for e in early.drain()] == [1]  # type: ignore[attr-defined]
    assert [(type(e), e.n) for e in queues["late"].drain()] == [(BatchTock, 3), (BatchPing, 4)]  # type: ignore[attr-defined]


def test_keyed_subscription_added_mid_batch(ping: Any) -> None:
    bus = Bus(ManualClock())
    log: list[tuple[str, int]] = []

    def on_ping(e: BatchPing) -> None:
        if e.n == 1:
            bus.subscribe(BatchPing, lambda p: log.append(("A", p.n)), key="A")

    bus.subscribe(BatchPing, on_ping)
    bus.publish_many([ping(1), ping(2, "B"), ping(3)])
    assert log == [("A", 3)]  # not for the event being delivered: its route had no keyed subscriber


def test_keyed_subscribers_are_looked_up_after_the_plain_ones(ping: Any) -> None:
    """When the event's type already has keyed subscribers, those for its key are found after the plain
    subscribers ran: one added by a plain subscriber gets the event in delivery (current behaviour)."""
    bus = Bus(ManualClock())
    log: list[tuple[str, int]] = []

    def on_ping(e: BatchPing) -> None:
        if e.n == 1:
            bus.subscribe(BatchPing, lambda p: log.append(("A", p.n)), key="A")

    bus.subscribe(BatchPing, on_ping)
    bus.subscribe(Event, lambda p: log.append(("Z", p.n)), key="Z")  # type: ignore[attr-defined]
    bus.publish_many([ping(1), ping(2, "Z"), ping(3)])
    assert log == [("A", 1), ("Z", 2), ("A", 3)]


def test_failing_subscribers_in_a_batch_are_isolated_and_reported(ping: Any, caplog: Any) -> None:
    bus = Bus(ManualClock())
    got: list[tuple[str, int]] = []

    def boom(e: BatchPing) -> None:
        if e.n != 2:
            raise RuntimeError("subscriber bug")

    def keyed_boom(e: BatchPing) -> None:
        raise ValueError("keyed subscriber bug")

    bus.subscribe(BatchPing, boom)
    bus.subscribe(BatchPing, lambda e: got.append(("plain", e.n)))
    bus.subscribe(BatchPing, keyed_boom, key="B")
    bus.subscribe(BatchPing, lambda e: got.append(("keyed", e.n)), key="B")
    q = bus.queue((BatchPing,), policy="lossless")
    with caplog.at_level(logging.ERROR, logger="engines.bus"):
        bus.publish_many([ping(1), ping(2, "B"), ping(3)])
    assert got == [("plain", 1), ("plain", 2), ("keyed", 2), ("plain", 3)]
    assert bus.errors == 3 and [e.seq for e in q.drain()] == [1, 2, 3]
    failures = [r.getMessage() for r in caplog.records]
    assert [m.rsplit(" failed on ", 1)[1] for m in failures] == ["BatchPing #1", "BatchPing #2", "BatchPing #3"]
    assert "keyed_boom" in failures[1] and "boom" in failures[0]


def test_publish_takes_a_stand_in_too() -> None:
    bus = Bus(ManualClock(start_ns=42))
    seen: list[tuple[type, int, int, int]] = []
    bus.subscribe(BatchPing, lambda e: seen.append((type(e), e.n, e.seq, bus.seq)))
    bus.subscribe(BatchPing, lambda e: seen.append((type(e), -e.n, e.seq, e.ts)), key="B")
    q = bus.queue((Event,), policy="lossless")
    ev = bus.publish(unfrozen(1, "B"))
    assert type(ev) is BatchPing and ev == BatchPing(n=1, sym="B", seq=1, ts=42)
    assert seen == [(BatchPing, 1, 1, 1), (BatchPing, -1, 1, 42)] and q.drain() == [ev]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.n = 2  # type: ignore[misc]


def test_every_plain_subscriber_is_called_in_order_and_a_failing_one_in_the_middle_is_isolated(ping: Any) -> None:
    bus = Bus(ManualClock())
    log: list[tuple[str, int]] = []

    def boom(e: BatchPing) -> None:
        log.append(("boom", e.n))
        raise RuntimeError("subscriber bug")

    bus.subscribe(Event, lambda e: log.append(("event", e.n)))  # type: ignore[attr-defined]
    bus.subscribe(BatchPing, lambda e: log.append(("one", e.n)))
    bus.subscribe(BatchPing, boom)
    bus.subscribe(BatchPing, lambda e: log.append(("three", e.n)))
    bus.publish_many([ping(1), BatchTock(n=2)])
    bus.publish(unfrozen(3))
    assert log == [
        ("one", 1), ("boom", 1), ("three", 1), ("event", 1),  # the class's own subscribers before its bases'
        ("event", 2),
        ("one", 3), ("boom", 3), ("three", 3), ("event", 3),
    ]
    assert bus.errors == 2


def test_sole_subscriber_replaces_itself_by_two_mid_batch(ping: Any) -> None:
    bus = Bus(ManualClock())
    log: list[tuple[str, int, int]] = []
    subs: list[Any] = []

    def sole(e: BatchPing) -> None:
        log.append(("sole", e.n, e.seq))
        if e.n == 1:
            subs[0].cancel()
            bus.subscribe(BatchPing, lambda p: log.append(("a", p.n, p.seq)))
            bus.subscribe(BatchPing, lambda p: log.append(("b", p.n, p.seq)))

    subs.append(bus.subscribe(BatchPing, sole))
    bus.publish_many([ping(1), ping(2), BatchTock(n=3), ping(4)])
    assert log == [("sole", 1, 1), ("a", 2, 2), ("b", 2, 2), ("a", 4, 4), ("b", 4, 4)]
    for sub in list(bus._subs[BatchPing]):
        sub.cancel()
    bus.publish_many([ping(5)])  # no subscriber left: still stamped and counted
    assert bus.seq == 5 and len(log) == 5
