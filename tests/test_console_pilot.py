"""Console behaviour through Textual's Pilot: the kill chord halts the desk and the orders are gone,
re-arm, palette actions, keymap remapping, zoom, the FIX inspector, and the model fed by JSON."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, RichLog
from textual.widgets._footer import FooterKey

from console.app import OpdeskApp, build_app
from console.footer import ESSENTIAL, DeskFooter
from console.model import DeskModel
from console.panels.event_log import EventLogPanel
from console.screens.confirm import ConfirmScreen
from console.screens.inspector import FixInspectorScreen
from console.screens.kill_progress import KillProgressScreen
from console.screens.scope import ScopeScreen
from console.seeded import seed, seeded_config, seeded_desk, start_engines, stop_engines
from engines.events import Event, to_json
from engines.risk.events import TradingState

SIZE = (160, 48)


class FakeBot:
    """Stands in for a bot in ``desk.services["bots"]`` to observe the console's pause/resume."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


@asynccontextmanager
async def console(
    tmp_path: Any, size: tuple[int, int] = SIZE, *, live: bool = False, **ui: Any
) -> AsyncIterator[tuple[OpdeskApp, Any, Any]]:
    cfg = seeded_config(tmp_path, **ui)
    desk = seeded_desk(cfg)
    if live:  # the refresh timer runs (and its rate caps apply), on the seeded desk's ManualClock
        app = OpdeskApp(cfg, desk, clock=desk.clock, live=True, start_desk=False)
    else:
        app = build_app(cfg, desk=desk, clock=desk.clock, live=False)
    try:
        async with app.run_test(size=size) as pilot:
            engines = await start_engines(desk)
            try:
                seed(desk)
                await pilot.pause()
                app.refresh_panels()
                await pilot.pause()
                yield app, desk, pilot
            finally:
                await stop_engines(engines)
    finally:
        if live:
            gc.unfreeze()  # (the live app freezes what it built; give it back to the collector)


