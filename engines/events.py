"""Typed bus events and their stable JSON form.

Every event is a frozen, slotted dataclass deriving from :class:`Event`. The bus stamps ``seq`` (its
own publish counter) and ``ts`` (nanoseconds from the desk clock) when the event is published.

Delivery policy is declared by the class: ``CONFLATE = True`` events (market data, snapshots) may be
conflated to the latest value per :meth:`Event.key` in async queues; everything else is lossless.

The JSON form is ``{"event": ClassName, "seq": …, "ts": …, <fields>}``; :func:`to_json` and
:func:`from_json` round-trip every registered event type (tests/test_events.py checks all of them).
Prices and quantities in trading events are integers in ticks and lots of the instrument (see
``engines.instruments``); Decimal and float appear only at the edges.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from decimal import Decimal
from typing import Any, ClassVar

_REGISTRY: dict[str, type[Event]] = {}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all bus events."""

    seq: int = 0
    ts: int = 0

    #: Topic name used by remote clients and logs; defaults to the class name.
    TOPIC: ClassVar[str] = ""
    #: Name of the field whose value keys keyed subscriptions and conflation (e.g. "symbol").
    KEY_FIELD: ClassVar[str | None] = None
    #: True for market data and snapshots: async queues may keep only the latest per key.
    CONFLATE: ClassVar[bool] = False

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        # No zero-argument super(): dataclass(slots=True) replaces the class object it closes over.
        # ``register=False``: a private helper subclass whose instances never leave their module (the
        # matching engine's fast constructors, engines/matching/fastevents.py) stays out of the registry.
        if not register:
            return
        name = cls.__name__
        # dataclass(slots=True) re-creates the class; the second registration is the real one.
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__module__ != cls.__module__:
            raise TypeError(f"event type name {name!r} already registered by {existing.__module__}")
        _REGISTRY[name] = cls
        if not cls.__dict__.get("TOPIC"):
            cls.TOPIC = name

    def key(self) -> Any:
        field = self.KEY_FIELD
        return None if field is None else getattr(self, field)


def load_event_types() -> dict[str, type[Event]]:
    """Import every engine's event module so all event types are registered (a remote process needs
    them to decode a desk's stream without building the engines)."""
    import importlib
    import pkgutil

    import engines

    for mod in pkgutil.walk_packages(engines.__path__, "engines."):
        if mod.name.rsplit(".", 1)[-1] in ("events", "orders", "marketdata"):
            importlib.import_module(mod.name)
    return event_types()


def event_types() -> dict[str, type[Event]]:
    """All registered event classes by name (import the engine packages first to register theirs)."""
    return dict(_REGISTRY)


def event_type(name: str) -> type[Event]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown event type {name!r}") from None


# --- JSON -----------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Engine values → JSON-safe ones: enums by value, Decimal as a string, tuples and sets as lists,
    dataclasses as dicts; anything else unknown as its ``str``. Events, status dicts and API replies
    all go through this one function."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def to_dict(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"event": type(event).__name__}
    for f in dataclasses.fields(event):
        out[f.name] = jsonable(getattr(event, f.name))
    return out


def to_json(event: Event) -> str:
    return json.dumps(to_dict(event), separators=(",", ":"), ensure_ascii=False)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        module = __import__(cls.__module__, fromlist=["*"])
        hints = typing.get_type_hints(cls, globalns=vars(module))
        _HINTS[cls] = hints
    return hints


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _decode(args[0], value)
        for a in args:  # first type that accepts the value
            if isinstance(a, type) and isinstance(value, a):
                return value
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        if args:
            return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin is dict:
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_decode(kt, k): _decode(vt, v) for k, v in value.items()}
    if origin is list:
        (it,) = typing.get_args(tp) or (Any,)
        return [_decode(it, v) for v in value]
    if origin is typing.Literal:
        return value
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return tp(value)
        if tp is Decimal:
            return Decimal(value)
        if tp is float and isinstance(value, int):
            return float(value)
        if dataclasses.is_dataclass(tp):
            hints = _hints(tp)
            return tp(**{k: _decode(hints[k], v) for k, v in value.items()})
    return value


def from_dict(data: dict[str, Any]) -> Event:
    data = dict(data)
    cls = event_type(data.pop("event"))
    hints = _hints(cls)
    kwargs = {}
    for name, value in data.items():
        if name not in hints:
            raise ValueError(f"{cls.__name__}: unknown field {name!r}")
        kwargs[name] = _decode(hints[name], value)
    return cls(**kwargs)


def from_json(text: str | bytes) -> Event:
    return from_dict(json.loads(text))


# --- Desk-wide events -------------------------------------------------------------------------------


class EngineState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EngineStatusChanged(Event):
    """An engine of the desk changed state (lossless)."""

    engine: str
    state: EngineState
    detail: str = ""
    KEY_FIELD: ClassVar[str | None] = "engine"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PriceTick(Event):
    """A reference price for an instrument (simulated source or an external feed)."""

    symbol: str
    price: float
    source: str = "sim"
    KEY_FIELD: ClassVar[str | None] = "symbol"
    CONFLATE: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogRecordEvent(Event):
    """An operator-relevant log line (warnings, breaches, operator actions) for the console's event log."""

    level: str
    source: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QueueOverflow(Event):
    """A lossless consumer queue passed its high-water mark (back-pressure) or was cut off."""

    consumer: str
    depth: int
    capacity: int
    cut_off: bool = False
