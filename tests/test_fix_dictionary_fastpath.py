"""The validator's known-shape fast path: a tag sequence found valid before is checked by its values only,
and every invalid value in such a message still gets exactly the Reject a fresh validator gives."""

from __future__ import annotations

import pytest

from engines.fix.dictionary import Validator, default_dictionary
from engines.fix.errors import RejectInfo
from engines.fix.message import build, parse

TS = b"20260101-00:00:00.000"
# No repeating group: the shape is remembered (a grouped message always takes the full check).
BODY = [(11, "c1"), (55, "BTC-USD"), (54, "1"), (60, TS), (38, "0.05"), (40, "2"), (44, "65000.5"), (59, "1")]


def nos(body: list[tuple[int, object]] = BODY, *, seq: int = 7, sender: str = "CLIENT") -> bytes:
    return build("FIX.4.4", "D", seq, sender, "OPDESK", body, sending_time=TS)


def edit(tag: int, value: object) -> list[tuple[int, object]]:
    return [(t, value if t == tag else v) for t, v in BODY]


def warm() -> Validator:
    v = Validator(default_dictionary("FIX.4.4"))
    for i in range(3):  # the shape, its values and a different ClOrdID / seq are now known valid
        assert v.validate(parse(nos([(11, f"c{i}"), *BODY[1:]], seq=7 + i))) is None
    assert v._shapes["D"]  # the fast path is armed
    return v


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (nos(edit(54, "9")), RejectInfo(5, 54, "Value is incorrect (out of range) for this tag: 54=9")),
        (nos(edit(44, "12a")), RejectInfo(6, 44, "Incorrect data format for value: 44=12a")),
        (nos(edit(38, "1e5")), RejectInfo(6, 38, "Incorrect data format for value: 38=1e5")),
        (
            nos(edit(60, "20261301-00:00:00")),
            RejectInfo(6, 60, "Incorrect data format for value: 60=20261301-00:00:00"),
        ),
        (nos(edit(40, "22")), RejectInfo(6, 40, "Incorrect data format for value: 40=22")),
        (nos(edit(59, "")), RejectInfo(4, 59, "Tag specified without a value: 59 (TimeInForce)")),
        (nos(edit(11, "")), RejectInfo(4, 11, "Tag specified without a value: 11 (ClOrdID)")),
        # A session-checked header field is not format-checked again, but an empty one is still refused.
        (nos(sender=""), RejectInfo(4, 49, "Tag specified without a value: 49 (SenderCompID)")),
    ],
    ids=["5-enum", "6-price", "6-qty", "6-timestamp", "6-char", "4-no-value", "4-clordid", "4-header"],
)
def test_known_shape_gets_the_same_reject_as_a_fresh_validator(raw: bytes, expected: RejectInfo) -> None:
    fresh = Validator(default_dictionary("FIX.4.4"))
    assert fresh.validate(parse(raw)) == expected
    v = warm()
    assert v.validate(parse(raw)) == expected
    # The bad value was not remembered as valid: asked again, the same answer.
    assert v.validate(parse(raw)) == expected
    assert v.validate(parse(nos())) is None


def test_an_empty_value_cannot_pass_as_a_shorter_known_shape() -> None:
    v = warm()
    without_price = [(t, x) for t, x in BODY if t != 44]
    assert v.validate(parse(nos(without_price))) is None  # a second valid shape: no Price
    # 44 present but empty: dropping it would give the known shape above; the Reject must still come.
    assert v.validate(parse(nos(edit(44, "")))) == RejectInfo(
        4, 44, "Tag specified without a value: 44 (Price)"
    )


def test_new_values_of_a_known_shape_are_checked_then_remembered() -> None:
    v = warm()
    assert v.validate(parse(nos(edit(44, "70000")))) is None
    assert b"70000" in v._good[44]
    assert v.validate(parse(nos(edit(44, "70000.")))) is None  # FIX floats may end with the point
    assert v.validate(parse(nos(edit(44, "-")))) == RejectInfo(6, 44, "Incorrect data format for value: 44=-")
    assert b"-" not in v._good[44]