async def settle(app: OpdeskApp, pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    app.refresh_panels()
    await pilot.pause()


def open_orders(desk: Any, **kw: Any) -> list[Any]:
    matching = desk.services.get("matching")
    return [] if matching is None else matching.open_orders(**kw)


async def run_palette(app: OpdeskApp, pilot: Any, text: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    assert isinstance(app.screen, CommandPalette)
    app.screen.query_one(Input).value = text
    for _ in range(50):  # the palette searches in a worker: wait for the hit list
        await pilot.pause(0.02)
        if app.screen.query_one("CommandList").option_count:
            break
    await pilot.press("enter")
    await pilot.pause()


async def test_kill_chord_halts_the_desk_and_cancels_every_order(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, desk, pilot):
        matching = desk.services.get("matching")
        if matching is not None:
            assert len(open_orders(desk)) > 40
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, ScopeScreen)
        await pilot.press("enter")  # the first scope: the whole desk
        assert isinstance(app.screen, ConfirmScreen)
        assert desk.services["risk"].state("desk") is TradingState.ACTIVE  # nothing before confirming
        await pilot.press("y")
        assert isinstance(app.screen, KillProgressScreen)
        await settle(app, pilot)
        assert desk.services["risk"].state("desk") is TradingState.HALTED
        assert open_orders(desk) == []
        assert app.model.desk_state() == "halted"
        assert app.status_bar.has_class("-halted")
        assert "DESK HALTED" in str(app.status_bar.render())
        progress = app.model.kill_progress["desk"]
        assert progress.done and progress.confirmed == progress.requested
        assert "complete" in str(app.screen.query_one("#title").render())
        await pilot.press("escape")
        assert app.screen is app.main


async def test_kill_can_be_cancelled_at_the_confirmation(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, desk, pilot):
        before = len(open_orders(desk))
        await pilot.press("ctrl+k", "enter", "n")
        await settle(app, pilot)
        assert app.screen is app.main
        assert desk.services["risk"].state("desk") is TradingState.ACTIVE
        assert len(open_orders(desk)) == before
        assert not app.status_bar.has_class("-halted")
        await pilot.press("ctrl+x")  # the panic key asks first by default (ui.confirm_panic_kill)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        assert desk.services["risk"].state("desk") is TradingState.HALTED


async def test_panic_key_without_confirmation(tmp_path: Any) -> None:
    async with console(tmp_path, confirm_panic_kill=False) as (app, desk, pilot):
        await pilot.press("ctrl+x")
        await settle(app, pilot)
        assert desk.services["risk"].state("desk") is TradingState.HALTED
        assert open_orders(desk) == []
        assert app.status_bar.has_class("-halted")


async def test_rearm_after_kill(tmp_path: Any) -> None:
    async with console(tmp_path, confirm_panic_kill=False) as (app, desk, pilot):
        await pilot.press("ctrl+x")
        await settle(app, pilot)
        await pilot.press("escape")  # close the kill progress view
        await pilot.press("ctrl+r")  # one halted scope: straight to its confirmation
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        assert desk.services["risk"].state("desk") is TradingState.ACTIVE
        assert app.model.desk_state() == "active"
        assert not app.status_bar.has_class("-halted")
        texts = [e.text for e in app.model.log]
        assert any("rearm desk" in t for t in texts)


async def test_palette_kills_one_instrument_only(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, desk, pilot):
        await run_palette(app, pilot, "Kill: instrument ETH-USD")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        risk = desk.services["risk"]
        assert risk.state("instrument:ETH-USD") is TradingState.HALTED
        assert risk.state("desk") is TradingState.ACTIVE
        assert app.model.states["instrument:ETH-USD"] == "halted"
        if desk.services.get("matching") is not None:
            assert open_orders(desk, symbol="ETH-USD") == []
            assert len(open_orders(desk, symbol="BTC-USD")) > 20


async def test_palette_cancel_all_on_an_instrument(tmp_path: Any) -> None:
    pytest.importorskip("engines.matching.service")
    async with console(tmp_path) as (app, desk, pilot):
        btc = len(open_orders(desk, symbol="BTC-USD"))
        await run_palette(app, pilot, "Cancel all on ETH-USD")
        await pilot.press("y")
        await settle(app, pilot)
        assert open_orders(desk, symbol="ETH-USD") == []
        assert len(open_orders(desk, symbol="BTC-USD")) == btc
        assert desk.services["risk"].state("desk") is TradingState.ACTIVE  # cancel-all is not a kill


async def test_palette_pause_and_resume_a_bot(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, desk, pilot):
        bot = FakeBot()
        desk.services.setdefault("bots", {})["mm-btc"] = bot
        await run_palette(app, pilot, "Pause bot mm-btc")
        await settle(app, pilot)
        await run_palette(app, pilot, "Resume bot mm-btc")
        await settle(app, pilot)
        assert bot.calls == ["pause", "resume"]
        assert any("pause mm-btc" in e.text for e in app.model.log)
        await run_palette(app, pilot, "Theme: opdesk-high-contrast")
        assert app.theme == "opdesk-high-contrast"
        app.refresh_panels()  # panels re-render with the new theme's colours
        await pilot.pause()
        app.pause_bot("nobody")  # an unknown bot is reported to the operator, not raised
        await settle(app, pilot)
        assert any("no bot named 'nobody'" in e.text for e in app.model.log)
        assert app._notifications  # a toast for the operator


async def test_keymap_from_config_remaps_the_kill_chord(tmp_path: Any) -> None:
    async with console(tmp_path, keymap={"kill": "ctrl+g"}) as (app, _desk, pilot):
        await pilot.press("ctrl+k")
        assert app.screen is app.main
        await pilot.press("ctrl+g")
        assert isinstance(app.screen, ScopeScreen)


async def test_zoom_keys_and_instrument_switching(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, _desk, pilot):
        assert all(p.display for p in app.panels)
        await pilot.press("2")
        shown = [p.id for p in app.panels if p.display]
        assert shown == ["bots"]
        await pilot.press("2")
        assert all(p.display for p in app.panels)
        assert app.book_symbol == "BTC-USD"
        await pilot.press("1", "right_square_bracket")
        assert app.book_symbol == "ETH-USD"
        await pilot.press("left_square_bracket")
        assert app.book_symbol == "BTC-USD"


async def test_fix_inspector_decodes_and_searches(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, _desk, pilot):
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, FixInspectorScreen)
        msgs = screen.query_one("#msg-table", DataTable)
        assert msgs.row_count == 7
        screen.query_one("#search", Input).value = "ExecutionReport"
        await pilot.pause()
        assert msgs.row_count == 2
        fields = screen.query_one("#field-table", DataTable)
        names = [fields.get_row_at(i)[1] for i in range(fields.row_count)]
        assert "ClOrdID" in names and "ExecType" in names
        await pilot.press("escape")
        assert app.screen is app.main


