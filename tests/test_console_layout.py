"""Console layout through Textual's Pilot: the order book names the book the matching engine runs, F1's
keys panel leaves the desk usable at 80x24 and keeps the two-column layout on wide terminals, and bot
detail fits its tables without sideways scrolling at every width."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from console.format import clock, grouped
from console.keys_panel import KeysPanel, keys_panel_width
from console.panels.order_book import OrderBookPanel
from engines.marketdata import Trade
from engines.orders import Side
from tests.test_console_pilot import console, settle


def ladder_lines(app: Any) -> list[str]:
    ladder = app.main.query_one(OrderBookPanel).ladder
    return [strip.text for strip in ladder._strips]


def keys_panels(app: Any) -> list[KeysPanel]:
    return list(app.screen.query(KeysPanel))


# --- which order book the matching engine runs -------------------------------------------------------------
async def test_book_header_names_the_order_book_the_matching_engine_runs(tmp_path: Any) -> None:
    async with console(tmp_path, size=(80, 24)) as (app, desk, pilot):
        assert desk.engine("matching").status()["book_impl"] == "python"  # the seeded desk: compiled_book off
        assert app.model.venue_books == {"sim": "python"}
        head = ladder_lines(app)[0]
        assert head.startswith(" BTC-USD [1/2] ref ")
        assert head.endswith("sim · pure-Python book ")
        # the remote console's path: the desk status of a snapshot (JSON), here a compiled book
        app.model.set_desk_status({"desk": "demo", "engines": {
            "matching": {"state": "running", "venue": "sim", "book_impl": "compiled"},
            "risk": {"state": "running"},
        }})
        assert "book" in app.model.dirty
        await settle(app, pilot)
        assert ladder_lines(app)[0].endswith("sim · compiled book ")


async def test_remote_console_names_the_desks_order_book(tmp_path: Any) -> None:
    """Attached to a real headless desk: the book comes from the snapshot's desk status."""
    import json

    from console.remote import RemoteConsoleApp
    from engines.config import load_config
    from engines.remote.client import LinkState
    from tests.desk_process import DeskProcess
    from tests.test_remote_console import until

    desk = DeskProcess(tmp_path)
    try:
        desk.wait_log(lambda r: r.get("msg") == "desk running", timeout=60)
        tokens = json.loads((tmp_path / "demo" / "remote-tokens.json").read_text())
        viewer = next(t["token"] for t in tokens["tokens"] if t["role"] == "viewer")
        app = RemoteConsoleApp(load_config(), tokens["url"], viewer)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.link is LinkState.LIVE and bool(app.model.venue_books))
            impl = (await app.client.command("status"))["engines"]["matching"]["book_impl"]
            assert app.model.venue_books == {"sim": impl}
            words = {"compiled": "compiled book", "python": "pure-Python book"}[impl]
            await until(pilot, lambda: ladder_lines(app)[:1] and ladder_lines(app)[0].endswith(f"sim · {words} "))
    finally:
        desk.kill()


