# Cython declarations for book.py (inert for CPython: nothing imports this file).
#
# Only used when book.py is compiled with Cython (see bench/matching_compiled.py): they make
# OrderBook a C-level class and the matching/cancel helpers C calls, with C integers only where a
# value is bounded by construction (level indices and counts, the STP mode). Prices and quantities
# stay Python ints, so arbitrarily large ones behave exactly as in the pure-Python book. Keep the
# attribute list in step with OrderBook.__slots__.
cimport cython

cdef class OrderBook:
    cdef public list _ask_keys, _bid_keys, fills
    cdef public dict _asks, _bids, orders
    cdef public object min_qty
    cdef public str reason, symbol
    cdef public Py_ssize_t stp

    @cython.locals(stp=Py_ssize_t, h=Py_ssize_t, live=Py_ssize_t, lvl=list, m=list, keys=list, levels=dict,
                   orders=dict, fills=list)
    cpdef _take_buy(self, list o, object limit)

    @cython.locals(stp=Py_ssize_t, h=Py_ssize_t, live=Py_ssize_t, lvl=list, m=list, keys=list, levels=dict,
                   orders=dict, fills=list)
    cpdef _take_sell(self, list o, object limit)

    @cython.locals(lvl=list, keys=list, levels=dict, o=list)
    cpdef cancel(self, oid)
