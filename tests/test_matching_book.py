"""Exact behaviour of the order book per order type, self-trade prevention, cancel/replace, rejects."""

from __future__ import annotations

import pytest

from engines.matching.book import (
    BUY,
    O_FILLED,
    O_ID,
    O_PRIO,
    O_QTY,
    O_STATUS,
    R_FOK,
    R_IOC,
    R_MARKET,
    R_MIN_QTY,
    R_POST_ONLY_CROSS,
    R_POST_ONLY_TIF,
    R_QTY,
    R_STP,
    R_UNKNOWN,
    SELL,
    ST_CANCELED,
    ST_EXPIRED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIAL,
    ST_REJECTED,
    TIF_FOK,
    TIF_IOC,
    OrderBook,
)
from tests.book_impls import BOOK_IMPLS


def fills(book: OrderBook) -> list[tuple[int, int | None, int]]:
    """(maker id, price or None for an STP cancel, qty)."""
    return [(m[O_ID], px, q) for m, px, q in book.fills]


def ids(book: OrderBook, side: int) -> list[int]:
    return [o[O_ID] for o in book.iter_orders(side)]


@pytest.fixture(params=BOOK_IMPLS)
def book_cls(request: pytest.FixtureRequest) -> type[OrderBook]:
    """Every test runs on book.py and on its compiled build (when built)."""
    return request.param


@pytest.fixture
def book(book_cls: type[OrderBook]) -> OrderBook:
    b = book_cls("T", min_qty=2, stp="cancel_resting")
    yield b
    b.check()


def test_gtc_limit_rests_and_shows_in_bbo_and_depth(book: OrderBook) -> None:
    o = book.submit(1, BUY, 100, 5, "a")
    assert o[O_STATUS] == ST_NEW and o[O_QTY] == 5 and o[O_FILLED] == 0
    book.submit(2, BUY, 99, 3, "a")
    book.submit(3, BUY, 100, 4, "b")
    book.submit(4, SELL, 102, 6, "c")
    book.submit(5, SELL, 103, 2, "c")
    assert book.bbo() == (100, 9, 102, 6)
    assert book.depth(1) == ([(100, 9)], [(102, 6)])
    assert book.depth(10) == ([(100, 9), (99, 3)], [(102, 6), (103, 2)])
    assert book.fills == []
    assert len(book) == 5


def test_crossing_limit_fills_at_maker_prices_best_first_then_rests(book: OrderBook) -> None:
    book.submit(1, SELL, 101, 3, "m")
    book.submit(2, SELL, 100, 2, "m")
    book.submit(3, SELL, 102, 9, "m")
    o = book.submit(4, BUY, 101, 8, "t")
    assert fills(book) == [(2, 100, 2), (1, 101, 3)]
    assert o[O_STATUS] == ST_PARTIAL and o[O_FILLED] == 5 and o[O_QTY] == 3
    assert book.bbo() == (101, 3, 102, 9)


def test_time_priority_within_a_level(book: OrderBook) -> None:
    for oid in (1, 2, 3):
        book.submit(oid, SELL, 100, 4, f"m{oid}")
    o = book.submit(4, BUY, 100, 6, "t")
    assert fills(book) == [(1, 100, 4), (2, 100, 2)]
    assert o[O_STATUS] == ST_FILLED and o[O_QTY] == 0
    maker2 = book.orders[2]
    assert maker2[O_STATUS] == ST_PARTIAL and maker2[O_QTY] == 2 and maker2[O_FILLED] == 2
    assert ids(book, SELL) == [2, 3]


def test_market_order_sweeps_and_expires_the_rest(book: OrderBook) -> None:
    book.submit(1, BUY, 99, 3, "m")
    book.submit(2, BUY, 98, 4, "m")
    o = book.submit(3, SELL, None, 10, "t")
    assert fills(book) == [(1, 99, 3), (2, 98, 4)]
    assert o[O_STATUS] == ST_EXPIRED and o[O_FILLED] == 7 and o[O_QTY] == 3
    assert book.reason == R_MARKET
    assert book.bbo() == (None, 0, None, 0)
    o = book.submit(4, BUY, None, 2, "t")
    assert o[O_STATUS] == ST_EXPIRED and o[O_FILLED] == 0 and book.fills == []


def test_ioc_fills_what_it_can_and_never_rests(book: OrderBook) -> None:
    book.submit(1, SELL, 100, 3, "m")
    o = book.submit(2, BUY, 101, 5, "t", TIF_IOC)
    assert fills(book) == [(1, 100, 3)]
    assert o[O_STATUS] == ST_EXPIRED and o[O_FILLED] == 3 and o[O_QTY] == 2 and book.reason == R_IOC
    o = book.submit(3, BUY, 99, 5, "t", TIF_IOC)
    assert o[O_STATUS] == ST_EXPIRED and o[O_FILLED] == 0 and book.reason == R_IOC
    assert len(book) == 0


