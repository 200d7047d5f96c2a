"""The desk's main screen: status bar, the panels (each mounted once), and the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

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
        yield Footer(id="footer", compact=True)

    def on_mount(self) -> None:
        self.app.main_ready()  # type: ignore[attr-defined]
