"""The desk's main screen: status bar, the panels (each mounted once), and the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen

from console.footer import DeskFooter
from console.panels.bots import BotsPanel
from console.panels.event_log import EventLogPanel
from console.panels.fix_sessions import FixSessionsPanel
from console.panels.grid import GridPanel
from console.panels.order_book import OrderBookPanel
from console.panels.status_bar import StatusBar

#: zoom keys → panel ids, in the order the footer lists them
PANEL_IDS = {"1": "book", "2": "bots", "3": "grid", "4": "fix", "5": "log"}


class MainScreen(Screen[None]):
    """Wide terminals show every panel; narrow ones (or a zoom) show one panel at a time."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("1", "app.zoom('book')", "Book", id="zoom.book", show=False, tooltip="Show only the order book (again: all)"),
        Binding("2", "app.zoom('bots')", "Bots", id="zoom.bots", show=False, tooltip="Show only the bots (again: all)"),
        Binding("3", "app.zoom('grid')", "Grid", id="zoom.grid", show=False, tooltip="Show only the grid bots (again: all)"),
        Binding("4", "app.zoom('fix')", "FIX", id="zoom.fix", show=False, tooltip="Show only the FIX sessions (again: all)"),
        Binding("5", "app.zoom('log')", "Log", id="zoom.log", show=False, tooltip="Show only the event log (again: all)"),
        Binding("0", "app.zoom('')", "All", id="zoom.all", show=False, tooltip="Show every panel"),
        Binding("i", "app.fix_inspector", "FIX msgs", id="inspector", tooltip="FIX message inspector"),
        Binding("o", "app.orders", "Orders", id="orders", tooltip="Orders and their lifecycles"),
        Binding("x", "app.cancel_all_instrument", "Cancel all", id="cancel_all",
                tooltip="Cancel every open order on the instrument shown in the book"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield OrderBookPanel(id="book")
                yield GridPanel(id="grid")
            with Vertical(id="right"):
                yield FixSessionsPanel(id="fix")
                yield BotsPanel(id="bots")
                yield EventLogPanel(id="log")
        yield DeskFooter(id="footer")

    def on_mount(self) -> None:
        self.app.main_ready()  # type: ignore[attr-defined]
