"""The desk's one event bus.

* In-process subscribers (by event type, optionally by key such as a symbol) are called synchronously
  in publish order. A subscriber that raises is logged and isolated: the bus and the others go on.
  Subscribing to a base class (``Event``) receives every subclass.
* Async consumers read through bounded :class:`EventQueue`\\ s with a declared policy:
  ``conflate`` keeps only the latest event per (type, key); ``lossless`` never drops — past its
  capacity the queue reports back-pressure (a :class:`QueueOverflow` event and :meth:`Bus.writable`
  blocks cooperative producers), and past ``hard_limit`` the consumer is cut off and told so, rather
  than letting one stalled reader grow the process without bound.
  ``auto`` applies each event class's own declaration (``Event.CONFLATE``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal

from engines.clock import Clock, SystemClock
from engines.events import Event, QueueOverflow

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]
Policy = Literal["conflate", "lossless", "auto"]
# (stand-in's event class or None, first handler or None, other handlers or None,
#  None or (keyed?, MRO, queues)): see Bus._route
_Route = tuple[
    "type | None",
    "Handler | None",
    "tuple[Handler, ...] | None",
    "tuple[bool, tuple[type, ...], tuple[EventQueue, ...]] | None",
]

# Frozen events are stamped through their slot descriptors: cheaper than object.__setattr__.
_set_seq = Event.__dict__["seq"].__set__
_set_ts = Event.__dict__["ts"].__set__

#: unfrozen stand-in class -> the event class it stands for (see :func:`register_unfrozen`)
_UNFROZEN: dict[type, type] = {}


def register_unfrozen(stand_in: type, cls: type[Event]) -> None:
    """Let :meth:`Bus.publish_many` take instances of ``stand_in`` for events of ``cls``.

    ``stand_in`` must be a subclass of ``cls`` without slots of its own (the same memory layout) whose
    attribute stores are plain slot stores (``__setattr__ = object.__setattr__``), so that an instance
    can be stamped with two plain stores and then turned into a ``cls`` instance by assigning
    ``__class__`` (the matching engine's ``fastevents`` twins). The bus does that before any
    subscriber or queue sees the event: they only ever get ``cls`` instances, frozen as usual."""
    if not issubclass(stand_in, cls) or stand_in.__dict__.get("__slots__", ()) != ():
        raise TypeError(f"{stand_in.__name__} is not a same-layout subclass of {cls.__name__}")
    _UNFROZEN[stand_in] = cls


class Subscription:
    __slots__ = ("_bus", "event_type", "handler", "key")

    def __init__(self, bus: Bus, event_type: type[Event], handler: Handler, key: Any) -> None:
        self._bus = bus
        self.event_type = event_type
        self.handler = handler
        self.key = key

    def cancel(self) -> None:
        self._bus._remove(self)


class QueueCutOff(Exception):
    """Raised by :meth:`EventQueue.get` after a lossless queue overflowed its hard limit."""


class EventQueue:
    """A bounded queue feeding one async consumer."""

    def __init__(
        self,
        bus: Bus,
        name: str,
        types: tuple[type[Event], ...],
        policy: Policy,
        capacity: int,
        hard_limit: int,
    ) -> None:
        self._bus = bus
        self.name = name
        self.types = types
        self.policy = policy
        self.capacity = capacity
        self.hard_limit = hard_limit
        self._lossless: deque[Event] = deque()
        self._latest: dict[tuple[type, Any], Event] = {}
        self._conflates: dict[type, bool] = {}
        self._ready = asyncio.Event() if _has_loop() else None
        self._writable_waiters: list[asyncio.Future[None]] = []
        self.backpressured = False
        self.cut_off = False
        self.delivered = 0
        self.conflated = 0

    # producer side (called by the bus, synchronously)
    def offer(self, event: Event) -> None:
        if self.cut_off:
            return
        cls = type(event)
        conflate = self._conflates.get(cls)
        if conflate is None:
            conflate = self._conflates[cls] = self.policy == "conflate" or (
                self.policy == "auto" and cls.CONFLATE
            )
        if conflate:
            latest = self._latest
            n = len(latest)
            # The slot keeps its first position: a consumer sees each key once, with its latest value.
            latest[(cls, event.key())] = event
            if len(latest) == n:
                self.conflated += 1
        else:
            self._lossless.append(event)
            depth = len(self._lossless)
            if depth > self.capacity:
                self._over_capacity(depth)
        ready = self._ready
        if ready is not None and not ready.is_set():
            ready.set()

    def _over_capacity(self, depth: int) -> None:
        # The report is itself published and may land in this very queue: state is set first so the
        # re-entrant offer finds the queue already flagged and reports nothing twice.
        if depth > self.hard_limit:
            if not self.cut_off:
                self.cut_off = True
                self._lossless.clear()
                self._latest.clear()
                log.error("bus queue %s cut off at %d events: consumer must re-snapshot", self.name, depth)
                self._bus._report_overflow(self, depth, cut_off=True)
            return
        if not self.backpressured:
            self.backpressured = True
            log.warning("bus queue %s past capacity %d: back-pressure", self.name, self.capacity)
            self._bus._report_overflow(self, depth, cut_off=False)

    def __len__(self) -> int:
        return len(self._lossless) + len(self._latest)

    # consumer side
    def drain(self, limit: int | None = None) -> list[Event]:
        """Everything pending, lossless events first in publish order, then the latest conflated ones."""
        out: list[Event] = []
        lossless = self._lossless
        n = len(lossless) if limit is None else min(limit, len(lossless))
        for _ in range(n):
            out.append(lossless.popleft())
        if (limit is None or len(out) < limit) and self._latest:
            out.extend(self._latest.values())
            self._latest.clear()
        self.delivered += len(out)
        if not self and self._ready is not None:
            self._ready.clear()
        self._after_drain()
        return out

    async def get_batch(self, limit: int | None = None) -> list[Event]:
        """Wait for at least one event, then return all pending (up to ``limit`` lossless ones)."""
        if self._ready is None:
            self._ready = asyncio.Event()
        while not self:
            if self.cut_off:
                raise QueueCutOff(self.name)
            self._ready.clear()
            await self._ready.wait()
        return self.drain(limit)

    async def get(self) -> Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        while not self:
            if self.cut_off:
                raise QueueCutOff(self.name)
            self._ready.clear()
            await self._ready.wait()
        if self._lossless:
            ev = self._lossless.popleft()
        else:
            k = next(iter(self._latest))
            ev = self._latest.pop(k)
        self.delivered += 1
        self._after_drain()
        return ev

    def _after_drain(self) -> None:
        if self.backpressured and len(self._lossless) <= self.capacity // 2:
            self.backpressured = False
            waiters, self._writable_waiters = self._writable_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def close(self) -> None:
        self._bus._remove_queue(self)
        self.cut_off = True
        if self._ready is not None:
            self._ready.set()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Bus:
    """Typed publish/subscribe for one desk. Not thread-safe: use it from the desk's event loop."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        # The system clock's time_ns is the C function itself: one call fewer per publish.
        self._time_ns = time.time_ns if isinstance(self.clock, SystemClock) else self.clock.time_ns
        self.seq = 0
        self._subs: dict[type[Event], list[Subscription]] = {}
        self._keyed: dict[tuple[type[Event], Any], list[Subscription]] = {}
        self._queues: list[EventQueue] = []
        # Per concrete type published, see _route. Any (un)subscription empties it in place, so a
        # lookup per event sees a change at the next event, also in the middle of a publish_many.
        self._routes: dict[type, _Route] = {}
        self.errors = 0

    # --- subscribing ----------------------------------------------------------------------------------
    def subscribe(self, event_type: type[Event], handler: Handler, key: Any = None) -> Subscription:
        sub = Subscription(self, event_type, handler, key)
        if key is None:
            self._subs.setdefault(event_type, []).append(sub)
        else:
            self._keyed.setdefault((event_type, key), []).append(sub)
        self._routes.clear()
        return sub

    def _remove(self, sub: Subscription) -> None:
        bucket = self._subs.get(sub.event_type) if sub.key is None else self._keyed.get((sub.event_type, sub.key))
        if bucket and sub in bucket:
            bucket.remove(sub)
        self._routes.clear()

    def queue(
        self,
        types: Iterable[type[Event]] = (Event,),
        *,
        policy: Policy = "auto",
        name: str = "consumer",
        capacity: int = 10_000,
        hard_limit: int | None = None,
    ) -> EventQueue:
        q = EventQueue(self, name, tuple(types), policy, capacity, hard_limit or capacity * 10)
        self._queues.append(q)
        self._routes.clear()
        return q

    def _remove_queue(self, q: EventQueue) -> None:
        if q in self._queues:
            self._queues.remove(q)
        self._routes.clear()

    # --- publishing ------------------------------------------------------------------------------------
    def _route(self, tp: type) -> _Route:
        """``(stand_in_cls, first, rest, extra)`` for events of concrete type ``tp``, cached.

        ``stand_in_cls`` is None for an event class itself; for an unfrozen stand-in (see
        :func:`register_unfrozen`), the class it becomes. The plain subscribers of the event class and
        its bases, in order: ``first`` (or None) is called directly and ``rest`` (None when empty) in
        a loop: a route with one subscriber costs no iterator (a tuple iterator is an allocation, as
        much as the rest of the dispatch). ``extra`` is None when that is all (the common shape: one
        check per event); else ``(keyed?, the class's MRO, queues interested)``."""
        cls = _UNFROZEN.get(tp, tp)
        mro = cls.__mro__
        handlers: list[Handler] = []
        for base in mro:
            for sub in self._subs.get(base, ()):
                handlers.append(sub.handler)
        queues = tuple(q for q in self._queues if any(t in mro for t in q.types))
        keyed = any(k[0] in mro for k in self._keyed)
        first = handlers[0] if handlers else None
        rest = tuple(handlers[1:]) or None
        extra = (keyed, mro, queues) if keyed or queues else None
        route = (None if cls is tp else cls, first, rest, extra)
        self._routes[tp] = route
        return route

    def publish(self, event: Event) -> Event:
        """Stamp ``seq`` and ``ts`` and deliver synchronously; returns the stamped event (an unfrozen
        stand-in, see :func:`register_unfrozen`, is made its event class first)."""
        seq = self.seq = self.seq + 1
        try:
            cls, first, rest, extra = self._routes[type(event)]
        except KeyError:
            cls, first, rest, extra = self._route(type(event))
        if cls is None:
            _set_seq(event, seq)
            _set_ts(event, self._time_ns())
        else:  # a stand-in: plain stores, then it becomes the frozen event
            event.seq = seq
            event.ts = self._time_ns()
            event.__class__ = cls
        if first is not None:
            try:
                first(event)
            except Exception:
                self._handler_failed(first, event)
        if rest is not None:
            for handler in rest:
                try:
                    handler(event)
                except Exception:
                    self._handler_failed(handler, event)
        if extra is not None:
            self._deliver_extra(event, extra)
        return event

    def publish_many(self, events: list[Event]) -> None:
        """Publish ``events`` in list order, each exactly as :meth:`publish` would (own ``seq``, every
        subscriber called per event), with one clock reading for the batch: events published together
        (one engine operation's outcome) share their ``ts``. Events appended to the list while it is
        being published (a subscriber calling back into the producer) are published too, in order.

        For producers of many events at a time (the matching engine): the per-event cost is a few
        loads and the subscriber calls, without a method call and the bus's attribute lookups.

        ``events`` may also hold *unfrozen* events: instances of a stand-in class registered with
        :func:`register_unfrozen`. Each is stamped with plain stores (cheaper than the frozen slots'
        setters), then made an instance of its event class, before anything sees it; subscribers
        cannot tell the difference."""
        if not events:
            return
        ts = self._time_ns()
        routes = self._routes
        for event in events:
            # Re-entrancy needs no check after the subscribers: the route is looked up per event in
            # the cache that (un)subscribing empties in place (one dict lookup, cheaper than keeping
            # the last route and checking whether it still holds), and the counter is read back from
            # the bus per event, so events a subscriber published meanwhile keep their numbers.
            try:
                cls, first, rest, extra = routes[type(event)]
            except KeyError:
                cls, first, rest, extra = self._route(type(event))
            # the counter is written back before any subscriber runs (one may publish)
            if cls is None:
                seq = self.seq = self.seq + 1
                _set_seq(event, seq)
                _set_ts(event, ts)
            else:  # a stand-in: plain stores, then it becomes the frozen event
                event.seq = self.seq = self.seq + 1
                event.ts = ts
                event.__class__ = cls
            if first is not None:
                try:
                    first(event)
                except Exception:
                    self._handler_failed(first, event)
            if rest is not None:
                for handler in rest:
                    try:
                        handler(event)
                    except Exception:
                        self._handler_failed(handler, event)
            if extra is not None:
                self._deliver_extra(event, extra)

    def _deliver_extra(self, event: Event, extra: tuple[bool, tuple[type, ...], tuple[EventQueue, ...]]) -> None:
        """A route's keyed subscribers and queues (its ``extra`` part), after its plain subscribers."""
        keyed, mro, queues = extra
        if keyed:
            key = event.key()
            for base in mro:
                for sub in self._keyed.get((base, key), ()):
                    try:
                        sub.handler(event)
                    except Exception:
                        self._handler_failed(sub.handler, event)
        for q in queues:
            q.offer(event)

    def _handler_failed(self, handler: Handler, event: Event) -> None:
        self.errors += 1
        log.exception("bus subscriber %r failed on %s #%d", handler, type(event).__name__, event.seq)

    def _report_overflow(self, q: EventQueue, depth: int, *, cut_off: bool) -> None:
        self.publish(QueueOverflow(consumer=q.name, depth=depth, capacity=q.capacity, cut_off=cut_off))

    @property
    def backpressured(self) -> bool:
        return any(q.backpressured for q in self._queues)

    async def writable(self) -> None:
        """Wait until no lossless queue is past its capacity. Producers that can wait should."""
        while True:
            pending = [q for q in self._queues if q.backpressured and not q.cut_off]
            if not pending:
                return
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            pending[0]._writable_waiters.append(fut)
            await fut
