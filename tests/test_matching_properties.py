"""Hypothesis: the fast book against the simple reference book, operation by operation.

Checked after every operation: the same status/filled/leaves and the same executions in the same
order (so price-time priority and self-trade prevention agree), the same resting orders in the same
priority order, the book's internal invariants (never crossed at rest, level totals), quantity
conservation per order, FOK all-or-nothing, IOC/market never resting, replace priority rules.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.matching.book import (
    O_FILLED,
    O_OWNER,
    O_PRIO,
    O_QTY,
    O_STATUS,
    STATUS_NAMES,
    OrderBook,
)
from engines.matching.reference import ReferenceBook
from tests.book_impls import BOOK_IMPLS

TIFS = {"gtc": 0, "ioc": 1, "fok": 2}

ops_strategy = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.integers(0, 1),
            st.one_of(st.none(), st.integers(95, 105), st.integers(95, 105)),
            st.integers(0, 12),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["gtc", "gtc", "gtc", "ioc", "fok"]),
            st.sampled_from([False, False, False, True]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 60)),
        st.tuples(st.just("cancel_all"), st.sampled_from([None, "a", "b", "c"])),
        st.tuples(
            st.just("replace"), st.integers(0, 60), st.one_of(st.none(), st.integers(95, 105)), st.integers(0, 12)
        ),
    ),
    min_size=1,
    max_size=60,
)


def snapshot(book: OrderBook) -> tuple[list[tuple[Any, ...]], ...]:
    return tuple([(o[0], o[2], o[3], o[4], o[5]) for o in book.iter_orders(side)] for side in (0, 1))


def pick(book: OrderBook, k: int) -> int:
    """Cancels and replaces mostly aim at live orders; k >= 55 names an unknown id."""
    live = sorted(book.orders)
    if k >= 55 or not live:
        return 10_000 + k
    return live[k % len(live)]


def run(ops: list[tuple[Any, ...]], stp: str, book_cls: type[OrderBook] = OrderBook) -> None:
    book = book_cls("P", min_qty=2, stp=stp)
    ref = ReferenceBook(min_qty=2, stp=stp)
    orig: dict[int, int] = {}  # order id -> lots ever entered (for conservation)
    canceled: dict[int, int] = {}
    filled: dict[int, int] = {}
    next_id = 0
    for op in ops:
        if op[0] == "submit":
            _, side, price, qty, owner, tif, post_only = op
            next_id += 1
            oid = next_id
            o = book.submit(oid, side, price, qty, owner, TIFS[tif], post_only)
            r = ref.submit(oid, side, price, qty, owner, tif, post_only)
            got_fills = [(m[0], px, q) for m, px, q in book.fills if px is not None]
            got_stp = [(m[0], q) for m, px, q in book.fills if px is None]
            assert (STATUS_NAMES[o[O_STATUS]], o[O_FILLED], o[O_QTY]) == (r.status, r.filled, r.leaves), op
            assert got_fills == r.fills and got_stp == r.stp_canceled, op
            if o[O_STATUS] == 4:  # rejected: never existed
                assert not book.fills
                continue
            orig[oid] = qty
            filled[oid] = o[O_FILLED]
            for m, px, q in book.fills:
                if px is None:
                    canceled[m[0]] = canceled.get(m[0], 0) + q
                    continue
                filled[m[0]] += q
                if stp != "none":
                    assert m[O_OWNER] != owner, "self-trade despite prevention"
            if o[O_STATUS] in (3, 5):  # canceled / expired: what is left is canceled
                canceled[oid] = o[O_QTY]
                assert oid not in book.orders
            if tif == "fok":
                assert o[O_FILLED] in (0, qty), "FOK partially filled"
            if tif != "gtc" or price is None:
                assert oid not in book.orders, "IOC/FOK/market order rested"
        elif op[0] == "cancel":
            oid = pick(book, op[1])
            q = book.cancel(oid)
            assert q == ref.cancel(oid)
            if q:
                canceled[oid] = canceled.get(oid, 0) + q
        elif op[0] == "cancel_all":
            victims, qtys = book.cancel_all(op[1])
            got = sorted((o[0], q) for o, q in zip(victims, qtys, strict=True))
            assert got == sorted(ref.cancel_all(op[1])), op
            for o, q in zip(victims, qtys, strict=True):
                assert (o[O_QTY], o[O_STATUS]) == (0, 3) and q > 0 and o[0] not in book.orders
                canceled[o[0]] = canceled.get(o[0], 0) + q
        else:
            _, k, price, qty = op
            oid = pick(book, k)
            before = book.orders.get(oid)
            before_prio = None if before is None else before[O_PRIO]
            before_px = None if before is None else before[2]
            before_leaves = None if before is None else before[O_QTY]
            next_id += 1  # a priority number from the id counter, as the engine does
            r = book.replace(oid, price, qty, next_id)
            rr = ref.replace(oid, price, qty)
            if isinstance(r, str):
                assert rr is None, op
                continue
            assert rr is not None
            assert (STATUS_NAMES[r[O_STATUS]], r[O_FILLED], r[O_QTY]) == (rr.status, rr.filled, rr.leaves), op
            assert [(m[0], px, q) for m, px, q in book.fills if px is not None] == rr.fills
            kept = (price is None or price == before_px) and qty <= before_leaves
            assert (r[O_PRIO] == before_prio) is kept, "replace priority rule"
            assert kept or r[O_PRIO] == next_id
            # conservation: the lots dropped or added by the amendment
            assert before_leaves is not None
            orig[oid] += qty - before_leaves
            for m, px, q in book.fills:
                if px is None:
                    canceled[m[0]] = canceled.get(m[0], 0) + q
                else:
                    filled[m[0]] += q
                    filled[oid] += q
            if r[O_STATUS] == 3:
                canceled[oid] = canceled.get(oid, 0) + r[O_QTY]
        book.check()
        assert snapshot(book) == ref.snapshot()
        assert book.bbo() == ref.bbo()
        # quantity conserved: every lot that entered is resting, filled or canceled
        for oid, lots in orig.items():
            o = book.orders.get(oid)
            leaves = o[O_QTY] if o is not None else 0
            assert lots == leaves + filled.get(oid, 0) + canceled.get(oid, 0), f"order {oid} lost lots"


@pytest.mark.parametrize("book_cls", BOOK_IMPLS)
@pytest.mark.parametrize("stp", ["cancel_resting", "cancel_incoming", "none"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy)
def test_book_matches_reference(stp: str, book_cls: type[OrderBook], ops: list[tuple[Any, ...]]) -> None:
    run(ops, stp, book_cls)


@pytest.mark.parametrize("book_cls", BOOK_IMPLS)
def test_a_long_seeded_sequence_matches_reference(book_cls: type[OrderBook]) -> None:
    import random

    rng = random.Random(3)
    ops: list[tuple[Any, ...]] = []
    for _ in range(3000):
        r = rng.random()
        if r < 0.6:
            ops.append(
                (
                    "submit",
                    rng.getrandbits(1),
                    None if rng.random() < 0.1 else rng.randint(95, 105),
                    rng.randint(1, 12),
                    rng.choice("abc"),
                    rng.choice(["gtc", "gtc", "gtc", "ioc", "fok"]),
                    rng.random() < 0.1,
                )
            )
        elif r < 0.85:
            ops.append(("cancel", rng.randint(0, len(ops))))
        else:
            ops.append(("replace", rng.randint(0, len(ops)), rng.choice([None, rng.randint(95, 105)]), rng.randint(1, 12)))
    run(ops, "cancel_resting", book_cls)
