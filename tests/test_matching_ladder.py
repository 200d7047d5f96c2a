"""The price-ladder book (``engines.matching.ladder``, an experiment not used by the engine) against
the reference book, with the same operation-by-operation checks as ``test_matching_properties``, a
tiny window so re-basing and far (outlier) levels are exercised, and pathological prices."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engines.matching.ladder as ladder
import tests.test_matching_properties as props
from engines.matching.ladder import LadderBook

PRICES = st.one_of(
    st.integers(95, 105), st.integers(80, 125), st.integers(1, 5), st.integers(10**9, 10**9 + 3)
)

ops_strategy = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.integers(0, 1),
            st.one_of(st.none(), PRICES, PRICES),
            st.integers(0, 12),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["gtc", "gtc", "gtc", "ioc", "fok"]),
            st.sampled_from([False, False, False, True]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 60)),
        st.tuples(st.just("cancel_all"), st.sampled_from([None, "a", "b", "c"])),
        st.tuples(st.just("replace"), st.integers(0, 60), st.one_of(st.none(), PRICES), st.integers(0, 12)),
    ),
    min_size=1,
    max_size=60,
)


@pytest.fixture(autouse=True)
def _ladder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(props, "OrderBook", LadderBook)  # props.run builds its book from this name
    monkeypatch.setattr(ladder, "INIT_SPAN", 4)
    monkeypatch.setattr(ladder, "MAX_SPAN", 32)


@pytest.mark.parametrize("stp", ["cancel_resting", "cancel_incoming", "none"])
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=ops_strategy)
def test_ladder_matches_reference(stp: str, ops: list[tuple[Any, ...]]) -> None:
    props.run(ops, stp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=props.ops_strategy)
def test_ladder_matches_reference_near_the_touch(ops: list[tuple[Any, ...]]) -> None:
    props.run(ops, "cancel_resting")


def test_a_long_drifting_sequence_matches_reference() -> None:
    rng = random.Random(5)
    ops: list[tuple[Any, ...]] = []
    mid = 1000
    for _ in range(4000):
        mid += rng.choice((-1, 0, 1))
        r = rng.random()
        if r < 0.6:
            px = None if rng.random() < 0.1 else mid + rng.randint(-20, 20)
            if rng.random() < 0.02:
                px = rng.choice((1, 10**12))  # an outlier
            tif = rng.choice(["gtc", "gtc", "gtc", "ioc", "fok"])
            ops.append(("submit", rng.getrandbits(1), px, rng.randint(1, 12), rng.choice("abc"), tif, False))
        elif r < 0.85:
            ops.append(("cancel", rng.randint(0, 60)))
        elif r < 0.86:
            ops.append(("cancel_all", rng.choice([None, "a"])))
        else:
            ops.append(("replace", rng.randint(0, 60), mid + rng.randint(-20, 20), rng.randint(1, 12)))
    props.run(ops, "cancel_resting")


def test_far_prices_do_not_grow_the_ladder() -> None:
    book = LadderBook("X", stp="none")
    book.submit(1, 0, 100, 5, "a")
    book.submit(2, 1, 10**15, 5, "b")  # far above: a far level, not a 10**15-slot array
    book.submit(3, 0, 1, 5, "c")
    assert book._n <= ladder.MAX_SPAN and len(book._bl) == len(book._al) == book._n
    assert book.bbo() == (100, 5, 10**15, 5)
    assert book.depth(5) == ([(100, 5), (1, 5)], [(10**15, 5)])
    book.submit(4, 0, None, 7, "d")  # a market buy reaches the far ask
    assert [(m[0], px, q) for m, px, q in book.fills] == [(2, 10**15, 5)]
    assert book.best_ask is None
    book.check()