def test_model_fed_by_json_matches_model_fed_by_bus(tmp_path: Any) -> None:
    """The remote console's path (decoded JSON events) builds the same state as the in-process bus."""
    cfg = seeded_config(tmp_path)
    desk = seeded_desk(cfg)
    local = DeskModel(desk.instruments)
    remote = DeskModel(desk.instruments)
    local.attach(desk.bus)
    desk.bus.subscribe(Event, lambda ev: remote.apply_json(to_json(ev)))  # every event, as the wire has them
    seed(desk)
    assert local.events == remote.events > 50
    assert local.prices == remote.prices
    assert {s: (d.bids, d.asks) for s, d in local.depth.items()} == {
        s: (d.bids, d.asks) for s, d in remote.depth.items()
    }
    assert local.bots.keys() == remote.bots.keys()
    assert {k: v.state for k, v in local.fix.items()} == {k: v.state for k, v in remote.fix.items()}
    assert [e.text for e in local.log] == [e.text for e in remote.log]
    assert list(local.pnl["mm-btc"]) == list(remote.pnl["mm-btc"])


async def test_live_refresh_timer_updates_panels(tmp_path: Any) -> None:
    cfg = seeded_config(tmp_path, refresh_hz=20.0)
    desk = seeded_desk(cfg)
    app = build_app(cfg, desk=desk, clock=desk.clock, live=True)
    app.start_desk = False
    async with app.run_test(size=SIZE) as pilot:
        seed(desk)
        for _ in range(100):
            await pilot.pause(0.02)
            table = app.main.query_one("#bots-table", DataTable)
            if table.row_count == 2 and not app.model.dirty & {"bots", "book", "fix"}:
                break
        assert app.main.query_one("#bots-table", DataTable).row_count == 2
        assert app.ticks > 0
        assert not app.model.dirty & {"bots", "book", "fix"}


async def test_bots_table_switches_to_compact_columns_when_narrow_and_back(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, _desk, pilot):
        await pilot.press("2")  # the bots panel alone: full width
        await settle(app, pilot)
        table = app.main.query_one("#bots-table", DataTable)
        full = ["bot", "state", "position", "realised", "unrealised", "fees", "ret", "limits", "orders"]
        assert [c.value for c in table.columns] == full
        await pilot.press("down")  # select the second bot
        assert table.selected_key == "mm-eth"
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot)
        assert [c.value for c in table.columns] == ["bot", "state", "position", "net", "ret", "limits"]
        assert table.row_count == 2 and table.selected_key == "mm-eth"
        assert table.virtual_size.width <= table.size.width  # nothing scrolls sideways
        await pilot.resize_terminal(*SIZE)
        await settle(app, pilot)
        assert [c.value for c in table.columns] == full and table.row_count == 2


# --- the footer and the event log at every terminal size ------------------------------------------------
ESSENTIAL_KEYS = ["^q Quit", "^k Kill…", "^x PANIC", "^r Re-arm…", "f1 Keys"]
#: what the footer shows at 80x24 in each view (key presses from the main screen), palette key last
FOOTER_80 = {
    "all": ["i FIX msgs", "o Orders", *ESSENTIAL_KEYS, "^p palette"],
    "2": ["p Pause", "r Resume", *ESSENTIAL_KEYS, "^p palette"],
    "3": ["g Next", "p Pause", "r Resume", *ESSENTIAL_KEYS, "^p palette"],
    "4": ["l Logout", "c Reconnect", *ESSENTIAL_KEYS, "^p palette"],
    "5": ["i FIX msgs", "o Orders", *ESSENTIAL_KEYS, "^p palette"],
    "i": ["esc Back", "/ Search", *ESSENTIAL_KEYS, "^p palette"],
    "o": ["esc Back", *ESSENTIAL_KEYS, "^p palette"],
}
VIEWS = {"all": [], "2": ["2"], "3": ["3"], "4": ["4"], "5": ["5"], "i": ["i"], "o": ["o"]}


def footer_keys(app: OpdeskApp) -> list[FooterKey]:
    return list(app.screen.query_one(DeskFooter).query(FooterKey))


def assert_footer_whole(app: OpdeskApp) -> None:
    """Every key in the footer is drawn whole: inside the footer, left of the palette key, full width."""
    footer = app.screen.query_one(DeskFooter)
    keys = footer_keys(app)
    palette = [k for k in keys if k.has_class("-command-palette")]
    assert len(palette) == 1
    right = palette[0].region.x
    assert palette[0].region.right == footer.region.right
    for key in keys:
        assert key.content_region.width == key.render().cell_len, key.description
        assert footer.region.contains_region(key.region), key.description
        if key is not palette[0]:
            assert key.region.right < right, key.description  # (a margin cell before the palette)
    assert footer.virtual_size.width <= footer.size.width  # nothing scrolled off the footer
    shown = {k.action for k in keys}
    assert set(ESSENTIAL) <= shown


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_footer_keys_are_whole_in_every_view(tmp_path: Any, size: tuple[int, int]) -> None:
    async with console(tmp_path, size=size) as (app, _desk, pilot):
        for view, press in VIEWS.items():
            await pilot.press(*press)
            await settle(app, pilot)
            assert_footer_whole(app)
            texts = [f"{k.key_display} {k.description}" for k in footer_keys(app)]
            if size == (80, 24):
                assert texts == FOOTER_80[view], view
            if size == (160, 50):
                assert app.screen.query_one(DeskFooter).hidden == [], view  # all fit on a wide terminal
            if view in ("i", "o"):
                await pilot.press("escape")
            elif press:
                await pilot.press("0")
            await settle(app, pilot)


