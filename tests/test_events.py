"""Every registered event type round-trips through its JSON form, values and types intact."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import pkgutil
import types
import typing
from decimal import Decimal

import pytest

import engines
from engines.events import Event, event_types, from_json, to_json


def _import_all_engine_modules() -> None:
    for mod in pkgutil.walk_packages(engines.__path__, "engines."):
        importlib.import_module(mod.name)


_import_all_engine_modules()


def sample(tp: typing.Any, depth: int = 0) -> typing.Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return sample(args[0], depth)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return (sample(args[0], depth + 1), sample(args[0], depth + 1))
        return tuple(sample(a, depth + 1) for a in args)
    if origin is list:
        return [sample(typing.get_args(tp)[0], depth + 1)]
    if origin is dict:
        kt, vt = typing.get_args(tp)
        return {sample(kt, depth + 1): sample(vt, depth + 1)}
    if origin is typing.Literal:
        return typing.get_args(tp)[0]
    if tp is typing.Any:
        return "any"
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return list(tp)[-1]
        if tp is bool:
            return True
        if tp is int:
            return 42 + depth
        if tp is float:
            return 1.25
        if tp is str:
            return "x\u00e9|y"
        if tp is Decimal:
            return Decimal("12.345")
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            return tp(**{f.name: sample(hints[f.name], depth + 1) for f in dataclasses.fields(tp)})
    raise TypeError(f"no sample for {tp!r}")


def make(cls: type[Event]) -> Event:
    hints = typing.get_type_hints(cls, globalns=vars(importlib.import_module(cls.__module__)))
    kwargs = {f.name: sample(hints[f.name]) for f in dataclasses.fields(cls) if f.name not in ("seq", "ts")}
    return cls(seq=7, ts=1_767_225_600_123_000_000, **kwargs)


ALL = sorted(event_types().items())


def test_the_registry_knows_the_core_events():
    names = {n for n, _ in ALL}
    assert {"PriceTick", "BBO", "Depth", "Trade", "Fill", "OrderAccepted", "OrderRejected",
            "OrderCanceled", "TradingStateChanged", "KillSwitchAction", "QueueOverflow"} <= names


@pytest.mark.parametrize(("name", "cls"), ALL, ids=[n for n, _ in ALL])
def test_json_round_trip(name: str, cls: type[Event]) -> None:
    if name.startswith("_") or cls.__module__.startswith("tests"):
        pytest.skip("test-local event")
    event = make(cls)
    text = to_json(event)
    back = from_json(text)
    assert back == event
    assert type(back) is cls
    assert to_json(back) == text  # stable form
    assert text.startswith('{"event":"' + name + '","seq":7,"ts":1767225600123000000')


def test_events_are_frozen_and_slotted():
    for _, cls in ALL:
        assert "__slots__" in cls.__dict__, cls
        assert cls.__dataclass_params__.frozen, cls


def test_unknown_type_and_field_are_clear_errors():
    with pytest.raises(ValueError, match="unknown event type 'Nope'"):
        from_json('{"event":"Nope"}')
    with pytest.raises(ValueError, match="PriceTick: unknown field 'bogus'"):
        from_json('{"event":"PriceTick","symbol":"A","price":1,"bogus":1}')
