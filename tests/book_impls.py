"""The order-book implementations the book tests run against: ``book.py`` as CPython runs it and, when
it is built and current, the same source compiled with Cython (``engines.matching._cbook``, see
``engines/matching/book_impl.py``). The compiled parameter skips with the reason when it is absent."""

from __future__ import annotations

import pytest

from engines.matching import book_impl
from engines.matching.book import OrderBook

_compiled, _why = book_impl.compiled()

BOOK_IMPLS = [
    pytest.param(OrderBook, id="python"),
    pytest.param(
        _compiled,
        id="compiled",
        marks=pytest.mark.skipif(_compiled is None, reason=f"compiled book unavailable: {_why}"),
    ),
]