async def test_footer_drops_and_restores_keys_as_the_terminal_is_resized(tmp_path: Any) -> None:
    async with console(tmp_path, size=(160, 50)) as (app, _desk, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        wide = [k.description for k in footer_keys(app)]
        assert wide == ["Next", "Pause", "Resume", "Detail", "FIX msgs", "Orders", "Cancel all", "Quit", "Kill…",
                        "PANIC", "Re-arm…", "Keys", "palette"]
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot)
        assert_footer_whole(app)
        footer = app.screen.query_one(DeskFooter)
        assert footer.hidden == ["app.grid_detail", "app.fix_inspector", "app.orders", "app.cancel_all_instrument"]
        await pilot.press("x")  # a key left out of the footer is still bound
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.resize_terminal(160, 50)
        await settle(app, pilot)
        assert [k.description for k in footer_keys(app)] == wide


async def test_event_log_wraps_at_words_and_rewraps_on_resize(tmp_path: Any) -> None:
    async with console(tmp_path, size=(80, 24)) as (app, _desk, pilot):
        await pilot.press("5")
        await settle(app, pilot)
        panel = app.main.query_one(EventLogPanel)
        log = panel.query_one(RichLog)
        entries = [panel.format(e).plain for e in app.model.log]
        assert len(entries) >= 5

        def lines() -> list[str]:
            return [strip.text.rstrip() for strip in log.lines]

        narrow = lines()
        assert max(len(line) for line in narrow) <= log.scrollable_content_region.width
        assert len(narrow) > len(entries)  # some entries wrapped onto a second line...
        assert " ".join(narrow).split() == " ".join(entries).split()  # ...between words, none cut
        await pilot.resize_terminal(200, 50)
        await settle(app, pilot)
        wide = lines()
        assert " ".join(wide).split() == " ".join(entries).split()
        assert len(wide) < len(narrow)


def no_sideways_scroll(table: DataTable) -> bool:
    return table.virtual_size.width <= table.size.width


async def test_fix_inspector_stacks_its_tables_when_narrow(tmp_path: Any) -> None:
    async with console(tmp_path, size=(80, 24)) as (app, _desk, pilot):
        await pilot.press("i")
        await pilot.press("up", "up")
        screen = app.screen
        assert isinstance(screen, FixInspectorScreen) and screen.has_class("-narrow")
        msgs = screen.query_one("#msg-table", DataTable)
        fields = screen.query_one("#field-table", DataTable)
        assert msgs.region.y < fields.region.y and msgs.region.width == fields.region.width == 78
        assert no_sideways_scroll(msgs) and no_sideways_scroll(fields)  # every column whole
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert screen.has_class("-wide")
        assert screen.query_one("#msgs").region.y == screen.query_one("#fields").region.y  # side by side again


async def test_orders_screen_uses_compact_columns_when_narrow_and_back(tmp_path: Any) -> None:
    async with console(tmp_path, size=(80, 24)) as (app, _desk, pilot):
        await pilot.press("o")
        await pilot.pause()
        table = app.screen.query_one("#orders-table", DataTable)
        assert [c.label.plain for c in table.columns.values()] == [
            "id", "symbol", "owner", "side", "price", "qty", "leaves", "status"]
        statuses = {table.get_row_at(i)[-1] for i in range(table.row_count)}
        assert "partial" in statuses and "partially_filled" not in statuses
        assert no_sideways_scroll(table)
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert [c.label.plain for c in table.columns.values()] == [
            "id", "symbol", "owner", "side", "price", "qty", "filled", "leaves", "status"]
        assert "partially_filled" in {table.get_row_at(i)[-1] for i in range(table.row_count)}


async def test_bot_detail_stacks_its_tables_when_narrow(tmp_path: Any) -> None:
    async with console(tmp_path, size=(80, 24)) as (app, _desk, pilot):
        await pilot.press("2", "enter")
        await pilot.pause()
        params = app.screen.query_one("#params", DataTable)
        status = app.screen.query_one("#status", DataTable)
        assert params.region.y < status.region.y and params.region.width == status.region.width
        assert no_sideways_scroll(params) and no_sideways_scroll(status)
        rows = [params.get_row_at(i) for i in range(params.row_count)]
        assert ["limits.max_position", "None"] in rows  # a nested section, one row per key