def test_fok_is_all_or_nothing(book: OrderBook) -> None:
    book.submit(1, SELL, 100, 3, "m")
    book.submit(2, SELL, 101, 3, "m")
    book.submit(3, SELL, 103, 10, "m")
    o = book.submit(4, BUY, 101, 7, "t", TIF_FOK)  # only 6 available up to 101
    assert o[O_STATUS] == ST_EXPIRED and o[O_FILLED] == 0 and book.reason == R_FOK
    assert book.fills == [] and book.bbo() == (None, 0, 100, 3)
    o = book.submit(5, BUY, 101, 6, "t", TIF_FOK)
    assert o[O_STATUS] == ST_FILLED and fills(book) == [(1, 100, 3), (2, 101, 3)]
    o = book.submit(6, BUY, None, 11, "t", TIF_FOK)  # market FOK: 10 available
    assert o[O_STATUS] == ST_EXPIRED and book.orders[3][O_QTY] == 10
    o = book.submit(7, BUY, 99, 2, "t", TIF_FOK)  # does not reach the book at all
    assert o[O_STATUS] == ST_EXPIRED and book.reason == R_FOK


def test_post_only(book: OrderBook) -> None:
    book.submit(1, SELL, 100, 3, "m")
    o = book.submit(2, BUY, 100, 3, "t", post_only=True)
    assert o[O_STATUS] == ST_REJECTED and book.reason == R_POST_ONLY_CROSS and book.fills == []
    o = book.submit(3, BUY, 99, 3, "t", post_only=True)
    assert o[O_STATUS] == ST_NEW and book.bbo() == (99, 3, 100, 3)
    o = book.submit(4, BUY, 98, 3, "t", TIF_IOC, post_only=True)
    assert o[O_STATUS] == ST_REJECTED and book.reason == R_POST_ONLY_TIF
    o = book.submit(5, BUY, None, 3, "t", post_only=True)
    assert o[O_STATUS] == ST_REJECTED and book.reason == R_POST_ONLY_TIF


def test_quantity_rejects_with_reasons(book: OrderBook) -> None:
    o = book.submit(1, BUY, 100, 1, "a")
    assert o[O_STATUS] == ST_REJECTED and book.reason == R_MIN_QTY.format(2) == "quantity below minimum of 2 lots"
    o = book.submit(2, BUY, 100, 0, "a")
    assert o[O_STATUS] == ST_REJECTED and book.reason == R_QTY
    assert len(book) == 0


def test_stp_cancel_resting_cancels_own_order_and_keeps_matching(book: OrderBook) -> None:
    book.submit(1, SELL, 100, 3, "other")
    book.submit(2, SELL, 100, 4, "me")
    book.submit(3, SELL, 100, 5, "other")
    o = book.submit(4, BUY, 100, 6, "me")
    assert fills(book) == [(1, 100, 3), (2, None, 4), (3, 100, 3)]
    assert o[O_STATUS] == ST_FILLED
    assert ids(book, SELL) == [3] and book.orders[3][O_QTY] == 2
    assert 2 not in book.orders


def test_stp_cancel_incoming_keeps_resting_order(book_cls: type[OrderBook]) -> None:
    book = book_cls("T", stp="cancel_incoming")
    book.submit(1, SELL, 100, 3, "other")
    book.submit(2, SELL, 100, 4, "me")
    o = book.submit(3, BUY, 101, 10, "me")
    assert fills(book) == [(1, 100, 3)]
    assert o[O_STATUS] == ST_CANCELED and o[O_FILLED] == 3 and o[O_QTY] == 7 and book.reason == R_STP
    assert ids(book, SELL) == [2] and ids(book, BUY) == []
    # FOK that would run into its own order is not fillable in full
    book.submit(4, SELL, 101, 10, "other")
    o = book.submit(5, BUY, 101, 5, "me", TIF_FOK)
    assert o[O_STATUS] == ST_EXPIRED and book.fills == []
    book.check()


def test_stp_none_allows_self_trades(book_cls: type[OrderBook]) -> None:
    book = book_cls("T", stp="none")
    book.submit(1, SELL, 100, 3, "me")
    o = book.submit(2, BUY, 100, 3, "me")
    assert fills(book) == [(1, 100, 3)] and o[O_STATUS] == ST_FILLED


def test_fok_with_stp_cancel_resting_counts_only_others(book: OrderBook) -> None:
    book.submit(1, SELL, 100, 5, "me")
    book.submit(2, SELL, 100, 3, "other")
    o = book.submit(3, BUY, 100, 4, "me", TIF_FOK)
    assert o[O_STATUS] == ST_EXPIRED and book.fills == [] and ids(book, SELL) == [1, 2]
    o = book.submit(4, BUY, 100, 3, "me", TIF_FOK)
    assert o[O_STATUS] == ST_FILLED and fills(book) == [(1, None, 5), (2, 100, 3)]


