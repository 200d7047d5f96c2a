"""Which order-book implementation the matching engine runs: the Cython build of ``book.py`` or ``book.py``.

``setup.py`` compiles ``book.py`` with its declarations ``book.pxd`` (copied as ``_cbook.py`` and
``_cbook.pxd`` into the build directory; the source is not changed) into the optional extension
module ``engines.matching._cbook``, and appends to that copy the SHA-256 of the two files it was
built from (:data:`SOURCE_SHA256`). The same source, compiled, runs ~1.3-1.6x faster (see the
README's matching speed section); behaviour is identical (the property tests run against both).

:func:`select` picks the class for a ``[matching] compiled_book`` setting:

* ``"auto"``: the compiled class if the module imports and was built from the current ``book.py`` +
  ``book.pxd``; otherwise the pure-Python class, and a warning once saying why. A module built from
  an older source (an editable install whose ``book.py`` was edited since) is never used, since it
  would silently run old matching code: rebuild with ``pip install -e .``.
* ``"off"``: always the pure-Python class.
* ``"required"``: the compiled class, or :class:`CompiledBookUnavailable` saying why (the desk does
  not start).

This module imports nothing beyond the standard library at import time: ``setup.py`` loads it by path
to compute the digest in a build environment that has none of the project's dependencies.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SOURCES = ("book.py", "book.pxd")  # what the compiled module is built from, in digest order
MODULE = "engines.matching._cbook"
MODES = ("auto", "off", "required")
REBUILD = "rebuild with `pip install -e .` (or `pip install .`)"


class CompiledBookUnavailable(RuntimeError):
    """``compiled_book = "required"`` but the compiled book cannot be used."""


def source_digest(folder: Path = HERE) -> str:
    """SHA-256 over ``book.py`` and ``book.pxd`` in ``folder`` (each file's length, then its bytes)."""
    h = hashlib.sha256()
    for name in SOURCES:
        data = (folder / name).read_bytes()
        h.update(b"%s %d\n" % (name.encode(), len(data)))
        h.update(data)
    return h.hexdigest()


def _load() -> tuple[type | None, str]:
    """The compiled OrderBook class, or None and why it cannot be used."""
    try:
        mod = importlib.import_module(MODULE)
    except ImportError as e:
        return None, f"the compiled book is not built ({e}); {REBUILD} with Cython and a C compiler available"
    built = getattr(mod, "SOURCE_SHA256", None)
    try:
        current = source_digest()
    except OSError as e:  # an install without book.pxd: cannot prove the build is current
        return None, f"cannot read the book's source to check the compiled build ({e})"
    if built != current:
        return None, (
            f"the compiled book ({mod.__file__}) was built from another version of book.py/book.pxd "
            f"(stale build: {str(built)[:12]} != {current[:12]}); {REBUILD}"
        )
    return mod.OrderBook, ""


_cache: tuple[type | None, str] | None = None
_warned = False


def compiled() -> tuple[type | None, str]:
    """``(class, "")`` if the compiled book is usable, else ``(None, reason)``; checked once per process."""
    global _cache
    if _cache is None:
        _cache = _load()
    return _cache


def select(mode: str = "auto") -> type:
    """The OrderBook class for a ``compiled_book`` mode (see the module docstring)."""
    from engines.matching.book import OrderBook

    if mode == "off":
        return OrderBook
    if mode not in MODES:
        raise ValueError(f"compiled_book must be one of {', '.join(MODES)}, not {mode!r}")
    cls, why = compiled()
    if cls is not None:
        return cls
    if mode == "required":
        raise CompiledBookUnavailable(f'[matching] compiled_book = "required", but {why}')
    global _warned
    if not _warned:
        _warned = True
        log.warning("matching: running the pure-Python order book: %s", why)
    return OrderBook


def impl_name(cls: Any) -> str:
    """``"compiled"`` or ``"python"`` for a book class (or instance) from :func:`select`."""
    if not isinstance(cls, type):
        cls = type(cls)
    return "compiled" if cls.__module__ == MODULE else "python"


def main(argv: list[str] | None = None) -> int:
    """``python -m engines.matching.book_impl [--require]``: which book the desk would run, and why.
    With ``--require`` (CI) the exit status is 1 unless it is the compiled one."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    cls, why = compiled()
    if cls is not None:
        print(f"compiled order book: {sys.modules[MODULE].__file__} (built from the current book.py/book.pxd)")
        return 0
    print(f"pure-Python order book: {why}")
    return 1 if "--require" in args else 0


if __name__ == "__main__":
    raise SystemExit(main())
