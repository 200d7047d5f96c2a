"""The console app (first cut: live simulated prices; the operator console issue grows it)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header

from engines.config import DeskConfig
from engines.events import PriceTick
from engines.runtime import Desk


class OpdeskApp(App[int]):
    TITLE = "opdesk"
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(self, config: DeskConfig, desk: Desk | None = None) -> None:
        super().__init__()
        self.config = config
        self.desk = desk or Desk(config).build()
        self.prices: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="prices")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#prices", DataTable)
        table.add_columns("symbol", "price")
        for sym in self.desk.instruments:
            table.add_row(sym, "—", key=sym)
        self.desk.bus.subscribe(PriceTick, lambda ev: self.prices.__setitem__(ev.symbol, ev.price))
        await self.desk.start()
        self.set_interval(1 / self.config.ui.refresh_hz, self._refresh)

    def _refresh(self) -> None:
        table = self.query_one("#prices", DataTable)
        for sym, price in self.prices.items():
            table.update_cell(sym, table.ordered_columns[1].key, f"{price:,.2f}")

    async def on_unmount(self) -> None:
        await self.desk.stop()