def test_cancel(book: OrderBook) -> None:
    book.submit(1, BUY, 100, 5, "a")
    book.submit(2, BUY, 100, 6, "a")
    book.submit(3, BUY, 99, 7, "a")
    assert book.cancel(1) == 5
    assert book.cancel(1) == 0
    assert book.cancel(42) == 0
    assert book.bbo() == (100, 6, None, 0)
    assert book.cancel(3) == 7  # a level behind the touch
    assert book.depth(5) == ([(100, 6)], [])
    assert book.cancel(2) == 6
    assert book.bbo() == (None, 0, None, 0) and len(book) == 0


def test_cancels_in_a_deep_level_compact_and_keep_priority(book: OrderBook) -> None:
    for oid in range(1, 201):
        book.submit(oid, SELL, 100, 2, "m")
    for oid in range(1, 200, 2):
        assert book.cancel(oid) == 2
    book.check()
    lvl = book._asks[100]
    assert len(lvl) - lvl[2] <= 2 * lvl[1] + 16  # compacted: bounded dead entries
    book.submit(999, BUY, 100, 7, "t")
    assert fills(book) == [(2, 100, 2), (4, 100, 2), (6, 100, 2), (8, 100, 1)]


def test_fills_in_a_long_level_advance_the_head(book: OrderBook) -> None:
    for oid in range(1, 101):
        book.submit(oid, SELL, 100, 2, "m")
    for i in range(60):
        book.submit(1000 + i, BUY, None, 2, "t")
        assert fills(book) == [(i + 1, 100, 2)]
    book.check()
    assert ids(book, SELL) == list(range(61, 101))
    assert len(book._asks[100]) < 100  # the consumed prefix was dropped


def test_replace_quantity_down_keeps_priority(book: OrderBook) -> None:
    book.submit(1, SELL, 100, 5, "a")
    book.submit(2, SELL, 100, 5, "b")
    o1 = book.orders[1]
    r = book.replace(1, None, 3, 50)
    assert r is o1 and r[O_QTY] == 3 and r[O_PRIO] == 1
    assert book.bbo() == (None, 0, 100, 8)
    book.submit(3, BUY, 100, 4, "t")
    assert fills(book) == [(1, 100, 3), (2, 100, 1)]


@pytest.mark.parametrize(("price", "qty"), [(None, 6), (101, 5), (101, 2)])
def test_replace_price_change_or_quantity_up_loses_priority(book: OrderBook, price: int | None, qty: int) -> None:
    book.submit(1, SELL, 100, 5, "a")
    book.submit(2, SELL, 100, 5, "b")
    book.submit(3, SELL, 101, 5, "c")
    r = book.replace(1, price, qty, 4)
    assert isinstance(r, list) and r[O_ID] == 1 and r[O_QTY] == qty and r[O_PRIO] == 4
    assert book.orders[1] is r
    expected_level = 100 if price is None else price
    assert [o[O_ID] for o in book.level_orders(SELL, expected_level)][-1] == 1


def test_replace_that_crosses_trades_and_keeps_filled(book: OrderBook) -> None:
    book.submit(1, BUY, 99, 4, "a")
    book.submit(2, SELL, 101, 6, "b")
    book.submit(3, BUY, None, 2, "t")  # order 2 now partly filled
    assert book.orders[2][O_FILLED] == 2
    r = book.replace(2, 99, 4, 4)
    assert isinstance(r, list)
    assert fills(book) == [(1, 99, 4)]
    assert r[O_STATUS] == ST_FILLED and r[O_FILLED] == 6 and 2 not in book.orders


def test_replace_refusals_leave_the_order_untouched(book: OrderBook) -> None:
    book.submit(1, BUY, 99, 4, "a")
    assert book.replace(7, 99, 4, 9) == R_UNKNOWN
    assert book.replace(1, 99, 1, 9) == R_MIN_QTY.format(2)
    assert book.replace(1, 99, 0, 9) == R_QTY
    assert book.orders[1][O_QTY] == 4 and book.orders[1][O_PRIO] == 1


def test_restore_rebuilds_priority(book: OrderBook) -> None:
    book.restore(5, SELL, 100, 3, "a", 0, 10)
    book.restore(6, SELL, 100, 4, "b", 2, 12)
    book.restore(7, BUY, 98, 4, "c", 0, 11)
    assert book.orders[6][O_STATUS] == ST_PARTIAL and book.orders[6][O_PRIO] == 12
    o = book.submit(13, SELL, 100, 2, "d")
    assert o[O_PRIO] == 13
    book.submit(9, BUY, 100, 9, "e")
    assert fills(book) == [(5, 100, 3), (6, 100, 4), (13, 100, 2)]
