"""Market-making bots: state, position, realised/unrealised P&L, fees, return %, limits usage,
quoting status, and a P&L sparkline of the selected bot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline

from console.format import amount_fit, money, money_fit, pct, signed
from console.panels.base import Panel
from console.panels.table import DiffTable

if TYPE_CHECKING:
    from console.model import DeskModel

COLUMNS = [
    ("bot", "bot", 14),
    ("state", "state", 11),
    ("position", "position", 8),
    ("realised", "realised", 10),
    ("unrealised", "unrealised", 10),
    ("fees", "fees", 6),
    ("ret", "return", 9),
    ("limits", "limit", 9),
    ("orders", "ord", 3),
]
#: Below this panel width the full set would scroll sideways: the bot's net P&L (realised + unrealised - fees)
#: stands in for its three parts, and the open-order count is left to the bot detail screen.
COMPACT_BELOW = 100
COMPACT_COLUMNS = [
    ("bot", "bot", 14),
    ("state", "state", 11),
    ("position", "position", 8),
    ("net", "net P&L", 10),
    ("ret", "return", 9),
    ("limits", "limit", 9),
]

WIDTHS = {key: width for key, _, width in COLUMNS + COMPACT_COLUMNS}

#: Short names for the limits column (the bot detail screen shows them all in full).
LIMIT_ABBREV = {"position": "pos", "order_rate": "rate", "loss": "loss", "drawdown": "dd", "notional": "notl"}


def limits_text(ev: Any) -> str:
    """The most-used limit as "name nn%"; accepts a dict of name → fraction or a plain number."""
    usage = getattr(ev, "limits_usage", None)
    if usage is None:
        usage = getattr(ev, "limits", None)
    if isinstance(usage, dict) and usage:
        name, value = max(usage.items(), key=lambda kv: float(kv[1]))
        value = float(value)
        mark = "⚠" if value >= 0.8 else ""
        return f"{LIMIT_ABBREV.get(name, name[:4])} {value * 100:.0f}%{mark}"
    if isinstance(usage, int | float):
        return f"{float(usage) * 100:.0f}%"
    return "—"


def pnl_cell(app: Any, value: float, text: str) -> Text:
    var = "pnl-up" if value > 0 else "pnl-down" if value < 0 else None
    return Text(text, style=app.theme_variables.get(var, "") if var else "", justify="right")


class BotsPanel(Panel):
    max_hz = 4.0
    key = "bots"
    title = "Market-making bots"

    BINDINGS = [
        Binding("enter", "app.bot_detail", "Detail", id="bots.detail", tooltip="Bot detail with its parameters"),
        Binding("p", "app.pause_selected", "Pause", id="bots.pause", tooltip="Pause the selected bot"),
        Binding("r", "app.resume_selected", "Resume", id="bots.resume", tooltip="Resume the selected bot"),
    ]

    DEFAULT_CSS = """
    BotsPanel #pnl-row { height: 3; }
    BotsPanel #pnl-label { width: 30; padding: 1 1 0 1; color: $text-muted; }
    BotsPanel Sparkline { height: 3; width: 1fr; }
    BotsPanel Sparkline > .sparkline--max-color { color: $pnl-up; }
    BotsPanel Sparkline > .sparkline--min-color { color: $pnl-down; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._points: list[float] = []
        self._label = ""

    def compose(self):  # type: ignore[override]
        yield DiffTable(COLUMNS, id="bots-table")
        with Horizontal(id="pnl-row"):
            yield Label("P&L", id="pnl-label")
            yield Sparkline([], id="pnl-spark")

    @property
    def table(self) -> DiffTable:
        return self.query_one(DiffTable)

    def on_resize(self, event: events.Resize) -> None:
        columns = COMPACT_COLUMNS if event.size.width < COMPACT_BELOW else COLUMNS
        if self.table.set_columns(columns):
            model = getattr(self.app, "model", None)
            if model is not None:  # refill the rows now rather than show an empty table for a tick
                self.refresh_from(model)

    def on_data_table_row_selected(self, event: DiffTable.RowSelected) -> None:
        event.stop()
        self.app.action_bot_detail()  # type: ignore[attr-defined]

    def on_data_table_row_highlighted(self, event: DiffTable.RowHighlighted) -> None:
        model = getattr(self.app, "model", None)
        if model is not None:
            model.dirty.add(self.key)  # the sparkline follows the selected bot

    @property
    def selected(self) -> str | None:
        return self.table.selected_key

    def refresh_from(self, model: DeskModel) -> None:
        app = self.app
        keys = self.table.column_keys
        rows = {}
        for name, ev in sorted(model.bots.items()):
            state = str(getattr(ev, "state", "?"))
            scope_state = model.states.get(f"bot:{name}", "active")
            if scope_state != "active" or model.desk_state() != "active":
                state = f"{state} ■"
            quoting = bool(getattr(ev, "quoting", False))
            state = f"{'●' if quoting else '○'} {state}"
            realised = float(getattr(ev, "realised", 0.0))
            unrealised = float(getattr(ev, "unrealised", 0.0))
            fees = float(getattr(ev, "fees", 0.0))
            if len(state) > 11:
                state = state[:10] + "…"
            ret = float(getattr(ev, "return_pct", 0.0))
            position = float(getattr(ev, "position", 0.0))
            net = float(getattr(ev, "net_pnl", realised + unrealised - fees))
            cells = {
                "bot": f"{name} {getattr(ev, 'symbol', '')}",
                "state": state,
                "position": Text(signed(position, 4)[:8], justify="right"),
                # shortened only where the full figure would be cut (the bot detail has them exact)
                "realised": pnl_cell(app, realised, money_fit(realised, WIDTHS["realised"])),
                "unrealised": pnl_cell(app, unrealised, money_fit(unrealised, WIDTHS["unrealised"])),
                "net": pnl_cell(app, net, money_fit(net, WIDTHS["net"])),
                "fees": Text(amount_fit(fees, WIDTHS["fees"]), justify="right"),
                "ret": pnl_cell(app, ret, pct(ret)),
                "limits": limits_text(ev),
                "orders": str(getattr(ev, "open_orders", "")),
            }
            rows[name] = tuple(cells[k] for k in keys)
        self.table.sync(rows)
        selected = self.selected or next(iter(sorted(model.bots)), None)
        spark = self.query_one(Sparkline)
        points = list(model.pnl.get(selected, ())) if selected else []
        points = points or [0.0]
        if points != self._points:
            # Fixed-size widget: skip the layout pass the reactive would ask for on every update.
            self._points = points
            spark.set_reactive(Sparkline.data, points)
            spark.refresh()
        last = points[-1]
        text = f"{selected} net P&L {money(last)}" if selected else "net P&L —"
        if text != self._label:
            self._label = text
            self.query_one("#pnl-label", Label).update(text, layout=False)
        if not model.bots:
            self.set_title("Market-making bots · none running")
        else:
            self.set_title(f"Market-making bots · {len(model.bots)}")
