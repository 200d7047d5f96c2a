"""Orders: the desk's recent orders, and one order's detail with its lifecycle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label

from console.footer import DeskFooter
from console.format import clock

if TYPE_CHECKING:
    from console.model import DeskModel, OrderInfo

MAX_ROWS = 500
COLUMNS = ("id", "symbol", "owner", "side", "price", "qty", "filled", "leaves", "status")
#: narrower than NARROW columns: no "filled" (qty - leaves) and short statuses, so no column is cut
NARROW = 100
COMPACT = ("id", "symbol", "owner", "side", "price", "qty", "leaves", "status")
SHORT_STATUS = {"partially_filled": "partial", "pending_new": "pending"}


class OrdersScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="orders.back"),
        Binding("enter", "detail", "Detail", id="orders.detail", tooltip="Order detail with its lifecycle"),
    ]

    DEFAULT_CSS = """
    OrdersScreen DataTable { height: 1fr; border: round $panel-lighten-2; }
    """

    def __init__(self, model: DeskModel) -> None:
        super().__init__()
        self.model = model
        self._cells: dict[str, tuple[str, ...]] = {}
        self._ready = False
        self.columns: tuple[str, ...] = COLUMNS

    def compose(self) -> ComposeResult:
        yield DataTable(id="orders-table", cursor_type="row")
        yield DeskFooter()

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.border_title = "Orders (newest last)"
        self.columns = COMPACT if 0 < self.size.width < NARROW else COLUMNS
        for key in self.columns:
            t.add_column(key, key=key)
        self._ready = True
        self.refresh_from(self.model)
        if t.row_count:
            t.move_cursor(row=t.row_count - 1)  # newest last: start there
        t.focus()

    def on_resize(self) -> None:
        columns = COMPACT if self.size.width < NARROW else COLUMNS
        if not self._ready or columns == self.columns:
            return
        t = self.query_one(DataTable)
        selected = t.cursor_row
        t.clear(columns=True)
        self._cells.clear()
        self.columns = columns
        for key in columns:
            t.add_column(key, key=key)
        self.refresh_from(self.model)
        if t.row_count:
            t.move_cursor(row=min(selected, t.row_count - 1))

    def refresh_from(self, model: DeskModel) -> None:
        if not self._ready:
            return  # not composed yet: on_mount fills the table
        t = self.query_one(DataTable)
        cols = self.columns
        short = cols is COMPACT
        orders = list(model.orders.values())[-MAX_ROWS:]
        live = set()
        for o in orders:
            key = f"{o.symbol}:{o.order_id}"
            live.add(key)
            every = {
                "id": str(o.order_id), "symbol": o.symbol, "owner": o.owner, "side": o.side,
                "price": model.fmt_price(o.symbol, o.price), "qty": model.fmt_qty(o.symbol, o.qty),
                "filled": model.fmt_qty(o.symbol, o.filled), "leaves": model.fmt_qty(o.symbol, o.leaves),
                "status": SHORT_STATUS.get(o.status, o.status) if short else o.status,
            }
            cells = tuple(every[c] for c in cols)
            old = self._cells.get(key)
            if old is None:
                t.add_row(*cells, key=key)
            else:
                for c, a, b in zip(cols, old, cells):
                    if a != b:
                        t.update_cell(key, c, b)
            self._cells[key] = cells
        for gone in [k for k in self._cells if k not in live]:
            t.remove_row(gone)
            del self._cells[gone]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()

    def action_detail(self) -> None:
        t = self.query_one(DataTable)
        if not t.row_count:
            return
        row_key, _ = t.coordinate_to_cell_key(t.cursor_coordinate)
        symbol, _, oid = str(row_key.value).rpartition(":")
        order = self.model.order(symbol, int(oid))
        if order is not None:
            self.app.push_screen(OrderDetailScreen(self.model, order))


class OrderDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "Close", id="order.close")]

    DEFAULT_CSS = """
    OrderDetailScreen { align: center middle; background: $background 60%; }
    OrderDetailScreen > Vertical {
        width: 80; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    OrderDetailScreen #head { text-style: bold; margin-bottom: 1; }
    OrderDetailScreen DataTable { height: auto; max-height: 20; }
    """

    def __init__(self, model: DeskModel, order: OrderInfo) -> None:
        super().__init__()
        self.model = model
        self.order = order

    def compose(self) -> ComposeResult:
        o = self.order
        m = self.model
        with Vertical():
            yield Label(
                f"order {o.order_id} · {o.symbol} · {o.owner} · client id {o.client_id or '—'}", id="head"
            )
            yield Label(
                f"{o.side} {m.fmt_qty(o.symbol, o.qty)} @ {m.fmt_price(o.symbol, o.price)} {o.type} {o.tif}"
                f" on {o.venue} · filled {m.fmt_qty(o.symbol, o.filled)} · leaves {m.fmt_qty(o.symbol, o.leaves)}"
                f" · {o.status}"
            )
            yield DataTable(id="lifecycle", cursor_type="row")

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_column("time", key="time")
        t.add_column("event", key="event")
        for ts, text in self.order.lifecycle:
            t.add_row(clock(ts, millis=True), text)

    def action_close(self) -> None:
        self.dismiss(None)