# --- F1's keys panel -----------------------------------------------------------------------------------------
async def test_keys_panel_at_80x24_leaves_the_book_whole(tmp_path: Any) -> None:
    async with console(tmp_path, size=(80, 24)) as (app, desk, pilot):
        inst = desk.instruments["BTC-USD"]
        # the live desk's trades: the market maker against the simulated takers, and a longer pair
        last = list(app.model.trades["BTC-USD"])[-1]
        for i, (maker, taker) in enumerate((("mm-btc", "sim-takers"), ("fix:DESKCLIENT", "mm-btc"))):
            desk.bus.publish(Trade(symbol="BTC-USD", trade_id=900 + i, price=last.price + i, qty=17,
                                   aggressor=Side.SELL, maker_order_id=1, taker_order_id=2, maker_owner=maker,
                                   taker_owner=taker, maker_fee=0.0, taker_fee=0.0))
        await settle(app, pilot)
        assert app.main.query_one(OrderBookPanel).region.width == 80
        await pilot.press("f1")
        await settle(app, pilot)
        (keys,) = keys_panels(app)
        assert keys.region.width == keys_panel_width(80) == 28
        book = app.main.query_one(OrderBookPanel)
        assert book.region.width == 52 and book.region.right == keys.region.x
        lines = ladder_lines(app)
        width = book.ladder.size.width
        assert width == 50 and all(len(line) == width for line in lines)
        assert lines[0].endswith("sim · Python book ")  # the short words where the long ones do not fit
        # every level whole: side, own mark, price, size
        levels = [line for line in lines if line.startswith((" ask ", " bid "))]
        assert levels and all(line.split()[0] in ("ask", "bid") for line in levels)
        assert any("◆operator " in line for line in levels) and any("◆mm-btc " in line for line in levels)
        # every trade line: time, aggressor, price, size, and the owners whole or visibly elided
        trades = list(app.model.trades["BTC-USD"])[::-1]
        start = lines.index(" last trades" + " " * (width - 12)) + 1
        shown = [line for line in lines[start:] if line.strip()]
        assert shown[0] == (f" {clock(trades[0].ts)} ▼ sell{grouped(inst.price(last.price + 1)):>9}"
                            f"{grouped(inst.qty(17)):>7} fix:DESKCLIENT←m…")
        assert shown[1].endswith(f"{grouped(inst.qty(17)):>7} mm-btc←sim-takers")
        for line, t in zip(shown, trades):
            assert line.startswith(f" {clock(t.ts)} {'▲ buy ' if t.aggressor is Side.BUY else '▼ sell'} ")
            assert f" {grouped(inst.price(t.price))} " in line
        # the panel says how to close and scroll it (the footer beside it has no room for f1)
        assert "f1 hides · ⇧↑ ⇧↓ scroll" in str(keys.query_one("#keys-hint").render())
        await pilot.press("f1")
        await settle(app, pilot)
        assert keys_panels(app) == [] and app.main.query_one(OrderBookPanel).region.width == 80
        assert ladder_lines(app)[0].endswith("sim · pure-Python book ")


async def test_keys_panel_keeps_the_two_column_layout_at_160(tmp_path: Any) -> None:
    async with console(tmp_path, size=(160, 48)) as (app, _desk, pilot):
        right = app.main.query_one("#right")
        await pilot.press("f1")
        await settle(app, pilot)
        (keys,) = keys_panels(app)
        assert keys.region.width == 40
        assert not app.main.has_class("-zoom")
        assert app.main.query_one("#left").region.width == 58
        assert right.display and right.region.width == 62 and right.region.right == keys.region.x
        await pilot.press("f1")
        await settle(app, pilot)
        assert right.region.width == 102


async def test_keys_panel_shows_one_panel_when_the_desk_is_left_under_120(tmp_path: Any) -> None:
    async with console(tmp_path, size=(130, 40)) as (app, _desk, pilot):
        assert not app.main.has_class("-zoom")
        await pilot.press("f1")
        await settle(app, pilot)
        (keys,) = keys_panels(app)
        assert keys.region.width == 30
        # 100 columns left: one panel at a time, as on a 100-column terminal, not a 40-column right column
        assert app.main.has_class("-zoom") and not app.main.query_one("#right").display
        assert app.main.query_one(OrderBookPanel).region.width == 100
        await pilot.resize_terminal(200, 50)  # wide enough again with the panel open
        await settle(app, pilot)
        assert keys.region.width == 60 and not app.main.has_class("-zoom")
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot)
        assert keys.region.width == 28 and app.main.query_one(OrderBookPanel).region.width == 52
        app.action_hide_help_panel()  # the palette's "Hide keys" is the same action
        await settle(app, pilot)
        await pilot.resize_terminal(130, 40)
        await settle(app, pilot)
        assert keys_panels(app) == [] and not app.main.has_class("-zoom")
        app.action_show_help_panel()  # and its "Show keys": our panel, not Textual's
        await settle(app, pilot)
        assert len(keys_panels(app)) == 1 and app.main.has_class("-zoom")


