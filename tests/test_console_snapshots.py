"""Snapshot tests of the console (pytest-textual-snapshot), at 80x24 and 160x48.

Deterministic: the app comes from ``build_app(..., live=False)`` on a seeded desk with a
ManualClock (no refresh timer, no cursor blink, no animations, fixed theme and size); the desk is driven
by hand in ``run_before`` (``console.seeded``): prices stepped, orders submitted straight to the real
matching engine, the real kill switch for the HALTED desk. The kill's wall-clock duration is the one
figure that is not the desk clock's, so the kill switch's timer is pinned for these tests.

Regenerate the baselines after an intended change with
``pytest tests/test_console_snapshots.py --snapshot-update`` and look at the SVGs before committing.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

import engines.risk.killswitch as killswitch_module
from console.app import OpdeskApp, build_app
from console.seeded import seed, seeded_config, seeded_desk, start_engines, stop_engines

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


@pytest.fixture(autouse=True)
def pinned_kill_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(i * 0.0005 for i in range(1_000_000))
    monkeypatch.setattr(killswitch_module, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))


def make(tmp_path: Any, *, kill: str | None = None, theme: str = "opdesk-dark") -> tuple[OpdeskApp, Any]:
    cfg = seeded_config(tmp_path, theme=theme)
    desk = seeded_desk(cfg)
    app = build_app(cfg, desk=desk, clock=desk.clock, live=False)

    async def run_before(pilot: Any) -> None:
        engines = await start_engines(desk)
        try:
            seed(desk)
            if kill is not None:
                app.start_kill(kill)
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.pause()
        finally:
            await stop_engines(engines)
        desk.clock.advance(1.0)
        app.refresh_panels()
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()

    return app, run_before


# --- the main screen and each panel -----------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("panel", ["all", "1", "2", "3", "4", "5"])
def test_panels(snap_compare: Any, tmp_path: Any, size: str, panel: str) -> None:
    app, run_before = make(tmp_path)
    press = [] if panel == "all" else [panel]
    assert snap_compare(app, press=press, terminal_size=SIZES[size], run_before=run_before)


# --- kill switch ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_kill_scope_picker(snap_compare: Any, tmp_path: Any, size: str) -> None:
    app, run_before = make(tmp_path)
    assert snap_compare(app, press=["ctrl+k"], terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_kill_confirmation(snap_compare: Any, tmp_path: Any, size: str) -> None:
    app, run_before = make(tmp_path)
    assert snap_compare(app, press=["ctrl+k", "enter"], terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_kill_progress(snap_compare: Any, tmp_path: Any, size: str) -> None:
    app, run_before = make(tmp_path, kill="desk")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_halted_desk(snap_compare: Any, tmp_path: Any, size: str) -> None:
    app, run_before = make(tmp_path, kill="desk")
    assert snap_compare(app, press=["escape"], terminal_size=SIZES[size], run_before=run_before)


# --- F1's keys panel beside the desk (console/keys_panel.py) -----------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_keys_panel(snap_compare: Any, tmp_path: Any, size: str) -> None:
    app, run_before = make(tmp_path)
    assert snap_compare(app, press=["f1"], terminal_size=SIZES[size], run_before=run_before)


# --- detail screens ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_fix_inspector(snap_compare: Any, tmp_path: Any, size: str) -> None:
    app, run_before = make(tmp_path)
    assert snap_compare(app, press=["i", "up", "up"], terminal_size=SIZES[size], run_before=run_before)


def test_bot_detail(snap_compare: Any, tmp_path: Any) -> None:
    app, run_before = make(tmp_path)
    assert snap_compare(app, press=["2", "enter"], terminal_size=(160, 48), run_before=run_before)


def test_order_detail(snap_compare: Any, tmp_path: Any) -> None:
    app, run_before = make(tmp_path)
    assert snap_compare(app, press=["o", "enter"], terminal_size=(160, 48), run_before=run_before)


# --- themes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("theme", ["opdesk-light", "opdesk-high-contrast"])
def test_themes(snap_compare: Any, tmp_path: Any, size: str, theme: str) -> None:
    app, run_before = make(tmp_path, theme=theme)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("theme", ["opdesk-light", "opdesk-high-contrast"])
def test_themes_halted(snap_compare: Any, tmp_path: Any, theme: str) -> None:
    app, run_before = make(tmp_path, theme=theme, kill="desk")
    assert snap_compare(app, press=["escape"], terminal_size=(160, 48), run_before=run_before)
