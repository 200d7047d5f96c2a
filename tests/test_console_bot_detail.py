"""The bot detail screen stays live: new figures from the desk model (in process and in the remote
console) are drawn into the open screen cell by cell, at most ``max_hz`` times a second on the desk's
clock, without moving the cursor, the scroll position or the focus."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from textual.widgets import DataTable, Label, Sparkline

from console.app import OpdeskApp
from console.remote import RemoteConsoleApp
from console.screens.bot_detail import BotDetailScreen
from console.seeded import seed, seeded_config, seeded_desk, start_engines, stop_engines
from engines.config import load_config
from engines.events import from_dict, to_dict
from engines.mm.events import MMBotStatus
from engines.remote.client import LinkState
from engines.risk.events import TradingState, TradingStateChanged
from tests.desk_process import DeskProcess
from tests.test_console_pilot import console

SIZE = (160, 48)


def cells(screen: Any) -> dict[str, str]:
    table = screen.query_one("#status", DataTable)
    return {str(row[0]): str(row[1]) for row in (table.get_row_at(i) for i in range(table.row_count))}


def head(screen: Any) -> str:
    return str(screen.query_one("#head", Label).render())


async def open_detail(app: OpdeskApp, pilot: Any, bot: str = "mm-btc") -> BotDetailScreen:
    app.show_bot_detail(bot)
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, BotDetailScreen) and screen.bot == bot
    return screen


def moved(status: Any, **changes: Any) -> Any:
    return dataclasses.replace(status, **changes)


async def test_detail_shows_the_bots_new_figures_cell_by_cell(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, desk, pilot):
        screen = await open_detail(app, pilot)
        before = cells(screen)
        assert (before["position"], before["realised"], before["fills"], before["state"]) == (
            "0.1500", "25.0600", "14", "quoting")
        assert before["limits.position"] == "30% used"
        table = screen.query_one("#status", DataTable)
        cleared: list[bool] = []
        original_clear = table.clear
        table.clear = lambda *a, **k: (cleared.append(True), original_clear(*a, **k))[1]  # type: ignore[method-assign]
        focused = app.focused
        assert focused is not None
        desk.bus.publish(moved(app.model.bots["mm-btc"], state="paused", quoting=False, position=0.2, realised=30.0,
                               unrealised=-1.5, net_pnl=27.75, fills=20, open_orders=0,
                               limits={"position": 0.55, "order_rate": 0.12, "loss": 0.0}))
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        after = cells(screen)
        assert (after["state"], after["quoting"], after["position"], after["realised"], after["unrealised"],
                after["fills"], after["open_orders"], after["limits.position"]) == (
            "paused", "False", "0.2000", "30.0000", "-1.5000", "20", "0", "55% used")
        assert list(after) == list(before)  # same rows in the same order, cells updated in place
        assert cleared == [] and app.focused is focused
        assert screen.query_one(Sparkline).data[-1] == 27.75  # the net P&L (after fees), the P&L line
        # the bot's trading state goes into the heading
        desk.bus.publish(TradingStateChanged(scope="bot:mm-btc", state=TradingState.HALTED,
                                             previous=TradingState.ACTIVE, reason="test", source="console"))
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        assert head(screen) == "mm-btc · MMBotStatus · trading state halted"
        redraws = screen.redraws
        for _ in range(3):  # nothing new in the model: nothing redrawn
            app.refresh_panels()
        assert screen.redraws == redraws


async def test_detail_keeps_cursor_and_scroll_while_it_updates(tmp_path: Any) -> None:
    # 80x24: the tables are stacked and the status table scrolls (8 rows high)
    async with console(tmp_path, size=(80, 24)) as (app, desk, pilot):
        screen = await open_detail(app, pilot)
        table = screen.query_one("#status", DataTable)
        table.focus()
        await pilot.pause()
        for _ in range(12):
            await pilot.press("down")
        await pilot.pause()
        row, scroll_y = table.cursor_row, table.scroll_y
        assert row == 12 and scroll_y > 0
        desk.bus.publish(moved(app.model.bots["mm-btc"], fills=21, fees=4.0))
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        assert cells(screen)["fills"] == "21" and cells(screen)["fees"] == "4.0000"
        assert (table.cursor_row, table.scroll_y, app.focused) == (row, scroll_y, table)
        # a new field (a risk limit's usage appearing) rebuilds the rows: in the event's order, the
        # cursor on the same field, the scroll where it was
        selected = str(table.get_row_at(row)[0])
        desk.bus.publish(moved(app.model.bots["mm-btc"],
                               limits={"position": 0.3, "order_rate": 0.12, "loss": 0.0, "drawdown": 0.4}))
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        await pilot.pause()
        keys = list(cells(screen))
        assert keys[keys.index("limits.loss") + 1] == "limits.drawdown" and cells(screen)["limits.drawdown"] == "40% used"
        assert str(table.get_row_at(table.cursor_row)[0]) == selected
        assert (table.scroll_y, app.focused) == (scroll_y, table)


async def test_grid_bot_detail_is_live_too(tmp_path: Any) -> None:
    async with console(tmp_path) as (app, desk, pilot):
        screen = await open_detail(app, pilot, "grid-eth")
        assert (cells(screen)["round_trips"], cells(screen)["grid_profit"]) == ("7", "43.7500")
        desk.bus.publish(moved(app.model.grids["grid-eth"], round_trips=8, grid_profit=50.0, state="paused"))
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        assert (cells(screen)["round_trips"], cells(screen)["grid_profit"], cells(screen)["state"]) == (
            "8", "50.0000", "paused")
        assert head(screen) == "grid-eth · GridBotStatus · trading state active"


async def test_detail_redraws_at_most_max_hz_on_the_desk_clock(tmp_path: Any) -> None:
    async with console(tmp_path, live=True) as (app, desk, pilot):
        screen = await open_detail(app, pilot)
        assert BotDetailScreen.max_hz == 4.0
        desk.clock.advance(1.0)  # past the cap since it opened
        desk.bus.publish(moved(app.model.bots["mm-btc"], fills=30))
        await pilot.pause()
        app.refresh_panels()
        assert cells(screen)["fills"] == "30"
        # within a quarter second of the last redraw: the new figure waits, however often the tick runs
        desk.bus.publish(moved(app.model.bots["mm-btc"], fills=31))
        await pilot.pause()
        desk.clock.advance(0.2)
        for _ in range(5):
            app.refresh_panels()
        assert cells(screen)["fills"] == "30"
        desk.clock.advance(0.05)  # a quarter second since: the next tick (the app's own timer) draws it
        await app.workers.wait_for_complete()
        for _ in range(200):
            if cells(screen)["fills"] == "31":
                break
            await pilot.pause(0.01)
        assert cells(screen)["fills"] == "31"


# --- the remote console ---------------------------------------------------------------------------------
def over_the_wire(events: list[Any]) -> list[Any]:
    return [from_dict(to_dict(ev)) for ev in events]


async def test_remote_console_detail_follows_events_and_a_new_snapshot(tmp_path: Any) -> None:
    cfg = seeded_config(tmp_path)
    desk = seeded_desk(cfg)
    recorded: list[Any] = []
    desk.bus.subscribe(MMBotStatus, recorded.append)
    engines = await start_engines(desk)
    try:
        seed(desk)
    finally:
        await stop_engines(engines)
    # The remote console with its channel callbacks driven by the test (no connection made): a snapshot,
    # then events, decoded from their JSON form as the client hands them over.
    app = RemoteConsoleApp(cfg, "wss://127.0.0.1:1/remote", "token", live=False)
    app.client.start = lambda: None  # type: ignore[method-assign]
    app.client.instruments, app.client.bots, app.client.desk = desk.instruments, ["mm-btc"], "demo"
    async with app.run_test(size=SIZE) as pilot:
        app._on_link(LinkState.LIVE, "")
        app._on_snapshot(over_the_wire(recorded), {"engines": {}})
        btc = [ev for ev in recorded if ev.bot == "mm-btc"][-1]
        await pilot.pause()
        screen = await open_detail(app, pilot)
        assert cells(screen)["fills"] == "14" and screen.model is app.model
        app._on_events(over_the_wire([moved(btc, fills=15, position=0.25)]))
        app.refresh_panels()
        await pilot.pause()
        assert (cells(screen)["fills"], cells(screen)["position"]) == ("15", "0.2500")
        assert head(screen) == "mm-btc · MMBotStatus · trading state active"
        # the link drops: the figures on screen are said to be the last known ones
        app._on_link(LinkState.DISCONNECTED, "connection reset")
        app.refresh_panels()
        await pilot.pause()
        assert head(screen) == "mm-btc · MMBotStatus · trading state active · ⚠ DISCONNECTED: last known figures"
        assert cells(screen)["fills"] == "15"
        # a reconnect re-snapshots into a fresh model: the open screen follows it
        app._on_link(LinkState.LIVE, "")
        app._on_snapshot(over_the_wire([moved(btc, fills=40, state="stale", quoting=False)]), {"engines": {}})
        await pilot.pause()
        assert app.screen is screen and screen.model is app.model
        assert (cells(screen)["fills"], cells(screen)["state"], cells(screen)["position"]) == ("40", "stale", "0.1500")
        assert head(screen) == "mm-btc · MMBotStatus · trading state active"


async def test_remote_console_on_a_real_desk_shows_the_paused_bot(tmp_path: Any) -> None:
    """Attached to a headless desk subprocess: the open detail follows the bot's own status events as
    the operator pauses it over the channel (state, quoting and open orders change on the desk)."""
    desk = DeskProcess(tmp_path)
    try:
        desk.wait_log(lambda r: r.get("msg") == "desk running", timeout=60)
        tokens = json.loads((tmp_path / "demo" / "remote-tokens.json").read_text())
        operator = next(t["token"] for t in tokens["tokens"] if t["role"] == "operator")
        app = RemoteConsoleApp(load_config(), tokens["url"], operator)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link is LinkState.LIVE and "mm-btc" in app.model.bots)
            await until(pilot, lambda: app.model.bots["mm-btc"].state == "quoting")
            screen = await open_detail(app, pilot)
            await until(pilot, lambda: cells(screen)["state"] == "quoting")
            app.pause_bot("mm-btc")
            await until(pilot, lambda: (cells(screen)["state"], cells(screen)["quoting"],
                                        cells(screen)["open_orders"]) == ("paused", "False", "0"))
            assert app.screen is screen and screen.model is app.model
            shown = app.model.bots["mm-btc"]  # what the desk said last, as the console decoded it
            await until(pilot, lambda: cells(screen)["fills"] == str(shown.fills))
    finally:
        desk.kill()


async def until(pilot: Any, predicate: Any, timeout: float = 20.0) -> None:
    """Wait for a condition on the app (pilot.pause between looks), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause(0.05)