# --- bot detail ----------------------------------------------------------------------------------------------
async def test_bot_detail_tables_fit_without_sideways_scrolling(tmp_path: Any) -> None:
    async with console(tmp_path, size=(160, 48)) as (app, _desk, pilot):
        await pilot.press("2", "enter")
        await pilot.pause()
        params = app.screen.query_one("#params", DataTable)
        status = app.screen.query_one("#status", DataTable)
        rows = [tuple(status.get_row_at(i)) for i in range(status.row_count)]
        # the risk limits' usage one row each (a dict in one cell was what scrolled sideways)
        assert ("limits.position", "30% used") in rows and ("limits.order_rate", "12% used") in rows
        assert ("fills", "14") in rows and not any("{" in value for _, value in rows)
        for size in [(160, 48), (200, 50), (120, 40), (110, 40), (109, 40), (80, 24), (160, 48)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            for table in (params, status):
                assert table.max_scroll_x == 0, (size, table.id)  # every column whole, no sideways scrolling
            if size[0] < 110:
                assert params.region.y < status.region.y and params.region.width == status.region.width, size
            else:
                assert params.region.y == status.region.y and params.region.right < status.region.x, size


# --- bots table: large figures shortened, never cut --------------------------------------------------------
def test_money_and_amounts_are_shortened_only_when_they_would_not_fit() -> None:
    from console.format import amount_fit, money_fit

    assert [money_fit(v, 10) for v in (0.0, 3.78, -999.99, 1234.56, -9449.72, 123456.78, 1234567.8, -98765432.1)] == [
        "0.00", "+3.78 ▲", "-999.99 ▼", "+1,235 ▲", "-9,450 ▼", "+123,457 ▲", "+1.23M ▲", "-98.77M ▼",
    ]
    assert money_fit(-9449.72, 11) == "-9,449.72 ▼"  # fits whole: unchanged
    assert [amount_fit(v, 6) for v in (8.96, 999.99, 1491.51, 99999.4, 123456.0, 2.5e6)] == [
        "8.96", "999.99", "1,492", "99,999", "123.5k", "2.50M",
    ]


async def test_bots_table_shows_large_pnl_and_fees_whole(tmp_path: Any) -> None:
    import dataclasses

    async with console(tmp_path, size=(160, 48)) as (app, desk, pilot):
        status = app.model.bots["mm-btc"]
        desk.bus.publish(dataclasses.replace(status, realised=9449.72, unrealised=-123456.78, fees=1491.51,
                                             net_pnl=9449.72 - 123456.78 - 1491.51))
        await settle(app, pilot)
        table = app.main.query_one("#bots-table", DataTable)
        row = dict(zip((str(c.label) for c in table.ordered_columns), map(str, table.get_row_at(0))))
        assert (row["realised"], row["unrealised"], row["fees"]) == ("+9,450 ▲", "-123,457 ▼", "1,492")
        assert table.max_scroll_x == 0
        await pilot.resize_terminal(80, 24)
        await pilot.press("2")
        await settle(app, pilot)
        row = dict(zip((str(c.label) for c in table.ordered_columns), map(str, table.get_row_at(0))))
        assert row["net P&L"] == "-115,499 ▼"


# --- a failed engine stays in view --------------------------------------------------------------------------
async def test_status_bar_names_a_failed_engine_until_it_runs_again(tmp_path: Any) -> None:
    from engines.events import EngineState, EngineStatusChanged

    async with console(tmp_path, size=(160, 48)) as (app, desk, pilot):
        assert "failed" not in str(app.status_bar.render())
        desk.bus.publish(EngineStatusChanged(engine="control", state=EngineState.FAILED,
                                             detail="control API: cannot listen on 127.0.0.1:8765"))
        await settle(app, pilot)
        assert " ✖ control failed (log: 5)" in str(app.status_bar.render())
        desk.bus.publish(EngineStatusChanged(engine="control", state=EngineState.RUNNING))
        await settle(app, pilot)
        assert "failed" not in str(app.status_bar.render())
