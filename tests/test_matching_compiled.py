"""Selection of the order-book implementation (engines/matching/book_impl.py) and its stale-build guard.

The compiled book's behaviour is tested by the book tests themselves: tests/test_matching_book.py and
tests/test_matching_properties.py run on every implementation in ``tests.book_impls.BOOK_IMPLS``.
Here: which class the engine gets for each ``[matching] compiled_book`` setting, that a compiled
module built from another version of book.py/book.pxd is never used, and that "required" stops the
desk with an operator-readable error when the compiled book is missing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engines.bus import Bus
from engines.clock import ManualClock
from engines.config import ConfigError, DeskConfig
from engines.instruments import Instrument
from engines.matching import book_impl
from engines.matching.book import OrderBook
from engines.matching.config import MatchingConfig
from engines.matching.engine import MatchingEngine
from engines.runtime import Desk

COMPILED, WHY = book_impl.compiled()
needs_compiled = pytest.mark.skipif(COMPILED is None, reason=f"compiled book unavailable: {WHY}")
INSTRUMENTS = {"X": Instrument("X", Decimal("0.01"), Decimal("0.001"), 1, "X", "USD")}


class FakeCompiledBook(OrderBook):
    """Stands in for the compiled class, so that these tests run whether or not it is built."""

    __slots__ = ()


FakeCompiledBook.__module__ = book_impl.MODULE


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the process's cached check and warning, so each test selects from scratch."""
    monkeypatch.setattr(book_impl, "_cache", None)
    monkeypatch.setattr(book_impl, "_warned", False)


def fake_module(monkeypatch: pytest.MonkeyPatch, digest: str) -> None:
    mod = types.ModuleType(book_impl.MODULE)
    mod.OrderBook = FakeCompiledBook  # type: ignore[attr-defined]
    mod.SOURCE_SHA256 = digest  # type: ignore[attr-defined]
    mod.__file__ = "/build/engines/matching/_cbook.so"
    monkeypatch.setitem(sys.modules, book_impl.MODULE, mod)


def unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, book_impl.MODULE, None)  # import raises ImportError


def test_digest_covers_both_source_files(tmp_path: Path) -> None:
    for name in book_impl.SOURCES:
        (tmp_path / name).write_bytes((book_impl.HERE / name).read_bytes())
    d = book_impl.source_digest(tmp_path)
    assert d == book_impl.source_digest() and len(d) == 64
    for name in book_impl.SOURCES:
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data + b"\n")
        assert book_impl.source_digest(tmp_path) != d, f"{name} not in the digest"
        (tmp_path / name).write_bytes(data)


def test_current_build_is_selected_by_auto_and_required(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_module(monkeypatch, book_impl.source_digest())
    assert book_impl.select("auto") is FakeCompiledBook
    assert book_impl.select("required") is FakeCompiledBook
    assert book_impl.select("off") is OrderBook
    assert book_impl.impl_name(FakeCompiledBook) == "compiled" and book_impl.impl_name(OrderBook) == "python"


def test_stale_build_falls_back_to_python_and_says_rebuild(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_module(monkeypatch, "0" * 64)  # built from another version of book.py/book.pxd
    with caplog.at_level(logging.WARNING, logger="engines.matching.book_impl"):
        assert book_impl.select("auto") is OrderBook
        assert book_impl.select("auto") is OrderBook
    (rec,) = caplog.records  # once per process
    assert "stale build: 000000000000 != " in rec.getMessage()
    assert "/build/engines/matching/_cbook.so" in rec.getMessage()
    assert "rebuild with `pip install -e .`" in rec.getMessage()
    with pytest.raises(book_impl.CompiledBookUnavailable, match=r'compiled_book = "required", but .*stale build'):
        book_impl.select("required")


def test_stale_when_the_source_changes_after_the_build(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_module(monkeypatch, book_impl.source_digest())
    monkeypatch.setattr(book_impl, "source_digest", lambda folder=book_impl.HERE: "f" * 64)  # book.py edited
    cls, why = book_impl.compiled()
    assert cls is None and "stale build" in why


def test_missing_build_falls_back_with_reason(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    unavailable(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="engines.matching.book_impl"):
        assert book_impl.select("auto") is OrderBook
    assert "the compiled book is not built" in caplog.text and "pip install -e ." in caplog.text
    with pytest.raises(book_impl.CompiledBookUnavailable, match="the compiled book is not built"):
        book_impl.select("required")
    with pytest.raises(ValueError, match="compiled_book must be one of auto, off, required, not 'yes'"):
        book_impl.select("yes")


def test_config_accepts_only_the_three_modes() -> None:
    assert MatchingConfig().compiled_book == "auto"
    assert MatchingConfig(compiled_book="off").compiled_book == "off"
    with pytest.raises(ValueError, match="compiled_book"):
        MatchingConfig(compiled_book="yes")


def build_desk(mode: str) -> Desk:
    cfg = DeskConfig()
    cfg.matching.compiled_book = mode  # type: ignore[assignment]
    cfg.matching.journal = False
    return Desk(cfg, clock=ManualClock()).build(["engines.matching.service:build"])


def test_off_runs_python_and_status_says_so(fresh: None, desk_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_module(monkeypatch, book_impl.source_digest())  # even when a current build is there
    engine = build_desk("off").services["matching"]
    assert engine.status()["book_impl"] == "python"
    assert all(type(engine.book(s)) is OrderBook for s in engine.symbols)


def test_auto_runs_the_current_build_and_status_says_so(
    fresh: None, desk_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_module(monkeypatch, book_impl.source_digest())
    engine = build_desk("auto").services["matching"]
    assert engine.status()["book_impl"] == "compiled"
    assert all(type(engine.book(s)) is FakeCompiledBook for s in engine.symbols)


def test_required_stops_the_desk_build_with_a_config_error(
    fresh: None, desk_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unavailable(monkeypatch)
    with pytest.raises(ConfigError, match=r'^\[matching\] compiled_book = "required", but the compiled book is not built'):
        build_desk("required")


def test_required_cli_exits_2_with_the_reason(tmp_path: Path) -> None:
    cfg = tmp_path / "desk.toml"
    cfg.write_text('[matching]\ncompiled_book = "required"\n')
    code = (
        "import sys; sys.modules['engines.matching._cbook'] = None\n"  # as if not built
        "from opdesk.cli import main; raise SystemExit(main(['--headless', '--config', sys.argv[1]]))"
    )
    env = {**os.environ, "OPDESK_DESK__DATA_DIR": str(tmp_path / "data")}
    p = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    assert 'opdesk: [matching] compiled_book = "required", but the compiled book is not built' in p.stderr
    assert "Traceback" not in p.stderr


@needs_compiled
def test_installed_build_is_current_and_is_what_the_engine_runs() -> None:
    import engines.matching._cbook as cbook

    assert book_impl.source_digest() == cbook.SOURCE_SHA256
    assert not cbook.__file__.endswith(".py"), "the compiled module, not a copy of the source"
    engine = MatchingEngine(Bus(), INSTRUMENTS)
    assert engine.status()["book_impl"] == "compiled" and type(engine.book("X")) is cbook.OrderBook
    assert MatchingEngine(Bus(), INSTRUMENTS, book_class=OrderBook).status()["book_impl"] == "python"
